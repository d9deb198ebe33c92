//! iCalendar (RFC 5545) for CalDAV: a client's VTODO read into the fields the service models,
//! and a task written back without losing what the service does not model.
//!
//! A body is read in three steps. Our own line layer checks the size, the UTF-8, the folding,
//! the line count and the BEGIN/END nesting, because the `icalendar` parser is lenient exactly
//! there: it reads a line without `:` (a continuation that lost its space) as a property with
//! an empty value, its `unfold` cannot tell bad folding, and it recurses once per nesting
//! level without a bound (deep nesting overflows the stack, which aborts the process). The
//! `icalendar` parser then reads the unfolded text into its component tree, from which we take
//! the parameters (quoting handled). Each of its properties is paired with the line as the
//! client wrote it, because its values are not byte-for-byte: it unescapes the TEXT values of
//! the properties it knows, drops the quotes around parameter values, and keeps properties and
//! subcomponents in two separate lists.
//!
//! Writing is ours as well: the crate's `Display` would print the parsed parameter values
//! without their quotes (`CN="Doe, Jane"` back as `CN=Doe, Jane`).

use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use icalendar::parser::{self, read_calendar};

/// The largest body accepted, in bytes (1 MiB).
pub const MAX_BYTES: usize = 1024 * 1024;
/// The most content lines (after unfolding) a body may hold.
pub const MAX_LINES: usize = 10_000;
/// How deeply components may nest, VCALENDAR included (real objects use three).
pub const MAX_DEPTH: usize = 8;

/// Our PRODID, written on every object we send.
const PRODID: &str = "-//todo-backend//EN";
/// RFC 5545 §3.1: content lines are folded at 75 octets, the line break excluded.
const FOLD_AT: usize = 75;

/// Why a body is not an iCalendar object this service takes. The `Display` text is a short
/// sentence meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcalError {
    #[error("more than 1 MiB")]
    TooLarge,
    #[error("not UTF-8 text")]
    NotUtf8,
    #[error("more than 10000 lines")]
    TooManyLines,
    #[error("components nested more than 8 deep")]
    TooDeep,
    #[error("a folded line must start with a space or a tab (line {line})")]
    BadFolding { line: usize },
    #[error("a content line needs a ':' after its name and parameters (line {line})")]
    MissingColon { line: usize },
    #[error("a control character in line {line}")]
    ControlCharacter { line: usize },
    #[error("BEGIN and END take a component name and no parameters (line {line})")]
    BadComponentLine { line: usize },
    #[error("not a VCALENDAR")]
    NotCalendar,
    #[error("END:{found} does not close BEGIN:{open} (line {line})")]
    MismatchedEnd {
        open: String,
        found: String,
        line: usize,
    },
    #[error("missing END:{0}")]
    MissingEnd(String),
    #[error("content after END:VCALENDAR (line {line})")]
    TrailingContent { line: usize },
    #[error("the calendar could not be read")]
    Unreadable,
    #[error("exactly one VTODO is expected")]
    TodoCount,
    #[error("{0} is not supported here (tasks only)")]
    Unsupported(String),
    #[error("missing UID")]
    MissingUid,
    #[error("{property}: {expected}")]
    InvalidValue {
        property: &'static str,
        expected: &'static str,
    },
    #[error("unknown time zone '{0}'")]
    UnknownTimeZone(String),
}

/// A VTODO's STATUS (RFC 5545 §3.8.1.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TodoStatus {
    NeedsAction,
    InProcess,
    Completed,
    Cancelled,
}

impl TodoStatus {
    /// The value as written in a STATUS property.
    pub fn as_str(self) -> &'static str {
        match self {
            TodoStatus::NeedsAction => "NEEDS-ACTION",
            TodoStatus::InProcess => "IN-PROCESS",
            TodoStatus::Completed => "COMPLETED",
            TodoStatus::Cancelled => "CANCELLED",
        }
    }

    /// Reads a STATUS value; the RFC's values are case-insensitive.
    fn parse(value: &str) -> Option<TodoStatus> {
        [
            TodoStatus::NeedsAction,
            TodoStatus::InProcess,
            TodoStatus::Completed,
            TodoStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(value.trim()))
    }
}

/// A due date as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// `DUE:20261207T080000Z`
    Utc(DateTime<Utc>),
    /// `DUE;TZID=Europe/Berlin:20261207T090000`
    Zoned(NaiveDateTime, Tz),
    /// `DUE:20261207T090000`: the same wall-clock time wherever the reader is.
    Floating(NaiveDateTime),
    /// `DUE;VALUE=DATE:20261207`
    Date(NaiveDate),
}

impl Due {
    /// The instant this due date stands for. A zoned time in a gap (a local time the clock
    /// skips) is read with the offset from before the gap, as RFC 5545 §3.3.5 says, which is
    /// the later of the two readings; in an overlap the earlier instant is taken. Floating
    /// times and dates carry no zone and are taken as UTC, a date at 00:00.
    pub fn instant(&self) -> DateTime<Utc> {
        match *self {
            Due::Utc(at) => at,
            Due::Zoned(local, tz) => zoned_instant(local, tz),
            Due::Floating(local) => local.and_utc(),
            Due::Date(day) => day.and_time(NaiveTime::MIN).and_utc(),
        }
    }
}

/// See [`Due::instant`].
fn zoned_instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // chrono gives no offset for a skipped time, so walk back to the last local time
            // that exists: its offset is the one in force before the gap. Gaps are a few hours
            // at most (Samoa's skipped day is the longest), hence the two-day bound.
            let mut probe = local;
            for _ in 0..(4 * 48) {
                let Some(earlier) = probe.checked_sub_signed(TimeDelta::minutes(15)) else {
                    break;
                };
                probe = earlier;
                if let Some(before) = tz.from_local_datetime(&probe).earliest() {
                    let offset = TimeDelta::seconds(before.offset().fix().local_minus_utc().into());
                    if let Some(utc) = local.checked_sub_signed(offset) {
                        return utc.and_utc();
                    }
                    break;
                }
            }
            local.and_utc()
        }
    }
}

/// The fields the service models, read from or written to a VTODO.
#[derive(Debug, Clone, PartialEq)]
pub struct Todo {
    pub uid: String,
    /// Unescaped text.
    pub summary: Option<String>,
    /// Unescaped text.
    pub description: Option<String>,
    pub status: Option<TodoStatus>,
    pub due: Option<Due>,
    /// 0..=9 as written (0 means "undefined" in RFC 5545, but it is kept apart from `None`).
    pub priority: Option<u8>,
    /// The values of all CATEGORIES properties, in order, unescaped; empty ones left out.
    pub categories: Vec<String>,
    pub completed: Option<DateTime<Utc>>,
    /// The RRULE value as written.
    pub rrule: Option<String>,
    /// The UID in RELATED-TO with RELTYPE=PARENT or no RELTYPE (PARENT is the default).
    pub parent_uid: Option<String>,
}

/// What [`render`] writes into DTSTAMP, CREATED, LAST-MODIFIED and SEQUENCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamps {
    pub created: DateTime<Utc>,
    /// Also the DTSTAMP: for an object stored without a METHOD, DTSTAMP is when it last
    /// changed (RFC 5545 §3.8.7.2).
    pub last_modified: DateTime<Utc>,
    pub sequence: i64,
}

/// A parsed iCalendar object: what a client PUT, kept to be written back. It always holds one
/// VCALENDAR with exactly one VTODO, besides VTIMEZONE components only.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    calendar: Node,
}

/// A component, its properties and subcomponents in the order they came.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    /// Upper case.
    name: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Property(ContentLine),
    Component(Node),
}

/// One property: the unfolded line as the client wrote it, with its parts located.
#[derive(Debug, Clone, PartialEq)]
struct ContentLine {
    text: String,
    /// Upper case.
    name: String,
    /// Where the value starts in `text` (after the first `:` outside quotes).
    value_at: usize,
    /// As read by the `icalendar` parser: names upper-cased, values without their quotes.
    params: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq)]
struct Param {
    name: String,
    value: Option<String>,
}

impl ContentLine {
    /// The value, still escaped.
    fn value(&self) -> &str {
        self.text.get(self.value_at..).unwrap_or("")
    }

