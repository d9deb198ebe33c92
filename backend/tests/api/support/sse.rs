//! A Server-Sent Events client over real HTTP, reading a stream frame by frame as a browser's
//! `fetch` does.

use std::time::Duration;

use serde_json::Value;

/// What a stream sends: an event, or a comment (the heartbeat).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Event { id: i64, event: String, data: Value },
    Comment(String),
}

/// One open stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

/// Opens `GET {base}/api/tasks/events` with `token`, resuming after `last_event_id` when
/// given. Returns the response as it arrived when it is not a 200.
pub async fn open(
    base: &str,
    token: &str,
    last_event_id: Option<&str>,
) -> Result<EventStream, (u16, String)> {
    open_path(base, "/api/tasks/events", token, last_event_id).await
}

/// As [`open`], at `path` (with a query string, such as `?include=lists`).
pub async fn open_path(
    base: &str,
    path: &str,
    token: &str,
    last_event_id: Option<&str>,
) -> Result<EventStream, (u16, String)> {
    let mut request = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request
        .send()
        .await
        .expect("the stream request is answered");
    if response.status() != 200 {
        let status = response.status().as_u16();
        return Err((status, response.text().await.unwrap_or_default()));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert_eq!(content_type, "text/event-stream");
    Ok(EventStream {
        response,
        buffer: String::new(),
    })
}

impl EventStream {
    /// The next frame; `None` when the server ended the stream. Panics when nothing arrives
    /// `within` (a stream that went silent, or a test waiting for the wrong thing).
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("nothing arrived on the stream within {within:?}"))
                .expect("the stream reads without error");
            match chunk {
                Some(bytes) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                None => {
                    assert!(self.buffer.is_empty(), "a partial frame: {:?}", self.buffer);
                    return None;
                }
            }
        }
    }

    /// The next `count` events, skipping heartbeats, all within `within`; panics if the
    /// stream ends or stalls first.
    pub async fn events(&mut self, count: usize, within: Duration) -> Vec<(i64, String, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        let mut events = Vec::with_capacity(count);
        while events.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {count} events within {within:?}",
                events.len()
            );
            match self.next(left).await {
                Some(Frame::Event { id, event, data }) => events.push((id, event, data)),
                Some(Frame::Comment(_)) => {}
                None => panic!("the stream ended after {} of {count} events", events.len()),
            }
        }
        events
    }
}

fn parse(block: &str) -> Frame {
    let (mut id, mut event, mut data) = (None, None, None);
    for line in block.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix(':') {
            return Frame::Comment(comment.trim().to_owned());
        }
        let (field, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("not a field: {line:?} in {block:?}"));
        match field {
            "id" => id = Some(value.parse().expect("a numeric id")),
            "event" => event = Some(value.to_owned()),
            "data" => data = Some(serde_json::from_str(value).expect("JSON data")),
            other => panic!("unexpected field {other:?}"),
        }
    }
    Frame::Event {
        id: id.expect("an id"),
        event: event.expect("an event name"),
        data: data.expect("data"),
    }
}
