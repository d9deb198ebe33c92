//! The `/dav/` URL space: which resource a path names, and the path of each resource.
//!
//! ```text
//! /dav/                                    the root (discovery starts here)
//! /dav/principals/{user}/                  the caller's principal
//! /dav/calendars/{user}/                   the caller's calendar home
//! /dav/calendars/{user}/{list_id}/         one calendar per list the caller can read (or
//!                                          the name an app made it under, MKCALENDAR)
//! /dav/calendars/{user}/{list_id}/{name}.ics  one task: its uid, or the name an app chose
//! ```
//! A user segment other than the caller's names nothing the caller can see: a 404.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::domain::{ListId, UserId};

/// What a path segment keeps unencoded: RFC 3986's unreserved characters and a few safe
/// sub-delimiters; everything else (`/`, `%`, spaces, non-ASCII) is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'+')
    .remove(b'=');

/// A resource of the `/dav/` space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Root,
    Principal,
    Home,
    Calendar(Collection),
    /// A task, by its calendar and its resource name without `.ics` (its uid, unless the
    /// client that made it chose another name).
    Object(Collection, String),
}

/// The collection segment of a calendar path: a list's id, or the name a client made it
/// under (MKCALENDAR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    List(ListId),
    Named(String),
}

/// The most characters a calendar's or a task's resource name may have.
pub const MAX_NAME_CHARS: usize = 255;

/// The resource `path` names for `user`, or `None` for one that does not exist for them
/// (another user's, or no resource at all).
pub fn target(path: &str, user: &UserId) -> Option<Target> {
    // An href may be a whole URL (`https://host/dav/...`): its path is what names the resource.
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |start| &rest[start..]),
        None => path,
    };
    let rest = path.strip_prefix("/dav")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let is_caller = |segment: &str| decode(segment).as_deref() == Some(user.as_str());
    match segments.as_slice() {
        [] => Some(Target::Root),
        ["principals", who] if is_caller(who) => Some(Target::Principal),
        ["calendars", who] if is_caller(who) => Some(Target::Home),
        ["calendars", who, collection] if is_caller(who) => {
            Some(Target::Calendar(self::collection(collection)?))
        }
        ["calendars", who, collection, name] if is_caller(who) && !rest.ends_with('/') => {
            let name = decode(name)?;
            let name = name.strip_suffix(".ics")?;
            if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                return None;
            }
            Some(Target::Object(
                self::collection(collection)?,
                name.to_owned(),
            ))
        }
        _ => None,
    }
}

fn decode(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn collection(segment: &str) -> Option<Collection> {
    let name = decode(segment)?;
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return None;
    }
    Some(match name.parse::<crate::domain::TaskId>() {
        Ok(id) => Collection::List(ListId::try_from(id.get()).ok()?),
        Err(_) => Collection::Named(name),
    })
}

/// The path of the calendar `path` is in, as the client wrote it (`/dav/calendars/u/7/`), so
/// that the hrefs of an answer are the ones it asked with.
pub fn calendar_base(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["dav", "calendars", who, collection, ..] => {
            Some(format!("/dav/calendars/{who}/{collection}/"))
        }
        _ => None,
    }
}

pub fn root() -> String {
    "/dav/".to_owned()
}

pub fn principal(user: &UserId) -> String {
    format!("/dav/principals/{}/", encode(user.as_str()))
}

pub fn home(user: &UserId) -> String {
    format!("/dav/calendars/{}/", encode(user.as_str()))
}

/// A list's calendar: at the name a client made it under, else at its id.
pub fn calendar(user: &UserId, list: ListId, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{}{}/", home(user), encode(name)),
        None => format!("{}{}/", home(user), list.get()),
    }
}

/// A task's resource in the calendar at `base`.
pub fn object(base: &str, name: &str) -> String {
    format!("{base}{}.ics", encode(name))
}

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserId {
        UserId::parse("alice".to_owned()).expect("a user id")
    }

    #[test]
    fn paths_name_the_callers_resources_only() {
        let list = ListId::try_from(7).expect("a list id");
        let seven = Collection::List(list);
        let cases = [
            ("/dav", Some(Target::Root)),
            ("/dav/", Some(Target::Root)),
            ("/davx", None),
            ("/dav/principals/alice/", Some(Target::Principal)),
            ("/dav/principals/bob/", None),
            ("/dav/calendars/alice", Some(Target::Home)),
            ("/dav/calendars/al%69ce/", Some(Target::Home)),
            ("/dav/calendars/bob/7/", None),
            (
                "/dav/calendars/alice/7/",
                Some(Target::Calendar(seven.clone())),
            ),
            (
                "/dav/calendars/alice/7",
                Some(Target::Calendar(seven.clone())),
            ),
            (
                "/dav/calendars/alice/new-one/",
                Some(Target::Calendar(Collection::Named("new-one".into()))),
            ),
            (
                "/dav/calendars/alice/7/a%2Fb@c.ics",
                Some(Target::Object(seven.clone(), "a/b@c".into())),
            ),
            (
                "/dav/calendars/alice/work/x.ics",
                Some(Target::Object(Collection::Named("work".into()), "x".into())),
            ),
            ("/dav/calendars/alice/7/x.txt", None),
            ("/dav/calendars/alice/7/.ics", None),
            ("/dav/calendars/alice/7/y.ics/", None),
            ("/dav/calendars/alice/7/%ff.ics", None),
            ("/other", None),
            (
                "https://todo.example.com/dav/calendars/alice/7/x.ics",
                Some(Target::Object(seven.clone(), "x".into())),
            ),
            ("https://todo.example.com", None),
        ];
        for (path, expected) in cases {
            assert_eq!(target(path, &alice()), expected, "{path}");
        }
    }

    #[test]
    fn hrefs_read_back_as_what_they_name() {
        let list = ListId::try_from(3).expect("a list id");
        let base = calendar(&alice(), list, None);
        assert_eq!(base, "/dav/calendars/alice/3/");
        assert_eq!(
            calendar(&alice(), list, Some("my list")),
            "/dav/calendars/alice/my%20list/"
        );
        let href = object(&base, "a b/ü.ics?");
        assert_eq!(href, "/dav/calendars/alice/3/a%20b%2F%C3%BC.ics%3F.ics");
        assert_eq!(
            target(&href, &alice()),
            Some(Target::Object(Collection::List(list), "a b/ü.ics?".into()))
        );
        assert_eq!(
            calendar_base(&href).as_deref(),
            Some("/dav/calendars/alice/3/")
        );
    }
}
