//! Repeating tasks: a subset of RFC 5545's RRULE, evaluated in an IANA time zone.
//!
//! The subset is checked here, part by part, so that anything outside it is refused with a
//! message naming the part; the occurrences themselves come from the `rrule` crate (a port of
//! python-dateutil's algorithm) with `chrono-tz`'s copy of the IANA database. A rule is
//! evaluated in its zone, so "every Monday at 09:00 in Berlin" stays 09:00 local across the
//! daylight-saving changes; a local time that a change skips is read with the offset before
//! it (02:30 on the March change in Berlin is 03:30 CEST), as python-dateutil does.

mod reach;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, SubsecRound, TimeDelta, TimeZone, Utc, Weekday,
};

use reach::{Freq, Shape};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most occurrences `COUNT` may ask for, and the largest `INTERVAL`.
pub const MAX_COUNT: u32 = 1000;
pub const MAX_INTERVAL: u32 = 1000;
/// The longest rule accepted.
const MAX_RULE_CHARS: usize = 500;

/// How a task repeats. Stored and sent as given (the rule as written, uppercased).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, try_from = "RecurrenceBody")]
pub struct Recurrence {
    /// An RRULE of the subset: `FREQ` (DAILY, WEEKLY, MONTHLY, YEARLY), `INTERVAL`, `BYDAY`
    /// (ordinals such as `-1FR` in MONTHLY and YEARLY only), `BYMONTHDAY`, `BYMONTH`, `COUNT`
    /// or `UNTIL`.
    #[schema(example = "FREQ=WEEKLY;BYDAY=MO,WE", max_length = 500)]
    pub rrule: String,
    /// The next due date is the next occurrence after the old one (`due`) or after the moment
    /// of completion (`completion`).
    pub from: RepeatFrom,
    /// The IANA time zone the rule is evaluated in.
    #[schema(example = "Europe/Berlin")]
    pub time_zone: String,
    /// Where the rule starts (its DTSTART): the due date when the rule or the due date was
    /// last set. Kept with the rule, not sent: completions move the due date, not this, so
    /// that every occurrence keeps the local time the rule began with (even after one that a
    /// daylight-saving change moved).
    #[serde(skip)]
    pub start: Option<DateTime<Utc>>,
    /// The task's `completed_count` when the rule started: `COUNT` counts the completions
    /// since. Kept with the rule, not sent.
    #[serde(skip)]
    pub counted: i64,
}

/// What the next occurrence follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
// Parsed from a string so that `null` or a number is a type error naming the field.
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum RepeatFrom {
    #[default]
    Due,
    Completion,
}

impl TryFrom<String> for RepeatFrom {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        match name.as_str() {
            "due" => Ok(RepeatFrom::Due),
            "completion" => Ok(RepeatFrom::Completion),
            other => Err(format!("{other:?} is not one of due, completion")),
        }
    }
}

/// A recurrence as sent: `from` and `time_zone` may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecurrenceBody {
    rrule: String,
    #[serde(default)]
    from: RepeatFrom,
    #[serde(default = "utc")]
    time_zone: String,
}

fn utc() -> String {
    "UTC".into()
}

impl TryFrom<RecurrenceBody> for Recurrence {
    type Error = String;

    fn try_from(body: RecurrenceBody) -> Result<Self, Self::Error> {
        let rrule = body.rrule.to_ascii_uppercase();
        Rule::parse(&rrule)?;
        zone(&body.time_zone)?;
        let recurrence = Recurrence {
            rrule,
            from: body.from,
            time_zone: body.time_zone,
            start: None,
            counted: 0,
        };
        // What the evaluator itself refuses (BYMONTHDAY in a weekly rule), refused now.
        let start = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_820);
        recurrence
            .next_after(start, start)
            .map_err(|error| error.0)?;
        Ok(recurrence)
    }
}

impl Recurrence {
    /// A recurrence as stored, which was checked when it was written: read back without
    /// evaluating it again.
    pub fn stored(json: &str) -> Result<Recurrence, serde_json::Error> {
        let stored: StoredRecurrence = serde_json::from_str(json)?;
        Ok(Recurrence {
            rrule: stored.rrule,
            from: stored.from,
            time_zone: stored.time_zone,
            start: stored.start,
            counted: stored.counted,
        })
    }

