//! The WebDAV and CalDAV methods of the `/dav/` space (RFC 4918, 4791, 6578, 6764).
//!
//! Each method reads and writes through the same store calls as the JSON API, so a change
//! made here has a version, an ETag, a feed entry and a live event like any other, and every
//! access rule holds: a list the caller is not in is a 404, a viewer's write a 403.

use std::collections::HashSet;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, Utc};

use super::auth::DavUser;
use super::ical::{IcalError, Object, Todo};
use super::mapping;
use super::objects::Objects;
use super::paths::{self, Collection, Target};
use super::xml::{self, APPLE, CALDAV, CS, DAV, Element, Multistatus};
use crate::domain::calendar::CalendarTags;
use crate::domain::list::{Color, CreateList, ListName, UpdateList};
use crate::domain::{ChangeCursor, List, ListId, Once, Role, Task, UserId};
use crate::http::conditional::{IfMatch, none_match_any};
use crate::http::etag::task_etag;
use crate::http::{ApiError, AppState};
use crate::store::StoreError;

/// The largest body a calendar client may send; larger is a 413 before anything is parsed.
pub use crate::http::request_limits::DAV_BODY_LIMIT_BYTES as MAX_BODY_BYTES;

/// What a sync token looks like: a URI (RFC 6578), around the list's change position.
const SYNC_TOKEN_PREFIX: &str = "urn:x-todo-backend:sync:";

/// How many changes one sync report carries; more are reported as truncated (507).
const SYNC_LIMIT: u32 = 1000;

/// The methods the space answers, for `Allow`.
const ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, REPORT, MKCALENDAR, MKCOL";

/// `/.well-known/caldav` (RFC 6764): where the calendars are.
pub async fn well_known() -> Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, HeaderValue::from_static("/dav/"))],
    )
        .into_response()
}

/// Every request to `/dav/`.
pub async fn dav(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    if parts.method == Method::OPTIONS {
        return options();
    }
    let user = match DavUser::from_request_parts(&mut parts, &state).await {
        Ok(DavUser(user)) => user,
        Err(refused) => return refused,
    };
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return ApiError::CalendarBodyTooLarge.into_response(),
    };
    let Some(target) = paths::target(parts.uri.path(), &user) else {
        return not_found().into_response();
    };
    let request = Dav {
        state: &state,
        user: &user,
        headers: &parts.headers,
        body: &body,
        base: paths::calendar_base(parts.uri.path()).unwrap_or_default(),
    };
    let outcome = match parts.method.as_str() {
        "PROPFIND" => request.propfind(target).await,
        "REPORT" => request.report(target).await,
        "GET" => request.get(target, true).await,
        "HEAD" => request.get(target, false).await,
        "PUT" => request.put(target).await,
        "DELETE" => request.delete(target).await,
        // An extended MKCOL (RFC 5689) is how some apps (vdirsyncer) make a calendar.
        "MKCALENDAR" | "MKCOL" => request.mkcalendar(target).await,
        "PROPPATCH" => request.proppatch(target).await,
        _ => Err(ApiError::MethodNotAllowed),
    };
    match outcome {
        Ok(response) => response,
        Err(ApiError::MethodNotAllowed) => {
            let mut response = ApiError::MethodNotAllowed.into_response();
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            response
        }
        Err(error) => error.into_response(),
    }
}

/// `OPTIONS`: what the space speaks; no sign-in needed to ask.
fn options() -> Response {
    (
        StatusCode::OK,
        [
            (header::ALLOW, HeaderValue::from_static(ALLOW)),
            (
                header::HeaderName::from_static("dav"),
                HeaderValue::from_static("1, 3, calendar-access"),
            ),
        ],
    )
        .into_response()
}

fn not_found() -> ApiError {
    ApiError::Missing("no such calendar or task")
}

/// One request, with what every method needs.
struct Dav<'a> {
    state: &'a AppState,
    user: &'a UserId,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    /// The path of the calendar the request names, as it wrote it: the base of the hrefs
    /// of its answer.
    base: String,
}