    /// A parameter's value (the first of that name); `None` also for `NAME=` with no value.
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|param| param.name == name)
            .and_then(|param| param.value.as_deref())
    }
}

impl Node {
    fn properties(&self) -> impl Iterator<Item = &ContentLine> {
        self.items.iter().filter_map(|item| match item {
            Item::Property(line) => Some(line),
            Item::Component(_) => None,
        })
    }

    fn components(&self) -> impl Iterator<Item = &Node> {
        self.items.iter().filter_map(|item| match item {
            Item::Component(node) => Some(node),
            Item::Property(_) => None,
        })
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ContentLine> {
        self.properties().filter(move |line| line.name == name)
    }

    /// The first property of that name: where the RFC allows one, a second is ignored.
    fn first<'a>(&'a self, name: &'a str) -> Option<&'a ContentLine> {
        self.all(name).next()
    }
}

impl Object {
    /// Parses a PUT body: one VCALENDAR holding exactly one VTODO (VTIMEZONE components may sit
    /// beside it; any other component is refused). Refuses bodies over [`MAX_BYTES`], with
    /// more than [`MAX_LINES`] content lines or nested deeper than [`MAX_DEPTH`], that are not
    /// UTF-8, hold control characters, are badly folded (a line that is not a property and
    /// does not start with a space or a tab), have a line without `:`, or whose BEGIN and END
    /// do not match. Line ends may be CRLF or LF; a leading byte order mark is skipped.
    pub fn parse(body: &[u8]) -> Result<Object, IcalError> {
        if body.len() > MAX_BYTES {
            return Err(IcalError::TooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| IcalError::NotUtf8)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut calendar = build_tree(unfold_lines(text)?)?;
        check_components(&calendar)?;
        attach_parameters(&mut calendar)?;
        Ok(Object { calendar })
    }

    /// Reads back what [`Object::to_stored`] wrote; the same rules as [`Object::parse`].
    pub fn from_stored(text: &str) -> Result<Object, IcalError> {
        Object::parse(text.as_bytes())
    }

    /// The text to store: the whole VCALENDAR as received, each line unfolded and folded
    /// again, with CRLF line ends and component names in upper case.
    pub fn to_stored(&self) -> String {
        let mut out = String::new();
        push_node(&mut out, &self.calendar);
        out
    }

    /// The modelled fields of its VTODO. A TZID is an IANA name (chrono-tz's database), such a
    /// name after a `/` prefix (`/Europe/Berlin`, `/mozilla.org/20050126_1/Europe/Berlin`), or
    /// the TZID of a VTIMEZONE whose X-LIC-LOCATION is an IANA name; any other is an error.
    pub fn todo(&self) -> Result<Todo, IcalError> {
        let vtodo = self.vtodo().ok_or(IcalError::TodoCount)?;
        read_todo(vtodo, &self.calendar)
    }

    fn vtodo(&self) -> Option<&Node> {
        self.calendar.components().find(|node| node.name == "VTODO")
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: lines, the component tree, the parameters.

/// Splits the text into content lines, unfolding continuation lines, and returns each with the
/// number of the physical line it started on.
fn unfold_lines(text: &str) -> Result<Vec<(usize, String)>, IcalError> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    // A blank line ends the line before it, so a continuation after it is refused rather
    // than glued to a line it was probably not part of.
    let mut open = false;
    for (index, physical) in text.split('\n').enumerate() {
        let number = index + 1;
        let physical = physical.strip_suffix('\r').unwrap_or(physical);
        // RFC 5545 allows no control character but HTAB in a line; a stray CR or NUL would
        // otherwise reach the stored text and every client that reads it.
        if physical.chars().any(|c| c.is_ascii_control() && c != '\t') {
            return Err(IcalError::ControlCharacter { line: number });
        }
        if let Some(rest) = physical.strip_prefix([' ', '\t']) {
            match lines.last_mut() {
                Some((_, line)) if open => line.push_str(rest),
                _ => return Err(IcalError::BadFolding { line: number }),
            }
        } else if physical.is_empty() {
            open = false;
        } else {
            if lines.len() == MAX_LINES {
                return Err(IcalError::TooManyLines);
            }
            lines.push((number, physical.to_owned()));
            open = true;
        }
    }
    Ok(lines)
}

/// One unfolded line, classified.
enum Line {
    Begin(String),
    End(String),
    Property(ContentLine),
}

/// A component or property name: RFC 5545's iana-token and x-name.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

fn read_line(number: usize, text: String) -> Result<Line, IcalError> {
    let name_len = text
        .bytes()
        .take_while(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
        .count();
    let after_name = text.as_bytes().get(name_len).copied();
    // A line that does not start with a name and then `;` or `:` is most often the rest of
    // the line before it, folded without the leading space.
    if name_len == 0 || !matches!(after_name, Some(b';' | b':')) {
        return Err(IcalError::BadFolding { line: number });
    }
    let name = text.get(..name_len).unwrap_or("").to_ascii_uppercase();
    if name == "BEGIN" || name == "END" {
        let component = text.get(name_len + 1..).unwrap_or("");
        if after_name != Some(b':') || !is_name(component) {
            return Err(IcalError::BadComponentLine { line: number });
        }
        let component = component.to_ascii_uppercase();
        return Ok(if name == "BEGIN" {
            Line::Begin(component)
        } else {
            Line::End(component)
        });
    }
    let colon = value_colon(&text, name_len).ok_or(IcalError::MissingColon { line: number })?;
    Ok(Line::Property(ContentLine {
        text,
        name,
        value_at: colon + 1,
        params: Vec::new(),
    }))
}

/// The `:` between the parameters and the value: the first one outside a quoted parameter
/// value (`ALTREP="cid:x"` holds one).
fn value_colon(text: &str, from: usize) -> Option<usize> {
    let mut quoted = false;
    for (at, byte) in text.bytes().enumerate().skip(from) {
        match byte {
            b'"' => quoted = !quoted,
            b':' if !quoted => return Some(at),
            _ => {}
        }
    }
    None
}

/// Builds the component tree, checking that BEGIN and END match and nest at most
/// [`MAX_DEPTH`] deep, with one VCALENDAR around everything.
fn build_tree(lines: Vec<(usize, String)>) -> Result<Node, IcalError> {
    let mut open: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    for (number, text) in lines {
        if root.is_some() {
            return Err(IcalError::TrailingContent { line: number });
        }
        match read_line(number, text)? {
            Line::Begin(name) => {
                if open.is_empty() && name != "VCALENDAR" {
                    return Err(IcalError::NotCalendar);
                }
                if open.len() == MAX_DEPTH {
                    return Err(IcalError::TooDeep);
                }
                open.push(Node {
                    name,
                    items: Vec::new(),
                });
            }
            Line::End(name) => {
                let node = open.pop().ok_or(IcalError::NotCalendar)?;
                if node.name != name {
                    return Err(IcalError::MismatchedEnd {
                        open: node.name,
                        found: name,
                        line: number,
                    });
                }
                match open.last_mut() {
                    Some(parent) => parent.items.push(Item::Component(node)),
                    None => root = Some(node),
                }
            }
            Line::Property(line) => match open.last_mut() {
                Some(node) => node.items.push(Item::Property(line)),
                None => return Err(IcalError::NotCalendar),
            },
        }
    }
    if let Some(unclosed) = open.pop() {
        return Err(IcalError::MissingEnd(unclosed.name));
    }
    root.ok_or(IcalError::NotCalendar)
}

/// Only tasks live here: exactly one VTODO, and VTIMEZONEs for its TZIDs.
fn check_components(calendar: &Node) -> Result<(), IcalError> {
    let mut todos = 0;
    for node in calendar.components() {
        match node.name.as_str() {
            "VTODO" => todos += 1,
            "VTIMEZONE" => {}
            other => return Err(IcalError::Unsupported(other.to_owned())),
        }
    }
    if todos == 1 {
        Ok(())
    } else {
        Err(IcalError::TodoCount)
    }
}

/// Runs the `icalendar` parser over the checked, unfolded text and takes each property's
/// parameters from its tree.
fn attach_parameters(calendar: &mut Node) -> Result<(), IcalError> {
    let mut unfolded = String::new();
    push_unfolded(&mut unfolded, calendar);
    let parsed = read_calendar(&unfolded).map_err(|_| IcalError::Unreadable)?;
    align(calendar, &parsed.properties, &parsed.components)
}

/// Writes the unfolded text for the parser. Its lines end in CRLF: the parser looks for the end
/// of a value with `take_until("\r\n")` first, which with LF ends would scan the rest of the
/// text for every line (seconds for a 1 MiB body).
fn push_unfolded(out: &mut String, node: &Node) {
    out.push_str("BEGIN:");
    out.push_str(&node.name);
    out.push_str("\r\n");
    for item in &node.items {
        match item {
            Item::Property(line) => {
                out.push_str(&line.text);
                out.push_str("\r\n");
            }
            Item::Component(child) => push_unfolded(out, child),
        }
    }
    out.push_str("END:");
    out.push_str(&node.name);
    out.push_str("\r\n");
}

/// Pairs the parser's properties and components, which it keeps in two lists, with ours, which
/// keep their order. The line layer admits only lines the parser reads one for one, so a
/// mismatch means the two disagree about the text: refused rather than guessed at.
fn align(
    node: &mut Node,
    properties: &[parser::Property<'_>],
    components: &[parser::Component<'_>],
) -> Result<(), IcalError> {
    let mut properties = properties.iter();
    let mut components = components.iter();
    for item in &mut node.items {
        match item {
            Item::Property(line) => {
                let parsed = properties.next().ok_or(IcalError::Unreadable)?;
                if !parsed.name.as_str().eq_ignore_ascii_case(&line.name) {
                    return Err(IcalError::Unreadable);
                }
                line.params = parsed
                    .params
                    .iter()
                    .map(|param| Param {
                        name: param.key.as_str().to_ascii_uppercase(),
                        value: param.val.as_ref().map(|value| value.as_str().to_owned()),
                    })
                    .collect();
            }
            Item::Component(child) => {
                let parsed = components.next().ok_or(IcalError::Unreadable)?;
                if !parsed.name.as_str().eq_ignore_ascii_case(&child.name) {
                    return Err(IcalError::Unreadable);
                }
                align(child, &parsed.properties, &parsed.components)?;
            }
        }
    }
    if properties.next().is_some() || components.next().is_some() {
        return Err(IcalError::Unreadable);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading: the modelled fields.

fn read_todo(vtodo: &Node, calendar: &Node) -> Result<Todo, IcalError> {
    let uid = vtodo
        .first("UID")
        .map(|line| unescape_text(line.value()))
        .filter(|uid| !uid.is_empty())
        .ok_or(IcalError::MissingUid)?;
    let text = |name: &str| vtodo.first(name).map(|line| unescape_text(line.value()));
    Ok(Todo {
        uid,
        summary: text("SUMMARY"),
        description: text("DESCRIPTION"),
        status: vtodo.first("STATUS").map(read_status).transpose()?,
        due: vtodo
            .first("DUE")
            .map(|line| read_date_time(line, calendar, "DUE"))
            .transpose()?,
        priority: vtodo.first("PRIORITY").map(read_priority).transpose()?,
        categories: vtodo
            .all("CATEGORIES")
            .flat_map(|line| split_text_list(line.value()))
            .collect(),
        completed: vtodo
            .first("COMPLETED")
            .map(|line| read_date_time(line, calendar, "COMPLETED").map(|at| at.instant()))
            .transpose()?,
        rrule: vtodo.first("RRULE").map(|line| line.value().to_owned()),
        parent_uid: vtodo
            .all("RELATED-TO")
            .find(|line| is_parent(line))
            .map(|line| unescape_text(line.value())),
    })
}

fn read_status(line: &ContentLine) -> Result<TodoStatus, IcalError> {
    TodoStatus::parse(line.value()).ok_or(IcalError::InvalidValue {
        property: "STATUS",
        expected: "not NEEDS-ACTION, IN-PROCESS, COMPLETED or CANCELLED",
    })
}

fn read_priority(line: &ContentLine) -> Result<u8, IcalError> {
    line.value()
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|priority| *priority <= 9)
        .ok_or(IcalError::InvalidValue {
            property: "PRIORITY",
            expected: "not a number from 0 to 9",
        })
}

/// RELTYPE defaults to PARENT (RFC 5545 §3.2.15).
fn is_parent(line: &ContentLine) -> bool {
    line.param("RELTYPE")
        .is_none_or(|reltype| reltype.eq_ignore_ascii_case("PARENT"))
}

/// Reads a DATE or DATE-TIME value with its TZID, looked up in `calendar`'s VTIMEZONEs.
fn read_date_time(
    line: &ContentLine,
    calendar: &Node,
    property: &'static str,
) -> Result<Due, IcalError> {
    let invalid = IcalError::InvalidValue {
        property,
        expected: "not a date or date-time",
    };
    let value = line.value().trim();
    let value_type = line.param("VALUE");
    // A bare eight-digit value is a date even without VALUE=DATE, which some clients omit.
    if value_type.is_some_and(|kind| kind.eq_ignore_ascii_case("DATE")) || value.len() == 8 {
        return parse_date(value).map(Due::Date).ok_or(invalid);
    }
    if let Some(utc) = value.strip_suffix(['Z', 'z']) {
        // A UTC time needs no zone: a TZID beside it (which the RFC forbids) is ignored.
        return parse_date_time(utc)
            .map(|local| Due::Utc(local.and_utc()))
            .ok_or(invalid);
    }
    let local = parse_date_time(value).ok_or(invalid)?;
    match line.param("TZID") {
        Some(tzid) => Ok(Due::Zoned(local, resolve_time_zone(tzid, calendar)?)),
        None => Ok(Due::Floating(local)),
    }
}

/// `YYYYMMDD`, digits only (Rust's integer parsing would take a sign).
fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 8 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(4..6)?, number(6..8)?)
}

/// `YYYYMMDDTHHMMSS`, without the `Z`.
fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    let date = parse_date(text.get(..8)?)?;
    let rest = text.get(8..)?;
    let time = rest.strip_prefix(['T', 't'])?;
    if time.len() != 6 || !time.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| time.get(range)?.parse::<u32>().ok();
    let time = NaiveTime::from_hms_opt(number(0..2)?, number(2..4)?, number(4..6)?)?;
    Some(date.and_time(time))
}

/// Finds the IANA zone a TZID means; see [`Object::todo`].
fn resolve_time_zone(tzid: &str, calendar: &Node) -> Result<Tz, IcalError> {
    if let Ok(tz) = tzid.parse::<Tz>() {
        return Ok(tz);
    }
    // Thunderbird and others name the IANA zone in their VTIMEZONE's X-LIC-LOCATION.
    let location = calendar
        .components()
        .filter(|node| node.name == "VTIMEZONE")
        .filter(|node| node.first("TZID").is_some_and(|id| id.value() == tzid))
        .find_map(|node| node.first("X-LIC-LOCATION"))
        .and_then(|location| location.value().trim().parse::<Tz>().ok());
    if let Some(tz) = location {
        return Ok(tz);
    }
    // A "globally unique" TZID (RFC 5545 §3.2.19) starts with `/`; older Lightning prefixed
    // the IANA name with its own path. Try what follows each `/`, longest first.
    tzid.match_indices('/')
        .find_map(|(at, _)| tzid.get(at + 1..)?.parse::<Tz>().ok())
        .ok_or_else(|| IcalError::UnknownTimeZone(tzid.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Text values (RFC 5545 §3.3.11).

/// Escapes a TEXT value. Line breaks of any kind become `\n`; other control characters cannot
/// be written in iCalendar and are left out.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            c if c.is_ascii_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_text`], reading `\N` as a newline too. `\:` (which some clients write) is
/// a colon; any other backslash is kept as it is, since guessing would change the text.
fn unescape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(escaped @ ('\\' | ';' | ',' | ':')) => out.push(escaped),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Splits a list of TEXT values on the commas that are not escaped, unescaping each; empty
/// values are left out.
fn split_text_list(raw: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (at, c) in raw.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                items.push(unescape_text(raw.get(start..at).unwrap_or("")));
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(unescape_text(raw.get(start..).unwrap_or("")));
    items.retain(|item| !item.is_empty());
    items
}

/// Leaves out control characters from a value written as it is (RRULE), so that it cannot
/// break the line it is written on.
fn without_controls(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_ascii_control() || *c == '\t')
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// The VCALENDAR to send for a task: `todo`'s fields over what the client last stored, if
/// anything.
///
/// Properties and components the service does not model (VALARM, X-*, ATTACH, RELATED-TO of
/// other types, …) come back unchanged and in their order. A modelled property present in
/// `stored` is kept verbatim while its value still reads as what `todo` says (DUE and
/// COMPLETED compare instants, so a date or a zoned time the client wrote survives a task
/// that only knows the instant); otherwise it is replaced in place by the canonical form of
/// `todo`'s value, or dropped if `todo` no longer has one. Modelled properties `stored` lacks
/// are added after its last property. DTSTAMP, CREATED, LAST-MODIFIED and SEQUENCE always come
/// from `stamps`. The calendar gets our VERSION and PRODID, and keeps its other properties and
/// its VTIMEZONEs. No VTIMEZONE is added for a TZID we write: clients know IANA names.
pub fn render(stored: Option<&Object>, todo: &Todo, stamps: &Stamps) -> String {
    let mut out = String::new();
    push_line(&mut out, "BEGIN:VCALENDAR");
    push_line(&mut out, "VERSION:2.0");
    push_line(&mut out, &format!("PRODID:{PRODID}"));
    match stored {
        Some(object) => {
            for item in &object.calendar.items {
                match item {
                    Item::Property(line) if line.name == "VERSION" || line.name == "PRODID" => {}
                    Item::Property(line) => push_line(&mut out, &line.text),
                    Item::Component(node) if node.name == "VTODO" => {
                        push_todo(&mut out, Some((node, &object.calendar)), todo, stamps);
                    }
                    Item::Component(node) => push_node(&mut out, node),
                }
            }
        }
        None => push_todo(&mut out, None, todo, stamps),
    }
    push_line(&mut out, "END:VCALENDAR");
    out
}

/// The properties the service writes, in the order a new VTODO gets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Uid,
    Dtstamp,
    Created,
    LastModified,
    Sequence,
    Summary,
    Description,
    Status,
    Priority,
    Due,
    Completed,
    Categories,
    Rrule,
    Parent,
}

const FIELDS: [Field; 14] = [
    Field::Uid,
    Field::Dtstamp,
    Field::Created,
    Field::LastModified,
    Field::Sequence,
    Field::Summary,
    Field::Description,
    Field::Status,
    Field::Priority,
    Field::Due,
    Field::Completed,
    Field::Categories,
    Field::Rrule,
    Field::Parent,
];

impl Field {
    fn of(line: &ContentLine) -> Option<Field> {
        Some(match line.name.as_str() {
            "UID" => Field::Uid,
            "DTSTAMP" => Field::Dtstamp,
            "CREATED" => Field::Created,
            "LAST-MODIFIED" => Field::LastModified,
            "SEQUENCE" => Field::Sequence,
            "SUMMARY" => Field::Summary,
            "DESCRIPTION" => Field::Description,
            "STATUS" => Field::Status,
            "PRIORITY" => Field::Priority,
            "DUE" => Field::Due,
            "COMPLETED" => Field::Completed,
            "CATEGORIES" => Field::Categories,
            "RRULE" => Field::Rrule,
            // Only the parent link is modelled; CHILD, SIBLING and others pass through.
            "RELATED-TO" if is_parent(line) => Field::Parent,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The canonical line for `todo`'s value, or `None` when it has none.
    fn canonical(self, todo: &Todo, stamps: &Stamps) -> Option<String> {
        let text = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|value| format!("{name}:{}", escape_text(value)))
        };
        match self {
            Field::Uid => Some(format!("UID:{}", escape_text(&todo.uid))),
            Field::Dtstamp => Some(format!("DTSTAMP:{}", utc_text(stamps.last_modified))),
            Field::Created => Some(format!("CREATED:{}", utc_text(stamps.created))),
            Field::LastModified => {
                Some(format!("LAST-MODIFIED:{}", utc_text(stamps.last_modified)))
            }
            Field::Sequence => Some(format!("SEQUENCE:{}", stamps.sequence)),
            Field::Summary => text("SUMMARY", &todo.summary),
            Field::Description => text("DESCRIPTION", &todo.description),
            Field::Status => todo
                .status
                .map(|status| format!("STATUS:{}", status.as_str())),
            Field::Priority => todo.priority.map(|priority| format!("PRIORITY:{priority}")),
            Field::Due => todo.due.map(|due| match due {
                Due::Utc(at) => format!("DUE:{}", utc_text(at)),
                Due::Zoned(local, tz) => format!("DUE;TZID={}:{}", tz.name(), local_text(local)),
                Due::Floating(local) => format!("DUE:{}", local_text(local)),
                Due::Date(day) => format!("DUE;VALUE=DATE:{}", day.format("%Y%m%d")),
            }),
            Field::Completed => todo
                .completed
                .map(|at| format!("COMPLETED:{}", utc_text(at))),
            Field::Categories => {
                let values: Vec<String> = todo
                    .categories
                    .iter()
                    .filter(|category| !category.is_empty())
                    .map(|category| escape_text(category))
                    .collect();
                (!values.is_empty()).then(|| format!("CATEGORIES:{}", values.join(",")))
            }
            Field::Rrule => todo
                .rrule
                .as_deref()
                .map(|rule| format!("RRULE:{}", without_controls(rule))),
            Field::Parent => todo
                .parent_uid
                .as_deref()
                .map(|uid| format!("RELATED-TO;RELTYPE=PARENT:{}", escape_text(uid))),
        }
    }

    /// Whether the stored lines of this field still read as what `todo` says. `lines` holds
    /// all of them; single-valued fields look at the first, as [`Object::todo`] does.
    fn still_matches(self, lines: &[&ContentLine], todo: &Todo, calendar: &Node) -> bool {
        let Some(first) = lines.first() else {
            return false;
        };
        let text = || unescape_text(first.value());
        match self {
            Field::Uid => text() == todo.uid,
            Field::Summary => todo.summary.as_deref() == Some(text().as_str()),
            Field::Description => todo.description.as_deref() == Some(text().as_str()),
            Field::Status => read_status(first)
                .ok()
                .is_some_and(|s| todo.status == Some(s)),
            Field::Priority => read_priority(first)
                .ok()
                .is_some_and(|p| todo.priority == Some(p)),
            Field::Due => match (read_date_time(first, calendar, "DUE"), todo.due) {
                (Ok(stored), Some(due)) => stored.instant() == due.instant(),
                _ => false,
            },
            Field::Completed => {
                match (read_date_time(first, calendar, "COMPLETED"), todo.completed) {
                    (Ok(stored), Some(at)) => stored.instant() == at,
                    _ => false,
                }
            }
            Field::Categories => {
                let stored: Vec<String> = lines
                    .iter()
                    .flat_map(|line| split_text_list(line.value()))
                    .collect();
                !stored.is_empty() && stored == todo.categories
            }
            Field::Rrule => todo.rrule.as_deref() == Some(first.value()),
            Field::Parent => todo.parent_uid.as_deref() == Some(text().as_str()),
            // Always written from the stamps.
            Field::Dtstamp | Field::Created | Field::LastModified | Field::Sequence => false,
        }
    }
}

/// Writes the VTODO: `stored` is the client's VTODO and the calendar around it (for TZIDs).
fn push_todo(out: &mut String, stored: Option<(&Node, &Node)>, todo: &Todo, stamps: &Stamps) {
    push_line(out, "BEGIN:VTODO");
    let Some((vtodo, calendar)) = stored else {
        push_missing(out, &[false; FIELDS.len()], todo, stamps);
        push_line(out, "END:VTODO");
        return;
    };
    let mut present = [false; FIELDS.len()];
    let mut keep = [false; FIELDS.len()];
    for field in FIELDS {
        let lines: Vec<&ContentLine> = vtodo
            .properties()
            .filter(|line| Field::of(line) == Some(field))
            .collect();
        present[field.index()] = !lines.is_empty();
        keep[field.index()] = field.still_matches(&lines, todo, calendar);
    }
    // New properties go after the last stored one, so they stay before VALARMs written last.
    let last_property = vtodo
        .items
        .iter()
        .rposition(|item| matches!(item, Item::Property(_)));
    if last_property.is_none() {
        push_missing(out, &present, todo, stamps);
    }
    let mut written = [false; FIELDS.len()];
    for (index, item) in vtodo.items.iter().enumerate() {
        match item {
            Item::Component(node) => push_node(out, node),
            Item::Property(line) => match Field::of(line) {
                None => push_line(out, &line.text),
                Some(field) => {
                    let first = !written[field.index()];
                    written[field.index()] = true;
                    if keep[field.index()] {
                        // Every CATEGORIES line makes up the value; of the others, a second
                        // occurrence is one the RFC does not allow and we do not read.
                        if first || field == Field::Categories {
                            push_line(out, &line.text);
                        }
                    } else if first && let Some(canonical) = field.canonical(todo, stamps) {
                        push_line(out, &canonical);
                    }
                }
            },
        }
        if Some(index) == last_property {
            push_missing(out, &present, todo, stamps);
        }
    }
    push_line(out, "END:VTODO");
}

/// Writes the canonical lines of the fields not `present` in the stored VTODO.
fn push_missing(out: &mut String, present: &[bool; FIELDS.len()], todo: &Todo, stamps: &Stamps) {
    for field in FIELDS {
        if !present[field.index()]
            && let Some(line) = field.canonical(todo, stamps)
        {
            push_line(out, &line);
        }
    }
}

fn utc_text(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

fn local_text(at: NaiveDateTime) -> String {
    at.format("%Y%m%dT%H%M%S").to_string()
}

fn push_node(out: &mut String, node: &Node) {
    push_line(out, &format!("BEGIN:{}", node.name));
    for item in &node.items {
        match item {
            Item::Property(line) => push_line(out, &line.text),
            Item::Component(child) => push_node(out, child),
        }
    }
    push_line(out, &format!("END:{}", node.name));
}

/// Writes one content line folded at [`FOLD_AT`] octets (never inside a UTF-8 character),
/// each physical line ended by CRLF.
fn push_line(out: &mut String, line: &str) {
    let mut rest = line;
    // A continuation line starts with the space that unfolding removes, so it carries one
    // octet less of the line.
    let mut room = FOLD_AT;
    while rest.len() > room {
        let mut cut = room;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push_str(head);
        out.push_str("\r\n ");
        rest = tail;
        room = FOLD_AT - 1;
    }
    out.push_str(rest);
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Thunderbird sends for a task with a reminder, in LF and with a folded line.
    const THUNDERBIRD: &str = "BEGIN:VCALENDAR\r
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r
VERSION:2.0\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
X-TZINFO:Europe/Berlin[2024b]\r
BEGIN:STANDARD\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
TZNAME:CET\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
TZNAME:CEST\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VTODO\r
CREATED:20261201T101010Z\r
LAST-MODIFIED:20261201T101500Z\r
DTSTAMP:20261201T101500Z\r
UID:2c6d5a4e-1c0e-4c54-9b4f-0d7c1a6b9f33\r
SUMMARY:Buy milk\\, eggs\r
STATUS:NEEDS-ACTION\r
PRIORITY:3\r
DUE;TZID=Europe/Berlin:20261207T090000\r
CATEGORIES:Errands,Home\r
DESCRIPTION:Two litres\\nand a dozen; the organic ones from the shop on the c\r
 orner\r
X-MOZ-GENERATION:2\r
X-MOZ-LASTACK:20261201T101500Z\r
ATTENDEE;CN=\"Doe, Jane\";PARTSTAT=NEEDS-ACTION:mailto:jane@example.com\r
SEQUENCE:1\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
TRIGGER;VALUE=DURATION;RELATED=END:-PT15M\r
DESCRIPTION:Default Mozilla Description\r
END:VALARM\r
END:VTODO\r
END:VCALENDAR\r
";

    const ALARM: &str = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;VALUE=DURATION;RELATED=END:-PT15M\r\nDESCRIPTION:Default Mozilla Description\r\nEND:VALARM\r\n";

    fn stamps() -> Stamps {
        Stamps {
            created: utc(2026, 12, 1, 10, 10, 10),
            last_modified: utc(2026, 12, 2, 8, 0, 0),
            sequence: 7,
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        match Utc.with_ymd_and_hms(y, mo, d, h, mi, s) {
            LocalResult::Single(at) => at,
            _ => panic!("not a time: {y}-{mo}-{d} {h}:{mi}:{s}"),
        }
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|day| day.and_hms_opt(h, mi, 0))
            .expect("a valid local time")
    }

    /// A calendar around one VTODO with the given lines.
    fn with_todo(lines: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\nUID:t1\r\n{lines}END:VTODO\r\nEND:VCALENDAR\r\n"
        )
    }

    fn parse(text: &str) -> Object {
        Object::parse(text.as_bytes()).expect("parses")
    }

    fn todo_of(text: &str) -> Todo {
        parse(text).todo().expect("has a todo")
    }

    fn minimal_todo() -> Todo {
        Todo {
            uid: "t1".to_owned(),
            summary: None,
            description: None,
            status: None,
            due: None,
            priority: None,
            categories: Vec::new(),
            completed: None,
            rrule: None,
            parent_uid: None,
        }
    }

    fn berlin() -> Tz {
        chrono_tz::Europe::Berlin
    }

    #[test]
    fn a_thunderbird_task_is_read_into_the_modelled_fields() {
        let todo = todo_of(THUNDERBIRD);
        assert_eq!(todo.uid, "2c6d5a4e-1c0e-4c54-9b4f-0d7c1a6b9f33");
        assert_eq!(todo.summary.as_deref(), Some("Buy milk, eggs"));
        assert_eq!(
            todo.description.as_deref(),
            Some("Two litres\nand a dozen; the organic ones from the shop on the corner")
        );
        assert_eq!(todo.status, Some(TodoStatus::NeedsAction));
        assert_eq!(todo.priority, Some(3));
        assert_eq!(
            todo.due,
            Some(Due::Zoned(local(2026, 12, 7, 9, 0), berlin()))
        );
        assert_eq!(
            todo.due.map(|d| d.instant()),
            Some(utc(2026, 12, 7, 8, 0, 0))
        );
        assert_eq!(todo.categories, ["Errands", "Home"]);
        assert_eq!(todo.completed, None);
        assert_eq!(todo.rrule, None);
        assert_eq!(todo.parent_uid, None);
    }

    #[test]
    fn an_unchanged_thunderbird_task_comes_back_with_its_alarm_and_x_properties_verbatim() {
        let object = parse(THUNDERBIRD);
        let todo = object.todo().expect("todo");
        let out = render(Some(&object), &todo, &stamps());

        assert!(out.contains(ALARM), "{out}");
        for kept in [
            "X-MOZ-GENERATION:2\r\n",
            "X-MOZ-LASTACK:20261201T101500Z\r\n",
            "ATTENDEE;CN=\"Doe, Jane\";PARTSTAT=NEEDS-ACTION:mailto:jane@example.com\r\n",
            "SUMMARY:Buy milk\\, eggs\r\n",
            "DUE;TZID=Europe/Berlin:20261207T090000\r\n",
            "PRIORITY:3\r\n",
            "STATUS:NEEDS-ACTION\r\n",
            "CATEGORIES:Errands,Home\r\n",
            "X-TZINFO:Europe/Berlin[2024b]\r\n",
            "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n",
        ] {
            assert!(out.contains(kept), "{kept:?} is missing from\n{out}");
        }
        // The stamps are ours, and so are VERSION and PRODID.
        for ours in [
            "DTSTAMP:20261202T080000Z\r\n",
            "LAST-MODIFIED:20261202T080000Z\r\n",
            "CREATED:20261201T101010Z\r\n",
            "SEQUENCE:7\r\n",
            "PRODID:-//todo-backend//EN\r\n",
        ] {
            assert!(out.contains(ours), "{ours:?} is missing from\n{out}");
        }
        assert!(!out.contains("Mozilla Calendar"));
        assert!(!out.contains("SEQUENCE:1\r\n"));
        assert_eq!(out.matches("VERSION:").count(), 1);
        // The stamps take the places of the stored ones, and the X- lines keep theirs.
        let order = [
            "CREATED:",
            "LAST-MODIFIED:",
            "DTSTAMP:",
            "UID:",
            "X-MOZ-GENERATION:",
            "SEQUENCE:",
            "BEGIN:VALARM",
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|needle| out.find(needle).expect("present"))
            .collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{out}");

        let again = Object::parse(out.as_bytes()).expect("our output parses");
        assert_eq!(again.todo(), Ok(todo));
    }

    #[test]
    fn changed_fields_are_written_canonically_and_unknown_lines_stay() {
        let object = parse(THUNDERBIRD);
        let mut todo = object.todo().expect("todo");
        todo.summary = Some("Buy oat milk; no eggs".to_owned());
        todo.priority = Some(1);
        todo.status = Some(TodoStatus::Completed);
        todo.completed = Some(utc(2026, 12, 5, 17, 30, 0));
        todo.due = Some(Due::Utc(utc(2026, 12, 8, 8, 0, 0)));
        todo.description = None;
        todo.categories = vec!["Errands".to_owned(), "a, b".to_owned()];
        let out = render(Some(&object), &todo, &stamps());

        for canonical in [
            "SUMMARY:Buy oat milk\\; no eggs\r\n",
            "PRIORITY:1\r\n",
            "STATUS:COMPLETED\r\n",
            "DUE:20261208T080000Z\r\n",
            "COMPLETED:20261205T173000Z\r\n",
            "CATEGORIES:Errands,a\\, b\r\n",
        ] {
            assert!(
                out.contains(canonical),
                "{canonical:?} is missing from\n{out}"
            );
        }
        for gone in [
            "Buy milk",
            "PRIORITY:3",
            "STATUS:NEEDS-ACTION",
            "Two litres",
            "Home",
        ] {
            assert!(!out.contains(gone), "{gone:?} is still in\n{out}");
        }
        assert!(out.contains(ALARM), "{out}");
        assert!(out.contains("X-MOZ-GENERATION:2\r\n"));
        // The replaced lines sit where the old ones were; the new one follows the last property.
        let summary = out.find("SUMMARY:").expect("summary");
        let status = out.find("STATUS:").expect("status");
        let completed = out.find("COMPLETED:2026").expect("completed");
        let sequence = out.find("SEQUENCE:").expect("sequence");
        let alarm = out.find("BEGIN:VALARM").expect("alarm");
        assert!(
            summary < status && sequence < completed && completed < alarm,
            "{out}"
        );

        let again = Object::parse(out.as_bytes()).expect("our output parses");
        assert_eq!(again.todo(), Ok(todo));
    }

    #[test]
    fn a_date_only_due_is_read_and_kept_verbatim_while_its_instant_is_unchanged() {
        let text = with_todo("DUE;VALUE=DATE:20261207\r\n");
        let object = parse(&text);
        let mut todo = object.todo().expect("todo");
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).expect("date");
        assert_eq!(todo.due, Some(Due::Date(day)));
        assert_eq!(
            todo.due.map(|d| d.instant()),
            Some(utc(2026, 12, 7, 0, 0, 0))
        );

        let out = render(Some(&object), &todo, &stamps());
        assert!(out.contains("\r\nDUE;VALUE=DATE:20261207\r\n"), "{out}");

        // The service knows only the instant: the client's date survives it.
        todo.due = Some(Due::Utc(utc(2026, 12, 7, 0, 0, 0)));
        let out = render(Some(&object), &todo, &stamps());
        assert!(out.contains("\r\nDUE;VALUE=DATE:20261207\r\n"), "{out}");

        todo.due = Some(Due::Date(day.succ_opt().expect("next day")));
        let out = render(Some(&object), &todo, &stamps());
        assert!(out.contains("\r\nDUE;VALUE=DATE:20261208\r\n"), "{out}");
        assert!(!out.contains("20261207"), "{out}");

        // Without VALUE=DATE, eight digits are still a date.
        let todo = todo_of(&with_todo("DUE:20261207\r\n"));
        assert_eq!(todo.due, Some(Due::Date(day)));
    }

    #[test]
    fn a_zoned_due_is_read_and_kept_verbatim_while_its_instant_is_unchanged() {
        let text = with_todo("DUE;TZID=\"Europe/Berlin\":20261207T090000\r\n");
        let object = parse(&text);
        let mut todo = object.todo().expect("todo");
        assert_eq!(
            todo.due,
            Some(Due::Zoned(local(2026, 12, 7, 9, 0), berlin()))
        );
        let kept = "\r\nDUE;TZID=\"Europe/Berlin\":20261207T090000\r\n";

        assert!(render(Some(&object), &todo, &stamps()).contains(kept));
        todo.due = Some(Due::Utc(utc(2026, 12, 7, 8, 0, 0)));
        assert!(render(Some(&object), &todo, &stamps()).contains(kept));

        todo.due = Some(Due::Utc(utc(2026, 12, 7, 9, 0, 0)));
        let out = render(Some(&object), &todo, &stamps());
        assert!(out.contains("\r\nDUE:20261207T090000Z\r\n"), "{out}");
        assert!(!out.contains("TZID"), "{out}");

        todo.due = Some(Due::Zoned(
            local(2026, 12, 7, 11, 0),
            chrono_tz::Europe::Paris,
        ));
        let out = render(Some(&object), &todo, &stamps());
        assert!(
            out.contains("\r\nDUE;TZID=Europe/Paris:20261207T110000\r\n"),
            "{out}"
        );
    }

    #[test]
    fn floating_and_utc_due_dates_are_read() {
        let todo = todo_of(&with_todo(
            "DUE:20261207T090000\r\nCOMPLETED:20261201T120000Z\r\n",
        ));
        assert_eq!(todo.due, Some(Due::Floating(local(2026, 12, 7, 9, 0))));
        assert_eq!(
            todo.due.map(|d| d.instant()),
            Some(utc(2026, 12, 7, 9, 0, 0))
        );
        assert_eq!(todo.completed, Some(utc(2026, 12, 1, 12, 0, 0)));

        let mut todo = minimal_todo();
        todo.due = Some(Due::Floating(local(2026, 12, 7, 9, 0)));
        assert!(render(None, &todo, &stamps()).contains("\r\nDUE:20261207T090000\r\n"));
    }

    #[test]
    fn time_zones_resolve_through_a_slash_prefix_and_x_lic_location() {
        let slash = todo_of(&with_todo("DUE;TZID=/Europe/Berlin:20261207T090000\r\n"));
        assert_eq!(
            slash.due,
            Some(Due::Zoned(local(2026, 12, 7, 9, 0), berlin()))
        );

        let mozilla = todo_of(&with_todo(
            "DUE;TZID=/mozilla.org/20050126_1/Europe/Berlin:20261207T090000\r\n",
        ));
        assert_eq!(
            mozilla.due,
            Some(Due::Zoned(local(2026, 12, 7, 9, 0), berlin()))
        );

        let located = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:Mitteleuropäische Zeit\r\nX-LIC-LOCATION:Europe/Berlin\r\nEND:VTIMEZONE\r\nBEGIN:VTODO\r\nUID:t1\r\nDUE;TZID=Mitteleuropäische Zeit:20261207T090000\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        let object = parse(located);
        let todo = object.todo().expect("todo");
        assert_eq!(
            todo.due,
            Some(Due::Zoned(local(2026, 12, 7, 9, 0), berlin()))
        );
        // The stored line, with its odd TZID, is still recognised as the same instant.
        let mut same = todo.clone();
        same.due = Some(Due::Utc(utc(2026, 12, 7, 8, 0, 0)));
        let out = render(Some(&object), &same, &stamps());
        assert!(out.contains("DUE;TZID=Mitteleuropäische Zeit:20261207T090000\r\n"));
        assert!(out.contains("X-LIC-LOCATION:Europe/Berlin\r\n"));
    }

    #[test]
    fn an_unknown_time_zone_is_an_error() {
        let object = parse(&with_todo("DUE;TZID=Mars/Olympus_Mons:20261207T090000\r\n"));
        let error = object.todo().expect_err("unknown zone");
        assert_eq!(
            error,
            IcalError::UnknownTimeZone("Mars/Olympus_Mons".to_owned())
        );
        assert_eq!(error.to_string(), "unknown time zone 'Mars/Olympus_Mons'");
    }

    #[test]
    fn local_times_in_a_gap_take_the_later_reading_and_in_an_overlap_the_earlier() {
        // 2026-03-29 02:30 does not exist in Berlin: read with +01:00, the offset before it.
        let gap = Due::Zoned(local(2026, 3, 29, 2, 30), berlin());
        assert_eq!(gap.instant(), utc(2026, 3, 29, 1, 30, 0));
        // 2026-10-25 02:30 happens twice: +02:00 first.
        let overlap = Due::Zoned(local(2026, 10, 25, 2, 30), berlin());
        assert_eq!(overlap.instant(), utc(2026, 10, 25, 0, 30, 0));
    }

    #[test]
    fn escaped_text_round_trips() {
        let text = with_todo(
            "SUMMARY:a\\, b\\; c\\\\n\r\nDESCRIPTION:line one\\nline two\\Nthree \\:)\r\nCATEGORIES:x\\,y,z\r\nCATEGORIES:w\r\n",
        );
        let object = parse(&text);
        let todo = object.todo().expect("todo");
        assert_eq!(todo.summary.as_deref(), Some("a, b; c\\n"));
        assert_eq!(
            todo.description.as_deref(),
            Some("line one\nline two\nthree :)")
        );
        assert_eq!(todo.categories, ["x,y", "z", "w"]);

        // Unchanged: verbatim, both CATEGORIES lines included.
        let out = render(Some(&object), &todo, &stamps());
        for kept in [
            "SUMMARY:a\\, b\\; c\\\\n\r\n",
            "DESCRIPTION:line one\\nline two\\Nthree \\:)\r\n",
            "CATEGORIES:x\\,y,z\r\nCATEGORIES:w\r\n",
        ] {
            assert!(out.contains(kept), "{kept:?} is missing from\n{out}");
        }

        // Written by us: canonical escapes, which read back the same.
        let out = render(None, &todo, &stamps());
        for canonical in [
            "SUMMARY:a\\, b\\; c\\\\n\r\n",
            "DESCRIPTION:line one\\nline two\\nthree :)\r\n",
            "CATEGORIES:x\\,y,z,w\r\n",
        ] {
            assert!(
                out.contains(canonical),
                "{canonical:?} is missing from\n{out}"
            );
        }
        assert_eq!(parse(&out).todo(), Ok(todo));

        assert_eq!(escape_text("a\r\nb\rc\u{7}d\te"), "a\\nb\\ncd\te");
        assert_eq!(unescape_text("trailing\\"), "trailing\\");
        assert_eq!(unescape_text("C:\\temp"), "C:\\temp");
    }

    #[test]
    fn a_long_summary_is_folded_at_75_octets_and_reads_back_equal() {
        let summary: String = "Grüße aus Köln — 東京 🚀 "
            .chars()
            .cycle()
            .take(200)
            .collect();
        let mut todo = minimal_todo();
        todo.summary = Some(summary.clone());
        todo.description = Some("x".repeat(300));
        let out = render(None, &todo, &stamps());

        assert!(out.ends_with("END:VCALENDAR\r\n"));
        assert!(!out.replace("\r\n", "").contains('\n'), "bare LF in\n{out}");
        let physical: Vec<&str> = out.split("\r\n").collect();
        assert!(physical.iter().all(|line| line.len() <= 75), "{out}");
        assert!(physical.iter().filter(|line| line.starts_with(' ')).count() >= 6);

        let again = parse(&out).todo().expect("todo");
        assert_eq!(again.summary.as_deref(), Some(summary.as_str()));
        assert_eq!(again, todo);

        // A line made of four-byte characters is never cut inside one.
        let mut out = String::new();
        push_line(&mut out, &format!("X-A:{}", "🚀".repeat(60)));
        assert!(out.split("\r\n").all(|line| line.len() <= 75));
    }

    #[test]
    fn a_new_task_gets_every_field_in_canonical_form() {
        let todo = Todo {
            uid: "new-1".to_owned(),
            summary: Some("Write report".to_owned()),
            description: Some("Q4".to_owned()),
            status: Some(TodoStatus::InProcess),
            due: Some(Due::Zoned(local(2026, 12, 7, 9, 0), berlin())),
            priority: Some(5),
            categories: vec!["Work".to_owned(), "Reports".to_owned()],
            completed: None,
            rrule: Some("FREQ=WEEKLY;BYDAY=MO".to_owned()),
            parent_uid: Some("parent-1".to_owned()),
        };
        let out = render(None, &todo, &stamps());
        let expected = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//todo-backend//EN\r\nBEGIN:VTODO\r\n\
            UID:new-1\r\nDTSTAMP:20261202T080000Z\r\nCREATED:20261201T101010Z\r\n\
            LAST-MODIFIED:20261202T080000Z\r\nSEQUENCE:7\r\nSUMMARY:Write report\r\n\
            DESCRIPTION:Q4\r\nSTATUS:IN-PROCESS\r\nPRIORITY:5\r\n\
            DUE;TZID=Europe/Berlin:20261207T090000\r\nCATEGORIES:Work,Reports\r\n\
            RRULE:FREQ=WEEKLY;BYDAY=MO\r\nRELATED-TO;RELTYPE=PARENT:parent-1\r\n\
            END:VTODO\r\nEND:VCALENDAR\r\n";
        assert_eq!(out, expected);
        assert_eq!(parse(&out).todo(), Ok(todo));
    }

    #[test]
    fn only_the_parent_link_is_modelled_among_related_to() {
        let text = with_todo(
            "RELATED-TO;RELTYPE=CHILD:kid\r\nRELATED-TO:mum\r\nRELATED-TO;RELTYPE=SIBLING:sis\r\n",
        );
        let object = parse(&text);
        let mut todo = object.todo().expect("todo");
        assert_eq!(todo.parent_uid.as_deref(), Some("mum"));

        todo.parent_uid = Some("dad".to_owned());
        let out = render(Some(&object), &todo, &stamps());
        assert!(out.contains("RELATED-TO;RELTYPE=CHILD:kid\r\nRELATED-TO;RELTYPE=PARENT:dad\r\nRELATED-TO;RELTYPE=SIBLING:sis\r\n"), "{out}");

        todo.parent_uid = None;
        let out = render(Some(&object), &todo, &stamps());
        assert!(!out.contains("PARENT") && !out.contains("mum"), "{out}");
        assert!(out.contains("RELATED-TO;RELTYPE=CHILD:kid\r\n"));

        let explicit = todo_of(&with_todo("RELATED-TO;RELTYPE=parent:mum\r\n"));
        assert_eq!(explicit.parent_uid.as_deref(), Some("mum"));
    }

    #[test]
    fn stored_text_is_crlf_and_reads_back_the_same() {
        let lf = THUNDERBIRD.replace("\r\n", "\n");
        let object = parse(&lf);
        let stored = object.to_stored();
        assert!(!stored.replace("\r\n", "").contains('\n'));
        assert!(stored.contains(ALARM));
        assert!(stored.contains("PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n"));
        let again = Object::from_stored(&stored).expect("stored text parses");
        assert_eq!(again, object);
        assert_eq!(again.to_stored(), stored);
        assert_eq!(again.todo(), parse(THUNDERBIRD).todo());
    }

    #[test]
    fn lines_with_quoted_and_odd_parameters_are_kept_verbatim() {
        let tricky = [
            "ATTACH;FMTTYPE=image/png;ENCODING=BASE64;VALUE=BINARY:iVBORw0KGgo+/AAA=",
            "X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-ADDRESS=\"Street 1\\nCity\";X-APPLE-RADIUS=70;X-TITLE=\"Home: sweet; home\":geo:52.5,13.4",
            "ORGANIZER;CN=John Smith;SENT-BY=\"mailto:jane@example.com\":mailto:jsmith@example.com",
            "ATTENDEE;DELEGATED-TO=\"mailto:a@b\",\"mailto:c@d\":mailto:e@f",
            "X-EMPTY;X-P=:v",
            "X-FLAG;X-B=1;X-C:v",
            "X-UNICODE;X-NAME=Ünïcødé:vålue",
            "URL;VALUE=URI:https://example.com/a;b,c",
            "GEO:37.386013;-122.082932",
            "COMMENT:",
            "LOCATION;ALTREP=\"cid:part1.0001@example.org\":Room\\, 2\\: the \\N one",
        ];
        let lines: String = tricky.iter().map(|line| format!("{line}\r\n")).collect();
        let text = with_todo(&format!(
            "DUE;tzid=Europe/Berlin:20261207T090000\r\nRELATED-TO;RELTYPE=:mum\r\n{lines}"
        ));
        let object = parse(&text);
        let todo = object.todo().expect("todo");
        assert_eq!(
            todo.due,
            Some(Due::Zoned(local(2026, 12, 7, 9, 0), berlin()))
        );
        assert_eq!(todo.parent_uid.as_deref(), Some("mum"));
        let out = render(Some(&object), &todo, &stamps());
        let unfolded = out.replace("\r\n ", "");
        for line in tricky {
            assert!(
                unfolded.contains(&format!("\r\n{line}\r\n")),
                "{line:?} is missing from\n{out}"
            );
        }
    }

    #[test]
    fn lower_case_names_and_a_byte_order_mark_are_accepted() {
        let text = "\u{feff}begin:vcalendar\r\nversion:2.0\r\nbegin:vtodo\r\nuid:t1\r\nsummary:hi\r\npriority:2\r\nend:vtodo\r\nend:vcalendar\r\n";
        let todo = todo_of(text);
        assert_eq!(todo.summary.as_deref(), Some("hi"));
        assert_eq!(todo.priority, Some(2));
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        let many_lines = with_todo(&"X-A:1\r\n".repeat(100_001));
        let over_a_mib = with_todo(&format!("X-A:{}\r\n", "a".repeat(MAX_BYTES)));
        let two_todos = "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:a\r\nEND:VTODO\r\nBEGIN:VTODO\r\nUID:b\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        let event = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nBEGIN:VTODO\r\nUID:b\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        let deep = format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:a\r\n{}{}END:VTODO\r\nEND:VCALENDAR\r\n",
            "BEGIN:X-A\r\n".repeat(7),
            "END:X-A\r\n".repeat(7)
        );
        let cases: Vec<(&str, Vec<u8>, IcalError)> = vec![
            (
                "100 001 lines",
                many_lines.into_bytes(),
                IcalError::TooManyLines,
            ),
            ("over 1 MiB", over_a_mib.into_bytes(), IcalError::TooLarge),
            (
                "invalid UTF-8",
                b"BEGIN:VCALENDAR\r\nX-A:\xff\xfe\r\nEND:VCALENDAR\r\n".to_vec(),
                IcalError::NotUtf8,
            ),
            (
                "a continuation without its leading space",
                with_todo("SUMMARY:a long\r\ncontinued text\r\n").into_bytes(),
                IcalError::BadFolding { line: 7 },
            ),
            (
                "a continuation with no line before it",
                b" BEGIN:VCALENDAR\r\n".to_vec(),
                IcalError::BadFolding { line: 1 },
            ),
            (
                "a line without a colon",
                with_todo("SUMMARY;LANGUAGE=de\r\n").into_bytes(),
                IcalError::MissingColon { line: 6 },
            ),
            (
                "a colon only inside quotes",
                with_todo("SUMMARY;ALTREP=\"cid:x\"\r\n").into_bytes(),
                IcalError::MissingColon { line: 6 },
            ),
            (
                "a missing END:VCALENDAR",
                b"BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:a\r\nEND:VTODO\r\n".to_vec(),
                IcalError::MissingEnd("VCALENDAR".to_owned()),
            ),
            (
                "a missing END:VTODO",
                b"BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:a\r\nEND:VCALENDAR\r\n".to_vec(),
                IcalError::MismatchedEnd {
                    open: "VTODO".to_owned(),
                    found: "VCALENDAR".to_owned(),
                    line: 4,
                },
            ),
            (
                "two VTODOs",
                two_todos.as_bytes().to_vec(),
                IcalError::TodoCount,
            ),
            (
                "no VTODO",
                b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n".to_vec(),
                IcalError::TodoCount,
            ),
            (
                "a VEVENT",
                event.as_bytes().to_vec(),
                IcalError::Unsupported("VEVENT".to_owned()),
            ),
            ("nesting over 8", deep.into_bytes(), IcalError::TooDeep),
            ("empty", Vec::new(), IcalError::NotCalendar),
            (
                "a VTODO without VCALENDAR",
                b"BEGIN:VTODO\r\nUID:a\r\nEND:VTODO\r\n".to_vec(),
                IcalError::NotCalendar,
            ),
            (
                "content after the calendar",
                format!("{}X-A:1\r\n", with_todo("")).into_bytes(),
                IcalError::TrailingContent { line: 8 },
            ),
            (
                "a bare CR inside a line",
                with_todo("SUMMARY:a\rb\r\n").into_bytes(),
                IcalError::ControlCharacter { line: 6 },
            ),
            (
                "BEGIN with parameters",
                b"BEGIN;X=1:VCALENDAR\r\n".to_vec(),
                IcalError::BadComponentLine { line: 1 },
            ),
        ];
        for (case, body, expected) in cases {
            assert_eq!(Object::parse(&body), Err(expected), "case: {case}");
        }

        // Nesting of exactly 8 is fine.
        let eight = format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:a\r\n{}{}END:VTODO\r\nEND:VCALENDAR\r\n",
            "BEGIN:X-A\r\n".repeat(6),
            "END:X-A\r\n".repeat(6)
        );
        assert!(Object::parse(eight.as_bytes()).is_ok());
    }

    #[test]
    fn bad_values_are_errors_from_todo() {
        let cases = [
            (
                "no UID",
                "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nSUMMARY:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
                    .to_owned(),
                "missing UID",
            ),
            (
                "a bad DUE",
                with_todo("DUE:tomorrow\r\n"),
                "DUE: not a date or date-time",
            ),
            (
                "a DUE on 31 February",
                with_todo("DUE:20260231T090000Z\r\n"),
                "DUE: not a date or date-time",
            ),
            (
                "a signed DUE",
                with_todo("DUE:+2026123T090000\r\n"),
                "DUE: not a date or date-time",
            ),
            (
                "a bad COMPLETED",
                with_todo("COMPLETED:soon\r\n"),
                "COMPLETED: not a date or date-time",
            ),
            (
                "PRIORITY 10",
                with_todo("PRIORITY:10\r\n"),
                "PRIORITY: not a number from 0 to 9",
            ),
            (
                "an unknown STATUS",
                with_todo("STATUS:TENTATIVE\r\n"),
                "STATUS: not NEEDS-ACTION, IN-PROCESS, COMPLETED or CANCELLED",
            ),
        ];
        for (case, text, message) in cases {
            let error = parse(&text).todo().expect_err(case);
            assert_eq!(error.to_string(), message, "case: {case}");
        }
    }

    #[test]
    fn error_messages_read_as_sentences() {
        assert_eq!(IcalError::NotCalendar.to_string(), "not a VCALENDAR");
        assert_eq!(
            IcalError::TooManyLines.to_string(),
            format!("more than {MAX_LINES} lines")
        );
        assert_eq!(
            IcalError::BadFolding { line: 3 }.to_string(),
            "a folded line must start with a space or a tab (line 3)"
        );
        assert_eq!(
            IcalError::TodoCount.to_string(),
            "exactly one VTODO is expected"
        );
        assert_eq!(
            IcalError::Unsupported("VEVENT".to_owned()).to_string(),
            "VEVENT is not supported here (tasks only)"
        );
        assert_eq!(IcalError::MissingUid.to_string(), "missing UID");
    }

    #[test]
    fn modelled_properties_the_task_no_longer_has_are_dropped() {
        let object = parse(THUNDERBIRD);
        let todo = Todo {
            uid: "2c6d5a4e-1c0e-4c54-9b4f-0d7c1a6b9f33".to_owned(),
            ..minimal_todo()
        };
        let out = render(Some(&object), &todo, &stamps());
        for gone in [
            "SUMMARY:",
            "\r\nDESCRIPTION:Two",
            "STATUS:",
            "PRIORITY:",
            "DUE",
            "CATEGORIES:",
        ] {
            assert!(!out.contains(gone), "{gone:?} is still in\n{out}");
        }
        assert!(out.contains(ALARM));
        assert!(out.contains("UID:2c6d5a4e-1c0e-4c54-9b4f-0d7c1a6b9f33\r\n"));
        assert_eq!(parse(&out).todo(), Ok(todo));
    }
}
