//! A task as a VTODO and back (docs/calendar-apps.md has the table).
//!
//! What the client wrote is kept (the stored object), so that a property the service models
//! only roughly (a PRIORITY of 3 is "high", a CANCELLED status is "completed", a due date
//! written in a time zone) goes back as the client wrote it while the task still means the
//! same; only what changed through the API is written in the service's own form.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::ical::{Due, Todo, TodoStatus};
use crate::domain::{
    CreateTask, ListId, Priority, Recurrence, Tag, Tags, Task, TaskDescription, TaskId, TaskStatus,
    TaskTitle, TaskUid, Timestamp, UpdateTask,
};
use crate::http::ApiError;

/// The title of a VTODO without a SUMMARY: a task always has one.
const UNTITLED: &str = "Untitled";

/// The service's fields of a VTODO, checked as the API checks them.
pub struct Fields {
    pub uid: TaskUid,
    pub title: TaskTitle,
    pub description: Option<TaskDescription>,
    pub status: TaskStatus,
    pub due_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    pub tags: Tags,
    /// `None` when the VTODO has no RRULE, or one the service cannot evaluate (kept in the
    /// object, unmodelled, and sent back as it was).
    pub recurrence: Option<Recurrence>,
    pub parent_uid: Option<String>,
    /// When the client says the task was completed (not after now: a clock ahead is not a
    /// completion in the future).
    pub completed_at: Option<DateTime<Utc>>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_field(field, message.into())
}

/// The task a VTODO describes.
pub fn fields(todo: &Todo) -> Result<Fields, ApiError> {
    let uid =
        TaskUid::parse(todo.uid.clone()).map_err(|error| invalid("UID", error.to_string()))?;
    let summary = todo
        .summary
        .clone()
        .filter(|summary| !summary.trim().is_empty())
        .unwrap_or_else(|| UNTITLED.to_owned());
    let title =
        TaskTitle::try_from(summary).map_err(|error| invalid("SUMMARY", error.to_string()))?;
    let description = todo
        .description
        .clone()
        .filter(|description| !description.is_empty())
        .map(TaskDescription::try_from)
        .transpose()
        .map_err(|error| invalid("DESCRIPTION", error.to_string()))?;
    let status = match todo.status {
        Some(TodoStatus::Completed | TodoStatus::Cancelled) => TaskStatus::Completed,
        Some(TodoStatus::InProcess) => TaskStatus::InProgress,
        // A COMPLETED date without a status says the same.
        Some(TodoStatus::NeedsAction) => TaskStatus::Pending,
        None if todo.completed.is_some() => TaskStatus::Completed,
        None => TaskStatus::Pending,
    };
    let due_at = todo.due.as_ref().map(Due::instant);
    let tags = todo
        .categories
        .iter()
        .filter(|name| !name.trim().is_empty())
        .map(|name| Tag::try_from(name.clone()))
        .collect::<Result<Vec<Tag>, String>>()
        .and_then(Tags::try_from)
        .map_err(|error| invalid("CATEGORIES", error))?;
    let recurrence = match (&todo.rrule, &todo.due) {
        (Some(rrule), Some(due)) => {
            let time_zone = match due {
                Due::Zoned(_, zone) => zone.name().to_owned(),
                _ => "UTC".to_owned(),
            };
            serde_json::from_value::<Recurrence>(
                json!({"rrule": rrule, "from": "due", "time_zone": time_zone}),
            )
            .ok()
        }
        _ => None,
    };
    Ok(Fields {
        uid,
        title,
        description,
        status,
        due_at,
        priority: priority(todo.priority),
        tags,
        recurrence,
        parent_uid: todo.parent_uid.clone(),
        completed_at: todo.completed.map(|at| at.min(Utc::now())),
    })
}

/// RFC 5545's 1–9 in three bands (1–4 high, 5 medium, 6–9 low); 0 or none is none.
fn priority(value: Option<u8>) -> Priority {
    match value {
        Some(1..=4) => Priority::High,
        Some(5) => Priority::Medium,
        Some(6..=9) => Priority::Low,
        _ => Priority::None,
    }
}

fn ical_priority(priority: Priority) -> Option<u8> {
    match priority {
        Priority::High => Some(1),
        Priority::Medium => Some(5),
        Priority::Low => Some(9),
        Priority::None => None,
    }
}

/// A new task in `list` from a VTODO.
pub fn create(fields: Fields, list: ListId, parent: Option<TaskId>, ical: String) -> CreateTask {
    CreateTask {
        title: fields.title,
        description: fields.description,
        status: Some(fields.status),
        due_at: fields.due_at.map(Timestamp::from),
        priority: Some(fields.priority),
        tags: Some(fields.tags),
        list_id: Some(list),
        assignee_id: None,
        uid: Some(fields.uid),
        parent_id: parent,
        recurrence: fields.recurrence.filter(|_| fields.due_at.is_some()),
        ical: Some(ical),
        dav_name: None,
        completed_at: fields.completed_at,
    }
}

