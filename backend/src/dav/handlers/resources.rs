//! A task's resource (GET, HEAD, PUT, DELETE) and a calendar's (MKCALENDAR, DELETE).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::properties::color;
use super::{Dav, document, not_found};
use crate::dav::ical::{IcalError, Object};
use crate::dav::mapping;
use crate::dav::objects::Objects;
use crate::dav::paths::{self, Collection, Target};
use crate::dav::xml::{APPLE, DAV};
use crate::domain::list::{CreateList, ListName};
use crate::domain::{ListId, Once, Task};
use crate::http::ApiError;
use crate::http::conditional::{IfMatch, none_match_any};
use crate::http::etag::task_etag;
use crate::store::StoreError;

impl Dav<'_> {
    pub(super) async fn get(&self, target: Target, with_body: bool) -> Result<Response, ApiError> {
        let (collection, name) = match target {
            Target::Object(collection, name) => (collection, name),
            // A calendar has no body of its own; one the caller cannot read is not there.
            Target::Calendar(collection) => {
                self.calendar(&collection).await?;
                return Err(ApiError::MethodNotAllowed);
            }
            _ => return Err(ApiError::MethodNotAllowed),
        };
        let list = self.resolve(&collection).await?;
        let objects = Objects::named(self.state, self.user, list, &[&name], &[]).await?;
        let task = objects.find_named(&name).ok_or_else(not_found)?;
        let etag = task_etag(task.id, task.version);
        let body = match with_body {
            true => Body::from(objects.render(task)),
            false => Body::empty(),
        };
        Ok((
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/calendar; charset=utf-8"),
                ),
                (header::ETAG, etag),
            ],
            body,
        )
            .into_response())
    }

    pub(super) async fn put(&self, target: Target) -> Result<Response, ApiError> {
        let Target::Object(collection, name) = target else {
            return Err(ApiError::MethodNotAllowed);
        };
        let list = self.resolve(&collection).await?;
        let if_match = IfMatch::from_headers(self.headers)?;
        let create_only = none_match_any(self.headers)?;
        let object = Object::parse(self.body).map_err(|error| match error {
            // RFC 4791 §5.3.2.1 (supported-calendar-component): tasks only.
            IcalError::Unsupported(_) => {
                ApiError::Forbidden("only tasks (VTODO) are kept in these calendars")
            }
            error => ApiError::BadRequest(error.to_string()),
        })?;
        let todo = object
            .todo()
            .map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let fields = mapping::fields(&todo)?;
        let mut uids = vec![todo.uid.as_str()];
        uids.extend(fields.parent_uid.as_deref());
        let objects = Objects::named(self.state, self.user, list, &[&name], &uids).await?;
        let parent = fields
            .parent_uid
            .as_deref()
            .and_then(|uid| objects.find(uid))
            .map(|task| task.id);
        let (status, due) = (fields.status, fields.due_at);
        // The resource's own name, kept only when it is not the uid.
        let dav_name = (name != todo.uid).then(|| name.clone());
        let (code, task) = match objects.find_named(&name) {
            Some(current) => {
                if create_only {
                    return Err(ApiError::PreconditionFailed {
                        etag: task_etag(current.id, current.version),
                    });
                }
                if current.uid.as_str() != todo.uid {
                    return Err(ApiError::BadRequest(
                        "the UID of a task cannot change: write it under a new name".into(),
                    ));
                }
                let changes = mapping::update(fields, current, parent, object.to_stored());
                let expect = if_match.versions_for(current.id);
                let task = self
                    .state
                    .tasks
                    .update(self.user, current.id, changes, &expect)
                    .await?;
                (StatusCode::NO_CONTENT, task)
            }
            None => {
                if if_match.is_present() {
                    return Err(ApiError::PreconditionFailed {
                        etag: HeaderValue::from_static("\"\""),
                    });
                }
                // RFC 4791 §5.3.2.1: one UID per calendar.
                if objects.find(&todo.uid).is_some() {
                    return Err(ApiError::Conflict(
                        "the calendar already holds this UID under another name (no-uid-conflict)",
                    ));
                }
                let mut create = mapping::create(fields, list, parent, object.to_stored());
                create.dav_name = dav_name.clone();
                let task = match self.state.tasks.create(self.user, create, None).await {
                    Ok(Once::Done(task)) => task,
                    Ok(Once::Replayed(_)) => return Err(not_found()),
                    Err(StoreError::UidTaken(id)) => {
                        // Made by a concurrent write since it was looked for: a condition that
                        // meant "create" fails, as it would have a moment later.
                        let live = self.state.tasks.get(self.user, id).await.is_ok();
                        if live && create_only {
                            return Err(ApiError::PreconditionFailed {
                                etag: HeaderValue::from_static("\"\""),
                            });
                        }
                        if live {
                            let ids = [id];
                            let stored = self.state.calendars.objects(self.user, list, &ids);
                            let named = stored.await?.into_iter().find_map(|object| object.name);
                            if named.as_deref().unwrap_or(todo.uid.as_str()) != name {
                                return Err(ApiError::Conflict(
                                    "the calendar already holds this UID under another name \
                                     (no-uid-conflict)",
                                ));
                            }
                        }
                        // In the trash: put back. Then written over, as a PUT does.
                        let current = match live {
                            true => self.state.tasks.get(self.user, id).await?,
                            false => self.state.tasks.restore(self.user, id).await?,
                        };
                        let fields = mapping::fields(&todo)?;
                        let mut changes =
                            mapping::update(fields, &current, parent, object.to_stored());
                        changes.dav_name = Some(dav_name);
                        self.state
                            .tasks
                            .update(self.user, id, changes, &Default::default())
                            .await?
                    }
                    Err(error) => return Err(error.into()),
                };
                self.adopt(list, &task).await?;
                (StatusCode::CREATED, task)
            }
        };
        let mut response = code.into_response();
        // An ETag only when the task is what the client sent: a repeating task that its
        // completion moved on must be read again (RFC 4791 §5.3.4).
        if task.status == status && task.due_at == due {
            response
                .headers_mut()
                .insert(header::ETAG, task_etag(task.id, task.version));
        }
        Ok(response)
    }

    /// Makes a new task the parent of the tasks whose objects named it before it was there
    /// (apps upload a list in no particular order).
    pub(super) async fn adopt(&self, list: ListId, parent: &Task) -> Result<(), ApiError> {
        // Only the tasks whose objects mention its uid can name it.
        let uid = parent.uid.as_str();
        let candidates = self
            .state
            .calendars
            .tasks_mentioning(self.user, list, uid)
            .await?;
        if candidates.is_empty() {
            return Ok(());
        }
        let mut tasks = Vec::new();
        for id in candidates {
            if let Ok(task) = self.state.tasks.get(self.user, id).await {
                tasks.push(task);
            }
        }
        let objects = Objects::of(self.state, self.user, list, tasks).await?;
        for task in &objects.tasks {
            if task.parent_id.is_some() || task.id == parent.id {
                continue;
            }
            let named = objects
                .stored(task)
                .and_then(|object| object.todo().ok())
                .and_then(|todo| todo.parent_uid);
            if named.as_deref() == Some(parent.uid.as_str()) {
                let changes = crate::domain::UpdateTask {
                    parent_id: Some(Some(parent.id)),
                    ..Default::default()
                };
                // A child that cannot go under it (too deep, since moved) stays as it is.
                match self
                    .state
                    .tasks
                    .update(self.user, task.id, changes, &Default::default())
                    .await
                {
                    Ok(_) | Err(StoreError::Invalid { .. }) | Err(StoreError::NotFound) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Ok(())
    }

    pub(super) async fn delete(&self, target: Target) -> Result<Response, ApiError> {
        match target {
            Target::Object(collection, name) => {
                let list = self.resolve(&collection).await?;
                let if_match = IfMatch::from_headers(self.headers)?;
                let objects = Objects::named(self.state, self.user, list, &[&name], &[]).await?;
                let task = objects.find_named(&name).ok_or_else(not_found)?;
                self.state
                    .tasks
                    .delete(self.user, task.id, &if_match.versions_for(task.id))
                    .await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            Target::Calendar(collection) => {
                let list = self.resolve(&collection).await?;
                self.state.lists.delete_list(self.user, list).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(ApiError::Forbidden(
                "only calendars and tasks can be deleted",
            )),
        }
    }

    /// `MKCALENDAR` (or an extended `MKCOL`): a new list, named by the body's `displayname`
    /// (or the path's last segment), served at the path the client chose.
    pub(super) async fn mkcalendar(&self, target: Target) -> Result<Response, ApiError> {
        let segment = match target {
            Target::Calendar(Collection::Named(segment)) => segment,
            // A number is a list's id: taken, or not the caller's to make.
            Target::Calendar(Collection::List(_)) => return Err(ApiError::MethodNotAllowed),
            _ => {
                return Err(ApiError::Forbidden(
                    "calendars are made in the calendar home",
                ));
            }
        };
        if self
            .state
            .calendars
            .list_named(self.user, &segment)
            .await?
            .is_some()
        {
            return Err(ApiError::MethodNotAllowed);
        }
        let mut name = segment.clone();
        let mut color = None;
        if let Some(root) = document(self.body)? {
            let prop = root
                .child(DAV, "set")
                .and_then(|set| set.child(DAV, "prop"));
            if let Some(prop) = prop {
                if let Some(displayname) = prop.child(DAV, "displayname")
                    && !displayname.text.is_empty()
                {
                    name = displayname.text.clone();
                }
                if let Some(value) = prop.child(APPLE, "calendar-color") {
                    color = self::color(value.text.trim(), false).flatten();
                }
            }
        }
        let name = ListName::try_from(name)
            .map_err(|error| ApiError::invalid_field("displayname", error.to_string()))?;
        let list = self
            .state
            .lists
            .create_list(self.user, CreateList { name, color }, None)
            .await?;
        let Once::Done(list) = list else {
            return Err(not_found());
        };
        self.state
            .calendars
            .name_list(self.user, list.id, &segment)
            .await?;
        let location = HeaderValue::from_str(&paths::calendar(self.user, list.id, Some(&segment)))
            .map_err(|error| ApiError::Internal(error.into()))?;
        Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
    }
}
