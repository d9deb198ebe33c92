//! The task operations, written once over a backend's [`Statements`]: the create retry when
//! a concurrent write took the position, the move loop, the fallback of a conditional write
//! that matched nothing, and the claim → replay → write → record of a write under an
//! idempotency key.

use async_trait::async_trait;

use super::error::{is_aborted_by_conflict, is_uid_violation, is_unique_violation};
use super::statements::{Statements, Write, now};
use super::{StoreError, Tasks, subtasks};
use crate::domain::{
    CreateTask, Expect, Filter, IdempotencyKey, ListId, Once, Placement, Position, PositionError,
    Task, TaskId, TaskQuery, TaskStatus, TaskUid, UpdateTask, UserId,
};

/// How often a write that lost a race for a unique position is tried again.
const POSITION_ATTEMPTS: usize = 16;

#[async_trait]
impl<S: Statements> Tasks for S {
    async fn create(
        &self,
        owner: &UserId,
        task: CreateTask,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError> {
        if task.recurrence.is_some() && task.due_at.is_none() {
            return Err(subtasks::needs_due());
        }
        // A subtask goes into its parent's list unless the body names one.
        let mut list = task.list_id;
        if let (None, Some(parent)) = (list, task.parent_id) {
            list = Some(
                self.list_of_task(owner, parent)
                    .await?
                    .ok_or(StoreError::NotFound)?,
            );
        }
        for attempt in 0..POSITION_ATTEMPTS {
            // Where the backend can, the first try finds the position in the insert itself
            // (one round trip, the Inbox too); a retry after losing the race for it adds a
            // random fraction, after the list's last task as read now.
            let position = match attempt == 0 && S::POSITION_IN_INSERT {
                true => None,
                false => {
                    let target = match list {
                        Some(list) => list,
                        None => self.inbox(owner).await?,
                    };
                    list = Some(target);
                    Some(position_after(self.last_position(target).await?, attempt)?)
                }
            };
            let write = Write::Insert {
                task: &task,
                list,
                position: position.as_ref(),
            };
            match write_once(self, owner, write, key).await {
                Err(error) if is_uid_violation(&error) => {
                    let list = match list {
                        Some(list) => list,
                        None => self.inbox(owner).await?,
                    };
                    return Err(uid_taken(self, owner, list, task.uid.as_ref()).await);
                }
                Err(error) if is_unique_violation(&error) || is_aborted_by_conflict(&error) => {
                    continue;
                }
                Err(error) => return Err(error),
                Ok(Some(created)) => return Ok(created),
                Ok(None) => return Err(refused_insert(self, owner, &task, list).await),
            }
        }
        Err(position_contention())
    }

    async fn list(&self, owner: &UserId, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        readable_list(self, owner, query.filter.list).await?;
        self.select_page(owner, query).await
    }

    async fn count(&self, owner: &UserId, filter: &Filter) -> Result<i64, StoreError> {
        self.count_matching(owner, filter).await
    }

    async fn get(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
        self.select_task(owner, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn update(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: UpdateTask,
        expect: &Expect,
    ) -> Result<Task, StoreError> {
        if changes.is_empty() {
            return unwritten(self, owner, id, expect).await;
        }
        // A change of the task's own fields only (no list, parent, recurrence, due date or
        // completion, which may carry over to other tasks or be planned from the task as it
        // is): one statement, with nothing read first.
        let own_row_only = changes.list_id.is_none()
            && changes.parent_id.is_none()
            && changes.recurrence.is_none()
            && changes.due_at.is_none()
            && changes.status != Some(TaskStatus::Completed);
        if own_row_only {
            return match self
                .update_fields_alone(owner, id, &changes, expect)
                .await?
            {
                Some(task) => Ok(task),
                // Missing, foreign, read-only, at another version, unchanged, or an assignee
                // the caller cannot use: the rows tell which.
                None => refused_update(self, owner, id, &changes, expect).await,
            };
        }
        if let Some(Some(_)) = changes.parent_id {
            // The right to change the task before anything is said of the parent.
            writable_task(self, owner, id).await?;
        }
        for _ in 0..POSITION_ATTEMPTS {
            // What the change depends on (a recurrence, a due date, a subtree) as it is now.
            let current = self.get(owner, id).await?;
            if !expect.admits(current.version) {
                return refused_update(self, owner, id, &changes, expect).await;
            }
            let (edit, completes) = subtasks::plan(&current, &changes, now())?;
            // A write planned from the task's recurrence holds only at the version it was
            // planned from; any other applies to the task as it is then, as it always did.
            let pinned = current.recurrence.is_some() || changes.recurrence.is_some();
            let at_version = match pinned {
                true => Expect::OneOf(vec![current.version]),
                false => expect.clone(),
            };
            let mut transaction = self.begin().await?;
            let outcome = Box::pin(subtasks::edit(
                self,
                &mut transaction,
                owner,
                &current,
                (&edit, &at_version),
                completes,
            ))
            .await;
            match outcome {
                Ok(Some(task)) => {
                    self.commit(transaction).await?;
                    return Ok(task);
                }
                Ok(None) => {
                    self.rollback(transaction).await;
                    match self.select_task(owner, id).await? {
                        Some(now) if pinned && now.version != current.version => continue,
                        // Missing, foreign, read-only, unchanged, or a list or an assignee
                        // the caller cannot use: the rows tell which.
                        _ => return refused_update(self, owner, id, &changes, expect).await,
                    }
                }
                Err(error) => {
                    self.rollback(transaction).await;
                    if is_uid_violation(&error) {
                        let list = changes.list_id.unwrap_or(current.list_id);
                        return Err(uid_taken(self, owner, list, Some(&current.uid)).await);
                    }
                    // Into another list, at a position a concurrent write took first; or
                    // aborted to break a deadlock with a concurrent write: planned again.
                    if !is_unique_violation(&error) && !is_aborted_by_conflict(&error) {
                        return Err(error);
                    }
                }
            }
        }
        Err(position_contention())
    }

    async fn move_task(
        &self,
        owner: &UserId,
        id: TaskId,
        placement: Placement,
        expect: &Expect,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError> {
        for attempt in 0..POSITION_ATTEMPTS {
            let Some((list, from, lower, upper)) = bounds(self, owner, id, placement).await? else {
                return Ok(Once::Done(unwritten(self, owner, id, expect).await?));
            };
            // The middle of the gap; after losing it to a concurrent move, a random point in
            // it, after a random pause, so that movers racing for one gap stop colliding.
            let position = match attempt {
                0 => Position::between(lower.as_ref(), upper.as_ref()),
                _ => {
                    let entropy = random_byte()?;
                    let pause = u64::from(entropy) % (4 * attempt as u64 + 1);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    Position::somewhere_between(lower.as_ref(), upper.as_ref(), entropy)
                }
            }
            .map_err(|error| StoreError::Other(error.into()))?;
            // A key past the limit: every key of the list is rewritten, in one transaction.
            let write = match position.is_too_long() {
                true => Write::Rekey {
                    id,
                    list,
                    placement,
                    expect,
                },
                false => Write::Move {
                    id,
                    list,
                    position: &position,
                    from: &from,
                    expect,
                },
            };
            let rekey = matches!(write, Write::Rekey { .. });
            match write_once(self, owner, write, key).await {
                Err(error) if is_unique_violation(&error) || is_aborted_by_conflict(&error) => {
                    continue;
                }
                Err(error) => return Err(error),
                Ok(Some(once)) => return Ok(once),
                // Still there, writable and admitted: its key changed since the gap was read
                // (another move of it, or a re-key of the list), so the gap is found again.
                Ok(None) if !rekey => {
                    unwritten(self, owner, id, expect).await?;
                    continue;
                }
                // Missing, read-only or at another version; one that matched was trashed or
                // moved to another list in between.
                Ok(None) => {
                    return unwritten(self, owner, id, expect)
                        .await
                        .and(Err(StoreError::NotFound));
                }
            }
        }
        Err(position_contention())
    }

    async fn delete(&self, owner: &UserId, id: TaskId, expect: &Expect) -> Result<(), StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut transaction = self.begin().await?;
            return match subtasks::trash(self, &mut transaction, owner, id, expect).await {
                Ok(true) => self.commit(transaction).await,
                Ok(false) => {
                    self.rollback(transaction).await;
                    // Missing, read-only or at another version; one that matched was trashed
                    // in between.
                    unwritten(self, owner, id, expect)
                        .await
                        .and(Err(StoreError::NotFound))
                }
                Err(error) => {
                    self.rollback(transaction).await;
                    if is_aborted_by_conflict(&error) && attempts < POSITION_ATTEMPTS {
                        continue;
                    }
                    Err(error)
                }
            };
        }
    }

    async fn restore(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut transaction = self.begin().await?;
            match subtasks::restore(self, &mut transaction, owner, id).await {
                Ok(Some(task)) => {
                    self.commit(transaction).await?;
                    return Ok(task);
                }
                Ok(None) => {
                    self.rollback(transaction).await;
                    break;
                }
                Err(error) => {
                    self.rollback(transaction).await;
                    if is_aborted_by_conflict(&error) && attempts < POSITION_ATTEMPTS {
                        continue;
                    }
                    return Err(error);
                }
            }
        }
        // Not in the trash (then as it is), not the caller's to restore, or not the caller's.
        let Some(list) = self.list_of_task(owner, id).await? else {
            return Err(StoreError::NotFound);
        };
        match self.role_in(owner, list).await? {
            Some(role) if role.can_write() => self.get(owner, id).await,
            Some(_) => Err(read_only()),
            None => Err(StoreError::NotFound),
        }
    }
}

/// The 409 of a uid the list already holds, naming the task that holds it (in the trash if
/// not among the live ones); without a name when the uid was a subtask's, moving with it.
async fn uid_taken<S: Statements>(
    store: &S,
    owner: &UserId,
    list: ListId,
    uid: Option<&TaskUid>,
) -> StoreError {
    let Some(uid) = uid else {
        return StoreError::Conflict(
            "the list already holds a task with this uid, or with the uid of one of its subtasks",
        );
    };
    for trashed in [false, true] {
        let query = TaskQuery {
            filter: Filter {
                list: Some(list),
                uid: Some(uid.clone()),
                trashed,
                ..Filter::default()
            },
            sort: Default::default(),
            limit: 1,
            offset: 0,
            after: None,
        };
        match store.select_page(owner, &query).await {
            Ok(tasks) => {
                if let Some(task) = tasks.first() {
                    return StoreError::UidTaken(task.id);
                }
            }
            Err(error) => return error,
        }
    }
    StoreError::Conflict(
        "the list already holds a task with this uid, or with the uid of one of its subtasks",
    )
}

/// Why an insert wrote nothing: the list is not the caller's to read (404) or to write (403),
/// or the assignee is not a member of it (422).
async fn refused_insert<S: Statements>(
    store: &S,
    owner: &UserId,
    task: &CreateTask,
    list: Option<ListId>,
) -> StoreError {
    let role = match list {
        Some(list) => store.role_in(owner, list).await,
        None => Ok(Some(crate::domain::Role::Owner)),
    };
    match role {
        Err(error) => error,
        Ok(None) => StoreError::ListNotFound,
        Ok(Some(role)) if !role.can_write() => read_only(),
        Ok(Some(_)) => match task.parent_id {
            Some(parent) => refused_parent(store, owner, parent, list).await,
            None => not_a_member(),
        },
    }
}

/// Why a parent was refused: not a live task of the list (404, as any task the caller cannot
/// see), or too deep (422); or, the parent being fine, the assignee.
async fn refused_parent<S: Statements>(
    store: &S,
    owner: &UserId,
    parent: TaskId,
    list: Option<ListId>,
) -> StoreError {
    let list = match list {
        Some(list) => list,
        None => match store.inbox(owner).await {
            Ok(list) => list,
            Err(error) => return error,
        },
    };
    match store.select_task(owner, parent).await {
        Err(error) => error,
        Ok(Some(task)) if task.list_id == list => {
            let mut transaction = match store.begin().await {
                Ok(transaction) => transaction,
                Err(error) => return error,
            };
            let above = store.family(&mut transaction, parent, true).await;
            store.rollback(transaction).await;
            match above {
                Err(error) => error,
                Ok(above) if above.len() >= subtasks::MAX_LEVELS => subtasks::too_deep(),
                Ok(_) => not_a_member(),
            }
        }
        Ok(_) => StoreError::NotFound,
    }
}

/// Why an update wrote nothing, in the order a client can act on: the task (404), the right
/// to write it (403), the list it should move to (404, 403), the assignee (422), its version
/// (412); none of these: nothing differed, and the task is returned as it is.
async fn refused_update<S: Statements>(
    store: &S,
    owner: &UserId,
    id: TaskId,
    changes: &UpdateTask,
    expect: &Expect,
) -> Result<Task, StoreError> {
    let task = writable_task(store, owner, id).await?;
    let list = changes.list_id.unwrap_or(task.list_id);
    if list != task.list_id {
        match store.role_in(owner, list).await? {
            None => return Err(StoreError::ListNotFound),
            Some(role) if !role.can_write() => return Err(read_only()),
            Some(_) => {}
        }
    }
    if let Some(Some(assignee)) = &changes.assignee_id
        && !store.is_member(list, assignee).await?
    {
        return Err(not_a_member());
    }
    admitted(task, expect)
}

/// A live task the caller can read and write.
async fn writable_task<S: Statements>(
    store: &S,
    owner: &UserId,
    id: TaskId,
) -> Result<Task, StoreError> {
    let task = store.get(owner, id).await?;
    match store.role_in(owner, task.list_id).await? {
        Some(role) if role.can_write() => Ok(task),
        Some(_) => Err(read_only()),
        None => Err(StoreError::NotFound),
    }
}

/// `list`, when a query names one, must be one the caller can read.
async fn readable_list<S: Statements>(
    store: &S,
    owner: &UserId,
    list: Option<ListId>,
) -> Result<(), StoreError> {
    match list {
        Some(list) if store.role_in(owner, list).await?.is_none() => Err(StoreError::ListNotFound),
        _ => Ok(()),
    }
}

fn read_only() -> StoreError {
    StoreError::Forbidden("a viewer of this list cannot change it or its tasks")
}

fn not_a_member() -> StoreError {
    StoreError::Invalid {
        field: "assignee_id",
        message: "must be a member of the task's list",
    }
}

async fn write_once<S: Statements>(
    store: &S,
    owner: &UserId,
    write: Write<'_>,
    key: Option<&IdempotencyKey>,
) -> Result<Option<Once<Task>>, StoreError> {
    match key {
        None => Ok(store.execute(owner, write).await?.map(Once::Done)),
        Some(key) => once(store, owner, key, write).await,
    }
}

/// Runs `write` and records its outcome under `key`, in one transaction; a request seen before
/// under the key gets its recorded outcome instead. `Ok(None)` when `write` matched no task
/// (nothing is recorded).
///
/// Two requests with one key may arrive at once, on different instances: the key's lock (or,
/// where the backend has no such lock, its claim in this process) lets the first proceed and
/// tells the other it is in flight. The primary key on (user, key) stands behind it.
async fn once<S: Statements>(
    store: &S,
    owner: &UserId,
    key: &IdempotencyKey,
    write: Write<'_>,
) -> Result<Option<Once<Task>>, StoreError> {
    let _claim = store.claim(owner, key)?;
    let now = now();
    let valid_after = keys_valid_after(now);
    let mut transaction = store.begin().await?;
    // Boxed: a request still waiting to begin holds none of this.
    let outcome = Box::pin(async {
        if !store.lock_key(&mut transaction, owner, key).await? {
            return Err(StoreError::KeyInFlight);
        }
        if let Some(recorded) = store
            .recorded(&mut transaction, owner, key, valid_after)
            .await?
        {
            return replay(recorded, key);
        }
        let Some(task) = store.execute_in(&mut transaction, owner, write).await? else {
            return Ok(None);
        };
        let body = recorded_body(&task)?;
        let recorded = store
            .record(
                &mut transaction,
                owner,
                key,
                write.outcome(),
                task.id.get(),
                task.version,
                &body,
                now,
                valid_after,
            )
            .await?;
        if !recorded {
            return Err(StoreError::KeyInFlight);
        }
        Ok(Some(Once::Done(task)))
    })
    .await;
    match outcome {
        Ok(Some(Once::Done(task))) => {
            store.commit(transaction).await?;
            Ok(Some(Once::Done(task)))
        }
        other => {
            // At once, not when the pool next hands the connection out: until then the key's
            // lock would be held, and a retry of this very request would be told that it is in
            // flight.
            store.rollback(transaction).await;
            other
        }
    }
}

/// The task a conditional write matched nothing of: missing, or at another version.
async fn unwritten<S: Statements>(
    store: &S,
    owner: &UserId,
    id: TaskId,
    expect: &Expect,
) -> Result<Task, StoreError> {
    admitted(writable_task(store, owner, id).await?, expect)
}

/// The task's list and key, and the positions it must fall between when moved by
/// `placement`, or `None` when it is to go next to itself, which leaves it where it is. 404
/// when a named neighbour is not the owner's.
async fn bounds<S: Statements>(
    store: &S,
    owner: &UserId,
    id: TaskId,
    placement: Placement,
) -> Result<Option<(ListId, String, Option<Position>, Option<Position>)>, StoreError> {
    let Some((list, from)) = store.position_of(owner, id).await? else {
        return Ok(None);
    };
    // A neighbour must be a task the caller can read (404 otherwise, as any foreign id) in
    // the same list (422).
    let position_of =
        async |anchor: TaskId, field: &'static str| match store.position_of(owner, anchor).await? {
            Some((anchor_list, key)) if anchor_list == list => stored_position(key),
            Some(_) => Err(StoreError::Invalid {
                field,
                message: "must be a task in the same list",
            }),
            None => Err(StoreError::NotFound),
        };
    let neighbour = async |from: Option<&Position>, above: bool| {
        store
            .neighbour(list, id, from, above)
            .await?
            .map(stored_position)
            .transpose()
    };
    match placement {
        Placement::After(Some(anchor)) | Placement::Before(Some(anchor)) if anchor == id => {
            Ok(None)
        }
        Placement::After(anchor) => {
            let lower = match anchor {
                Some(anchor) => Some(position_of(anchor, "after").await?),
                None => None,
            };
            let upper = neighbour(lower.as_ref(), true).await?;
            Ok(Some((list, from, lower, upper)))
        }
        Placement::Before(anchor) => {
            let upper = match anchor {
                Some(anchor) => Some(position_of(anchor, "before").await?),
                None => None,
            };
            let lower = neighbour(upper.as_ref(), false).await?;
            Ok(Some((list, from, lower, upper)))
        }
    }
}

