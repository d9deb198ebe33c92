//! What a change of a task does beyond its own row, written once over a backend's
//! [`Statements`]: a repeating task's completion (it moves on to its next occurrence), and a
//! task's subtree (trashed, restored, completed and moved with it), each in the transaction of
//! the change itself.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::statements::{Cascade, Node, Statements};
use crate::domain::{
    Completion, Expect, ListId, Task, TaskId, TaskStatus, Timestamp, UpdateTask, UserId,
};

/// The most levels a tree of tasks may have: a task, its subtasks, theirs, and theirs.
pub const MAX_LEVELS: usize = 4;

/// The update that `changes` make of `current` at `now`: as sent, except that completing an
/// occurrence of a repeating task keeps it open, due at its next occurrence, until none is
/// left. `true` when an occurrence is completed. A 422 for a recurrence without a due date.
pub(super) fn plan(
    current: &Task,
    changes: &UpdateTask,
    now: DateTime<Utc>,
) -> Result<(UpdateTask, bool), StoreError> {
    let due = match changes.due_at {
        Some(due) => due.map(Timestamp::get),
        None => current.due_at,
    };
    let recurrence = match &changes.recurrence {
        Some(recurrence) => recurrence.as_ref(),
        None => current.recurrence.as_ref(),
    };
    let Some(recurrence) = recurrence else {
        return Ok((changes.clone(), false));
    };
    let Some(due) = due else {
        return Err(needs_due());
    };
    let mut edit = changes.clone();
    // A new rule, or a due date set by hand: the rule starts again from the due date.
    let mut recurrence = recurrence.clone();
    if changes.recurrence.is_some() || changes.due_at.is_some() {
        recurrence = recurrence.starting(Some(due), current.completed_count);
        edit.recurrence = Some(Some(recurrence.clone()));
    }
    let completing =
        changes.status == Some(TaskStatus::Completed) && current.status != TaskStatus::Completed;
    if !completing {
        return Ok((edit, false));
    }
    let completed = (current.completed_count - recurrence.counted).max(0);
    let completed = u32::try_from(completed).unwrap_or(u32::MAX);
    let completion = recurrence
        .complete(due, completed, now)
        .map_err(|error| StoreError::Other(error.into()))?;
    if let Completion::Next(next) = completion {
        edit.status = Some(TaskStatus::Pending);
        edit.due_at = Some(Some(Timestamp::from(next)));
    }
    Ok((edit, true))
}

pub(super) fn needs_due() -> StoreError {
    StoreError::Invalid {
        field: "recurrence",
        message: "a repeating task needs a due_at",
    }
}

/// Writes `edit` of `current` at a version `expect` admits in `transaction`, and what it does
/// to the task's subtree: a move to another list takes the subtree along, a completion
/// completes its open tasks. `None` when the task matched nothing.
pub(super) async fn edit<S: Statements>(
    store: &S,
    transaction: &mut S::Transaction,
    owner: &UserId,
    current: &Task,
    (edit, expect): (&UpdateTask, &Expect),
    completes: bool,
) -> Result<Option<Task>, StoreError> {
    let list = edit.list_id.unwrap_or(current.list_id);
    if let Some(Some(parent)) = edit.parent_id {
        store.lock_parents(transaction, list).await?;
        check_parent(store, transaction, current.id, parent, list).await?;
    }
    let Some(task) = store
        .update_fields(transaction, owner, current.id, edit, expect, completes)
        .await?
    else {
        return Ok(None);
    };
    let moved = task.list_id != current.list_id;
    let completed = task.status == TaskStatus::Completed && current.status != TaskStatus::Completed;
    if moved || completed {
        let below = store.family(transaction, task.id, false).await?;
        let below = below.iter().filter(|node| node.depth > 0);
        if moved {
            // Parents first: each goes to the end of the list, after the one above it.
            let ids: Vec<i64> = below.clone().map(|node| node.id).collect();
            if !ids.is_empty() {
                let list = task.list_id;
                store
                    .cascade(transaction, Cascade::Relist { ids: &ids, list })
                    .await?;
            }
        }
        if completed {
            let ids: Vec<i64> = below
                .filter(|node| !node.completed && node.deleted_at.is_none())
                .map(|node| node.id)
                .collect();
            if !ids.is_empty() {
                let at = task.completed_at.unwrap_or_else(Utc::now);
                store
                    .cascade(transaction, Cascade::Complete { ids: &ids, at })
                    .await?;
            }
        }
    }
    Ok(Some(task))
}

