//! A calendar's objects: live tasks of a list, with what calendar clients wrote of them (the
//! iCalendar object, the resource's name), rendered as iCalendar.

use std::collections::HashMap;

use super::ical::{self, Object, Stamps};
use super::mapping;
use crate::domain::{Filter, ListId, Task, TaskId, TaskQuery, TaskUid, UserId};
use crate::http::{ApiError, AppState};

/// How many tasks one read of a list takes.
const PAGE: u32 = 500;

/// Live tasks of one list the caller can read, with what clients wrote of them.
pub struct Objects {
    pub tasks: Vec<Task>,
    stored: HashMap<TaskId, String>,
    names: HashMap<TaskId, String>,
    uids: HashMap<TaskId, String>,
}

impl Objects {
    /// Every live task of `list` (a 404 for a list the caller cannot read).
    pub async fn load(state: &AppState, user: &UserId, list: ListId) -> Result<Objects, ApiError> {
        let mut tasks = Vec::new();
        loop {
            let query = TaskQuery {
                filter: Filter {
                    list: Some(list),
                    ..Filter::default()
                },
                sort: Default::default(),
                limit: PAGE,
                offset: i64::try_from(tasks.len()).unwrap_or(i64::MAX),
                after: None,
            };
            let page = state.tasks.list(user, &query).await?;
            let done = page.len() < PAGE as usize;
            tasks.extend(page);
            if done {
                break;
            }
        }
        Self::of(state, user, list, tasks).await
    }

    /// The live tasks of `list` at these resource names and with these uids, and what their
    /// objects refer to (a parent, a parent the client named): what one object's read or
    /// write needs, without reading the whole list (a 404 for a list the caller cannot read).
    pub async fn named(
        state: &AppState,
        user: &UserId,
        list: ListId,
        names: &[&str],
        uids: &[&str],
    ) -> Result<Objects, ApiError> {
        // Also what tells a list the caller cannot read (404) from an empty one.
        let mut tasks: Vec<Task> = Vec::new();
        for uid in uids {
            if let Some(task) = by_uid(state, user, list, uid).await? {
                tasks.push(task);
            }
        }
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        for (_, id) in state.calendars.tasks_named(user, list, &names).await? {
            if !tasks.iter().any(|task| task.id == id) {
                tasks.push(state.tasks.get(user, id).await?);
            }
        }
        let mut objects = Self::of(state, user, list, tasks).await?;
        // Their parents, and the parents their clients named, for RELATED-TO.
        let mut more = Vec::new();
        for task in &objects.tasks {
            if let Some(parent) = task.parent_id
                && !objects.uids.contains_key(&parent)
                && let Ok(parent) = state.tasks.get(user, parent).await
            {
                more.push(parent);
            }
            let named = objects
                .stored(task)
                .and_then(|object| object.todo().ok())
                .and_then(|todo| todo.parent_uid);
            if let Some(uid) = named
                && objects.find(&uid).is_none()
                && let Some(parent) = by_uid(state, user, list, &uid).await?
            {
                more.push(parent);
            }
        }
        for task in more {
            objects.uids.insert(task.id, task.uid.as_str().to_owned());
            objects.tasks.push(task);
        }
        Ok(objects)
    }

    /// `tasks` of `list`, with what clients wrote of them.
    pub async fn of(
        state: &AppState,
        user: &UserId,
        list: ListId,
        tasks: Vec<Task>,
    ) -> Result<Objects, ApiError> {
        let ids: Vec<TaskId> = tasks.iter().map(|task| task.id).collect();
        let mut stored = HashMap::new();
        let mut names = HashMap::new();
        for object in state.calendars.objects(user, list, &ids).await? {
            if let Some(ical) = object.ical {
                stored.insert(object.task, ical);
            }
            if let Some(name) = object.name {
                names.insert(object.task, name);
            }
        }
        let uids = tasks
            .iter()
            .map(|task| (task.id, task.uid.as_str().to_owned()))
            .collect();
        Ok(Objects {
            tasks,
            stored,
            names,
            uids,
        })
    }

    /// The live task with this uid.
    pub fn find(&self, uid: &str) -> Option<&Task> {
        self.tasks.iter().find(|task| task.uid.as_str() == uid)
    }

    /// The live task whose resource has this name.
    pub fn find_named(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|task| self.name(task) == name)
    }

    /// The name of `task`'s resource, without `.ics`: the one its client chose, else its uid.
    pub fn name<'a>(&'a self, task: &'a Task) -> &'a str {
        self.names
            .get(&task.id)
            .map_or(task.uid.as_str(), String::as_str)
    }

    /// What the client last wrote of `task`, if anything (and if it still reads).
    pub fn stored(&self, task: &Task) -> Option<Object> {
        let text = self.stored.get(&task.id)?;
        Object::from_stored(text).ok()
    }

    /// `task` as the iCalendar object a client reads.
    pub fn render(&self, task: &Task) -> String {
        let stored = self.stored(task);
        let stored_todo = stored.as_ref().and_then(|object| object.todo().ok());
        let parent_uid = match task.parent_id {
            Some(parent) => self.uids.get(&parent).cloned(),
            // A parent the client named that is not in the list stays the client's.
            None => stored_todo
                .as_ref()
                .and_then(|todo| todo.parent_uid.clone())
                .filter(|uid| self.find(uid).is_none()),
        };
        let todo = mapping::todo(task, stored_todo.as_ref(), parent_uid);
        let stamps = Stamps {
            created: task.created_at,
            last_modified: task.updated_at,
            sequence: task.version - 1,
        };
        ical::render(stored.as_ref(), &todo, &stamps)
    }
}

/// The live task of `list` with this uid (a 404 for a list the caller cannot read).
async fn by_uid(
    state: &AppState,
    user: &UserId,
    list: ListId,
    uid: &str,
) -> Result<Option<Task>, ApiError> {
    // A uid no task can have names none (and a list that is not the caller's is still a 404).
    let uid = TaskUid::parse(uid.to_owned()).ok();
    let query = TaskQuery {
        filter: Filter {
            list: Some(list),
            uid: uid.clone(),
            ..Filter::default()
        },
        sort: Default::default(),
        limit: 1,
        offset: 0,
        after: None,
    };
    let found = state.tasks.list(user, &query).await?;
    Ok(match uid {
        Some(_) => found.into_iter().next(),
        None => None,
    })
}
