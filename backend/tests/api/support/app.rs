//! What every test needs: a fresh app on a fresh database, tokens, and a client.

use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, Executor};
use tower::ServiceExt;

use todo_backend::auth::Verifier;
use todo_backend::auth::hs256::HmacSecret;
use todo_backend::config::ServeConfig;
use todo_backend::http::ShutdownFlag;
use todo_backend::http::policy::HttpSettings;
use todo_backend::live::hub::{EventSettings, Hub};
use todo_backend::startup::Service;
use todo_backend::store::{self, PgStore, PoolSettings, TaskStore, TransactionPooler};

/// The shared secret every test app verifies HS256 tokens with.
pub const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

/// Generous enough that a loaded CI machine does not turn queueing into 503s.
pub const POOL: PoolSettings = PoolSettings {
    max_connections: 5,
    acquire_timeout: Duration::from_secs(10),
    transaction_pooler: TransactionPooler::Auto,
};

/// Runs each named `async fn name(app: &TestApp)` once per backend, as `sqlite::name` and
/// `postgres::name`. Without `TEST_DATABASE_URL` (outside CI) the PostgreSQL half is
/// reported as ignored, not as passed; under CI it must run.
#[macro_export]
macro_rules! backend_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let app = $crate::support::app::TestApp::builder().build().await;
                    super::$test(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
                async fn $test() {
                    let app = $crate::support::app::TestApp::builder().postgres().build().await;
                    super::$test(&app).await;
                }
            )*
        }
    };
}

/// The application under test, on a database of its own that disappears with it.
pub struct TestApp {
    pub router: Router,
    pub store: Arc<dyn TaskStore>,
    /// The app's live streams.
    pub events: Arc<Hub>,
    /// The flag `/ready` reads, as the binary raises it on SIGTERM.
    pub shutdown: ShutdownFlag,
    /// Options that reach the same database from outside the app (PostgreSQL only).
    pub pg_options: Option<PgConnectOptions>,
    /// The database file (SQLite only).
    sqlite_path: Option<std::path::PathBuf>,
    // Declared last so that it is dropped after the store's pool.
    _database: TestDatabase,
}

/// Held only so that dropping the app removes its database.
#[allow(dead_code)]
enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres(Box<PgTestDatabase>),
}

/// How to build a [`TestApp`]: SQLite, the test secret and default settings unless told.
pub struct TestAppBuilder {
    postgres: bool,
    pool: PoolSettings,
    verifier: Option<Verifier>,
    settings: HttpSettings,
    events: EventSettings,
}

impl TestAppBuilder {
    /// On a fresh PostgreSQL database (`TEST_DATABASE_URL`), through the pooler at
    /// `TEST_POOLER_ADDRESS` when that is set.
    pub fn postgres(mut self) -> Self {
        self.postgres = true;
        self
    }

