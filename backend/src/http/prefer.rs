//! The `Prefer` request header (RFC 7240), for the one preference the API honours:
//! `count=none`, which spares a paging client the exact total it does not read.
//!
//! Counting every match is most of a filtered list's database time, and a client that walks
//! pages by `Link: rel="next"` never looks at `X-Total-Count`. The default stays the exact
//! count; PostgREST names the same choice `Prefer: count=`.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The request header.
pub const PREFER: HeaderName = HeaderName::from_static("prefer");

/// The response header naming the preferences applied (RFC 7240 §3).
pub const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// Whether a list answers with the number of its matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `X-Total-Count` holds the exact number of matches (the default).
    Exact,
    /// No count is made and no `X-Total-Count` sent (`Prefer: count=none`).
    None,
}

/// What the request's `Prefer` headers ask of the count, and whether they asked at all (so
/// that `Preference-Applied` answers only a request that stated one). Preferences the API
/// does not know, and values of `count` other than `none` and `exact`, are ignored, as the
/// RFC asks; of several `count` preferences the first wins (RFC 7240 §2).
pub fn count(headers: &HeaderMap) -> (Count, bool) {
    let preferences = headers
        .get_all(PREFER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for preference in preferences {
        // `token [= word] *(; parameter)`: the parameters do not matter here.
        let head = preference.split(';').next().unwrap_or_default();
        let Some((name, value)) = head.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("count") {
            continue;
        }
        let value = value.trim().trim_matches('"');
        if value.eq_ignore_ascii_case("none") {
            return (Count::None, true);
        }
        if value.eq_ignore_ascii_case("exact") {
            return (Count::Exact, true);
        }
    }
    (Count::Exact, false)
}

/// The `Preference-Applied` value for `count`.
pub fn applied(count: Count) -> HeaderValue {
    match count {
        Count::Exact => HeaderValue::from_static("count=exact"),
        Count::None => HeaderValue::from_static("count=none"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefer(values: &[&str]) -> (Count, bool) {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                "prefer",
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        count(&headers)
    }

    #[test]
    fn without_a_preference_the_count_is_exact() {
        assert_eq!(prefer(&[]), (Count::Exact, false));
        assert_eq!(prefer(&["return=minimal"]), (Count::Exact, false));
        assert_eq!(prefer(&["count=planned"]), (Count::Exact, false));
        assert_eq!(prefer(&["count"]), (Count::Exact, false));
    }

    #[test]
    fn count_none_is_read_among_others_in_any_case() {
        assert_eq!(prefer(&["count=none"]), (Count::None, true));
        assert_eq!(prefer(&["Count=\"NONE\""]), (Count::None, true));
        assert_eq!(
            prefer(&["return=minimal, count=none; x=1"]),
            (Count::None, true)
        );
        assert_eq!(prefer(&["wait=5", " count = none "]), (Count::None, true));
    }

    #[test]
    fn the_first_count_preference_wins() {
        assert_eq!(prefer(&["count=exact, count=none"]), (Count::Exact, true));
        assert_eq!(prefer(&["count=none", "count=exact"]), (Count::None, true));
    }
}