pub(super) type OrderRow = (i64, String, bool);

/// A new key for every one of the owner's tasks (`rows`, in position order, trashed ones
/// included), in the same order except that `moving` goes where `placement` says: what a move
/// writes when the key it would get is too long. `None` when `moving` or the named neighbour
/// is not one of the owner's live tasks (the caller then answers as for any failed move); an
/// error when a stored key is not a key.
///
/// The new keys start after the largest key in use, so that no row's new key can equal
/// another row's old one while the rows are rewritten one by one under the unique index.
pub(super) fn rekeyed_order(
    rows: &[OrderRow],
    moving: TaskId,
    placement: Placement,
) -> Result<Option<Vec<(i64, Position)>>, PositionError> {
    let live = |id: i64| rows.iter().any(|(row, _, live)| *row == id && *live);
    if !live(moving.get()) {
        return Ok(None);
    }
    let mut order: Vec<i64> = rows
        .iter()
        .map(|(id, _, _)| *id)
        .filter(|id| *id != moving.get())
        .collect();
    let at = match placement {
        Placement::After(None) => 0,
        Placement::Before(None) => order.len(),
        // Next to itself: where it is (the rows before it, in order).
        Placement::After(Some(anchor)) | Placement::Before(Some(anchor)) if anchor == moving => {
            let Some(at) = rows.iter().position(|(id, _, _)| *id == moving.get()) else {
                return Ok(None);
            };
            at
        }
        Placement::After(Some(anchor)) | Placement::Before(Some(anchor)) => {
            let index = order.iter().position(|id| *id == anchor.get());
            let Some(index) = index.filter(|_| live(anchor.get())) else {
                return Ok(None);
            };
            match placement {
                Placement::After(_) => index + 1,
                Placement::Before(_) => index,
            }
        }
    };
    order.insert(at, moving.get());
    // A stored key that does not parse is corruption, and an error, not a missing task.
    let mut last = rows
        .iter()
        .map(|(_, key, _)| key)
        .max()
        .map(|key| Position::parse(key.clone()))
        .transpose()?;
    let mut keys = Vec::with_capacity(order.len());
    for id in order {
        let key = Position::between(last.as_ref(), None)?;
        keys.push((id, key.clone()));
        last = Some(key);
    }
    Ok(Some(keys))
}

