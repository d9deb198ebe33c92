//! Serving: accept connections until told to stop, then drain within a bound.
//!
//! This is a small accept loop over hyper rather than `axum::serve`, to bound what a client
//! that sends nothing can hold. Every connection has a deadline from accept to its first
//! complete request head and an idle timeout between requests, whatever its protocol (a socket
//! that never sends, or sends only part of the HTTP/2 preface, is closed like any other), and
//! the number of open connections is capped: at the cap the longest-idle connection is closed
//! to make room, so idle sockets cannot exhaust the file limit and starve real requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::http::ShutdownFlag;
use crate::http::extract::PeerAddr;

/// How many not-yet-accepted connections the kernel may queue (capped by
/// `net.core.somaxconn`). The usual default of 128 drops connections in a burst of a
/// thousand clients, each then waiting a second to retry.
const LISTEN_BACKLOG: u32 = 4096;

/// File descriptors kept free of client connections: the listener, the database pool, the
/// JWKS client, log files and whatever the runtime needs.
const RESERVED_FILES: usize = 128;

/// The most bytes hyper buffers for one HTTP/1 request head. Heads within it reach the
/// service, whose own, smaller limits answer with the JSON error body; only a head past this
/// gets hyper's bare 431 or 414.
const MAX_HEAD_BUFFER: usize = 64 * 1024;

/// Binds a listening socket with [`LISTEN_BACKLOG`].
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Lets a restarted service bind again at once, with old connections in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// How long a new connection may take to send its first complete request head.
    pub header_timeout: Duration,
    /// How long a connection may go without a request in flight after its last response;
    /// this also bounds a later request that trickles its head.
    pub idle_timeout: Duration,
    /// The most open client connections.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after the shutdown signal.
    pub drain_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            // Longer than the common load-balancer idle timeouts (60 s), so that the balancer
            // closes a kept-alive connection first and never sends into one we are closing.
            idle_timeout: Duration::from_secs(75),
            max_connections: default_max_connections(),
            drain_timeout: Duration::from_secs(20),
        }
    }
}

/// What the open-file limit leaves room for, or 10,000 where the limit cannot be read.
fn default_max_connections() -> usize {
    open_file_limit().map_or(10_000, |limit| {
        limit.saturating_sub(RESERVED_FILES).clamp(16, 100_000)
    })
}

/// The soft limit on open files, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `app` on an already-bound `listener` until `shutdown` completes, then stops
/// accepting (new connections are refused), closes idle keep-alive connections, lets
/// in-flight requests finish (at most `options.drain_timeout`) and returns.
///
/// Taking a bound listener lets tests bind port 0 and know the address without sleeping.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let builder = Arc::new(protocol_builder());
    let registry = Arc::new(Registry::default());
    let connections = GracefulShutdown::new();
    let mut accept_errors = RateLimitedLog::default();
    let mut refused = RateLimitedLog::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually out of file descriptors: make room, and back off briefly
                    // instead of spinning.
                    registry.shed_longest_idle();
                    accept_errors.warn(|suppressed| {
                        tracing::warn!(%error, suppressed, "cannot accept a connection");
                    });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(tracker) = registry.admit(options.max_connections) else {
            refused.warn(|suppressed| {
                tracing::warn!(
                    max = options.max_connections,
                    suppressed,
                    "connection limit reached and no connection is idle: refusing"
                );
            });
            continue;
        };
        // Responses are small; don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(Tracked {
            app: app.clone(),
            connection: tracker.clone(),
            peer: PeerAddr(peer),
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = connections.watch(connection);
        let registry = registry.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection => if let Err(error) = result {
                    tracing::debug!(%error, "connection closed with an error");
                },
                // Dropping the connection closes its socket; nothing is in flight on it.
                () = tracker.expired(options) => tracing::debug!("closing an idle connection"),
            }
            registry.remove(tracker.id);
        });
    }
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => {}
        () = tokio::time::sleep(options.drain_timeout) => {
            tracing::warn!(
                seconds = options.drain_timeout.as_secs_f64(),
                "requests still running after the drain timeout; closing them"
            );
        }
    }
    Ok(())
}

fn protocol_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper's own header timeout also runs while a kept-alive connection waits for its
        // next request, which would cut every idle connection at the header timeout. The
        // connection tracker below applies both deadlines instead.
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BUFFER)
        // Above the service's own limit, which answers with a JSON 431.
        .max_headers(crate::http::request_limits::MAX_HEADERS * 2);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Pings find peers that vanished without closing; a missed pong closes the connection.
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .max_header_list_size(MAX_HEAD_BUFFER as u32);
    builder
}

