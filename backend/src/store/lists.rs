//! The list operations, written once over a backend's [`Statements`]: who may do what is
//! decided in the statements (membership and role joined into each one), and a write that
//! matched nothing is then told apart: not a member (404), not the right role (403), or a
//! version the condition does not admit (412).

use async_trait::async_trait;

use super::error::{is_aborted_by_conflict, is_unique_violation};
use super::statements::Statements;
use super::tasks::stored_position;
use super::{Lists, StoreError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::statements::{InvitationRequest, now};
use super::tasks::{keys_valid_after, replay};
use crate::domain::list::{
    Accepted, CreateInvitation, CreateList, Export, ExportedList, Invitation, Member,
    NewInvitation, UpdateList,
};
use crate::domain::{Expect, IdempotencyKey, List, ListId, Once, Outcome, Position, Role, UserId};

/// How often a move of a list retries after a concurrent move took its position.
const POSITION_ATTEMPTS: usize = 8;

/// How often a write of many rows runs when the database aborted it to break a deadlock.
const CONFLICT_ATTEMPTS: usize = 4;

/// Evaluates `$write` (an awaited store call) again when the database aborted it to break a
/// deadlock or for a serialization failure: such a transaction wrote nothing. Writes that lock
/// rows of several lists and tasks take them in one order, so this is a defence, not a loop
/// that runs.
macro_rules! again_on_conflict {
    ($write:expr) => {{
        let mut attempt = 1;
        loop {
            match $write {
                Err(error) if attempt < CONFLICT_ATTEMPTS && is_aborted_by_conflict(&error) => {
                    attempt += 1;
                }
                result => break result,
            }
        }
    }};
}

#[async_trait]
impl<S: Statements> Lists for S {
    async fn lists_of(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        // Every user has an Inbox: listing their lists is the first time a client needs it.
        self.ensure_inbox(owner).await?;
        self.select_lists(owner).await
    }

    async fn trashed_lists(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        let mut lists = self.every_list(owner).await?;
        lists.retain(|list| list.role == Role::Owner && list.deleted_at.is_some());
        Ok(lists)
    }

    async fn get_list(&self, owner: &UserId, list: ListId) -> Result<List, StoreError> {
        self.select_list(owner, list, false)
            .await?
            .ok_or(StoreError::ListNotFound)
    }

    async fn create_list(
        &self,
        owner: &UserId,
        list: CreateList,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<List>, StoreError> {
        for _ in 0..POSITION_ATTEMPTS {
            let created = match key {
                None => self
                    .insert_list(owner, &list)
                    .await
                    .map(|list| list.map(Once::Done)),
                Some(key) => create_once(self, owner, &list, key).await,
            };
            match created {
                Ok(Some(list)) => return Ok(list),
                Ok(None) => return Err(too_many_lists()),
                // Two creations raced for the last place in the caller's order.
                Err(error) if is_unique_violation(&error) || is_aborted_by_conflict(&error) => {
                    continue;
                }
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
        if again_on_conflict!(self.trash_list(owner, list, false).await)? {
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
        if again_on_conflict!(self.trash_list(owner, list, true).await)? {
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
                Err(error) if is_unique_violation(&error) || is_aborted_by_conflict(&error) => {
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Other(
            "too many concurrent moves of lists".into(),
        ))
    }
    async fn members(&self, owner: &UserId, list: ListId) -> Result<Vec<Member>, StoreError> {
        self.select_members(owner, list)
            .await?
            .ok_or(StoreError::ListNotFound)
    }

    async fn invite(
        &self,
        owner: &UserId,
        list: ListId,
        request: CreateInvitation,
    ) -> Result<NewInvitation, StoreError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|error| StoreError::Other(error.to_string().into()))?;
        let token = URL_SAFE_NO_PAD.encode(secret);
        let now = now();
        let invitation = InvitationRequest {
            role: request.role.into(),
            max_uses: request.max_uses,
            expires_at: now + chrono::Duration::hours(request.expires_in_hours),
            token_hash: token_hash(&token),
            now,
        };
        match self.insert_invitation(owner, list, &invitation).await? {
            Some(invitation) => Ok(NewInvitation { invitation, token }),
            None => {
                let current = self.get_list(owner, list).await?;
                Err(match (current.is_inbox, current.role) {
                    (true, _) => StoreError::Conflict("an Inbox cannot be shared"),
                    _ => only_the_owner(),
                })
            }
        }
    }

    async fn invitations(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> Result<Vec<Invitation>, StoreError> {
        match self.select_invitations(owner, list).await? {
            Some(invitations) => Ok(invitations),
            None => Err(owner_or_not(self, owner, list).await),
        }
    }

    async fn revoke(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: i64,
    ) -> Result<(), StoreError> {
        if self.revoke_invitation(owner, list, invitation).await? {
            return Ok(());
        }
        match self.role_in(owner, list).await? {
            Some(Role::Owner) => Err(StoreError::Missing("invitation not found")),
            _ => Err(owner_or_not(self, owner, list).await),
        }
    }

    async fn accept(&self, owner: &UserId, token: &str) -> Result<List, StoreError> {
        match again_on_conflict!(self.accept_invitation(owner, &token_hash(token)).await)? {
            Accepted::Joined(list) | Accepted::AlreadyMember(list) => {
                self.get_list(owner, list).await
            }
            Accepted::Owner => Err(StoreError::Conflict(
                "you own this list: an invitation is for someone else",
            )),
            // Unknown, expired, used up, revoked, of a deleted list: one answer for all.
            Accepted::Unknown => Err(StoreError::Missing("invitation not found")),
            Accepted::ListFull => Err(StoreError::Invalid {
                field: "token",
                message: "the list has 50 members, the most there can be",
            }),
            Accepted::TooManyLists => Err(StoreError::Invalid {
                field: "token",
                message: "you belong to 1000 lists already, the most there can be",
            }),
        }
    }

    async fn set_role(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
        role: Role,
    ) -> Result<Member, StoreError> {
        if let Some(member) = again_on_conflict!(self.change_role(owner, list, member, role).await)?
        {
            return Ok(member);
        }
        match self.role_in(owner, list).await? {
            None => Err(StoreError::ListNotFound),
            Some(Role::Owner) => match self.role_in(member, list).await? {
                None => Err(StoreError::Missing("member not found")),
                Some(_) => Err(StoreError::Conflict(
                    "the owner's role changes only by a transfer of the list",
                )),
            },
            Some(_) => Err(only_the_owner()),
        }
    }

    async fn remove(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<(), StoreError> {
        if again_on_conflict!(self.remove_member(owner, list, member).await)? {
            return Ok(());
        }
        match self.role_in(owner, list).await? {
            None => Err(StoreError::ListNotFound),
            Some(Role::Owner) if member == owner => Err(StoreError::Conflict(
                "the owner cannot leave a list: transfer it to a member first",
            )),
            Some(Role::Owner) => Err(StoreError::Missing("member not found")),
            Some(_) => Err(only_the_owner()),
        }
    }

    async fn transfer(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<List, StoreError> {
        if again_on_conflict!(self.transfer_list(owner, list, member).await)? {
            return self.get_list(owner, list).await;
        }
        match self.role_in(owner, list).await? {
            None => Err(StoreError::ListNotFound),
            Some(Role::Owner) => Err(StoreError::Invalid {
                field: "user_id",
                message: "must be a member of the list",
            }),
            Some(_) => Err(only_the_owner()),
        }
    }

    async fn export(&self, owner: &UserId) -> Result<Export, StoreError> {
        let every = self.every_list(owner).await?;
        let tasks = self.owned_and_created_tasks(owner).await?;
        let mut lists = Vec::new();
        let mut memberships = Vec::new();
        for list in every {
            if list.role != Role::Owner {
                // A list of someone else's in the trash is, to its members, gone.
                if list.deleted_at.is_none() {
                    memberships.push(list);
                }
                continue;
            }
            let members = self.members_of(list.id).await?;
            let list_tasks = tasks
                .iter()
                .filter(|task| task.list_id == list.id)
                .cloned()
                .collect();
            lists.push(ExportedList {
                list,
                members,
                tasks: list_tasks,
            });
        }
        let tasks_elsewhere = tasks
            .into_iter()
            .filter(|task| memberships.iter().any(|member| member.id == task.list_id))
            .collect();
        Ok(Export {
            user_id: owner.clone(),
            lists,
            memberships,
            tasks_elsewhere,
        })
    }

    async fn erase(&self, owner: &UserId) -> Result<(), StoreError> {
        again_on_conflict!(self.erase_user(owner).await)
    }
}

/// A creation under an idempotency key: the key's lock, the look-up of an earlier outcome,
/// the list and the record of its response, in one transaction (as a task's, in `tasks`).
async fn create_once<S: Statements>(
    store: &S,
    owner: &UserId,
    list: &CreateList,
    key: &IdempotencyKey,
) -> Result<Option<Once<List>>, StoreError> {
    let _claim = store.claim(owner, key)?;
    let now = now();
    let valid_after = keys_valid_after(now);
    let mut transaction = store.begin().await?;
    let outcome = Box::pin(async {
        if !store.lock_key(&mut transaction, owner, key).await? {
            return Err(StoreError::KeyInFlight);
        }
        if let Some(recorded) = store
            .recorded(&mut transaction, owner, key, valid_after)
            .await?
        {
            // The same key with another request: a task's creation or move.
            return match replay::<List>(recorded, key)? {
                Some(Once::Replayed(replay)) if replay.outcome == Outcome::ListCreated => {
                    Ok(Some(Once::Replayed(replay)))
                }
                _ => Err(StoreError::KeyReused),
            };
        }
        let Some(created) = store.insert_list_in(&mut transaction, owner, list).await? else {
            return Ok(None);
        };
        let body =
            serde_json::to_string(&created).map_err(|error| StoreError::Other(error.into()))?;
        let recorded = store
            .record(
                &mut transaction,
                owner,
                key,
                Outcome::ListCreated,
                created.id.get(),
                created.version,
                &body,
                now,
                valid_after,
            )
            .await?;
        if !recorded {
            return Err(StoreError::KeyInFlight);
        }
        Ok(Some(Once::Done(created)))
    })
    .await;
    match outcome {
        Ok(Some(Once::Done(created))) => {
            store.commit(transaction).await?;
            Ok(Some(Once::Done(created)))
        }
        other => {
            store.rollback(transaction).await;
            other
        }
    }
}

fn too_many_lists() -> StoreError {
    StoreError::Invalid {
        field: "name",
        message: "you belong to 1000 lists already, the most there can be",
    }
}

/// What an invitation's token is stored as: its SHA-256, so that the database never holds a
/// usable secret.
fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn only_the_owner() -> StoreError {
    StoreError::Forbidden("only the list's owner can do this")
}

/// A 404 for a list that is not the caller's, a 403 for one they do not own.
async fn owner_or_not<S: Statements>(store: &S, owner: &UserId, list: ListId) -> StoreError {
    match store.role_in(owner, list).await {
        Err(error) => error,
        Ok(None) => StoreError::ListNotFound,
        Ok(Some(_)) => only_the_owner(),
    }
}
