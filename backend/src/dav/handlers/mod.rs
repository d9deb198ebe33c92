//! The WebDAV and CalDAV methods of the `/dav/` space (RFC 4918, 4791, 6578, 6764): the
//! dispatch here, then `properties` (PROPFIND, PROPPATCH), `reports` (REPORT) and
//! `resources` (GET, PUT, DELETE, MKCALENDAR).
//!
//! Each method reads and writes through the same store calls as the JSON API, so a change
//! made here has a version, an ETag, a feed entry and a live event like any other, and every
//! access rule holds: a list the caller is not in is a 404, a viewer's write a 403.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::auth::DavUser;
use super::paths::{self, Collection};
use super::xml::{self, Element};
use crate::domain::calendar::CalendarTags;
use crate::domain::{List, ListId, UserId};
use crate::http::{ApiError, AppState};

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

mod properties;
mod reports;
mod resources;

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
}
