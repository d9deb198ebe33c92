//! The filters of a `calendar-query` REPORT (RFC 4791 §9.7), on the VTODO a task is sent as.
//!
//! Components: `VCALENDAR` holding `VTODO` (a filter on any other component matches
//! nothing: there are only tasks here). On the VTODO: `time-range` (§9.9, by DUE, else
//! COMPLETED and CREATED) and `prop-filter` with `is-not-defined`, `text-match` (ASCII
//! case-insensitive substring, `negate-condition`) and `time-range` on DUE, COMPLETED,
//! CREATED and LAST-MODIFIED. A filter this does not know matches, so a client gets a
//! superset, never fewer tasks than it asked for.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::ical::{Todo, TodoStatus};
use super::xml::{CALDAV, Element};
use crate::domain::Task;

/// Whether the task, sent as `todo`, matches the query's `filter` element.
pub fn matches(filter: &Element, task: &Task, todo: &Todo) -> bool {
    filter
        .children_named(CALDAV, "comp-filter")
        .all(|calendar| component(calendar, "VCALENDAR", task, todo))
}

fn component(filter: &Element, expected: &str, task: &Task, todo: &Todo) -> bool {
    let name = filter.attribute("name").unwrap_or_default();
    let is_not_defined = filter.child(CALDAV, "is-not-defined").is_some();
    if !name.eq_ignore_ascii_case(expected) {
        // Another component: none is there.
        return is_not_defined;
    }
    if is_not_defined {
        return false;
    }
    if expected == "VCALENDAR" {
        return filter
            .children_named(CALDAV, "comp-filter")
            .all(|inner| component(inner, "VTODO", task, todo));
    }
    let in_range = filter
        .child(CALDAV, "time-range")
        .is_none_or(|range| todo_in_range(range, task, todo));
    in_range
        && filter
            .children_named(CALDAV, "prop-filter")
            .all(|property| property_matches(property, task, todo))
    // A VALARM or another sub-component filter: not evaluated, matches.
}

fn bounds(range: &Element) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    (
        range.attribute("start").and_then(utc_time),
        range.attribute("end").and_then(utc_time),
    )
}

/// RFC 4791 §9.9 for a VTODO without DTSTART: by DUE; else by COMPLETED and CREATED.
fn todo_in_range(range: &Element, task: &Task, todo: &Todo) -> bool {
    let (start, end) = bounds(range);
    let after_start = |at: DateTime<Utc>, strict: bool| {
        start.is_none_or(|start| if strict { start < at } else { start <= at })
    };
    let before_end = |at: DateTime<Utc>, strict: bool| {
        end.is_none_or(|end| if strict { end > at } else { end >= at })
    };
    if let Some(due) = todo.due.as_ref().map(super::ical::Due::instant) {
        return after_start(due, true) && before_end(due, false);
    }
    let created = task.created_at;
    match todo.completed {
        Some(completed) => {
            (after_start(created, false) || after_start(completed, false))
                && (before_end(created, false) || before_end(completed, false))
        }
        None => before_end(created, true),
    }
}

fn property_matches(filter: &Element, task: &Task, todo: &Todo) -> bool {
    let name = filter
        .attribute("name")
        .unwrap_or_default()
        .to_ascii_uppercase();
    let (text, time) = value(&name, task, todo);
    let defined = text.is_some() || time.is_some();
    if filter.child(CALDAV, "is-not-defined").is_some() {
        return !defined;
    }
    if let Some(range) = filter.child(CALDAV, "time-range") {
        let (start, end) = bounds(range);
        return time.is_some_and(|at| start.is_none_or(|s| s <= at) && end.is_none_or(|e| at < e));
    }
    if let Some(text_match) = filter.child(CALDAV, "text-match") {
        let negate = text_match
            .attribute("negate-condition")
            .is_some_and(|value| value.eq_ignore_ascii_case("yes"));
        let needle = text_match.text.to_ascii_lowercase();
        let found = text
            .as_deref()
            .is_some_and(|text| text.to_ascii_lowercase().contains(&needle));
        // A property that is not there matches neither way (RFC 4791 §9.7.5).
        return defined && found != negate;
    }
    defined
}

/// The value of property `name` of the VTODO: as text, and as a time where it is one.
fn value(name: &str, task: &Task, todo: &Todo) -> (Option<String>, Option<DateTime<Utc>>) {
    match name {
        "UID" => (Some(todo.uid.clone()), None),
        "SUMMARY" => (todo.summary.clone(), None),
        "DESCRIPTION" => (todo.description.clone(), None),
        "STATUS" => (
            todo.status.map(|status| {
                match status {
                    TodoStatus::NeedsAction => "NEEDS-ACTION",
                    TodoStatus::InProcess => "IN-PROCESS",
                    TodoStatus::Completed => "COMPLETED",
                    TodoStatus::Cancelled => "CANCELLED",
                }
                .to_owned()
            }),
            None,
        ),
        "CATEGORIES" => (
            (!todo.categories.is_empty()).then(|| todo.categories.join(",")),
            None,
        ),
        "PRIORITY" => (todo.priority.map(|p| p.to_string()), None),
        "RRULE" => (todo.rrule.clone(), None),
        "RELATED-TO" => (todo.parent_uid.clone(), None),
        "DUE" => {
            let due = todo.due.as_ref().map(super::ical::Due::instant);
            (due.map(|at| at.to_rfc3339()), due)
        }
        "COMPLETED" => (todo.completed.map(|at| at.to_rfc3339()), todo.completed),
        "CREATED" => (Some(task.created_at.to_rfc3339()), Some(task.created_at)),
        "LAST-MODIFIED" | "DTSTAMP" => (Some(task.updated_at.to_rfc3339()), Some(task.updated_at)),
        _ => (None, None),
    }
}

/// An iCalendar date-time in UTC (`20261207T080000Z`), as `time-range` attributes are.
pub fn utc_time(value: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y%m%dT%H%M%S")
        .ok()
        .map(|at| at.and_utc())
}