/// Completes when `signal` does (in production [`shutdown_signal`]), raises `flag` so that
/// `/ready` fails, and completes `grace` later: load balancers polling `/ready` stop sending
/// new requests while the listener still accepts and serves them.
pub async fn shutdown_after_grace(
    signal: impl Future<Output = ()>,
    flag: ShutdownFlag,
    grace: Duration,
) {
    signal.await;
    flag.raise();
    if !grace.is_zero() {
        tracing::info!(
            seconds = grace.as_secs_f64(),
            "failing /ready before the listener closes"
        );
        tokio::time::sleep(grace).await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}

/// The open connections, so that the longest-idle one can be closed to make room.
#[derive(Default)]
struct Registry {
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Registry {
    /// A tracker for a new connection; at the cap, first closes the longest-idle connection,
    /// and refuses (`None`) when every connection has a request in flight.
    fn admit(&self, max: usize) -> Option<Arc<Connection>> {
        let mut connections = lock(&self.connections);
        if connections.len() >= max && !Self::shed(&connections) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::new(id));
        connections.insert(id, connection.clone());
        Some(connection)
    }

    fn shed_longest_idle(&self) {
        Self::shed(&lock(&self.connections));
    }

    fn shed(connections: &HashMap<u64, Arc<Connection>>) -> bool {
        let victim = connections
            .values()
            .filter_map(|connection| Some((connection.idle_since()?, connection)))
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, connection)) => {
                connection.shed();
                true
            }
            None => false,
        }
    }

    fn remove(&self, id: u64) {
        lock(&self.connections).remove(&id);
    }
}

/// One connection's requests in flight, and since when it has had none.
struct Connection {
    id: u64,
    state: Mutex<ConnectionState>,
    changed: Notify,
}

struct ConnectionState {
    in_flight: usize,
    idle_since: Instant,
    /// Whether a complete request head has arrived yet.
    served: bool,
    /// Closed to make room for another.
    shed: bool,
}

impl Connection {
    fn new(id: u64) -> Self {
        Connection {
            id,
            state: Mutex::new(ConnectionState {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
                shed: false,
            }),
            changed: Notify::new(),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut state = lock(&self.state);
        state.in_flight += 1;
        state.served = true;
        InFlight(self.clone())
    }

    /// Since when the connection has had nothing in flight, unless it is already shed.
    fn idle_since(&self) -> Option<Instant> {
        let state = lock(&self.state);
        (state.in_flight == 0 && !state.shed).then_some(state.idle_since)
    }

    fn shed(&self) {
        lock(&self.state).shed = true;
        self.changed.notify_one();
    }

    /// Completes when the connection should be closed: shed, or idle past its deadline (the
    /// header timeout before its first request, the idle timeout after).
    async fn expired(&self, options: ServeOptions) {
        loop {
            let deadline = {
                let state = lock(&self.state);
                if state.shed {
                    return;
                }
                let limit = if state.served {
                    options.idle_timeout
                } else {
                    options.header_timeout
                };
                (state.in_flight == 0).then(|| state.idle_since + limit)
            };
            match deadline {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A request in flight, from its head's arrival until its response body is dropped (which,
/// for a stream, is when the stream ends).
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
        }
        drop(state);
        self.0.changed.notify_one();
    }
}

/// The application, counting the requests in flight on one connection.
#[derive(Clone)]
struct Tracked {
    app: Router,
    connection: Arc<Connection>,
    /// Given to every request, for the limit on failed authentication.
    peer: PeerAddr,
}

impl<B> tower::Service<Request<B>> for Tracked
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let in_flight = self.connection.begin();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(self.peer);
        let response = self.app.clone().oneshot(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(Guarded {
                    body,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A response body that holds its request's [`InFlight`] until it is dropped.
struct Guarded {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A warning logged at most once per interval, with the count of those held back.
#[derive(Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    const INTERVAL: Duration = Duration::from_secs(10);

    fn warn(&mut self, log: impl FnOnce(u64)) {
        if self
            .last
            .is_some_and(|last| last.elapsed() < Self::INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        log(self.suppressed);
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read() {
        if std::path::Path::new("/proc/self/limits").exists() {
            assert!(open_file_limit().is_some_and(|limit| limit > 0));
        }
        assert!(default_max_connections() >= 16);
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_connection_is_shed() {
        let registry = Registry::default();
        let oldest = registry.admit(2).expect("room");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let busy = registry.admit(2).expect("room");
        let _request = busy.begin();
        let newest = registry.admit(2).expect("an idle one makes room");
        assert!(lock(&oldest.state).shed, "the idle one goes");
        assert!(!lock(&busy.state).shed, "a connection with a request stays");
        registry.remove(oldest.id);
        let _second = newest.begin();
        assert!(registry.admit(2).is_none(), "all busy: refused");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_deadlines_depend_on_whether_a_request_came() {
        let options = ServeOptions {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            ..ServeOptions::default()
        };
        let silent = Arc::new(Connection::new(0));
        let started = Instant::now();
        silent.expired(options).await;
        assert_eq!(started.elapsed().as_secs(), 2);

        let used = Arc::new(Connection::new(1));
        drop(used.begin());
        let started = Instant::now();
        used.expired(options).await;
        assert_eq!(started.elapsed().as_secs(), 5);
    }

    #[test]
    fn repeated_warnings_are_held_back() {
        let mut log = RateLimitedLog::default();
        let mut logged = Vec::new();
        for _ in 0..500 {
            log.warn(|suppressed| logged.push(suppressed));
        }
        assert_eq!(logged, [0]);
    }
}
