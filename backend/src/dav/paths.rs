//! The `/dav/` URL space: which resource a path names, and the path of each resource.
//!
//! ```text
//! /dav/                                    the root (discovery starts here)
//! /dav/principals/{user}/                  the caller's principal
//! /dav/calendars/{user}/                   the caller's calendar home
//! /dav/calendars/{user}/{list_id}/         one calendar per list the caller can read
//! /dav/calendars/{user}/{list_id}/{uid}.ics  one task
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
    /// A calendar: a list by its id, or (for MKCALENDAR only) a name a client chose.
    Calendar(Collection),
    /// A task, by the list and its resource name without `.ics` (its uid).
    Object(ListId, String),
}

/// The collection segment of a calendar path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    List(ListId),
    Named(String),
}

/// The resource `path` names for `user`, or `None` for one that does not exist for them
/// (another user's, or no resource at all).
pub fn target(path: &str, user: &UserId) -> Option<Target> {
    let rest = path.strip_prefix("/dav")?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let collection_path = rest.ends_with('/') || rest.is_empty();
    let decode = |segment: &str| {
        percent_decode_str(segment)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    let is_caller = |segment: &str| decode(segment).as_deref() == Some(user.as_str());
    match segments.as_slice() {
        [] => Some(Target::Root),
        ["principals", who] if is_caller(who) => Some(Target::Principal),
        ["calendars", who] if is_caller(who) => Some(Target::Home),
        ["calendars", who, collection] if is_caller(who) => {
            let name = decode(collection)?;
            Some(Target::Calendar(
                match name.parse::<crate::domain::TaskId>() {
                    Ok(id) if collection_path => {
                        ListId::try_from(id.get()).map(Collection::List).ok()?
                    }
                    _ => Collection::Named(name),
                },
            ))
        }
        ["calendars", who, collection, name] if is_caller(who) && !collection_path => {
            let list = decode(collection)?.parse::<crate::domain::TaskId>().ok()?;
            let list = ListId::try_from(list.get()).ok()?;
            let name = decode(name)?;
            let uid = name.strip_suffix(".ics")?;
            Some(Target::Object(list, uid.to_owned()))
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

pub fn calendar(user: &UserId, list: ListId) -> String {
    format!("{}{}/", home(user), list.get())
}

pub fn object(user: &UserId, list: ListId, uid: &str) -> String {
    format!("{}{}.ics", calendar(user, list), encode(uid))
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
        let cases = [
            ("/dav", Some(Target::Root)),
            ("/dav/", Some(Target::Root)),
            ("/dav/principals/alice/", Some(Target::Principal)),
            ("/dav/principals/bob/", None),
            ("/dav/calendars/alice", Some(Target::Home)),
            ("/dav/calendars/al%69ce/", Some(Target::Home)),
            ("/dav/calendars/bob/7/", None),
            (
                "/dav/calendars/alice/7/",
                Some(Target::Calendar(Collection::List(list))),
            ),
            (
                "/dav/calendars/alice/new-one/",
                Some(Target::Calendar(Collection::Named("new-one".into()))),
            ),
            (
                "/dav/calendars/alice/7/a%2Fb@c.ics",
                Some(Target::Object(list, "a/b@c".into())),
            ),
            ("/dav/calendars/alice/7/x.txt", None),
            ("/dav/calendars/alice/x/y.ics", None),
            ("/dav/calendars/alice/7/y.ics/", None),
            ("/dav/calendars/alice/7/%ff.ics", None),
            ("/other", None),
        ];
        for (path, expected) in cases {
            assert_eq!(target(path, &alice()), expected, "{path}");
        }
    }

    #[test]
    fn hrefs_read_back_as_what_they_name() {
        let list = ListId::try_from(3).expect("a list id");
        let href = object(&alice(), list, "a b/ü.ics?");
        assert_eq!(href, "/dav/calendars/alice/3/a%20b%2F%C3%BC.ics%3F.ics");
        assert_eq!(
            target(&href, &alice()),
            Some(Target::Object(list, "a b/ü.ics?".into()))
        );
    }
}
