//! Conditional requests (RFC 9110 §13): the `If-Match` / `If-None-Match` headers, compared
//! against the tags of [`super::etag`].

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header, request::Parts};

use super::error::ApiError;
use crate::domain::{Expect, TaskId};

/// One member of an `If-Match` or `If-None-Match` list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tag {
    Any,
    Entity { weak: bool, opaque: String },
}

/// The parsed `If-Match` header of a request, if it has one. 400 when it is not a list of
/// entity tags: a client that means a condition must not have it silently dropped.
#[derive(Debug, Clone, Default)]
pub struct IfMatch(Option<Vec<Tag>>);

impl IfMatch {
    /// The versions of task `id` the header admits: any without the header or with `*`, else
    /// those its tags name. Strong comparison, so a weak tag or another task's tag admits
    /// nothing.
    pub fn versions_for(&self, id: TaskId) -> Expect {
        let Some(tags) = &self.0 else {
            return Expect::Any;
        };
        if tags.contains(&Tag::Any) {
            return Expect::Any;
        }
        let prefix = format!("{id}-");
        let versions = tags
            .iter()
            .filter_map(|tag| match tag {
                Tag::Entity {
                    weak: false,
                    opaque,
                } => opaque.strip_prefix(&prefix)?.parse::<i64>().ok(),
                _ => None,
            })
            .collect();
        Expect::OneOf(versions)
    }
}

impl IfMatch {
    /// The `If-Match` of `headers` (400 when it is not a list of entity tags).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        tags(headers, header::IF_MATCH).map(IfMatch)
    }

    /// Whether the request has an `If-Match` header at all.
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }
}

/// Whether `If-None-Match` is `*`: the request is meant to create, never to overwrite.
pub fn none_match_any(headers: &HeaderMap) -> Result<bool, ApiError> {
    Ok(tags(headers, header::IF_NONE_MATCH)?.is_some_and(|tags| tags.contains(&Tag::Any)))
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        tags(&parts.headers, header::IF_MATCH).map(IfMatch)
    }
}

/// Whether `If-None-Match` matches `etag` (weak comparison, RFC 9110 §13.1.2): the client
/// already has this representation.
pub fn none_match(headers: &HeaderMap, etag: &HeaderValue) -> Result<bool, ApiError> {
    let Some(tags) = tags(headers, header::IF_NONE_MATCH)? else {
        return Ok(false);
    };
    let ours = etag.to_str().unwrap_or_default();
    let ours = ours.strip_prefix("W/").unwrap_or(ours).trim_matches('"');
    Ok(tags.iter().any(|tag| match tag {
        Tag::Any => true,
        Tag::Entity { opaque, .. } => opaque == ours,
    }))
}

/// Every value of header `name`, as one list of tags; `None` without the header.
fn tags(headers: &HeaderMap, name: HeaderName) -> Result<Option<Vec<Tag>>, ApiError> {
    let mut values = headers.get_all(&name).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut tags = Vec::new();
    for value in values {
        let text = value.to_str().map_err(|_| malformed(&name))?;
        parse_list(text, &mut tags).ok_or_else(|| malformed(&name))?;
    }
    Ok(Some(tags))
}

fn malformed(name: &HeaderName) -> ApiError {
    ApiError::BadRequest(format!(
        "{name} must be * or a list of entity tags such as \"12-3\""
    ))
}

/// `#entity-tag` or `*` (RFC 9110 §8.8.3, §13.1.1), appended to `tags`.
fn parse_list(text: &str, tags: &mut Vec<Tag>) -> Option<()> {
    let text = text.trim();
    if text == "*" {
        tags.push(Tag::Any);
        return Some(());
    }
    for member in text.split(',') {
        let member = member.trim();
        if member.is_empty() {
            // The list syntax allows empty members.
            continue;
        }
        let (weak, rest) = match member.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, member),
        };
        let opaque = rest.strip_prefix('"')?.strip_suffix('"')?;
        // etagc: %x21 / %x23-7E / obs-text; no quotes, no spaces, no controls.
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return None;
        }
        tags.push(Tag::Entity {
            weak,
            opaque: opaque.to_owned(),
        });
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::etag::task_etag;

    fn if_match(value: &str) -> Result<IfMatch, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_MATCH,
            HeaderValue::from_str(value).expect("value"),
        );
        tags(&headers, header::IF_MATCH).map(IfMatch)
    }

    fn id(n: i64) -> TaskId {
        TaskId::try_from(n).expect("positive")
    }

    #[test]
    fn if_match_admits_the_versions_of_this_task_only() {
        let expect = |value: &str| if_match(value).map(|m| m.versions_for(id(12))).ok();
        assert_eq!(expect("\"12-3\""), Some(Expect::OneOf(vec![3])));
        assert_eq!(
            expect("\"12-3\", \"12-4\""),
            Some(Expect::OneOf(vec![3, 4]))
        );
        assert_eq!(expect("*"), Some(Expect::Any));
        // Another task's tag, a weak tag, a tag of another shape: nothing is admitted.
        assert_eq!(expect("\"13-3\""), Some(Expect::OneOf(vec![])));
        assert_eq!(expect("W/\"12-3\""), Some(Expect::OneOf(vec![])));
        assert_eq!(expect("\"112-3\""), Some(Expect::OneOf(vec![])));
        assert_eq!(expect("\"abc\""), Some(Expect::OneOf(vec![])));
        assert_eq!(IfMatch::default().versions_for(id(12)), Expect::Any);
    }

    #[test]
    fn malformed_conditions_are_refused() {
        for bad in ["12-3", "\"12-3", "\"a b\"", "W/12", "**", "\"x\" \"y\""] {
            assert!(if_match(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = task_etag(id(5), 2);
        let matches = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(value).expect("value"),
            );
            none_match(&headers, &etag).ok()
        };
        assert_eq!(matches("\"5-2\""), Some(true));
        assert_eq!(matches("W/\"5-2\""), Some(true));
        assert_eq!(matches("\"5-1\", \"5-2\""), Some(true));
        assert_eq!(matches("*"), Some(true));
        assert_eq!(matches("\"5-1\""), Some(false));
        assert_eq!(none_match(&HeaderMap::new(), &etag).ok(), Some(false));
    }
}
