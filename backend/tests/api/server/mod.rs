//! The accept loop (`src/server.rs`) over real TCP, serving the in-process app: graceful
//! shutdown, slow clients, what only the HTTP parser answers. `connections` runs the binary
//! for the connection deadlines and cap.

mod connections;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::util::MapRequestLayer;

use todo_backend::server::{ServeOptions, serve_with, shutdown_after_grace};

use crate::support::app::{TestApp, token};

/// The app served on a loopback port, as [`start`] leaves it.
struct Running {
    address: std::net::SocketAddr,
    /// Raises the shutdown signal.
    stop: tokio::sync::oneshot::Sender<()>,
    /// The server's task, which ends when serving has finished.
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// How many requests have reached the router: their heads are read, their bodies may not be.
    begun: tokio::sync::watch::Receiver<usize>,
}

impl Running {
    /// Waits (bounded) until `count` requests have reached the router, so that a request a
    /// test has started sending is in the server's hands before the test signals shutdown.
    async fn until_begun(&mut self, count: usize) {
        tokio::time::timeout(Duration::from_secs(5), self.begun.wait_for(|n| *n >= count))
            .await
            .unwrap_or_else(|_| panic!("{count} request(s) never reached the router"))
            .expect("the router is alive");
    }
}

/// Starts `app` on a loopback port.
async fn start(app: &TestApp, options: ServeOptions) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let flag = app.shutdown.clone();
    let signal = async move {
        let _ = stopped.await;
        flag.raise();
    };
    let (counter, begun) = tokio::sync::watch::channel(0);
    let counter = Arc::new(counter);
    let router = app
        .router
        .clone()
        .layer(MapRequestLayer::new(move |request: Request<Body>| {
            counter.send_modify(|n| *n += 1);
            request
        }));
    let server = tokio::spawn(serve_with(listener, router, signal, options));
    Running {
        address,
        stop,
        server,
        begun,
    }
}

/// Reads until the peer closes, or `limit` passes. Returns what was read and whether the
/// peer closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&received).into(), true),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into(), false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_refuses_new_ones_and_drops_idle_ones() {
    let app = TestApp::builder().build().await;
    let mut running = start(&app, ServeOptions::default()).await;
    let address = running.address;
    let alice = token("alice");

    // An idle keep-alive client, which must not delay the exit.
    let mut idle = TcpStream::connect(address).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.expect("response");
    assert_eq!(&first, b"HTTP/1.1 200");

    // A slow client, halfway through sending its body when the signal arrives.
    let body = r#"{"title":"sent slowly"}"#;
    let (head, tail) = body.split_at(10);
    let mut slow = TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    );
    slow.write_all(request.as_bytes()).await.expect("write");
    // The idle client's request and the slow one are both in the server's hands.
    running.until_begun(2).await;

    let signalled = Instant::now();
    running.stop.send(()).expect("server is running");

    // /ready fails as soon as the flag is up.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !app.shutdown.is_raised() {
        assert!(Instant::now() < deadline, "flag raised");
        tokio::task::yield_now().await;
    }
    app.request(Method::GET, "/ready")
        .send()
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE);

    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match TcpStream::connect(address).await {
            Err(_) => break,
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "still accepting after the signal"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    // The idle connection is closed by the server.
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(2)).await;
    assert!(closed, "the idle keep-alive connection was closed");

    // The slow request completes.
    slow.write_all(tail.as_bytes())
        .await
        .expect("write the rest");
    let (response, _) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.contains("sent slowly"), "{response}");

    let finished = tokio::time::timeout(Duration::from_secs(5), running.server)
        .await
        .expect("server stops")
        .expect("server task");
    assert!(finished.is_ok());
    eprintln!(
        "drained and stopped {:?} after the signal",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_is_bounded_by_its_timeout() {
    let app = TestApp::builder().build().await;
    let options = ServeOptions {
        drain_timeout: Duration::from_millis(500),
        ..ServeOptions::default()
    };
    let mut running = start(&app, options).await;
    // A request whose body never finishes.
    let mut stuck = TcpStream::connect(running.address).await.expect("connect");
    stuck
        .write_all(b"POST /api/tasks HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("write");
    running.until_begun(1).await;
    let signalled = Instant::now();
    running.stop.send(()).expect("running");
    tokio::time::timeout(Duration::from_secs(5), running.server)
        .await
        .expect("the server gave up on the stuck request")
        .expect("task")
        .expect("serve");
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "{:?}",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_headers_is_cut_off_and_others_are_served() {
    let app = TestApp::builder().build().await;
    let options = ServeOptions {
        header_timeout: Duration::from_millis(500),
        ..ServeOptions::default()
    };
    let Running {
        address,
        stop,
        server,
        ..
    } = start(&app, options).await;

    let mut slowloris = TcpStream::connect(address).await.expect("connect");
    slowloris
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut closed = false;
    // Keep trickling header bytes; the deadline is for the whole header, not each byte.
    while started.elapsed() < Duration::from_secs(5) {
        if slowloris.write_all(b"X-Slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), slowloris.read(&mut byte)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection was closed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let mut healthy = TcpStream::connect(address).await.expect("still accepting");
    healthy
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let (response, _) = read_until_closed(&mut healthy, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    stop.send(()).expect("running");
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_fails_for_the_grace_period_before_the_listener_closes() {
    let app = TestApp::builder().build().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let grace = Duration::from_secs(1);
    let signal = async move {
        let _ = stopped.await;
    };
    let shutdown = shutdown_after_grace(signal, app.shutdown.clone(), grace);
    let server = tokio::spawn(serve_with(
        listener,
        app.router.clone(),
        shutdown,
        ServeOptions::default(),
    ));
    assert_eq!(get(address, "/ready").await, 200);

    let signalled = Instant::now();
    stop.send(()).expect("server is running");
    let deadline = signalled + Duration::from_secs(2);
    while !app.shutdown.is_raised() {
        assert!(Instant::now() < deadline, "flag raised");
        tokio::task::yield_now().await;
    }
    // During the grace period: new connections are still accepted and served, and /ready
    // tells the load balancer to stop sending them.
    assert_eq!(get(address, "/ready").await, 503);
    assert_eq!(get(address, "/health").await, 200);
    assert!(
        signalled.elapsed() < grace,
        "checked within the grace period (machine too slow to tell)"
    );

    let finished = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("server task");
    assert!(finished.is_ok());
    assert!(
        signalled.elapsed() >= grace,
        "the listener stayed open for the whole grace period"
    );
    assert!(
        TcpStream::connect(address).await.is_err(),
        "closed after it"
    );
}

/// `GET path` on a new connection; the response's status.
async fn get(address: std::net::SocketAddr, path: &str) -> u16 {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {response:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_too_large_is_refused_at_once_over_tcp() {
    let app = TestApp::builder().build().await;
    let running = start(&app, ServeOptions::default()).await;
    let address = running.address;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
        token("alice")
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains(r#""status_code":413"#), "{response}");
    assert!(closed, "the connection is not kept waiting for the body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_heads_are_refused_by_the_parser() {
    // These never reach the service; hyper answers them with a bare status (see docs/security.md).
    let app = TestApp::builder().build().await;
    let running = start(&app, ServeOptions::default()).await;
    let address = running.address;
    for head in [
        "GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET /health HTTP/1.2\r\nHost: t\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("write");
        let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{head:?}: {response}");
        assert!(closed, "{head:?}");
    }
}
