//! The query string of `GET /api/tasks`, parsed into a [`Page`].

use serde::Deserialize;
use utoipa::IntoParams;

use crate::domain::Page;

/// The query string of `GET /api/tasks`. Unknown parameters are ignored (cache busters are
/// common); a known one with a bad value is a 422, never silently clamped.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// How many tasks to return, 1 to 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    limit: Option<Limit>,
    /// How many of the newest tasks to skip.
    #[param(value_type = Option<i64>, minimum = 0, default = 0)]
    offset: Option<Offset>,
}

impl From<ListQuery> for Page {
    fn from(query: ListQuery) -> Self {
        Page {
            limit: query
                .limit
                .map_or(Page::DEFAULT_LIMIT, |Limit(limit)| limit),
            offset: query.offset.map_or(0, |Offset(offset)| offset),
        }
    }
}

/// Digits only: no sign, no white space. Rust's integer parsers accept a leading `+`, which
/// would make `offset=%2B1` valid while `offset=+1` (a space, in a query string) is not.
fn parse_digits<T: std::str::FromStr>(raw: &str) -> Option<T> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct Limit(u32);

impl TryFrom<String> for Limit {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        match parse_digits::<u32>(&raw) {
            Some(limit) if (1..=Page::MAX_LIMIT).contains(&limit) => Ok(Limit(limit)),
            _ => Err(format!("must be an integer from 1 to {}", Page::MAX_LIMIT)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct Offset(i64);

impl TryFrom<String> for Offset {
    type Error = &'static str;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        parse_digits::<i64>(&raw)
            .map(Offset)
            .ok_or("must be a non-negative integer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_digits() {
        assert_eq!(Offset::try_from("0".to_owned()).map(|o| o.0), Ok(0));
        assert_eq!(Offset::try_from("007".to_owned()).map(|o| o.0), Ok(7));
        assert_eq!(Limit::try_from("100".to_owned()).map(|l| l.0), Ok(100));
        for bad in ["+1", " 1", "1 ", "-0", "", "1e2", "0x10"] {
            assert!(Offset::try_from(bad.to_owned()).is_err(), "{bad:?}");
            assert!(Limit::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
        assert!(Limit::try_from("0".to_owned()).is_err());
        assert!(Limit::try_from("101".to_owned()).is_err());
    }
}
