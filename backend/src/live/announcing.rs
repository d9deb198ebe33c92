//! Writes announced where they happen: a [`Tasks`] and a [`Lists`] that wake the writer's
//! streams, nudge the poll that wakes the other members' (and, through the hub, tell the
//! other instances) once a write has committed. Built once, when the service is assembled,
//! so that no handler has to remember it.

use std::sync::Arc;

use async_trait::async_trait;

use super::hub::Hub;
use crate::domain::list::{
    CreateInvitation, CreateList, Export, Invitation, Member, NewInvitation, UpdateList,
};
use crate::domain::{
    CreateTask, Expect, Filter, IdempotencyKey, List, ListId, Once, Placement, Role, Task, TaskId,
    TaskQuery, UpdateTask, UserId,
};
use crate::store::{Lists, StoreError, Tasks};

/// `inner`, with every successful write announced to `hub`.
pub struct Announcing<T: ?Sized> {
    inner: Arc<T>,
    hub: Arc<Hub>,
}

impl Announcing<dyn Tasks> {
    pub fn wrap(inner: Arc<dyn Tasks>, hub: Arc<Hub>) -> Arc<dyn Tasks> {
        Arc::new(Announcing { inner, hub })
    }
}

impl Announcing<dyn Lists> {
    pub fn wrap_lists(inner: Arc<dyn Lists>, hub: Arc<Hub>) -> Arc<dyn Lists> {
        Arc::new(Announcing { inner, hub })
    }
}

impl<S: ?Sized> Announcing<S> {
    /// `result` as it is, after announcing that `owner` wrote if it is a success.
    fn announced<T>(&self, owner: &UserId, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() {
            self.hub.written(owner);
        }
        result
    }
}

#[async_trait]
impl Tasks for Announcing<dyn Tasks> {
    async fn create(
        &self,
        owner: &UserId,
        task: CreateTask,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError> {
        let result = self.inner.create(owner, task, key).await;
        self.announced(owner, result)
    }

    async fn list(&self, owner: &UserId, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        self.inner.list(owner, query).await
    }

    async fn count(&self, owner: &UserId, filter: &Filter) -> Result<i64, StoreError> {
        self.inner.count(owner, filter).await
    }

    async fn get(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
        self.inner.get(owner, id).await
    }

    async fn update(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: UpdateTask,
        expect: &Expect,
    ) -> Result<Task, StoreError> {
        let result = self.inner.update(owner, id, changes, expect).await;
        self.announced(owner, result)
    }

    async fn move_task(
        &self,
        owner: &UserId,
        id: TaskId,
        placement: Placement,
        expect: &Expect,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError> {
        let result = self
            .inner
            .move_task(owner, id, placement, expect, key)
            .await;
        self.announced(owner, result)
    }

    async fn delete(&self, owner: &UserId, id: TaskId, expect: &Expect) -> Result<(), StoreError> {
        let result = self.inner.delete(owner, id, expect).await;
        self.announced(owner, result)
    }

    async fn restore(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
        let result = self.inner.restore(owner, id).await;
        self.announced(owner, result)
    }
}

#[async_trait]
impl Lists for Announcing<dyn Lists> {
    async fn lists_of(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        self.inner.lists_of(owner).await
    }

    async fn trashed_lists(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        self.inner.trashed_lists(owner).await
    }

    async fn get_list(&self, owner: &UserId, list: ListId) -> Result<List, StoreError> {
        self.inner.get_list(owner, list).await
    }

    async fn create_list(
        &self,
        owner: &UserId,
        list: CreateList,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<List>, StoreError> {
        let result = self.inner.create_list(owner, list, key).await;
        self.announced(owner, result)
    }

    async fn update_list(
        &self,
        owner: &UserId,
        list: ListId,
        changes: UpdateList,
    ) -> Result<List, StoreError> {
        let result = self.inner.update_list(owner, list, changes).await;
        self.announced(owner, result)
    }

    async fn delete_list(&self, owner: &UserId, list: ListId) -> Result<(), StoreError> {
        let result = self.inner.delete_list(owner, list).await;
        self.announced(owner, result)
    }

    async fn restore_list(&self, owner: &UserId, list: ListId) -> Result<List, StoreError> {
        let result = self.inner.restore_list(owner, list).await;
        self.announced(owner, result)
    }

    async fn move_list(
        &self,
        owner: &UserId,
        list: ListId,
        after: Option<Option<ListId>>,
        before: Option<Option<ListId>>,
    ) -> Result<List, StoreError> {
        let result = self.inner.move_list(owner, list, after, before).await;
        self.announced(owner, result)
    }

    async fn members(&self, owner: &UserId, list: ListId) -> Result<Vec<Member>, StoreError> {
        self.inner.members(owner, list).await
    }

    async fn invite(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: CreateInvitation,
    ) -> Result<NewInvitation, StoreError> {
        self.inner.invite(owner, list, invitation).await
    }

    async fn invitations(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> Result<Vec<Invitation>, StoreError> {
        self.inner.invitations(owner, list).await
    }

    async fn revoke(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: i64,
    ) -> Result<(), StoreError> {
        self.inner.revoke(owner, list, invitation).await
    }

    async fn accept(&self, owner: &UserId, token: &str) -> Result<List, StoreError> {
        let result = self.inner.accept(owner, token).await;
        self.announced(owner, result)
    }

    async fn set_role(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
        role: Role,
    ) -> Result<Member, StoreError> {
        let result = self.inner.set_role(owner, list, member, role).await;
        self.announced(member, result)
    }

    async fn remove(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<(), StoreError> {
        let result = self.inner.remove(owner, list, member).await;
        // The member's own streams first: they are the ones that must hear of the loss.
        self.announced(member, result)
    }

    async fn transfer(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<List, StoreError> {
        let result = self.inner.transfer(owner, list, member).await;
        self.announced(owner, result)
    }

    async fn export(&self, owner: &UserId) -> Result<Export, StoreError> {
        self.inner.export(owner).await
    }

    async fn erase(&self, owner: &UserId) -> Result<(), StoreError> {
        let result = self.inner.erase(owner).await;
        self.announced(owner, result)
    }
}