    pub fn pool(mut self, pool: PoolSettings) -> Self {
        self.pool = pool;
        self
    }

    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    pub fn settings(mut self, settings: HttpSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn events(mut self, events: EventSettings) -> Self {
        self.events = events;
        self
    }

    pub async fn build(self) -> TestApp {
        init_logging();
        let (store, database, pg_options, sqlite_path) = if self.postgres {
            let database = PgTestDatabase::create().await;
            let options = database.options();
            let (store_options, pool) = through_pooler(options.clone(), self.pool);
            let store = PgStore::connect_with(store_options, pool)
                .await
                .expect("postgres connects");
            let store: Arc<dyn TaskStore> = Arc::new(store);
            (
                store,
                TestDatabase::Postgres(Box::new(database)),
                Some(options),
                None,
            )
        } else {
            let dir = tempfile::tempdir().expect("temporary directory");
            let path = dir.path().join("todo.db");
            let url = format!("sqlite://{}", path.display());
            let url = url.parse().expect("a valid SQLite URL");
            let store = store::open(&url, self.pool).await.expect("sqlite opens");
            (store, TestDatabase::Sqlite(dir), None, Some(path))
        };
        store.migrate().await.expect("migrations apply");
        let verifier = self.verifier.unwrap_or_else(test_verifier);
        // The production assembly, with the settings a test needs: limits far above what one
        // test sends (their own tests set them), metrics on the API's port (no fixed port
        // that parallel tests would fight over), and the streams' timings under test.
        let origins: Vec<&str> = self
            .settings
            .cors_allowed_origins
            .iter()
            .filter_map(|origin| origin.to_str().ok())
            .collect();
        let events = self.events;
        let flags = [
            ("--rate-limit-per-minute", "0".to_owned()),
            ("--auth-failures-per-minute", "0".to_owned()),
            ("--metrics-addr", "main".to_owned()),
            ("--shutdown-grace-seconds", "0".to_owned()),
            (
                "--events-poll-ms",
                events.poll_interval.as_millis().to_string(),
            ),
            (
                "--events-heartbeat-ms",
                events.heartbeat.as_millis().to_string(),
            ),
            ("--events-max-per-user", events.max_per_user.to_string()),
            ("--events-max-streams", events.max_streams.to_string()),
            ("--cors-allowed-origins", origins.join(",")),
        ];
        let args: Vec<String> = flags
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .flat_map(|(flag, value)| [flag.to_owned(), value])
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let config = ServeConfig::from_args(&args).expect("the test configuration parses");
        let service = Service::builder(&config, store.clone())
            .verifier(verifier)
            .build()
            .await
            .expect("the service assembles");
        TestApp {
            events: service.events.clone(),
            shutdown: service.shutdown.clone(),
            router: service.router.clone(),
            store,
            pg_options,
            sqlite_path,
            _database: database,
        }
    }
}

/// The store's options and pool settings, through `TEST_POOLER_ADDRESS` when it is set
/// (setup and checks stay direct).
fn through_pooler(
    options: PgConnectOptions,
    pool: PoolSettings,
) -> (PgConnectOptions, PoolSettings) {
    match std::env::var("TEST_POOLER_ADDRESS") {
        Ok(address) => {
            let (host, port) = address
                .rsplit_once(':')
                .expect("TEST_POOLER_ADDRESS is host:port");
            let options = options.host(host).port(port.parse().expect("port"));
            let pool = PoolSettings {
                transaction_pooler: TransactionPooler::On,
                ..pool
            };
            (options, pool)
        }
        Err(_) => (options, pool),
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            postgres: false,
            pool: POOL,
            verifier: None,
            settings: HttpSettings::default(),
            events: EventSettings::default(),
        }
    }

    /// Runs SQL on the app's database from outside the app, to set up what the API cannot
    /// (such as records older than a day): `postgres` or `sqlite`, by backend.
    pub async fn execute(&self, postgres: &str, sqlite: &str) {
        match (&self.pg_options, &self.sqlite_path) {
            (Some(options), _) => {
                let mut connection = PgConnection::connect_with(options).await.expect("connects");
                connection
                    .execute(AssertSqlSafe(postgres.to_owned()))
                    .await
                    .expect("the statement runs");
                let _ = connection.close().await;
            }
            (None, Some(path)) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
                let mut connection = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .expect("opens");
                connection
                    .execute(AssertSqlSafe(sqlite.to_owned()))
                    .await
                    .expect("the statement runs");
                let _ = connection.close().await;
            }
            (None, None) => panic!("the app has no database"),
        }
    }

    /// Reads one number from the app's database from outside the app: what another client
    /// of the database sees (`postgres` or `sqlite`, by backend).
    pub async fn scalar(&self, postgres: &str, sqlite: &str) -> i64 {
        match (&self.pg_options, &self.sqlite_path) {
            (Some(options), _) => {
                let mut connection = PgConnection::connect_with(options).await.expect("connects");
                let value = sqlx::query_scalar(AssertSqlSafe(postgres.to_owned()))
                    .fetch_one(&mut connection)
                    .await
                    .expect("the query runs");
                let _ = connection.close().await;
                value
            }
            (None, Some(path)) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
                let mut connection = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .expect("opens");
                let value = sqlx::query_scalar(AssertSqlSafe(sqlite.to_owned()))
                    .fetch_one(&mut connection)
                    .await
                    .expect("the query runs");
                let _ = connection.close().await;
                value
            }
            (None, None) => panic!("the app has no database"),
        }
    }

    /// Starts a request to `uri`, to be finished with headers, a body and [`RequestBuilder::send`].
    pub fn request(&self, method: Method, uri: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            app: self,
            method,
            uri: uri.to_owned(),
            headers: Vec::new(),
            body: Body::empty(),
        }
    }

    /// Sends any request through the full router.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body is readable").to_bytes();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str, token: &str) -> TestResponse {
        self.request(Method::GET, uri).token(token).send().await
    }

    pub async fn post(&self, uri: &str, token: &str, body: &Value) -> TestResponse {
        self.request(Method::POST, uri)
            .token(token)
            .json(body)
            .send()
            .await
    }

    pub async fn put(&self, uri: &str, token: &str, body: &Value) -> TestResponse {
        self.request(Method::PUT, uri)
            .token(token)
            .json(body)
            .send()
            .await
    }

    pub async fn patch(&self, uri: &str, token: &str, body: &Value) -> TestResponse {
        self.request(Method::PATCH, uri)
            .token(token)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
            .await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> TestResponse {
        self.request(Method::DELETE, uri).token(token).send().await
    }

    /// Creates a task and returns it, failing the test unless the API answered 201.
    pub async fn create_task(&self, token: &str, body: Value) -> Value {
        let response = self.post("/api/tasks", token, &body).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        response.json()
    }

    /// The `id` of the task `json`, for building its URL.
    pub fn url_of(task: &Value) -> String {
        format!(
            "/api/tasks/{}",
            task["id"].as_i64().expect("task has an integer id")
        )
    }
}

