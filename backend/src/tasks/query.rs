//! The query string of `GET /api/tasks`: filters, sort and paging, parsed into a
//! [`TaskQuery`].
//!
//! Parsed by hand rather than through serde, because `status`, `tag` and `priority` may
//! repeat while every other parameter must not. Unknown parameters are ignored (cache busters
//! are common); a known one with a bad value is a 422 naming it, never silently clamped.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use utoipa::IntoParams;

use crate::domain::query::{Assignee, MAX_SEARCH_CHARS, Parent, fold};
use crate::domain::{
    Filter, Page, Priority, SortKey, Tag, TaskQuery, TaskStatus, TaskUid, Timestamp, UserId,
};
use crate::http::ApiError;

/// A parsed list request.
#[derive(Debug)]
pub struct ListRequest {
    pub query: TaskQuery,
    /// The `cursor` parameter, still to be checked against the caller and the query.
    pub cursor: Option<String>,
    /// Every parameter as sent, for building the next page's link.
    pairs: Vec<(String, String)>,
}

impl ListRequest {
    /// The query string of the page after this one, which starts at `cursor`.
    pub fn next_query(&self, cursor: &str) -> String {
        let mut next = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &self.pairs {
            if key != "cursor" && key != "offset" {
                next.append_pair(key, value);
            }
        }
        next.append_pair("cursor", cursor);
        next.finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse(parts.uri.query().unwrap_or_default())
    }
}

/// Parses a list query string.
pub fn parse(raw: &str) -> Result<ListRequest, ApiError> {
    let pairs = crate::http::extract::query_pairs(raw)?;
    let mut page = Page::default();
    let mut sort = SortKey::default();
    let mut filter = Filter::default();
    let mut cursor = None;
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &pairs {
        let key = key.as_str();
        const SINGLE: [&str; 14] = [
            "list_id",
            "assignee",
            "parent_id",
            "uid",
            "limit",
            "offset",
            "sort",
            "q",
            "cursor",
            "due_before",
            "due_after",
            "has_due",
            "updated_since",
            "deleted",
        ];
        if SINGLE.contains(&key) {
            if seen.contains(&key) {
                return Err(ApiError::invalid_field(key, "must not be repeated"));
            }
            seen.push(key);
        }
        let invalid = |message: String| ApiError::invalid_field(key, message);
        match key {
            "limit" => {
                page.limit = digits::<u32>(value)
                    .filter(|limit| (1..=Page::MAX_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        invalid(format!("must be an integer from 1 to {}", Page::MAX_LIMIT))
                    })?;
            }
            "offset" => {
                page.offset = digits::<i64>(value)
                    .ok_or_else(|| invalid("must be a non-negative integer".into()))?;
            }
            "sort" => sort = value.parse().map_err(invalid)?,
            "q" => filter.search = search(value).map_err(invalid)?,
            // An empty cursor is no cursor: some clients always send the parameter.
            "cursor" => cursor = (!value.is_empty()).then(|| value.clone()),
            "due_before" => filter.due_before = Some(timestamp(value).map_err(invalid)?),
            "due_after" => filter.due_after = Some(timestamp(value).map_err(invalid)?),
            "updated_since" => filter.updated_since = Some(timestamp(value).map_err(invalid)?),
            "has_due" => filter.has_due = Some(boolean(value).map_err(invalid)?),
            "deleted" => filter.trashed = boolean(value).map_err(invalid)?,
            "status" => filter.statuses.push(value.parse().map_err(invalid)?),
            "priority" => filter.priorities.push(value.parse().map_err(invalid)?),
            "tag" => filter
                .tags
                .push(Tag::try_from(value.clone()).map_err(invalid)?),
            "list_id" => {
                filter.list = Some(value.parse().map_err(|_| {
                    invalid("must be a positive list id without sign or leading zeros".into())
                })?);
            }
            "parent_id" => {
                filter.parent = Some(match value.as_str() {
                    "none" => Parent::Nobody,
                    id => Parent::Task(
                        id.parse()
                            .map_err(|_| invalid("must be a positive task id or none".into()))?,
                    ),
                });
            }
            "uid" => {
                filter.uid =
                    Some(TaskUid::parse(value.clone()).map_err(|e| invalid(e.to_string()))?);
            }
            "assignee" => {
                filter.assignee = Some(match value.as_str() {
                    "none" => Assignee::Nobody,
                    "me" => Assignee::Me,
                    other => Assignee::User(
                        UserId::parse(other).map_err(|error| invalid(error.to_string()))?,
                    ),
                });
            }
            _ => {}
        }
    }
    if cursor.is_some() && page.offset > 0 {
        return Err(ApiError::invalid_field(
            "cursor",
            "cannot be combined with offset",
        ));
    }
    Ok(ListRequest {
        query: TaskQuery {
            filter,
            sort,
            limit: page.limit,
            offset: page.offset,
            after: None,
        },
        cursor,
        pairs,
    })
}