/// The changes that make `current` what a VTODO says: only the fields that differ, so that a
/// client writing back what it read changes nothing but its own object.
pub fn update(fields: Fields, current: &Task, parent: Option<TaskId>, ical: String) -> UpdateTask {
    let differs = |a: bool| a.then_some(());
    let recurrence_now = current
        .recurrence
        .as_ref()
        .map(|r| (r.rrule.as_str(), r.time_zone.as_str()));
    let recurrence_then = fields
        .recurrence
        .as_ref()
        .map(|r| (r.rrule.as_str(), r.time_zone.as_str()));
    UpdateTask {
        title: differs(fields.title.as_str() != current.title).map(|()| fields.title.clone()),
        description: differs(
            fields.description.as_ref().map(|d| d.as_str()) != current.description.as_deref(),
        )
        .map(|()| fields.description.clone()),
        status: differs(fields.status != current.status).map(|()| fields.status),
        due_at: differs(fields.due_at != current.due_at)
            .map(|()| fields.due_at.map(Timestamp::from)),
        priority: differs(fields.priority != current.priority).map(|()| fields.priority),
        tags: differs(fields.tags.names() != current.tags.names()).map(|()| fields.tags.clone()),
        list_id: None,
        assignee_id: None,
        parent_id: differs(parent != current.parent_id).map(|()| parent),
        recurrence: differs(recurrence_then != recurrence_now).map(|()| fields.recurrence.clone()),
        ical: Some(ical),
        dav_name: None,
        completed_at: fields.completed_at,
    }
}

/// The VTODO fields of `task`, over what the client last wrote (`stored`) wherever that
/// still means the same; `parent_uid` is the uid of the task's parent (or a parent the
/// client named that is not in the list).
pub fn todo(task: &Task, stored: Option<&Todo>, parent_uid: Option<String>) -> Todo {
    let stored_status = stored.and_then(|todo| todo.status);
    let status = match (task.status, stored_status) {
        (TaskStatus::Completed, Some(kept @ (TodoStatus::Completed | TodoStatus::Cancelled))) => {
            Some(kept)
        }
        (TaskStatus::Completed, _) => Some(TodoStatus::Completed),
        (TaskStatus::InProgress, _) => Some(TodoStatus::InProcess),
        (TaskStatus::Pending, _) => Some(TodoStatus::NeedsAction),
    };
    let due = match (task.due_at, stored.and_then(|todo| todo.due)) {
        (Some(at), Some(kept)) if kept.instant() == at => Some(kept),
        (Some(at), _) => Some(match &task.recurrence {
            // A repeating task's due date in the zone its rule is evaluated in.
            Some(recurrence) => match recurrence.time_zone.parse::<chrono_tz::Tz>() {
                Ok(zone) if zone != chrono_tz::UTC => {
                    Due::Zoned(at.with_timezone(&zone).naive_local(), zone)
                }
                _ => Due::Utc(at),
            },
            None => Due::Utc(at),
        }),
        (None, _) => None,
    };
    let stored_priority = stored.and_then(|todo| todo.priority);
    let priority = match priority(stored_priority) == task.priority {
        true => stored_priority,
        false => ical_priority(task.priority),
    };
    let names = task.tags.names();
    let categories = match stored {
        Some(todo) if same_tags(&todo.categories, &names) => todo.categories.clone(),
        _ => names,
    };
    let stored_rrule = stored.and_then(|todo| todo.rrule.clone());
    let rrule = match &task.recurrence {
        Some(recurrence) => match &stored_rrule {
            Some(kept) if kept.eq_ignore_ascii_case(&recurrence.rrule) => stored_rrule.clone(),
            _ => Some(recurrence.rrule.clone()),
        },
        // A rule the service does not evaluate stays the client's.
        None => stored_rrule.filter(|_| {
            stored.is_some_and(|todo| fields(todo).is_ok_and(|f| f.recurrence.is_none()))
        }),
    };
    // The app's own COMPLETED line comes back while it is the task's completion time (it
    // is kept as that when the app completes the task); after the task was reopened and
    // completed again, the new time.
    let completed = task.completed_at;
    let stored_summary = stored.and_then(|todo| todo.summary.clone());
    let summary = match stored_summary {
        None if task.title == UNTITLED => None,
        _ => Some(task.title.clone()),
    };
    Todo {
        uid: task.uid.as_str().to_owned(),
        summary,
        description: task.description.clone(),
        status,
        due,
        priority,
        categories,
        completed,
        rrule,
        parent_uid,
    }
}

fn same_tags(categories: &[String], names: &[String]) -> bool {
    let mut a: Vec<String> = categories.iter().map(|c| c.to_lowercase()).collect();
    let mut b: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}