    /// The form it is stored in.
    pub fn to_stored(&self) -> String {
        let stored = StoredRecurrence {
            rrule: self.rrule.clone(),
            from: self.from,
            time_zone: self.time_zone.clone(),
            start: self.start,
            counted: self.counted,
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// The same rule, starting at `start`, when the task had been completed `counted` times.
    pub fn starting(&self, start: Option<DateTime<Utc>>, counted: i64) -> Recurrence {
        Recurrence {
            start,
            counted,
            ..self.clone()
        }
    }
}

/// A recurrence as the database keeps it: with its start.
#[derive(Serialize, Deserialize)]
struct StoredRecurrence {
    rrule: String,
    from: RepeatFrom,
    time_zone: String,
    #[serde(default)]
    start: Option<DateTime<Utc>>,
    #[serde(default)]
    counted: i64,
}

fn zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse()
        .map_err(|_| format!("time_zone: {name:?} is not an IANA time zone"))
}

/// A rule of the subset, taken apart.
#[derive(Debug, Default)]
struct Rule {
    /// The parts the evaluator is given: every part but `COUNT` and `UNTIL`, which are kept
    /// by the task (its count of completions, and the end below).
    evaluated: Vec<String>,
    count: Option<u32>,
    until: Option<Until>,
    /// The rule's days, for the search that rules out a rule with no occurrence in reach.
    shape: Shape,
}

#[derive(Debug, Clone, Copy)]
enum Until {
    Instant(DateTime<Utc>),
    /// A date: the rule ends with that day, in the rule's zone.
    Date(NaiveDate),
}

impl Rule {
    fn parse(rule: &str) -> Result<Rule, String> {
        if rule.len() > MAX_RULE_CHARS {
            return Err(format!(
                "rrule: must be at most {MAX_RULE_CHARS} characters"
            ));
        }
        let rule = rule.strip_prefix("RRULE:").unwrap_or(rule);
        let mut parsed = Rule::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut freq = None;
        let mut by_day = None;
        let (mut count, mut end) = (None, None);
        let shape = &mut parsed.shape;
        for part in rule.split(';') {
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!("rrule: {part:?} is not NAME=VALUE"));
            };
            if seen.contains(&name) {
                return Err(format!("rrule: {name} is given twice"));
            }
            seen.push(name);
            match name {
                "FREQ" => {
                    if !["DAILY", "WEEKLY", "MONTHLY", "YEARLY"].contains(&value) {
                        return Err(format!(
                            "rrule: FREQ={value} is not supported (DAILY, WEEKLY, MONTHLY, YEARLY)"
                        ));
                    }
                    freq = Some(value);
                    shape.freq = match value {
                        "DAILY" => Freq::Daily,
                        "WEEKLY" => Freq::Weekly,
                        "MONTHLY" => Freq::Monthly,
                        _ => Freq::Yearly,
                    };
                }
                "INTERVAL" => shape.interval = number(name, value, 1, MAX_INTERVAL)?,
                "COUNT" => count = Some(number(name, value, 1, MAX_COUNT)?),
                "UNTIL" => end = Some(until(value)?),
                "BYMONTH" => {
                    for month in value.split(',') {
                        shape.months.push(number(name, month, 1, 12)?);
                    }
                }
                "BYMONTHDAY" => {
                    for day in value.split(',') {
                        let (sign, digits) = match day.strip_prefix('-') {
                            Some(digits) => (-1, digits),
                            None => (1, day),
                        };
                        let day = i32::try_from(number(name, digits, 1, 31)?).unwrap_or(1);
                        shape.month_days.push(sign * day);
                    }
                }
                "BYDAY" => by_day = Some(value),
                other => {
                    return Err(format!(
                        "rrule: {other} is not supported (FREQ, INTERVAL, BYDAY, BYMONTHDAY, \
                         BYMONTH, COUNT, UNTIL)"
                    ));
                }
            }
            if !matches!(name, "COUNT" | "UNTIL") {
                parsed.evaluated.push(part.to_owned());
            }
        }
        let Some(freq) = freq else {
            return Err("rrule: FREQ is required".into());
        };
        if count.is_some() && end.is_some() {
            return Err("rrule: COUNT and UNTIL cannot both be given".into());
        }
        if let Some(days) = by_day {
            let ordinals = matches!(freq, "MONTHLY" | "YEARLY");
            for day in days.split(',') {
                shape.days.push(weekday(day, ordinals)?);
            }
        }
        parsed.count = count;
        parsed.until = end;
        Ok(parsed)
    }
}

fn number(name: &str, value: &str, min: u32, max: u32) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n) && !value.starts_with('+'))
        .ok_or_else(|| format!("rrule: {name}={value} must be a whole number from {min} to {max}"))
}

