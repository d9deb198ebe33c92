//! The richer task fields: due dates, priorities and tags, each parsed into a type that can only
//! hold a valid value.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::is_invisible;

/// The most tags a task may carry.
pub const MAX_TAGS: usize = 20;
/// The most characters a tag may have.
pub const TAG_MAX_CHARS: usize = 40;
/// The years a date may fall in: four-digit years, as RFC 3339 writes them.
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// An RFC 3339 date-time with an explicit offset (`Z` or `±hh:mm`), kept in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "DateTime<Utc>")]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(time: DateTime<Utc>) -> Self {
        Timestamp(time)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(time: Timestamp) -> Self {
        time.0
    }
}

impl TryFrom<String> for Timestamp {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let invalid =
            || "must be an RFC 3339 date-time with an offset, like 2026-12-24T18:00:00Z".to_owned();
        // RFC 3339 lets a space stand for the `T`; ISO 8601 and most clients do not.
        if !matches!(raw.as_bytes().get(10), Some(b'T' | b't')) {
            return Err(invalid());
        }
        let time = DateTime::parse_from_rfc3339(raw).map_err(|_| invalid())?;
        let utc = time.with_timezone(&Utc);
        if !YEARS.contains(&utc.year()) {
            return Err("must fall in the years 0001 to 9999".into());
        }
        // Stored to the microsecond on both backends.
        Ok(Timestamp(chrono::SubsecRound::trunc_subsecs(utc, 6)))
    }
}

/// How important a task is. Sorts by rank (`none` < `low` < `medium` < `high`), not by name.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Priority {
    #[default]
    None,
    Low,
    Medium,
    High,
}

impl Priority {
    /// The rank stored in the database, which is also the sort order.
    pub fn rank(self) -> i16 {
        self as i16
    }

    pub fn from_rank(rank: i64) -> Option<Priority> {
        [
            Priority::None,
            Priority::Low,
            Priority::Medium,
            Priority::High,
        ]
        .into_iter()
        .find(|priority| i64::from(priority.rank()) == rank)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::None => "none",
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }
}

impl std::str::FromStr for Priority {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "none" => Ok(Priority::None),
            "low" => Ok(Priority::Low),
            "medium" => Ok(Priority::Medium),
            "high" => Ok(Priority::High),
            other => Err(format!("{other:?} is not one of none, low, medium, high")),
        }
    }
}

impl TryFrom<String> for Priority {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

/// One tag: 1 to 40 characters, visible, without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Tag(String);

/// The OpenAPI pattern of a tag: no control character, and one character that is not
/// invisible (the class of `TITLE_PATTERN`).
pub const TAG_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u034F\u061C\u115F\u1160\u1680\u17B4\u17B5\u180B-\u180F\u2000-\u200F\u2028-\u202F\u205F-\u206F\u2800\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0][^\u0000-\u001F\u007F-\u009F]*$";

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(TAG_MAX_CHARS))
            .pattern(Some(TAG_PATTERN))
            .into()
    }
}

impl ToSchema for Tag {}

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form tags are compared in: Unicode lowercase, so `Work` and `work` are one tag.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for Tag {
    type Error = String;

    fn try_from(tag: String) -> Result<Self, Self::Error> {
        if tag.chars().any(char::is_control) {
            return Err("a tag must not contain control characters".into());
        }
        if tag.chars().all(is_invisible) {
            return Err("a tag must not be empty or blank".into());
        }
        if tag.chars().count() > TAG_MAX_CHARS {
            return Err(format!("a tag must be at most {TAG_MAX_CHARS} characters"));
        }
        Ok(Tag(tag))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task's tags: at most 20, duplicates (ignoring case) collapsed to their first spelling,
/// in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Tag>")]
pub struct Tags(Vec<Tag>);

impl Tags {
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    /// The tags as stored and sent.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|tag| tag.0.clone()).collect()
    }

    /// The comparison keys, for filtering.
    pub fn keys(&self) -> Vec<String> {
        self.0.iter().map(Tag::key).collect()
    }

    /// Tags read back from storage, which were valid when written.
    pub fn from_stored(names: Vec<String>) -> Result<Tags, String> {
        names
            .into_iter()
            .map(Tag::try_from)
            .collect::<Result<Vec<_>, _>>()
            .and_then(Tags::try_from)
    }
}

impl TryFrom<Vec<Tag>> for Tags {
    type Error = String;

    fn try_from(tags: Vec<Tag>) -> Result<Self, Self::Error> {
        let mut kept: Vec<Tag> = Vec::with_capacity(tags.len());
        for tag in tags {
            if !kept.iter().any(|seen| seen.key() == tag.key()) {
                kept.push(tag);
            }
        }
        if kept.len() > MAX_TAGS {
            return Err(format!("at most {MAX_TAGS} tags"));
        }
        Ok(Tags(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_need_an_offset_and_a_four_digit_year() {
        let parsed: Timestamp = "2026-12-24T18:00:00+01:00".parse().expect("valid");
        assert_eq!(parsed.get().to_rfc3339(), "2026-12-24T17:00:00+00:00");
        assert!("2026-12-24T17:00:00.1234567Z".parse::<Timestamp>().is_ok());
        for bad in [
            "2026-12-24",
            "2026-12-24T18:00:00",
            "2026-12-24 18:00:00Z",
            "2026-13-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "tomorrow",
            "",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_tag_pattern_carries_the_title_patterns_visibility_class() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(Tag::schema()).expect("serializes");
        let pattern = schema["pattern"].as_str().expect("a pattern");
        let visible = |p: &str| p.split("[^").nth(2).map(|class| class.to_owned());
        assert_eq!(visible(pattern), visible(super::super::text::TITLE_PATTERN));
    }

    #[test]
    fn priorities_sort_by_rank() {
        let mut all = [
            Priority::High,
            Priority::None,
            Priority::Medium,
            Priority::Low,
        ];
        all.sort_by_key(|p| p.rank());
        assert_eq!(all.map(Priority::as_str), ["none", "low", "medium", "high"]);
        assert!("urgent".parse::<Priority>().is_err());
        assert_eq!(Priority::from_rank(3), Some(Priority::High));
        assert_eq!(Priority::from_rank(4), None);
    }

    #[test]
    fn tags_are_checked_and_deduplicated_ignoring_case() {
        let tags: Tags =
            serde_json::from_str(r#"["Work", "home", "work", "HOME", "ärger", "ÄRGER"]"#)
                .expect("valid");
        assert_eq!(tags.names(), ["Work", "home", "ärger"]);
        assert_eq!(tags.keys(), ["work", "home", "ärger"]);
        let twenty: Vec<String> = (0..20).map(|n| format!("t{n}")).collect();
        assert!(serde_json::from_value::<Tags>(serde_json::json!(twenty)).is_ok());
        let twenty_one: Vec<String> = (0..21).map(|n| format!("t{n}")).collect();
        assert!(serde_json::from_value::<Tags>(serde_json::json!(twenty_one)).is_err());
        for bad in [
            "x".repeat(41),
            "a\nb".into(),
            String::new(),
            " ".into(),
            "\u{200B}".into(),
        ] {
            assert!(Tag::try_from(bad.clone()).is_err(), "{bad:?}");
        }
        assert!(Tag::try_from("x".repeat(40)).is_ok());
    }
}