/// A request being put together; see [`TestApp::request`].
pub struct RequestBuilder<'a> {
    app: &'a TestApp,
    method: Method,
    uri: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
}

impl RequestBuilder<'_> {
    /// `Authorization: Bearer <token>`.
    pub fn token(self, token: &str) -> Self {
        self.header(header::AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }

    /// Any header, sent exactly as given (repeating a name sends it twice).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_bytes(value.as_bytes()).expect("a valid header value");
        self.headers.push((name, value));
        self
    }

    /// A JSON body, with its content type.
    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }

    /// A body exactly as given; no content type is added.
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    pub async fn send(self) -> TestResponse {
        let mut request = Request::builder().method(self.method).uri(&self.uri);
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        let request = request.body(self.body).expect("a valid request");
        self.app.send(request).await
    }
}

/// Verifies HS256 tokens signed with [`SECRET`], with the default leeway.
pub fn test_verifier() -> Verifier {
    let secret = HmacSecret::new(SECRET).expect("secret is long enough");
    Verifier::hs256(&secret, Duration::from_secs(60))
}

/// A valid token for `user`, good for an hour.
pub fn token(user: &str) -> String {
    sign(&json!({ "sub": user, "exp": now() + 3600 }))
}

/// An HS256 token with exactly these claims, signed with the test secret.
pub fn sign(claims: &Value) -> String {
    sign_with(Algorithm::HS256, SECRET.as_bytes(), claims)
}

/// A token with these claims, signed with `alg` and an HMAC `key`.
pub fn sign_with(alg: Algorithm, key: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key))
        .expect("signing works")
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A response, fully read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the API's error shape: `status`, and a JSON body whose `status_code` matches
    /// and whose `detail` is a non-empty sentence. Returns the body.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "error bodies are JSON"
        );
        let body = self.json();
        assert_eq!(body["status_code"], status.as_u16(), "{body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty()),
            "{body}"
        );
        body
    }
}

/// A PostgreSQL database created for one test and dropped when the test ends.
pub struct PgTestDatabase {
    admin: PgConnectOptions,
    name: String,
}

impl PgTestDatabase {
    /// A new database on the server of `TEST_DATABASE_URL`. The PostgreSQL tests are ignored
    /// (at build time) when that is not set, so reaching this without it is a mistake.
    pub async fn create() -> PgTestDatabase {
        let url = std::env::var("TEST_DATABASE_URL")
            .expect("TEST_DATABASE_URL must be set for the PostgreSQL tests (see docs/testing.md)");
        let admin = PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL is valid");
        let name = format!("todo_test_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect_with(&admin)
            .await
            .expect("TEST_DATABASE_URL is reachable");
        connection
            .execute(AssertSqlSafe(format!(r#"create database "{name}""#)))
            .await
            .expect("test database is created");
        let _ = connection.close().await;
        PgTestDatabase { admin, name }
    }

    /// A URL for this test's database, with `query` (e.g. `sslmode=require`) appended.
    pub fn url_with(&self, query: &str) -> String {
        let base = std::env::var("TEST_DATABASE_URL").expect("set when the database exists");
        let (without_query, _) = base.split_once('?').unwrap_or((&base, ""));
        let (server, _) = without_query
            .rsplit_once('/')
            .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
            .unwrap_or((without_query, ""));
        format!("{server}/{}?{query}", self.name)
    }

    /// Options that connect to this test's database.
    pub fn options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside async code, possibly on a runtime thread: use a thread of our own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut connection = PgConnection::connect_with(&admin).await?;
                connection
                    .execute(AssertSqlSafe(format!(
                        r#"drop database if exists "{name}" with (force)"#
                    )))
                    .await?;
                connection.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

/// Logs from the service under test, shown only when `TEST_LOG` is set.
fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            todo_backend::telemetry::init(todo_backend::telemetry::LogFormat::Text, None);
        }
    });
}