/// A new parent for `id` in `list`: a live task of that list (404 otherwise, as any task the
/// caller cannot see), not the task or one below it (a cycle), and leaving at most
/// [`MAX_LEVELS`] levels.
async fn check_parent<S: Statements>(
    store: &S,
    transaction: &mut S::Transaction,
    id: TaskId,
    parent: TaskId,
    list: ListId,
) -> Result<(), StoreError> {
    if parent == id {
        return Err(cycle());
    }
    let above = store.family(transaction, parent, true).await?;
    match above.first() {
        Some(node) if node.list_id == list.get() && node.deleted_at.is_none() => {}
        _ => return Err(StoreError::NotFound),
    }
    if above.iter().any(|node| node.id == id.get()) {
        return Err(cycle());
    }
    let below = store.family(transaction, id, false).await?;
    let height = below.iter().map(|node| node.depth).max().unwrap_or(0);
    let levels = above.len() + usize::try_from(height).unwrap_or(usize::MAX) + 1;
    if levels > MAX_LEVELS {
        return Err(too_deep());
    }
    Ok(())
}

fn cycle() -> StoreError {
    StoreError::Invalid {
        field: "parent_id",
        message: "a task cannot be under itself or one of its own subtasks",
    }
}

pub(super) fn too_deep() -> StoreError {
    StoreError::Invalid {
        field: "parent_id",
        message: "subtasks go at most 4 levels deep",
    }
}

/// Puts a task and its live subtree in the trash, at one moment (which restore goes by);
/// `false` when the task matched nothing.
pub(super) async fn trash<S: Statements>(
    store: &S,
    transaction: &mut S::Transaction,
    owner: &UserId,
    id: TaskId,
    expect: &Expect,
) -> Result<bool, StoreError> {
    let at = super::statements::now();
    if !store.trash(transaction, owner, id, expect, at).await? {
        return Ok(false);
    }
    let below = store.family(transaction, id, false).await?;
    let ids = ids_of(&below, |node| node.depth > 0 && node.deleted_at.is_none());
    if !ids.is_empty() {
        store
            .cascade(transaction, Cascade::Trash { ids: &ids, at })
            .await?;
    }
    Ok(true)
}

/// Takes a task out of the trash with what went there with it (its subtree, trashed at the
/// same moment) and its ancestors in the trash, so that it is not left under a trashed one.
/// `None` when it was not in the trash, or the caller may not restore it.
pub(super) async fn restore<S: Statements>(
    store: &S,
    transaction: &mut S::Transaction,
    owner: &UserId,
    id: TaskId,
) -> Result<Option<Task>, StoreError> {
    let below = store.family(transaction, id, false).await?;
    let Some(trashed_at) = below.first().and_then(|root| root.deleted_at) else {
        return Ok(None);
    };
    let Some(task) = store.untrash(transaction, owner, id).await? else {
        return Ok(None);
    };
    let mut ids = ids_of(&below, |node| {
        node.depth > 0 && node.deleted_at == Some(trashed_at)
    });
    let above = store.family(transaction, id, true).await?;
    ids.extend(ids_of(&above, |node| {
        node.depth > 0 && node.deleted_at.is_some()
    }));
    if !ids.is_empty() {
        store
            .cascade(transaction, Cascade::Restore { ids: &ids })
            .await?;
    }
    Ok(Some(task))
}

fn ids_of(nodes: &[Node], keep: impl Fn(&Node) -> bool) -> Vec<i64> {
    nodes
        .iter()
        .filter(|node| keep(node))
        .map(|node| node.id)
        .collect()
}
