//! `GET /api/tasks/events`: the live tail of the change feed, as Server-Sent Events.
//!
//! Each event is one feed entry: `id:` its cursor, `event:` its op, `data:` the entry's JSON.
//! The stream reads the feed from its own cursor whenever the [`Hub`] wakes it, so resuming
//! from an event id (`Last-Event-ID` or `?since=`) is replaying the feed, and going live is
//! the same loop: no gap and no duplicate at the seam.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::query;
use crate::domain::{Change, ChangeCursor};
use crate::http::extract::AuthUntil;
use crate::http::responses::Unauthorized;
use crate::http::{ApiError, AppState, ErrorBody};
use crate::live::hub::{FEED_READS, FeedRead, Refused, Subscription, Wake};
use crate::store::StoreError;

/// How many changes one read of the feed takes: what a stream holds at most.
const PAGE: u32 = 100;

/// The longest wait before a stream tries the feed again after the database failed it.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// How soon a stream reads again when a change it was woken for could not be read yet.
const SETTLE: Duration = Duration::from_millis(50);

/// The header a reconnecting client names its last event with.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The caller's changes as they are committed, through any instance, as Server-Sent Events.
/// Resume from an event id with `Last-Event-ID` (or `since`); without either the stream
/// starts with the whole feed. A comment every 15 s keeps it open; it ends when the token
/// expires (reconnect with a fresh one) or the instance shuts down (reconnect).
#[utoipa::path(
    get,
    path = "/api/tasks/events",
    tag = "tasks",
    params(
        ("since" = Option<String>, Query, description = "Resume after this event id (a \
            change cursor); `Last-Event-ID` wins when both are sent", pattern = "^[0-9]{0,19}$"),
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event \
            received, to resume after it"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A stream of `upsert` and `delete` events, each `data` \
            a change-feed entry", content_type = "text/event-stream", body = String),
        (status = 400, description = "Malformed Last-Event-ID", body = ErrorBody),
        (status = 410, description = "The event id is older than the kept history: sync \
            again from the start", body = ErrorBody),
        (status = 422, description = "Invalid since", body = ErrorBody),
        (status = 429, description = "Too many open streams for this user", body = ErrorBody),
        (status = 503, description = "Too many open streams on this instance, or the \
            database is unavailable; retry", body = ErrorBody),
        Unauthorized,
    )
)]
pub async fn stream_events(
    State(state): State<AppState>,
    AuthUntil { user, expires_at }: AuthUntil,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let request = query::parse(uri.query().unwrap_or_default())?;
    let since = resume_point(&headers, request.since)?;
    let lists = request.lists;
    let expires = until(expires_at);
    // Subscribed before the first read, so that a write between the two still wakes it.
    let subscription = state
        .events
        .subscribe(&user)
        .map_err(|refused| match refused {
            Refused::User(max) => ApiError::TooManyStreams(max),
            Refused::Instance => ApiError::Unavailable,
        })?;
    let first = subscription
        .changes(since, PAGE, lists, Instant::now(), event)
        .await?;
    let tail = Tail {
        lists,
        cursor: since,
        stale: first.page.has_more,
        settling: first.page.settling,
        fresh_from: first.began,
        last_read: first.began,
        pending: Some((first, 0)),
        subscription,
        expires,
        heartbeat: state.events.settings().heartbeat,
        failures: 0,
    };
    let body = Body::from_stream(futures_util::stream::unfold(tail, |mut tail| async move {
        let frame = tail.next_frame().await?;
        Some((Ok::<_, Infallible>(frame), tail))
    }));
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            // Proxies that buffer responses (nginx) pass this one through as it comes.
            (
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response())
}

/// Where the stream starts: after `Last-Event-ID`, else after `since`, else the beginning.
fn resume_point(headers: &HeaderMap, since: ChangeCursor) -> Result<ChangeCursor, ApiError> {
    let mut values = headers.get_all(LAST_EVENT_ID).iter();
    let Some(value) = values.next() else {
        return Ok(since);
    };
    let malformed = || {
        ApiError::BadRequest(
            "Last-Event-ID must be one event id this stream sent (a change cursor)".into(),
        )
    };
    if values.next().is_some() {
        return Err(malformed());
    }
    match value.to_str().map_err(|_| malformed())?.trim() {
        // What a client that has seen no event yet may send.
        "" => Ok(since),
        id => id.parse().map_err(|_| malformed()),
    }
}

/// The instant a token with this `exp` expires, on the runtime's clock; `None` for one too
/// far off for the clock to hold (such a stream ends only when the instance stops).
fn until(exp: u64) -> Option<Instant> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    Instant::now().checked_add(Duration::from_secs(exp.saturating_sub(now)))
}

/// One stream: where it is in the feed and what it has read but not yet sent.
struct Tail {
    /// Whether the stream carries the list entries (`include=lists`).
    lists: bool,
    /// The cursor of the last change handed out.
    cursor: ChangeCursor,
    /// The page being sent, shared with the user's other streams here, and the index of the
    /// next change in it to send.
    pending: Option<(FeedRead, usize)>,
    /// Whether the feed may hold more after `cursor` than has been read.
    stale: bool,
    /// Whether a change has committed that the last read could not see yet (an older
    /// transaction was still open): read again shortly, without waiting for a wake.
    settling: bool,
    /// What the next read must hold: every change committed before this instant (the
    /// latest wake, or the end of a settling wait).
    fresh_from: Instant,
    /// When the read of the last page began.
    last_read: Instant,
    subscription: Subscription,
    expires: Option<Instant>,
    heartbeat: Duration,
    /// Reads that failed in a row, for the backoff.
    failures: u32,
}

