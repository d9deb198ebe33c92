//! Prometheus metrics, served as text at `/metrics`.
//!
//! Request durations are a histogram with fixed buckets, not a summary: buckets from many
//! instances add up into one fleet-wide percentile, quantiles do not. Names and labels follow
//! OpenTelemetry's HTTP semantic conventions in Prometheus form, with the route template as
//! the route (never the raw path, whose ids would make a series per task).

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::live::hub::Hub;
use crate::store::Pool;

/// `http.server.request.duration`, in seconds.
pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";

/// `http.server.active_requests`.
pub const ACTIVE_REQUESTS: &str = "http_server_active_requests";

/// OpenTelemetry's recommended buckets for `http.server.request.duration`.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The method as a label: one of HTTP's registered methods, or `_OTHER` for any other name.
/// Every label comes from a closed set (this, route templates, status codes), so that no
/// client can add series: a series never goes away, and a method name is whatever a client
/// writes (OpenTelemetry's rule for `http.request.method`).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// The process's recorder, installed on first use; a process has one, so every service a
/// process assembles (the tests assemble many) shares it. Without it the `metrics` macros
/// record nothing and cost next to nothing.
pub fn install() -> Result<PrometheusHandle, String> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut installed = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), &BUCKETS)
        .map_err(|error| error.to_string())?
        .install_recorder()
        .map_err(|error| format!("cannot install the metrics recorder: {error}"))?;
    Ok(installed.insert(handle).clone())
}

/// What a scrape reads besides the recorded series: gauges of state owned elsewhere.
#[derive(Clone)]
pub struct Scrape {
    pub handle: PrometheusHandle,
    pub pool: Arc<dyn Pool>,
    pub events: Arc<Hub>,
}

/// `GET /metrics`, on its own router so that it can be served on another address.
pub fn router(scrape: Scrape) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(scrape)
}

async fn render(State(scrape): State<Scrape>) -> Response {
    let pool = scrape.pool.pool_status();
    metrics::gauge!("db_client_connections_usage", "state" => "idle").set(pool.idle);
    metrics::gauge!("db_client_connections_usage", "state" => "used")
        .set(pool.open.saturating_sub(pool.idle));
    metrics::gauge!("db_client_connections_max").set(pool.max);
    metrics::gauge!("events_open_streams").set(scrape.events.open_streams() as f64);
    scrape.handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        scrape.handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_registered_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for name in ["FOO", "get", "PROPFIND", "X-1"] {
            let method = Method::from_bytes(name.as_bytes()).expect("a valid token");
            assert_eq!(method_label(&method), "_OTHER", "{name}");
        }
    }
}