fn boolean(raw: &str) -> Result<bool, String> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

/// Digits only: no sign, no white space. Rust's integer parsers accept a leading `+`, which
/// would make `offset=%2B1` valid while `offset=+1` (a space, in a query string) is not.
fn digits<T: std::str::FromStr>(raw: &str) -> Option<T> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn timestamp(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    raw.parse::<Timestamp>().map(Timestamp::get)
}

/// A search: at most 200 characters and no NUL; empty means no search.
fn search(raw: &str) -> Result<Option<String>, String> {
    if raw.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    if raw.chars().count() > MAX_SEARCH_CHARS {
        return Err(format!("must be at most {MAX_SEARCH_CHARS} characters"));
    }
    Ok((!raw.is_empty()).then(|| fold(raw)))
}

/// The list's parameters, as the OpenAPI document describes them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// How many tasks to return, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// How many tasks to skip (not with `cursor`).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
    /// The sort field, `-` first for descending; ties by `id` in the same direction, tasks
    /// without a due date last either way.
    #[param(
        pattern = "^-?(created_at|updated_at|due_at|priority|title|position)$",
        default = "-created_at"
    )]
    sort: Option<String>,
    /// Tasks in any of these statuses.
    status: Option<Vec<TaskStatus>>,
    /// Tasks that carry all of these tags (compared ignoring case).
    tag: Option<Vec<Tag>>,
    /// Tasks with any of these priorities.
    priority: Option<Vec<Priority>>,
    /// A case-insensitive substring of the title or the description, up to 200 characters;
    /// `%`, `_` and `\` match themselves.
    #[param(max_length = 200, pattern = r"^[^\u0000]*$")]
    q: Option<String>,
    /// Tasks due strictly before this time (RFC 3339 with an offset).
    due_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Tasks due strictly after this time (RFC 3339 with an offset).
    due_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only tasks with (`true`) or without (`false`) a due date.
    has_due: Option<bool>,
    /// Tasks changed at or after this time (RFC 3339 with an offset).
    updated_since: Option<chrono::DateTime<chrono::Utc>>,
    /// The trash (`true`) instead of the live tasks: deleted tasks that can still be restored.
    deleted: Option<bool>,
    /// Only this list's tasks (a list the caller is a member of: another is a 404).
    #[param(minimum = 1)]
    list_id: Option<i64>,
    /// Only tasks assigned to `me`, to a user id, or to nobody (`none`).
    assignee: Option<String>,
    /// Only the direct subtasks of this task, or only top-level tasks (`none`).
    #[param(value_type = Option<String>, pattern = r"^([1-9][0-9]*|none)$", example = "none")]
    parent_id: Option<String>,
    /// Only the task with this uid (at most one per list).
    #[param(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")]
    uid: Option<String>,
    /// Where the page starts: the `cursor` of a `Link: rel="next"` header.
    cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Validation { errors, .. } => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn everything_parses_and_repeatable_parameters_repeat() {
        let request = parse(
            "status=pending&status=completed&tag=Work&tag=home&priority=high&q=Milk%25&\
             sort=-due_at&limit=10&has_due=true&due_before=2030-01-01T00:00:00Z&x=ignored",
        )
        .expect("valid");
        let query = request.query;
        assert_eq!(query.filter.statuses.len(), 2);
        assert_eq!(query.filter.tags.len(), 2);
        assert_eq!(query.filter.priorities, [Priority::High]);
        assert_eq!(query.filter.search.as_deref(), Some("milk%"));
        assert_eq!(query.sort.to_string(), "-due_at");
        assert_eq!(query.limit, 10);
        assert_eq!(query.filter.has_due, Some(true));
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let long = format!("q={}", "a".repeat(201));
        for (raw, field) in [
            ("limit=0", "limit"),
            ("limit=%2B1", "limit"),
            ("offset=+1", "offset"),
            ("sort=password", "sort"),
            ("sort=--title", "sort"),
            ("sort=title&sort=position", "sort"),
            ("status=done", "status"),
            ("priority=urgent", "priority"),
            ("tag=%0A", "tag"),
            ("has_due=yes", "has_due"),
            ("due_before=2026-01-01", "due_before"),
            ("updated_since=yesterday", "updated_since"),
            ("q=a%00b", "q"),
            (long.as_str(), "q"),
            ("cursor=x&offset=1", "cursor"),
        ] {
            let error = parse(raw).expect_err(raw);
            assert_eq!(field_of(error), field, "{raw}");
        }
    }

    #[test]
    fn the_next_link_keeps_the_filters_and_drops_the_offset() {
        let request = parse("tag=a&offset=20&limit=5&cursor=old").expect_err("cursor with offset");
        assert_eq!(field_of(request), "cursor");
        let request = parse("tag=a%20b&offset=20&limit=5").expect("valid");
        assert_eq!(request.next_query("c.d"), "tag=a+b&limit=5&cursor=c.d");
    }
}