/// `MO`, or with an ordinal (`1MO`, `-1FR`, `+2TU`) where the frequency allows one: the
/// ordinal (0 for none) and the day.
fn weekday(day: &str, ordinals: bool) -> Result<(i32, Weekday), String> {
    const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
    let split = day.len().saturating_sub(2);
    let (ordinal, name) = day.split_at_checked(split).unwrap_or(("", day));
    let Some(index) = DAYS.iter().position(|known| *known == name) else {
        return Err(format!("rrule: BYDAY={day} is not a weekday (MO … SU)"));
    };
    let weekday = Weekday::try_from(u8::try_from(index).unwrap_or(0)).unwrap_or(Weekday::Mon);
    if ordinal.is_empty() {
        return Ok((0, weekday));
    }
    if !ordinals {
        return Err(format!(
            "rrule: BYDAY={day}: an ordinal is allowed with FREQ=MONTHLY or YEARLY only"
        ));
    }
    let digits = ordinal.trim_start_matches(['+', '-']);
    let max = 53;
    match (ordinal.len() - digits.len(), digits.parse::<i32>()) {
        (0 | 1, Ok(n)) if (1..=max).contains(&n) && !digits.starts_with('+') => {
            Ok((if ordinal.starts_with('-') { -n } else { n }, weekday))
        }
        _ => Err(format!(
            "rrule: BYDAY={day}: the ordinal must be from 1 to {max} or -{max} to -1"
        )),
    }
}

/// `UNTIL` as `YYYYMMDDTHHMMSSZ` (UTC) or `YYYYMMDD` (that whole day, in the rule's zone).
fn until(value: &str) -> Result<Until, String> {
    let wrong = || format!("rrule: UNTIL={value} must be YYYYMMDDTHHMMSSZ (UTC) or YYYYMMDD");
    if value.len() == 8 {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .map(Until::Date)
            .map_err(|_| wrong());
    }
    let time = value.strip_suffix('Z').ok_or_else(wrong)?;
    NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%S")
        .map(|time| Until::Instant(time.and_utc()))
        .map_err(|_| wrong())
}

/// What completing a repeating task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// It stays open, due at the next occurrence.
    Next(DateTime<Utc>),
    /// No occurrence is left (`COUNT` or `UNTIL`): it is completed for real.
    Done,
}

/// Why a stored or new rule could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecurrenceError(pub String);

impl Recurrence {
    /// What completing the task due at `due`, completed `completed` times since the rule
    /// started, at `now`
    /// does. The rule starts at its `start` (or, without one, at `due`), in whole seconds;
    /// every due date is one occurrence, as RFC 5545 counts `DTSTART`, so `COUNT` ends the
    /// rule after that many completions, and `UNTIL` when the next occurrence would fall after
    /// it.
    pub fn complete(
        &self,
        due: DateTime<Utc>,
        completed: u32,
        now: DateTime<Utc>,
    ) -> Result<Completion, RecurrenceError> {
        let rule = Rule::parse(&self.rrule).map_err(RecurrenceError)?;
        if rule.count.is_some_and(|count| completed + 1 >= count) {
            return Ok(Completion::Done);
        }
        let after = match self.from {
            RepeatFrom::Due => due,
            // The later of the two: completing early still moves the task on.
            RepeatFrom::Completion => due.max(now),
        };
        let Some(next) = self.next_after(self.start.unwrap_or(due), after)? else {
            return Ok(Completion::Done);
        };
        let zone = zone(&self.time_zone).map_err(RecurrenceError)?;
        let ended = match rule.until {
            None => false,
            Some(Until::Instant(until)) => next > until,
            Some(Until::Date(day)) => next.with_timezone(&zone).date_naive() > day,
        };
        Ok(if ended {
            Completion::Done
        } else {
            Completion::Next(next)
        })
    }

