//! REPORT: `calendar-query`, `calendar-multiget`, `sync-collection` (RFC 6578),
//! `free-busy-query`, and principal searches.

use std::collections::HashSet;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::properties::Wanted;
use super::{Dav, SYNC_LIMIT, SYNC_TOKEN_PREFIX, document, multistatus, sync_token};
use crate::dav::ical::Todo;
use crate::dav::mapping;
use crate::dav::objects::Objects;
use crate::dav::paths::{self, Collection, Target};
use crate::dav::query::{self, utc_time};
use crate::dav::xml::{CALDAV, DAV, Element, Multistatus};
use crate::domain::{ChangeCursor, ListId, Task};
use crate::http::ApiError;
use crate::store::StoreError;

impl Dav<'_> {
    pub(super) async fn report(&self, target: Target) -> Result<Response, ApiError> {
        let root = document(self.body)?
            .ok_or_else(|| ApiError::BadRequest("a REPORT needs a body".into()))?;
        // Other people are not found by searching: each user sees their own principal only.
        if root.is(DAV, "principal-property-search")
            || root.is(DAV, "principal-search-property-set")
        {
            return Ok(multistatus(Multistatus::default().finish(None)));
        }
        let (list, tags) = match &target {
            Target::Calendar(collection) | Target::Object(collection, _) => {
                let (list, tags) = self.calendar(collection).await?;
                (list.id, tags)
            }
            _ => return Err(ApiError::Forbidden("reports are answered on calendars")),
        };
        let wanted = Wanted::of(&root);
        if root.is(DAV, "sync-collection") {
            return self.sync(list, &root, &wanted).await;
        }
        if root.is(CALDAV, "free-busy-query") {
            return Ok(free_busy(&root));
        }
        let objects = Objects::load(self.state, self.user, list).await?;
        let mut answer = Multistatus::default();
        if root.is(CALDAV, "calendar-multiget") {
            for href in root.children_named(DAV, "href") {
                // An href of this calendar, by its id or by the name a client made it under.
                let name = match paths::target(&href.text, self.user) {
                    Some(Target::Object(Collection::List(id), name)) if id == list => name,
                    Some(Target::Object(Collection::Named(calendar), name))
                        if tags.name.as_deref() == Some(calendar.as_str()) =>
                    {
                        name
                    }
                    _ => {
                        answer.status(&href.text, "404 Not Found");
                        continue;
                    }
                };
                match objects.find_named(&name) {
                    Some(task) => {
                        let properties = self.object_properties(&objects, task, &wanted);
                        wanted.answer(&mut answer, &href.text, properties);
                    }
                    None => answer.status(&href.text, "404 Not Found"),
                }
            }
            return Ok(multistatus(answer.finish(None)));
        }
        if root.is(CALDAV, "calendar-query") {
            let filter = root.child(CALDAV, "filter");
            for task in &objects.tasks {
                if let Target::Object(_, name) = &target
                    && objects.name(task) != name
                {
                    continue;
                }
                let todo = todo_of(&objects, task);
                if filter.is_none_or(|filter| query::matches(filter, task, &todo)) {
                    let href = self.object_href(objects.name(task));
                    let properties = self.object_properties(&objects, task, &wanted);
                    wanted.answer(&mut answer, &href, properties);
                }
            }
            return Ok(multistatus(answer.finish(None)));
        }

        Err(ApiError::Forbidden(
            "only calendar-query, calendar-multiget, sync-collection and free-busy-query are \
             supported",
        ))
    }

    /// `sync-collection` (RFC 6578): what changed since the token, from the list's changes.
    pub(super) async fn sync(
        &self,
        list: ListId,
        root: &Element,
        wanted: &Wanted,
    ) -> Result<Response, ApiError> {
        let token = root
            .child(DAV, "sync-token")
            .map(|token| token.text.trim())
            .unwrap_or_default();
        let since = match token {
            "" => ChangeCursor::START,
            token => match token
                .strip_prefix(SYNC_TOKEN_PREFIX)
                .and_then(|position| position.parse::<ChangeCursor>().ok())
            {
                Some(since) => since,
                None => return Ok(invalid_sync_token()),
            },
        };
        let changes = match self
            .state
            .calendars
            .calendar_changes(self.user, list, since, SYNC_LIMIT)
            .await
        {
            Ok(changes) => changes,
            Err(StoreError::HistoryExpired) => return Ok(invalid_sync_token()),
            Err(error) => return Err(error.into()),
        };
        // Read after the changes: a task changed since is sent as it is now (its next change
        // is after the token, and reported again), never as it was.
        let objects = &Objects::load(self.state, self.user, list).await?;
        let mut answer = Multistatus::default();
        let mut seen = HashSet::new();
        for task in &changes.changed {
            // As it is now (it may have changed again, or gone, since the report read it).
            let Some(task) = objects.tasks.iter().find(|now| now.id == task.id) else {
                continue;
            };
            seen.insert(objects.name(task).to_owned());
            let href = self.object_href(objects.name(task));
            let properties = self.object_properties(objects, task, wanted);
            wanted.answer(&mut answer, &href, properties);
        }
        // A first sync lists what is there; removals mean something only after one.
        if since != ChangeCursor::START {
            for name in &changes.removed {
                if seen.insert(name.clone()) && objects.find_named(name).is_none() {
                    answer.status(&self.object_href(name), "404 Not Found");
                }
            }
        }
        if changes.truncated {
            answer.status(&self.base, "507 Insufficient Storage");
        }
        Ok(multistatus(
            answer.finish(Some(&sync_token(changes.next.get()))),
        ))
    }
}

/// A `free-busy-query` (RFC 4791 §7.10): tasks take no time, so the range is free.
pub(super) fn free_busy(root: &Element) -> Response {
    let range = root.child(CALDAV, "time-range");
    let stamp = |name: &str| {
        range
            .and_then(|range| range.attribute(name))
            .and_then(utc_time)
            .unwrap_or_else(Utc::now)
            .format("%Y%m%dT%H%M%SZ")
            .to_string()
    };
    let body = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//todo-backend//EN\r\n\
         BEGIN:VFREEBUSY\r\nDTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\n\
         END:VFREEBUSY\r\nEND:VCALENDAR\r\n",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        stamp("start"),
        stamp("end"),
    );
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/calendar; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The VTODO fields a task is sent with, for the filters of a query.
pub(super) fn todo_of(objects: &Objects, task: &Task) -> Todo {
    let stored = objects.stored(task).and_then(|object| object.todo().ok());
    mapping::todo(task, stored.as_ref(), None)
}

/// The 403 of a token this list's changes cannot be read from (RFC 6578 §3.2): the client
/// syncs again from the start.
pub(super) fn invalid_sync_token() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        )],
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <d:error xmlns:d=\"DAV:\"><d:valid-sync-token/></d:error>\n",
    )
        .into_response()
}
