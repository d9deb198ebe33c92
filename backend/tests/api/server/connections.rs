//! Connections that send nothing, or only part of a request, cannot exhaust the service:
//! each is closed by its deadline, the longest-idle go first at the connection cap, and
//! `/health` keeps answering throughout. Runs the real binary with a low open-file limit.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{SECRET, token};
use crate::support::spawned::Server;

/// HTTP/2's connection preface followed by an empty SETTINGS frame: a valid, idle h2 client.
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Reads until the peer closes (or resets) the connection; `None` if it is still open at
/// `deadline`.
async fn closed_by(mut stream: TcpStream, deadline: Instant) -> Option<Instant> {
    let mut buffer = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// `GET /health` on a fresh connection: its status and how long it took.
async fn health(port: u16) -> (Option<u16>, Duration) {
    let started = Instant::now();
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response);
        text.split(' ').nth(1)?.parse().ok()
    };
    let status = tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten();
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed_and_health_keeps_answering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header_timeout = Duration::from_secs(2);
    let env = [
        ("HTTP_HEADER_TIMEOUT_SECONDS", "2"),
        ("HTTP_IDLE_TIMEOUT_SECONDS", "3"),
        ("JWT_SECRET", "connections-test-secret-0123456789abcdef"),
    ];
    // 256 files: the default connection cap leaves room for the rest, below 300 sockets.
    let server = Server::start_with_file_limit(dir.path(), &env, 256);
    let port = server.port;

    let opened = Instant::now();
    let deadline = opened + header_timeout + Duration::from_secs(5);
    let mut sockets = Vec::new();
    for n in 0..300 {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the kernel accepts the connection");
        let sent: &[u8] = match n % 3 {
            0 => b"",
            1 => b"PRI * HTTP/2.0\r\n",
            _ => H2_PREFACE_AND_SETTINGS,
        };
        let _ = stream.write_all(sent).await;
        sockets.push(tokio::spawn(closed_by(stream, deadline)));
    }

    // Meanwhile /health must keep answering.
    let mut latencies = Vec::new();
    while Instant::now() < opened + header_timeout + Duration::from_secs(1) {
        let (status, took) = health(port).await;
        assert_eq!(status, Some(200), "/health answered during the flood");
        latencies.push(took);
        // The pace of the probes while the flood lasts, not a wait for anything.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut closed_after = Vec::new();
    for (n, socket) in sockets.into_iter().enumerate() {
        let closed = socket.await.expect("reader task");
        let closed = closed.unwrap_or_else(|| panic!("socket {n} (kind {}) is still open", n % 3));
        closed_after.push(closed.duration_since(opened));
    }
    latencies.sort();
    closed_after.sort();
    let open_at = |t: Duration| closed_after.iter().filter(|c| **c > t).count();
    eprintln!(
        "open sockets after 0.5 s: {}, 1 s: {}, 2 s: {}, 2.5 s: {}, 3 s: {}; all closed by {:?}",
        open_at(Duration::from_millis(500)),
        open_at(Duration::from_secs(1)),
        open_at(Duration::from_secs(2)),
        open_at(Duration::from_millis(2500)),
        open_at(Duration::from_secs(3)),
        closed_after.last(),
    );
    eprintln!(
        "/health during the flood: {} requests, median {:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies.last(),
    );
    let (_, log) = server.stop();
    let accept_warnings = log
        .iter()
        .filter(|line| line.contains("cannot accept"))
        .count();
    assert!(
        accept_warnings <= 2,
        "accept errors are rate-limited: {accept_warnings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("HTTP_HEADER_TIMEOUT_SECONDS", "1"),
        ("HTTP_IDLE_TIMEOUT_SECONDS", "2"),
        ("JWT_SECRET", "connections-test-secret-0123456789abcdef"),
    ];
    let server = Server::start(dir.path(), &env);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("connects");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("request");
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.expect("response");
    assert_eq!(&first, b"HTTP/1.1 200");
    let answered = Instant::now();
    let closed = closed_by(stream, answered + Duration::from_secs(6))
        .await
        .expect("closed by the server");
    let idle = closed.duration_since(answered);
    // Not after the header timeout (1 s): a connection that has served a request gets the
    // idle timeout (2 s).
    assert!(idle >= Duration::from_millis(1500), "closed after {idle:?}");
    server.stop();
}

/// Opens an event stream as `token` on a connection of its own: the status, and the
/// connection kept open when the stream was granted.
async fn open_stream(port: u16, token: &str) -> (u16, Option<TcpStream>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the kernel accepts the connection");
    let request = format!(
        "GET /api/tasks/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read_head = async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_head)
        .await
        .expect("the stream request is answered");
    let text = String::from_utf8_lossy(&head);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, (status == 200).then_some(stream))
}

/// Streams are requests that never end, so the connection cap cannot close them: they may take
/// only half of the connections, and a new client still gets `/health` and the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_never_take_the_last_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("BETTER_AUTH_SECRET", SECRET),
        ("DATABASE_URL", "sqlite::memory:"),
    ];
    // 256 files leave 128 client connections: at most 64 streams.
    let server = Server::start_with_file_limit(dir.path(), &env, 256);
    let port = server.port;
    let mut open = Vec::new();
    let mut refused = Vec::new();
    // 30 users, each up to their cap of 10: far more than the instance grants.
    for user in 0..30 {
        let token = token(&format!("streamer-{user}"));
        for _ in 0..10 {
            match open_stream(port, &token).await {
                (200, Some(stream)) => open.push(stream),
                (status, _) => refused.push(status),
            }
        }
    }
    assert!(
        (1..=64).contains(&open.len()),
        "streams granted: {} (at most half of 128 connections)",
        open.len()
    );
    assert!(
        refused.iter().all(|status| *status == 503),
        "past the instance's cap a stream is a 503: {refused:?}"
    );
    let (status, _) = health(port).await;
    assert_eq!(status, Some(200), "/health from a new client");
    let mut client = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let request = format!(
        "GET /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\n\r\n",
        token("ordinary")
    );
    client.write_all(request.as_bytes()).await.expect("sent");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut response))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "an ordinary GET from a new client: {}",
        String::from_utf8_lossy(&response[..response.len().min(200)])
    );
    drop(open);
    server.stop();
}