fn position_contention() -> StoreError {
    StoreError::Other("too many concurrent writes competed for the same position".into())
}

/// A position read back from the database.
pub(super) fn stored_position(key: String) -> Result<Position, StoreError> {
    Position::parse(key).map_err(|error| StoreError::Other(error.into()))
}

/// The position after the owner's last one (`None` when they have no task yet). A retry
/// after losing a race (`attempt` > 0) adds a random fraction, so that many creates racing
/// for the same slot spread out instead of colliding again.
pub(super) fn position_after(last: Option<String>, attempt: usize) -> Result<Position, StoreError> {
    let last = last.map(stored_position).transpose()?;
    let next =
        Position::between(last.as_ref(), None).map_err(|error| StoreError::Other(error.into()))?;
    if attempt == 0 {
        return Ok(next);
    }
    let mut entropy = [0u8; 3];
    getrandom::fill(&mut entropy).map_err(|error| StoreError::Other(error.to_string().into()))?;
    Ok(next.spread(entropy))
}

/// A random byte, for the spread of retries.
fn random_byte() -> Result<u8, StoreError> {
    let mut byte = [0u8; 1];
    getrandom::fill(&mut byte).map_err(|error| StoreError::Other(error.to_string().into()))?;
    Ok(byte[0])
}

/// The task a conditional write found, when the write itself matched nothing: a version the
/// condition admits means the write had nothing to change; any other is a mismatch.
fn admitted(task: Task, expect: &Expect) -> Result<Task, StoreError> {
    if expect.admits(task.version) {
        Ok(task)
    } else {
        Err(StoreError::VersionMismatch {
            id: task.id,
            version: task.version,
        })
    }
}