    /// The first occurrence strictly after `after` of the rule started at `start`, without
    /// its `COUNT` and `UNTIL`; `None` when the rule has none (such as the 30th of February)
    /// within 400 years, or none before the year 10000.
    pub fn next_after(
        &self,
        start: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RecurrenceError> {
        let rule = Rule::parse(&self.rrule).map_err(RecurrenceError)?;
        let zone = rrule::Tz::Tz(zone(&self.time_zone).map_err(RecurrenceError)?);
        let start = zone.from_utc_datetime(&start.trunc_subsecs(0).naive_utc());
        // Occurrences fall on whole seconds: strictly after `after` is from the next second.
        let from = after.trunc_subsecs(0) + TimeDelta::seconds(1);
        let from = zone.from_utc_datetime(&from.naive_utc());
        // The evaluator gives up on a rule without occurrences only after 100,000 of its
        // periods (half a second for a yearly one): a cheap search of the days in reach
        // answers first.
        let first_day = from.date_naive().pred_opt().unwrap_or(from.date_naive());
        if !reach::occurs(&rule.shape, start.date_naive(), first_day) {
            return Ok(None);
        }
        let evaluated: rrule::RRule<rrule::Unvalidated> = rule
            .evaluated
            .join(";")
            .parse()
            .map_err(|error: rrule::RRuleError| RecurrenceError(format!("rrule: {error}")))?;
        let set = evaluated
            .build(start)
            .map_err(|error| RecurrenceError(format!("rrule: {error}")))?;
        Ok(set
            .after(from)
            .all(1)
            .dates
            .first()
            .map(|next| next.with_timezone(&Utc))
            // A due date is RFC 3339, which has four-digit years.
            .filter(|next| next.year() <= 9999))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rrule: &str, zone: &str) -> Recurrence {
        serde_json::from_value(serde_json::json!({"rrule": rrule, "time_zone": zone}))
            .expect("a valid rule")
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a date-time")
    }

    #[test]
    fn the_subset_is_accepted_and_everything_else_named() {
        for good in [
            "FREQ=DAILY",
            "FREQ=WEEKLY;BYDAY=MO,WE;INTERVAL=2",
            "FREQ=MONTHLY;BYDAY=-1FR",
            "FREQ=MONTHLY;BYMONTHDAY=31,-1",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=3",
            "FREQ=DAILY;UNTIL=20270101T000000Z",
            "freq=weekly;until=20270101",
        ] {
            let json = serde_json::json!({"rrule": good});
            assert!(serde_json::from_value::<Recurrence>(json).is_ok(), "{good}");
        }
        for (bad, named) in [
            ("FREQ=HOURLY", "FREQ=HOURLY"),
            ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS"),
            ("FREQ=YEARLY;BYWEEKNO=1", "BYWEEKNO"),
            ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
            ("FREQ=DAILY;INTERVAL=10000", "INTERVAL"),
            (
                "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z",
                "COUNT and UNTIL",
            ),
            ("FREQ=WEEKLY;BYDAY=1MO", "ordinal"),
            ("FREQ=MONTHLY;BYDAY=0MO", "ordinal"),
            ("FREQ=MONTHLY;BYDAY=XX", "BYDAY"),
            ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
            ("INTERVAL=2", "FREQ is required"),
            ("FREQ=DAILY;FREQ=DAILY", "twice"),
            ("FREQ=DAILY;UNTIL=2027", "UNTIL"),
            ("", "NAME=VALUE"),
        ] {
            let json = serde_json::json!({"rrule": bad});
            let error = serde_json::from_value::<Recurrence>(json)
                .expect_err(bad)
                .to_string();
            assert!(error.contains(named), "{bad}: {error}");
        }
        let json = serde_json::json!({"rrule": "FREQ=DAILY", "time_zone": "Mars/Base"});
        let error = serde_json::from_value::<Recurrence>(json).expect_err("zone");
        assert!(error.to_string().contains("time_zone"), "{error}");
    }

    #[test]
    fn a_weekly_rule_keeps_its_local_hour_across_both_changes() {
        let weekly = rule("FREQ=WEEKLY", "Europe/Berlin");
        // 09:00 CET, the Monday before the March change, and the one before October's.
        for (due, next) in [
            ("2027-03-22T08:00:00Z", "2027-03-29T07:00:00Z"),
            ("2027-10-25T07:00:00Z", "2027-11-01T08:00:00Z"),
        ] {
            assert_eq!(
                weekly.complete(at(due), 0, at(due)),
                Ok(Completion::Next(at(next)))
            );
        }
    }

    #[test]
    fn a_monthly_rule_on_the_31st_skips_short_months() {
        let monthly = rule("FREQ=MONTHLY;BYMONTHDAY=31", "UTC");
        let next = monthly.next_after(at("2027-01-31T10:00:00Z"), at("2027-01-31T10:00:00Z"));
        assert_eq!(next, Ok(Some(at("2027-03-31T10:00:00Z"))));
    }

    #[test]
    fn count_and_until_end_the_rule() {
        let three = rule("FREQ=DAILY;COUNT=3", "UTC");
        let due = at("2027-01-01T10:00:00Z");
        assert_eq!(
            three.complete(due, 1, due),
            Ok(Completion::Next(at("2027-01-02T10:00:00Z")))
        );
        assert_eq!(three.complete(due, 2, due), Ok(Completion::Done));
        let until = rule("FREQ=DAILY;UNTIL=20270102T100000Z", "UTC");
        assert_eq!(
            until.complete(due, 0, due),
            Ok(Completion::Next(at("2027-01-02T10:00:00Z")))
        );
        let last = at("2027-01-02T10:00:00Z");
        assert_eq!(until.complete(last, 1, last), Ok(Completion::Done));
    }

    #[test]
    fn from_completion_follows_the_later_of_now_and_the_due_date() {
        let daily = rule("FREQ=DAILY", "UTC");
        let daily = Recurrence {
            from: RepeatFrom::Completion,
            ..daily
        };
        let due = at("2027-01-01T10:00:00Z");
        assert_eq!(
            daily.complete(due, 0, at("2027-01-05T12:00:00Z")),
            Ok(Completion::Next(at("2027-01-06T10:00:00Z")))
        );
        assert_eq!(
            daily.complete(due, 0, at("2026-12-20T12:00:00Z")),
            Ok(Completion::Next(at("2027-01-02T10:00:00Z")))
        );
    }
}
