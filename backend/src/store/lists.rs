//! The list operations, written once over a backend's [`Statements`]: who may do what is
//! decided in the statements (membership and role joined into each one), and a write that
//! matched nothing is then told apart: not a member (404), not the right role (403), or a
//! version the condition does not admit (412).

use async_trait::async_trait;

use super::error::is_unique_violation;
use super::statements::Statements;
use super::tasks::stored_position;
use super::{Lists, StoreError};
use crate::domain::list::{CreateList, UpdateList};
use crate::domain::{Expect, List, ListId, Position, Role, UserId};

/// How often a move of a list retries after a concurrent move took its position.
const POSITION_ATTEMPTS: usize = 8;

#[async_trait]
impl<S: Statements> Lists for S {
    async fn lists_of(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        self.select_lists(owner).await
    }

    async fn get_list(&self, owner: &UserId, list: ListId) -> Result<List, StoreError> {
        self.select_list(owner, list, false)
            .await?
            .ok_or(StoreError::ListNotFound)
    }

    async fn create_list(&self, owner: &UserId, list: CreateList) -> Result<List, StoreError> {
        for _ in 0..POSITION_ATTEMPTS {
            match self.insert_list(owner, &list).await {
                Ok(Some(list)) => return Ok(list),
                Ok(None) => {
                    return Err(StoreError::Invalid {
                        field: "name",
                        message: "you belong to 1000 lists already, the most there can be",
                    });
                }
                // Two creations raced for the last place in the caller's order.
                Err(error) if is_unique_violation(&error) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Other(
            "too many concurrent list creations".into(),
        ))
    }

    async fn update_list(
        &self,
        owner: &UserId,
        list: ListId,
        changes: UpdateList,
    ) -> Result<List, StoreError> {
        if !changes.is_empty() {
            let updated =
                Statements::update_list(self, owner, list, &changes, &Expect::Any).await?;
            if let Some(updated) = updated {
                return Ok(updated);
            }
        }
        // Missing, read-only, or unchanged.
        let current = self.get_list(owner, list).await?;
        if !current.role.can_write() {
            return Err(StoreError::Forbidden(
                "a viewer of this list cannot change it or its tasks",
            ));
        }
        Ok(current)
    }

    async fn delete_list(&self, owner: &UserId, list: ListId) -> Result<(), StoreError> {
        if self.trash_list(owner, list, false).await? {
            return Ok(());
        }
        let current = self.get_list(owner, list).await?;
        Err(match (current.is_inbox, current.role) {
            (true, _) => StoreError::Conflict("an Inbox cannot be deleted"),
            (false, Role::Owner) => StoreError::ListNotFound,
            (false, _) => StoreError::Forbidden("only the list's owner can delete it"),
        })
    }

    async fn restore_list(&self, owner: &UserId, list: ListId) -> Result<List, StoreError> {
        if self.trash_list(owner, list, true).await? {
            return self.get_list(owner, list).await;
        }
        // Not in the trash (then as it is), or not the caller's to restore.
        match self.select_list(owner, list, true).await? {
            Some(trashed) if trashed.role != Role::Owner => Err(StoreError::Forbidden(
                "only the list's owner can restore it",
            )),
            Some(_) => Err(StoreError::ListNotFound),
            None => self.get_list(owner, list).await,
        }
    }

    async fn move_list(
        &self,
        owner: &UserId,
        list: ListId,
        after: Option<Option<ListId>>,
        before: Option<Option<ListId>>,
    ) -> Result<List, StoreError> {
        let position_of = async |anchor: ListId| -> Result<Position, StoreError> {
            stored_position(
                self.get_list(owner, anchor)
                    .await?
                    .position
                    .as_str()
                    .to_owned(),
            )
        };
        for _ in 0..POSITION_ATTEMPTS {
            self.get_list(owner, list).await?;
            let (lower, upper) = match (after, before) {
                (Some(anchor), None) => {
                    let lower = match anchor {
                        Some(anchor) if anchor != list => Some(position_of(anchor).await?),
                        Some(_) => return self.get_list(owner, list).await,
                        None => None,
                    };
                    let upper = self
                        .list_neighbour(owner, list, lower.as_ref(), true)
                        .await?
                        .map(stored_position)
                        .transpose()?;
                    (lower, upper)
                }
                (None, Some(anchor)) => {
                    let upper = match anchor {
                        Some(anchor) if anchor != list => Some(position_of(anchor).await?),
                        Some(_) => return self.get_list(owner, list).await,
                        None => None,
                    };
                    let lower = self
                        .list_neighbour(owner, list, upper.as_ref(), false)
                        .await?
                        .map(stored_position)
                        .transpose()?;
                    (lower, upper)
                }
                _ => {
                    return Err(StoreError::Invalid {
                        field: "after",
                        message: "give either `after` or `before`",
                    });
                }
            };
            let position = Position::between(lower.as_ref(), upper.as_ref())
                .map_err(|error| StoreError::Other(error.into()))?;
            match self.reposition_list(owner, list, &position).await {
                Ok(true) => return self.get_list(owner, list).await,
                Ok(false) => return Err(StoreError::ListNotFound),
                Err(error) if is_unique_violation(&error) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Other(
            "too many concurrent moves of lists".into(),
        ))
    }
}