/// The properties a request asks for.
enum Wanted {
    /// `allprop` (or no body): the usual ones, without `calendar-data`.
    All,
    Named(Vec<(String, String)>),
}

impl Wanted {
    /// The `prop` (or `allprop`/`propname`) of a PROPFIND or REPORT body.
    fn of(root: &Element) -> Wanted {
        match root.child(DAV, "prop") {
            Some(prop) => Wanted::Named(
                prop.children
                    .iter()
                    .map(|p| (p.namespace.clone(), p.name.clone()))
                    .collect(),
            ),
            None => Wanted::All,
        }
    }

    fn includes(&self, namespace: &str, name: &str) -> bool {
        match self {
            Wanted::All => !(namespace == CALDAV && name == "calendar-data"),
            Wanted::Named(names) => names.iter().any(|(n, l)| n == namespace && l == name),
        }
    }

    /// Writes one resource: the wanted properties it has, and those it has not.
    fn answer(&self, answer: &mut Multistatus, href: &str, properties: Vec<Property>) {
        let mut found = Vec::new();
        for property in &properties {
            if self.includes(property.namespace, property.name) {
                found.push(property.xml());
            }
        }
        let missing = match self {
            Wanted::All => Vec::new(),
            Wanted::Named(names) => names
                .iter()
                .filter(|(namespace, name)| {
                    !properties
                        .iter()
                        .any(|p| p.namespace == namespace && p.name == name)
                })
                .cloned()
                .collect(),
        };
        answer.response(href, &found, &missing);
    }
}

/// A property of a resource: its name and its value as XML.
struct Property {
    namespace: &'static str,
    name: &'static str,
    value: String,
}

impl Property {
    fn new(namespace: &'static str, name: &'static str, value: impl Into<String>) -> Self {
        Property {
            namespace,
            name,
            value: value.into(),
        }
    }

    fn href(namespace: &'static str, name: &'static str, href: &str) -> Self {
        Property::new(
            namespace,
            name,
            format!("<d:href>{}</d:href>", xml::text(href)),
        )
    }

    fn xml(&self) -> String {
        match self.value.is_empty() {
            true => xml::empty_element(self.namespace, self.name),
            false => xml::element(self.namespace, self.name, &self.value),
        }
    }
}