impl Tail {
    /// The next bytes to send, or `None` when the stream is over.
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some((read, next)) = &mut self.pending {
                if let Some((cursor, event)) = read.page.events.get(*next) {
                    *next += 1;
                    self.cursor = *cursor;
                    return Some(event.clone());
                }
                self.pending = None;
            }
            if self.stale {
                if !self.read().await {
                    return None;
                }
                continue;
            }
            let expires = self.expires;
            let expired = async move {
                match expires {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let heartbeat = tokio::time::sleep(self.heartbeat);
            let settling = self.settling;
            // Every stream that shared the settling page asks for the same freshness, so one
            // read serves them all again.
            let settled_at = self.last_read + SETTLE;
            let settled = async move {
                match settling {
                    true => tokio::time::sleep(SETTLE).await,
                    false => std::future::pending().await,
                }
            };
            let cursor = self.cursor.get();
            let subscription = &mut self.subscription;
            let next = tokio::select! {
                biased;
                woken = subscription.woken() => match woken {
                    // The poll read a head this stream has sent already: nothing to read.
                    Some(Wake { through: Some(head), .. }) if !settling && cursor >= head => {
                        metrics::counter!(FEED_READS, "outcome" => "skipped").increment(1);
                        continue;
                    }
                    Some(wake) => Idle::Woken(wake.at),
                    None => Idle::End,
                },
                () = expired => Idle::End,
                () = settled => Idle::Woken(settled_at),
                () = heartbeat => Idle::Heartbeat,
            };
            match next {
                Idle::End => return None,
                Idle::Woken(at) => {
                    self.fresh_from = at;
                    self.stale = true;
                }
                Idle::Heartbeat => return Some(Bytes::from_static(b": heartbeat\n\n")),
            }
        }
    }

    /// Reads the next page of the feed; while the database fails, waits and tries again.
    /// `false` when the stream should end.
    async fn read(&mut self) -> bool {
        match self
            .subscription
            .changes(self.cursor, PAGE, self.lists, self.fresh_from, event)
            .await
        {
            Ok(read) => {
                self.failures = 0;
                self.stale = read.page.has_more;
                self.settling = read.page.settling;
                self.last_read = read.began;
                self.pending = Some((read, 0));
                true
            }
            // Purged past this stream's cursor while it lagged: the client resumes and is
            // told to sync again.
            Err(StoreError::HistoryExpired) => false,
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                tracing::debug!(%error, failures = self.failures, "cannot read the change feed");
                let wait = Duration::from_millis(100)
                    .saturating_mul(2u32.saturating_pow(self.failures.min(6)))
                    .min(MAX_RETRY);
                let subscription = &mut self.subscription;
                tokio::select! {
                    biased;
                    () = subscription.closing() => false,
                    () = tokio::time::sleep(wait) => true,
                }
            }
        }
    }
}

/// What ended an idle wait.
enum Idle {
    End,
    /// Woken by a write (at the instant of its wake), or the settling wait ended.
    Woken(Instant),
    Heartbeat,
}

/// One change as an SSE event. The JSON has no newline, so it fits one `data:` line.
fn event(change: &Change) -> Bytes {
    let (op, cursor) = match change {
        Change::Upsert { cursor, .. } | Change::ListUpsert { cursor, .. } => ("upsert", cursor),
        Change::Delete { cursor, .. } | Change::ListDelete { cursor, .. } => ("delete", cursor),
    };
    let mut frame = format!("id: {}\nevent: {op}\ndata: ", cursor.get()).into_bytes();
    let data = frame.len();
    // A change always serialises; were one not to, its data would be empty, not half written.
    if serde_json::to_writer(&mut frame, change).is_err() {
        frame.truncate(data);
    }
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since(query: &str) -> ChangeCursor {
        query::parse(query)
            .map(|request| request.since)
            .unwrap_or_default()
    }

    #[test]
    fn the_resume_point_prefers_last_event_id() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            resume_point(&headers, since("")).ok(),
            Some(ChangeCursor::START)
        );
        assert_eq!(
            resume_point(&headers, since("since=7"))
                .map(ChangeCursor::get)
                .ok(),
            Some(7)
        );
        headers.insert(LAST_EVENT_ID, HeaderValue::from_static("9"));
        assert_eq!(
            resume_point(&headers, since("since=7"))
                .map(ChangeCursor::get)
                .ok(),
            Some(9)
        );
        headers.insert(LAST_EVENT_ID, HeaderValue::from_static(""));
        assert_eq!(
            resume_point(&headers, since("since=7"))
                .map(ChangeCursor::get)
                .ok(),
            Some(7)
        );
        headers.insert(LAST_EVENT_ID, HeaderValue::from_static("x"));
        assert!(matches!(
            resume_point(&headers, since("")),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            query::parse("since=-1"),
            Err(ApiError::Validation { .. })
        ));
    }
}
