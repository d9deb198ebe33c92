//! Logging and metrics: the tracing subscriber, request ids, one span, one line and one
//! histogram sample per request.

pub mod metrics;

use std::io::IsTerminal;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tracing::{Instrument, field};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The filter used when `RUST_LOG` is not set.
/// PostgreSQL's notices (sqlx logs them at INFO) are left out: the migrator's "already exists,
/// skipping" on every start is noise.
pub const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Checks a `RUST_LOG` filter, so that a typo is refused at start-up instead of silently
/// logging at the default level.
pub fn parse_filter(raw: &str) -> Result<String, String> {
    EnvFilter::builder()
        .parse(raw)
        .map(|_| raw.to_owned())
        .map_err(|error| format!("not a valid log filter: {error}"))
}

/// Installs the global subscriber: `filter` (checked by [`parse_filter`]) or `info`, in text
/// or JSON lines. Logs go to stderr, leaving stdout to commands such as `token`.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = EnvFilter::builder()
        .parse(filter.unwrap_or(DEFAULT_FILTER))
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only for a person at a terminal: escape codes in a file or a collector's input
    // are noise (and cost a little on every line).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second initialisation (as in tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // The request's fields once, under "span" (the default would repeat them under
        // "spans" too).
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// The header that carries a request's id, in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Gives `request` an id: the client's `X-Request-Id` when it is sane, else a new UUID. The id
/// goes into the logs and, as the returned header, back to the client, so one can quote it in
/// a bug report.
pub fn assign_request_id(request: &mut Request) -> HeaderValue {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let header = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"));
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), header.clone());
    request.extensions_mut().insert(RequestId(id));
    header
}

/// Short, and made only of characters that cannot forge log lines or headers.
fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Runs `handle` on `request` in a span named by its route (not its raw path, which would make
/// every task id its own log key), records its duration and logs one line when the response is
/// ready. Health checks log at debug so that probes do not drown the log.
pub async fn traced<F>(request: Request, handle: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str)
        .to_owned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        request_id = %request_id,
        user_id = field::Empty,
        auth_error = field::Empty,
    );
    let method = metrics::method_label(request.method());
    let started = Instant::now();
    let active = ::metrics::gauge!(metrics::ACTIVE_REQUESTS, "http_request_method" => method);
    active.increment(1.0);
    // Decremented however the request ends, a dropped one included.
    let _active = Active(active);
    let response = handle(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    ::metrics::histogram!(
        metrics::REQUEST_DURATION,
        "http_request_method" => method,
        "http_route" => route.clone(),
        "http_response_status_code" => status.to_string(),
    )
    .record(elapsed.as_secs_f64());
    // Whole microseconds as milliseconds: 0.524, not 0.5237109999999999.
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    let _entered = span.enter();
    if route == "/health" || route == "/ready" || route == "/metrics" {
        tracing::debug!(status, latency_ms, "response");
    } else if status >= 500 {
        tracing::error!(status, latency_ms, "response");
    } else {
        tracing::info!(status, latency_ms, "response");
    }
    response
}

/// One request in flight, for [`metrics::ACTIVE_REQUESTS`].
struct Active(::metrics::Gauge);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_checked() {
        assert!(is_sane("abc-123_x.y:z"));
        assert!(is_sane(&"a".repeat(128)));
        for bad in ["", " ", "a b", "a\nb", "<script>", &"a".repeat(129)] {
            assert!(!is_sane(bad), "{bad:?}");
        }
    }

    #[test]
    fn log_filters_are_checked() {
        for ok in [
            "info",
            "todo_backend=debug,tower_http=warn",
            "warn,sqlx=off",
        ] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["info,=x", "todo_backend=loud", "[{"] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
