//! Start-up next to a database that is still booting: the service retries, saying why, and
//! either gives up with the cause or serves once the database answers.

use std::time::{Duration, Instant};

use crate::support::app::{PgTestDatabase, SECRET};
use crate::support::spawned::{Server, free_port, run};

#[test]
fn start_up_waits_for_a_database_that_is_still_booting() {
    // Nothing listens: the service retries, saying why, then gives up with the cause.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("postgres://todo@127.0.0.1:{port}/todo");
    let started = Instant::now();
    let output = run(
        dir.path(),
        &["serve", "--port", "0"],
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", &url),
            ("DB_STARTUP_TIMEOUT", "2"),
        ],
    );
    let took = started.elapsed();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        took >= Duration::from_millis(1500),
        "gave up after {took:?}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(log.matches("database not ready").count() >= 2, "{log}");
    assert!(log.contains("cannot open the database"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
async fn start_up_succeeds_once_the_database_comes_up() {
    let database = PgTestDatabase::create().await;
    let options = database.options();
    let (pg_host, pg_port) = (options.get_host().to_owned(), options.get_port());
    let host = pg_host.clone();
    // A port that refuses connections for 1.5 s, then forwards them to PostgreSQL.
    let port = free_port();
    let forwarder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let target = format!("{pg_host}:{pg_port}");
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    let direct = database.url_with("sslmode=disable");
    // The port in the URL, or after the host when the URL leaves it to the default.
    let url = match direct.contains(&format!(":{pg_port}/")) {
        true => direct.replacen(&format!(":{pg_port}/"), &format!(":{port}/"), 1),
        false => direct.replacen(&format!("@{host}/"), &format!("@127.0.0.1:{port}/"), 1),
    };
    assert_ne!(url, direct, "the URL leads to the forwarding port");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let server = tokio::task::spawn_blocking({
        let url = url.clone();
        let dir = dir.path().to_owned();
        move || {
            Server::start(
                &dir,
                &[
                    ("BETTER_AUTH_SECRET", SECRET),
                    ("DATABASE_URL", &url),
                    ("DB_STARTUP_TIMEOUT", "20"),
                ],
            )
        }
    })
    .await
    .expect("started");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "it cannot have connected before the port opened"
    );
    let (status, _) = crate::support::spawned::http(
        server.port,
        "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let (_, log) = tokio::task::spawn_blocking(move || server.stop())
        .await
        .expect("stopped");
    assert!(
        log.iter().any(|line| line.contains("database not ready")),
        "{log:?}"
    );
    forwarder.abort();
}