fn multistatus(body: String) -> Response {
    (
        StatusCode::MULTI_STATUS,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The body's root element; an empty body is `None`.
fn document(body: &Bytes) -> Result<Option<Element>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    xml::parse(body)
        .map(Some)
        .map_err(|error| ApiError::BadRequest(error.to_string()))
}

/// `Depth`: 0, or 1 (for `1` and `infinity`, which is answered as 1).
fn depth(headers: &HeaderMap, default: u8) -> u8 {
    match headers.get("depth").and_then(|v| v.to_str().ok()) {
        Some("0") => 0,
        Some(_) => 1,
        None => default,
    }
}

fn sync_token(position: i64) -> String {
    format!("{SYNC_TOKEN_PREFIX}{position}")
}

/// A strong ETag of a calendar's state, from its change tag.
fn collection_etag(tag: i64) -> String {
    format!("\"c{tag}\"")
}

fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

impl Dav<'_> {
    fn principal_href(&self) -> String {
        paths::principal(self.user)
    }

    fn common(&self) -> Vec<Property> {
        vec![Property::href(
            DAV,
            "current-user-principal",
            &self.principal_href(),
        )]
    }

    fn root_properties(&self) -> Vec<Property> {
        let mut properties = self.common();
        properties.push(Property::new(DAV, "resourcetype", "<d:collection/>"));
        properties.push(Property::href(
            DAV,
            "principal-collection-set",
            "/dav/principals/",
        ));
        properties
    }

    fn principal_properties(&self) -> Vec<Property> {
        let mut properties = self.common();
        properties.extend([
            Property::new(DAV, "resourcetype", "<d:collection/><d:principal/>"),
            Property::new(DAV, "displayname", xml::text(self.user.as_str())),
            Property::href(DAV, "principal-URL", &self.principal_href()),
            Property::href(CALDAV, "calendar-home-set", &paths::home(self.user)),
        ]);
        properties
    }

    fn home_properties(&self) -> Vec<Property> {
        let mut properties = self.common();
        properties.extend([
            Property::new(DAV, "resourcetype", "<d:collection/>"),
            Property::new(DAV, "displayname", "Lists"),
            Property::href(DAV, "owner", &self.principal_href()),
        ]);
        properties
    }

    fn calendar_properties(&self, list: &List, tags: &CalendarTags) -> Vec<Property> {
        let (tag, token) = (tags.tag, tags.token);
        let privileges = match list.role {
            Role::Viewer => {
                "<d:privilege><d:read/></d:privilege>\
                <d:privilege><d:read-current-user-privilege-set/></d:privilege>"
            }
            Role::Editor | Role::Owner => {
                "<d:privilege><d:read/></d:privilege>\
                <d:privilege><d:read-current-user-privilege-set/></d:privilege>\
                <d:privilege><d:write/></d:privilege>\
                <d:privilege><d:write-content/></d:privilege>\
                <d:privilege><d:write-properties/></d:privilege>\
                <d:privilege><d:bind/></d:privilege>\
                <d:privilege><d:unbind/></d:privilege>"
            }
        };
        let reports = ["calendar-query", "calendar-multiget", "free-busy-query"]
            .iter()
            .map(|name| format!("<d:supported-report><d:report><c:{name}/></d:report></d:supported-report>"))
            .chain(std::iter::once(
                "<d:supported-report><d:report><d:sync-collection/></d:report></d:supported-report>"
                    .to_owned(),
            ))
            .collect::<String>();
        let mut properties = self.common();
        properties.extend([
            Property::new(DAV, "resourcetype", "<d:collection/><c:calendar/>"),
            Property::new(DAV, "displayname", xml::text(&list.name)),
            Property::new(
                CALDAV,
                "supported-calendar-component-set",
                "<c:comp name=\"VTODO\"/>",
            ),
            Property::new(
                CALDAV,
                "supported-calendar-data",
                "<c:calendar-data content-type=\"text/calendar\" version=\"2.0\"/>",
            ),
            Property::new(CALDAV, "max-resource-size", MAX_BODY_BYTES.to_string()),
            Property::new(CS, "getctag", xml::text(&tag.to_string())),
            Property::new(DAV, "sync-token", xml::text(&sync_token(token))),
            Property::new(DAV, "getetag", xml::text(&collection_etag(tag))),
            Property::new(DAV, "current-user-privilege-set", privileges),
            Property::new(DAV, "supported-report-set", reports),
            Property::href(DAV, "owner", &self.principal_href()),
        ]);
        if let Some(color) = &list.color {
            // Apple's form, which calendar apps write back: `#RRGGBBAA`.
            let apple = format!("{}FF", color.to_ascii_uppercase());
            properties.push(Property::new(APPLE, "calendar-color", xml::text(&apple)));
        }
        properties
    }

    fn object_properties(&self, objects: &Objects, task: &Task, wanted: &Wanted) -> Vec<Property> {
        let etag = task_etag(task.id, task.version);
        let mut properties = vec![
            Property::new(DAV, "getetag", xml::text(etag.to_str().unwrap_or_default())),
            Property::new(
                DAV,
                "getcontenttype",
                "text/calendar; charset=utf-8; component=VTODO",
            ),
            Property::new(DAV, "resourcetype", ""),
            Property::new(DAV, "getlastmodified", http_date(task.updated_at)),
        ];
        if wanted.includes(CALDAV, "calendar-data") {
            properties.push(Property::new(
                CALDAV,
                "calendar-data",
                xml::text(&objects.render(task)),
            ));
        }
        properties
    }

    /// The list a calendar path names (a 404 for one the caller cannot read).
    async fn resolve(&self, collection: &Collection) -> Result<ListId, ApiError> {
        match collection {
            Collection::List(id) => Ok(*id),
            Collection::Named(name) => self
                .state
                .calendars
                .list_named(self.user, name)
                .await?
                .ok_or_else(not_found),
        }
    }

    /// The list a calendar path names, with its change tag and sync token.
    async fn calendar(&self, collection: &Collection) -> Result<(List, CalendarTags), ApiError> {
        let id = self.resolve(collection).await?;
        let list = self.state.lists.get_list(self.user, id).await?;
        Ok((list, self.tags(id).await?))
    }

    async fn tags(&self, list: ListId) -> Result<CalendarTags, ApiError> {
        let tags = self.state.calendars.collection_tags(self.user).await?;
        tags.into_iter()
            .find(|tags| tags.list == list)
            .ok_or_else(not_found)
    }

    /// The href of the task at `name` in the calendar of the request.
    fn object_href(&self, name: &str) -> String {
        paths::object(&self.base, name)
    }

    async fn propfind(&self, target: Target) -> Result<Response, ApiError> {
        let wanted = match document(self.body)? {
            Some(root) if root.is(DAV, "propfind") => Wanted::of(&root),
            Some(_) => return Err(ApiError::BadRequest("expected a DAV:propfind body".into())),
            None => Wanted::All,
        };
        let depth = depth(self.headers, 1);
        let mut answer = Multistatus::default();
        match target {
            Target::Root => {
                wanted.answer(&mut answer, &paths::root(), self.root_properties());
            }
            Target::Principal => {
                wanted.answer(
                    &mut answer,
                    &self.principal_href(),
                    self.principal_properties(),
                );
            }
            Target::Home => {
                wanted.answer(&mut answer, &paths::home(self.user), self.home_properties());
                if depth > 0 {
                    // The lists first: a new user's Inbox is made when they are first read.
                    let lists = self.state.lists.lists_of(self.user).await?;
                    let tags = self.state.calendars.collection_tags(self.user).await?;
                    for list in lists {
                        let Some(tags) = tags.iter().find(|tags| tags.list == list.id) else {
                            continue;
                        };
                        let href = paths::calendar(self.user, list.id, tags.name.as_deref());
                        let properties = self.calendar_properties(&list, tags);
                        wanted.answer(&mut answer, &href, properties);
                    }
                }
            }
            Target::Calendar(collection) => {
                let (list, tags) = self.calendar(&collection).await?;
                let properties = self.calendar_properties(&list, &tags);
                wanted.answer(&mut answer, &self.base, properties);
                if depth > 0 {
                    let objects = Objects::load(self.state, self.user, list.id).await?;
                    for task in &objects.tasks {
                        let href = self.object_href(objects.name(task));
                        let properties = self.object_properties(&objects, task, &wanted);
                        wanted.answer(&mut answer, &href, properties);
                    }
                }
            }
            Target::Object(collection, name) => {
                let list = self.resolve(&collection).await?;
                let objects = Objects::named(self.state, self.user, list, &[&name], &[]).await?;
                let task = objects.find_named(&name).ok_or_else(not_found)?;
                let properties = self.object_properties(&objects, task, &wanted);
                wanted.answer(&mut answer, &self.object_href(&name), properties);
            }
        }
        Ok(multistatus(answer.finish(None)))
    }

    /// `PROPPATCH` of a calendar: its `displayname` and `calendar-color` are the list's name
    /// and colour (owner or editor); any other property is refused, and then nothing is set
    /// (RFC 4918 §9.2: all or nothing).
    async fn proppatch(&self, target: Target) -> Result<Response, ApiError> {
        let Target::Calendar(collection) = &target else {
            return Err(ApiError::Forbidden(
                "only a calendar's properties can be set",
            ));
        };
        let (list, _) = self.calendar(collection).await?;
        let root = document(self.body)?
            .filter(|root| root.is(DAV, "propertyupdate"))
            .ok_or_else(|| ApiError::BadRequest("expected a DAV:propertyupdate body".into()))?;
        let mut changes = UpdateList::default();
        let (mut settable, mut refused) = (Vec::new(), Vec::new());
        for action in &root.children {
            let remove = action.is(DAV, "remove");
            let Some(prop) = action.child(DAV, "prop") else {
                continue;
            };
            for property in &prop.children {
                let name = xml::empty_element(&property.namespace, &property.name);
                let value = property.text.trim();
                let set = match (property.namespace.as_str(), property.name.as_str()) {
                    (DAV, "displayname") if !remove => ListName::try_from(value.to_owned())
                        .ok()
                        .map(|name| changes.name = Some(name)),
                    (APPLE, "calendar-color") => {
                        color(value, remove).map(|color| changes.color = Some(color))
                    }
                    _ => None,
                };
                match set {
                    Some(()) => settable.push(name),
                    None => refused.push(name),
                }
            }
        }
        let mut answer = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus xmlns:d=\"DAV:\" \
             xmlns:c=\"{CALDAV}\" xmlns:cs=\"{CS}\" xmlns:a=\"{APPLE}\"><d:response>\
             <d:href>{}</d:href>",
            xml::text(&self.base)
        );
        let propstat = |names: &[String], status: &str| {
            format!(
                "<d:propstat><d:prop>{}</d:prop><d:status>HTTP/1.1 {status}</d:status>\
                 </d:propstat>",
                names.concat()
            )
        };
        if refused.is_empty() {
            if !changes.is_empty() {
                self.state
                    .lists
                    .update_list(self.user, list.id, changes)
                    .await?;
            }
            answer.push_str(&propstat(&settable, "200 OK"));
        } else {
            answer.push_str(&propstat(&refused, "403 Forbidden"));
            if !settable.is_empty() {
                answer.push_str(&propstat(&settable, "424 Failed Dependency"));
            }
        }
        answer.push_str("</d:response></d:multistatus>\n");
        Ok(multistatus(answer))
    }

    async fn report(&self, target: Target) -> Result<Response, ApiError> {
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
                if filter.is_none_or(|filter| super::query::matches(filter, task, &todo)) {
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
    async fn sync(
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

    async fn get(&self, target: Target, with_body: bool) -> Result<Response, ApiError> {
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

    async fn put(&self, target: Target) -> Result<Response, ApiError> {
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
    async fn adopt(&self, list: ListId, parent: &Task) -> Result<(), ApiError> {
        let objects = Objects::load(self.state, self.user, list).await?;
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

    async fn delete(&self, target: Target) -> Result<Response, ApiError> {
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
    async fn mkcalendar(&self, target: Target) -> Result<Response, ApiError> {
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

/// A `free-busy-query` (RFC 4791 §7.10): tasks take no time, so the range is free.
fn free_busy(root: &Element) -> Response {
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

/// A list's colour from a `calendar-color`: `#rrggbb` or Apple's `#rrggbbaa` (the list keeps
/// `#rrggbb`); empty or removed, none. `None` for anything else (a colour's name).
fn color(value: &str, remove: bool) -> Option<Option<Color>> {
    if remove || value.is_empty() {
        return Some(None);
    }
    let hex = value.to_ascii_lowercase();
    let hex = match hex.len() {
        // Apple's alpha, which the list does not keep, must still be hex.
        9 if hex[7..].bytes().all(|b| b.is_ascii_hexdigit()) => &hex[..7],
        _ => hex.as_str(),
    };
    Color::try_from(hex.to_owned()).ok().map(Some)
}

/// The VTODO fields a task is sent with, for the filters of a query.
fn todo_of(objects: &Objects, task: &Task) -> Todo {
    let stored = objects.stored(task).and_then(|object| object.todo().ok());
    mapping::todo(task, stored.as_ref(), None)
}

/// The 403 of a token this list's changes cannot be read from (RFC 6578 §3.2): the client
/// syncs again from the start.
fn invalid_sync_token() -> Response {
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

/// An iCalendar date-time in UTC (`20261207T080000Z`), as `time-range` attributes are.
pub fn utc_time(value: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y%m%dT%H%M%S")
        .ok()
        .map(|at| at.and_utc())
}
