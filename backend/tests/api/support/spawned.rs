//! The binary, spawned as a user would run it, and a minimal HTTP client to talk to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_todo-backend");

/// A port nothing listens on now (the kernel picked it, and it was let go at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The binary in `dir` with none of the service's variables inherited from the test's
/// environment, so the defaults are what is tested.
pub fn todo_backend(dir: &Path) -> Command {
    clean(BINARY, dir)
}

/// `program` in `dir` with only `PATH` inherited.
fn clean(program: &str, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    // Tests stop servers with SIGTERM and need not wait for a load balancer.
    command.env("SHUTDOWN_GRACE_SECONDS", "0");
    // Most tests send far more than a user's quota; the limits' own tests set them.
    command.env("RATE_LIMIT_PER_MINUTE", "0");
    command.env("AUTH_FAILURES_PER_MINUTE", "0");
    // Many servers run at once: each its own metrics port.
    command.env("METRICS_ADDR", "127.0.0.1:0");
    command
}

pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = todo_backend(dir);
    with_env(&mut command, env);
    command.args(args).output().expect("the binary runs")
}

/// Sets `env` on `command`; an empty value removes the variable, so that a test sees a
/// default that the harness would otherwise set.
fn with_env(command: &mut Command, env: &[(&str, &str)]) {
    for (name, value) in env {
        match value.is_empty() {
            true => command.env_remove(name),
            false => command.env(name, value),
        };
    }
}

/// A minimal HTTP/1.1 exchange, enough to drive the server without another client crate.
pub fn http(port: u16, request: &str) -> (u16, String) {
    let response = exchange(port, request);
    (response.status, response.body)
}

/// A response read off the wire by [`exchange`].
pub struct RawResponse {
    pub status: u16,
    /// The status line and header lines.
    pub head: String,
    pub body: String,
}

impl RawResponse {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `request` (which should ask for `Connection: close`) and reads the whole response.
pub fn exchange(port: u16, request: &str) -> RawResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line");
    RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A running `todo-backend serve` on a free port, with its log collected in the background.
pub struct Server {
    pub port: u16,
    child: std::process::Child,
    stopped: bool,
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Server {
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut command = todo_backend(dir);
        command.args(["serve", "--port", "0"]);
        Self::spawn(command, env)
    }

    /// Like [`Server::start`], with at most `limit` open files (`ulimit -n`).
    pub fn start_with_file_limit(dir: &Path, env: &[(&str, &str)], limit: u32) -> Server {
        let mut shell = clean("sh", dir);
        shell.env("TODO_BIN", BINARY).args([
            "-c",
            &format!("ulimit -n {limit} && exec \"$TODO_BIN\" serve --port 0"),
        ]);
        Self::spawn(shell, env)
    }

    fn spawn(mut command: Command, env: &[(&str, &str)]) -> Server {
        with_env(&mut command, env);
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("server starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            assert!(Instant::now() < deadline, "no address reported: {seen:?}");
            let line = lines.next().expect("server is running").expect("utf-8 log");
            seen.push(line.clone());
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                break rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|port| port.parse::<u16>().ok())
                    .expect("port in log line");
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let log = std::thread::spawn(move || {
            seen.extend(lines.map_while(Result::ok));
            seen
        });
        Server {
            port,
            child,
            stopped: false,
            log: Some(log),
        }
    }

    /// SIGTERM, then the exit status and the whole log.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let exit = self.child.wait().expect("server exits");
        self.stopped = true;
        let log = self.log.take().map(|log| log.join().expect("log thread"));
        (exit, log.unwrap_or_default())
    }
}

impl Drop for Server {
    /// A test that fails before [`Server::stop`] must not leave its server running.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
