//! Whether a rule has any occurrence in reach: a day-by-day search of the rule's days, cheap
//! enough to run before the evaluator, which only gives up on a rule that never occurs (the
//! 30th of February, the first Monday that is also the 31st, February in a two-monthly rule
//! that starts in January) after 100,000 of its periods.
//!
//! It matches days as RFC 5545 and python-dateutil do: the `BY` parts filter (or, with
//! ordinals, pick) days, and a rule that names no day takes the start's (its weekday for a
//! weekly rule, its day of the month for a monthly one, its date for a yearly one). Times do
//! not matter here: every day that matches has the rule's time.

use chrono::{Datelike, NaiveDate, Weekday};

/// How far the search looks: 400 years, after which the Gregorian calendar repeats.
const REACH_DAYS: u32 = 146_097;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Freq {
    #[default]
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// The parts of a rule that say which days it falls on.
#[derive(Debug, Clone, Default)]
pub(super) struct Shape {
    pub freq: Freq,
    /// 0 when not given, which means 1.
    pub interval: u32,
    pub months: Vec<u32>,
    /// 1 to 31, or -31 to -1 from the month's end.
    pub month_days: Vec<i32>,
    /// (ordinal, day): ordinal 0 for every such day, else the nth (or, negative, nth from
    /// the end) in the month, or in the year for a yearly rule without months.
    pub days: Vec<(i32, Weekday)>,
}

/// Whether the rule started on `start` falls on a day after `after` within 400 years.
pub(super) fn occurs(shape: &Shape, start: NaiveDate, after: NaiveDate) -> bool {
    let mut day = after;
    for _ in 0..REACH_DAYS {
        let Some(next) = day.succ_opt() else {
            return false;
        };
        day = next;
        if matches(shape, start, day) {
            return true;
        }
    }
    false
}

fn matches(shape: &Shape, start: NaiveDate, day: NaiveDate) -> bool {
    in_period(shape, start, day) && on_day(shape, start, day)
}

/// Whether `day` is in one of the rule's periods: every `interval`th day, week (from
/// Monday), month or year, counted from the start's.
fn in_period(shape: &Shape, start: NaiveDate, day: NaiveDate) -> bool {
    let interval = i64::from(shape.interval.max(1));
    let apart = match shape.freq {
        Freq::Daily => (day - start).num_days(),
        Freq::Weekly => (monday_of(day) - monday_of(start)).num_days() / 7,
        Freq::Monthly => {
            i64::from(day.year() - start.year()) * 12 + i64::from(day.month())
                - i64::from(start.month())
        }
        Freq::Yearly => i64::from(day.year() - start.year()),
    };
    apart.rem_euclid(interval) == 0
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - chrono::TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
}

/// Whether `day` is one of the rule's days.
fn on_day(shape: &Shape, start: NaiveDate, day: NaiveDate) -> bool {
    let named = !shape.month_days.is_empty() || !shape.days.is_empty();
    let start_month = [start.month()];
    let months: &[u32] = match (shape.freq, shape.months.is_empty(), named) {
        // A yearly rule that names nothing falls on the start's date.
        (Freq::Yearly, true, false) => &start_month,
        _ => &shape.months,
    };
    if !months.is_empty() && !months.contains(&day.month()) {
        return false;
    }
    if !named {
        return match shape.freq {
            Freq::Daily => true,
            Freq::Weekly => day.weekday() == start.weekday(),
            Freq::Monthly | Freq::Yearly => day.day() == start.day(),
        };
    }
    let length = month_length(day);
    let month_day_ok = shape.month_days.is_empty()
        || shape.month_days.iter().any(|&wanted| {
            let wanted = if wanted < 0 {
                length + 1 + wanted
            } else {
                wanted
            };
            i32::try_from(day.day()).is_ok_and(|day| day == wanted)
        });
    let by_year = shape.freq == Freq::Yearly && shape.months.is_empty();
    let day_ok = shape.days.is_empty()
        || shape.days.iter().any(|&(ordinal, weekday)| {
            day.weekday() == weekday && (ordinal == 0 || nth(day, ordinal, by_year, length))
        });
    month_day_ok && day_ok
}

/// Whether `day` is the `ordinal`th of its weekday in its month (or year).
fn nth(day: NaiveDate, ordinal: i32, by_year: bool, month_length: i32) -> bool {
    let (position, length) = match by_year {
        true => (
            i32::try_from(day.ordinal()).unwrap_or(0),
            if day.leap_year() { 366 } else { 365 },
        ),
        false => (i32::try_from(day.day()).unwrap_or(0), month_length),
    };
    match ordinal {
        1.. => (position - 1) / 7 + 1 == ordinal,
        _ => (length - position) / 7 + 1 == -ordinal,
    }
}

fn month_length(day: NaiveDate) -> i32 {
    let (year, month) = match day.month() {
        12 => (day.year() + 1, 1),
        month => (day.year(), month + 1),
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|next| next.pred_opt())
        .map_or(31, |last| i32::try_from(last.day()).unwrap_or(31))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    fn shape(freq: Freq) -> Shape {
        Shape {
            freq,
            ..Shape::default()
        }
    }

    #[test]
    fn rules_that_never_occur_are_out_of_reach() {
        let start = date(2027, 1, 15);
        let february_30 = Shape {
            months: vec![2],
            month_days: vec![30],
            ..shape(Freq::Yearly)
        };
        assert!(!occurs(&february_30, start, start));
        let first_monday_on_the_31st = Shape {
            month_days: vec![31],
            days: vec![(1, Weekday::Mon)],
            ..shape(Freq::Monthly)
        };
        assert!(!occurs(&first_monday_on_the_31st, start, start));
        let february_every_other_month_from_january = Shape {
            interval: 2,
            months: vec![2],
            ..shape(Freq::Monthly)
        };
        assert!(!occurs(
            &february_every_other_month_from_january,
            start,
            start
        ));
    }

    #[test]
    fn rare_rules_are_in_reach() {
        let start = date(2027, 1, 15);
        let leap_day = Shape {
            months: vec![2],
            month_days: vec![29],
            ..shape(Freq::Yearly)
        };
        assert!(occurs(&leap_day, start, start));
        let friday_13th = Shape {
            month_days: vec![13],
            days: vec![(0, Weekday::Fri)],
            ..shape(Freq::Monthly)
        };
        assert!(occurs(&friday_13th, start, start));
        let last_friday_of_the_year = Shape {
            days: vec![(-1, Weekday::Fri)],
            ..shape(Freq::Yearly)
        };
        assert!(occurs(&last_friday_of_the_year, start, start));
        // Every thousand years, from the start's date.
        let millennial = Shape {
            interval: 1000,
            ..shape(Freq::Yearly)
        };
        assert!(!occurs(&millennial, start, start), "beyond 400 years");
        assert!(occurs(&shape(Freq::Weekly), start, start));
    }
}
