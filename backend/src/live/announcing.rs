//! Writes announced where they happen: a [`Tasks`] that wakes the writer's streams (and,
//! through the hub, tells the other instances) once a write has committed. Built once, when
//! the service is assembled, so that no handler has to remember it.

use std::sync::Arc;

use async_trait::async_trait;

use super::hub::Hub;
use crate::domain::{
    CreateTask, Expect, Filter, IdempotencyKey, Once, Placement, Task, TaskId, TaskQuery,
    UpdateTask, UserId,
};
use crate::store::{StoreError, Tasks};

/// `inner`, with every successful write announced to `hub`.
pub struct Announcing {
    inner: Arc<dyn Tasks>,
    hub: Arc<Hub>,
}

impl Announcing {
    pub fn wrap(inner: Arc<dyn Tasks>, hub: Arc<Hub>) -> Arc<dyn Tasks> {
        Arc::new(Announcing { inner, hub })
    }

    /// `result` as it is, after announcing that `owner` wrote if it is a success.
    fn announced<T>(&self, owner: &UserId, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() {
            self.hub.written(owner);
        }
        result
    }
}

#[async_trait]
impl Tasks for Announcing {
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