/// A recorded outcome found under `key`: replayed for the same request, refused for another.
pub(super) fn replay<T>(
    recorded: super::row::ReplayRow,
    key: &IdempotencyKey,
) -> Result<Option<Once<T>>, StoreError> {
    if recorded.fingerprint.as_slice() != key.fingerprint().as_slice() {
        return Err(StoreError::KeyReused);
    }
    Ok(Some(Once::Replayed(recorded.try_into()?)))
}

/// The response body recorded for a replay: the task exactly as the first response sent it.
fn recorded_body(task: &Task) -> Result<String, StoreError> {
    serde_json::to_string(task).map_err(|error| StoreError::Other(error.into()))
}

/// The oldest idempotency record that still counts, as of `now`.
pub(super) fn keys_valid_after(
    now: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    now - crate::domain::sync::IDEMPOTENCY_KEY_LIFETIME
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_re_key_keeps_the_order_and_places_the_moving_task() {
        let rows: Vec<OrderRow> = vec![
            (1, "a0".into(), true),
            (2, "a0V".into(), false),
            (3, "a1".into(), true),
            (4, "a2".into(), true),
        ];
        let ids = |plan: Result<Option<Vec<(i64, Position)>>, PositionError>| {
            let plan = plan.expect("valid keys").expect("a plan");
            let keys: Vec<&Position> = plan.iter().map(|(_, key)| key).collect();
            assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
            assert!(keys.iter().all(|key| key.as_str() > "a2"), "{keys:?}");
            plan.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
        };
        let id = |n: i64| TaskId::try_from(n).expect("positive");
        let after = |n| Placement::After(Some(id(n)));
        let before = |n| Placement::Before(Some(id(n)));
        assert_eq!(ids(rekeyed_order(&rows, id(4), after(1))), [1, 4, 2, 3]);
        assert_eq!(ids(rekeyed_order(&rows, id(1), before(4))), [2, 3, 1, 4]);
        assert_eq!(
            ids(rekeyed_order(&rows, id(3), Placement::After(None))),
            [3, 1, 2, 4]
        );
        assert_eq!(
            ids(rekeyed_order(&rows, id(1), Placement::Before(None))),
            [2, 3, 4, 1]
        );
        assert_eq!(ids(rekeyed_order(&rows, id(3), after(3))), [1, 2, 3, 4]);
        // A trashed or missing task, moved or named, is no move.
        assert!(
            rekeyed_order(&rows, id(2), after(1))
                .expect("valid keys")
                .is_none()
        );
        assert!(
            rekeyed_order(&rows, id(1), after(2))
                .expect("valid keys")
                .is_none()
        );
        assert!(
            rekeyed_order(&rows, id(9), after(1))
                .expect("valid keys")
                .is_none()
        );
        assert!(
            rekeyed_order(&rows, id(1), after(9))
                .expect("valid keys")
                .is_none()
        );
    }
}
