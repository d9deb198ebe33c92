//! What every test needs: a fresh app on a fresh database, tokens, and a client.

use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, Executor};
use tower::ServiceExt;

use todo_backend::app::{self, AppState, HttpSettings, ShutdownFlag};
use todo_backend::auth::Verifier;
use todo_backend::auth::hs256::HmacSecret;
use todo_backend::store::{PgStore, PoolSettings, SqliteStore, TaskStore, TransactionPooler};

/// The shared secret every test app verifies HS256 tokens with.
pub const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

/// Generous enough that a loaded CI machine does not turn queueing into 503s.
const POOL: PoolSettings = PoolSettings {
    max_connections: 5,
    acquire_timeout: Duration::from_secs(10),
    transaction_pooler: TransactionPooler::Auto,
};

/// Runs each named `async fn name(app: &TestApp)` once per backend, as
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let app = $crate::helpers::TestApp::sqlite().await;
                    super::$test(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(app) = $crate::helpers::TestApp::postgres().await else {
                        return;
                    };
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
    /// The flag `/ready` reads, as the binary raises it on SIGTERM.
    pub shutdown: ShutdownFlag,
    // Declared last so that it is dropped after the store's pool.
    _database: TestDatabase,
}

/// Held only so that dropping the app removes its database.
#[allow(dead_code)]
enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres(Box<PgTestDatabase>),
}

impl TestApp {
    /// An app on a new SQLite file in a temporary directory.
    pub async fn sqlite() -> TestApp {
        Self::sqlite_with_verifier(test_verifier()).await
    }

    /// An app on a new PostgreSQL database, or `None` when `TEST_DATABASE_URL` is not set.
    /// Under CI (`CI` set) a missing `TEST_DATABASE_URL` fails the test instead.
    pub async fn postgres() -> Option<TestApp> {
        Some(Self::postgres_with_pool(POOL).await?.0)
    }

    /// Like [`TestApp::postgres`] with the given pool, plus options that connect to the same
    /// database from outside the app.
    pub async fn postgres_with_pool(pool: PoolSettings) -> Option<(TestApp, PgConnectOptions)> {
        init_logging();
        let database = PgTestDatabase::create().await?;
        let options = database.options();
        let (store_options, pool) = match std::env::var("TEST_POOLER_ADDRESS") {
            // The store goes through a transaction-mode pooler; setup stays direct.
            Ok(address) => {
                let (host, port) = address
                    .rsplit_once(':')
                    .expect("TEST_POOLER_ADDRESS is host:port");
                let options = options.clone().host(host).port(port.parse().expect("port"));
                let pool = PoolSettings {
                    transaction_pooler: TransactionPooler::On,
                    ..pool
                };
                (options, pool)
            }
            Err(_) => (options.clone(), pool),
        };
        let store = PgStore::connect_with(store_options, pool)
            .await
            .expect("postgres connects");
        let database = TestDatabase::Postgres(Box::new(database));
        Some((Self::with_store(Arc::new(store), database).await, options))
    }

    /// An app on a new SQLite file that verifies tokens with `verifier`.
    pub async fn sqlite_with_verifier(verifier: Verifier) -> TestApp {
        init_logging();
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("todo.db").display());
        let store = SqliteStore::connect(&url, POOL)
            .await
            .expect("sqlite opens");
        Self::build(Arc::new(store), TestDatabase::Sqlite(dir), verifier).await
    }

    async fn with_store(store: Arc<dyn TaskStore>, database: TestDatabase) -> TestApp {
        Self::build(store, database, test_verifier()).await
    }

    /// An app on a new SQLite file with these HTTP settings (e.g. CORS origins).
    pub async fn sqlite_with_settings(settings: HttpSettings) -> TestApp {
        let mut app = Self::sqlite().await;
        let state = AppState {
            store: app.store.clone(),
            verifier: Arc::new(test_verifier()),
            shutdown: app.shutdown.clone(),
        };
        app.router = app::router(state, &settings);
        app
    }

    async fn build(
        store: Arc<dyn TaskStore>,
        database: TestDatabase,
        verifier: Verifier,
    ) -> TestApp {
        store.migrate().await.expect("migrations apply");
        let state = AppState {
            store: store.clone(),
            verifier: Arc::new(verifier),
            shutdown: ShutdownFlag::default(),
        };
        TestApp {
            shutdown: state.shutdown.clone(),
            router: app::router(state, &HttpSettings::default()),
            store,
            _database: database,
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

    /// Sends `method uri` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("valid request")).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> TestResponse {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: &Value) -> TestResponse {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }

    pub async fn put(&self, uri: &str, token: &str, body: &Value) -> TestResponse {
        self.call(Method::PUT, uri, Some(token), Some(body)).await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> TestResponse {
        self.call(Method::DELETE, uri, Some(token), None).await
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

/// Verifies HS256 tokens signed with [`SECRET`], with the default leeway.
fn test_verifier() -> Verifier {
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
    pub async fn create() -> Option<PgTestDatabase> {
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but TEST_DATABASE_URL is not: the PostgreSQL tests must run");
            }
            static NOTICE: Once = Once::new();
            NOTICE.call_once(|| eprintln!("TEST_DATABASE_URL is not set: skipping PostgreSQL"));
            return None;
        };
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
        Some(PgTestDatabase { admin, name })
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
            todo_backend::telemetry::init(todo_backend::config::LogFormat::Text);
        }
    });
}
