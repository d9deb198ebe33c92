//! The storage layer (`src/store/`): here on its own, the same suite against each backend;
//! in the modules below, upgrades of a live database and the pool under pressure, seen
//! through the API.

mod cancelled;
mod unavailable;
mod upgrade;

use chrono::{DateTime, Utc};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use todo_backend::domain::{CreateTask, Expect, Once, Task, TaskId, TaskQuery, UpdateTask, UserId};

use todo_backend::store::{PoolSettings, StoreError, TaskStore};

use crate::backend_tests;
use crate::support::app::{PgTestDatabase, TestApp};

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid user id")
}

fn new_task(title: &str) -> CreateTask {
    serde_json::from_value(serde_json::json!({ "title": title })).expect("valid task")
}

fn changes(json: serde_json::Value) -> UpdateTask {
    serde_json::from_value(json).expect("valid changes")
}

/// Creates a task without an idempotency key, which always creates.
async fn create_plain(store: &dyn TaskStore, owner: &UserId, task: CreateTask, what: &str) -> Task {
    match store.create(owner, task, None).await.expect(what) {
        Once::Done(task) => task,
        Once::Replayed(replay) => panic!("{what}: replayed {replay:?} without a key"),
    }
}

fn id_of(task: &Task) -> TaskId {
    task.id
}

async fn tasks_round_trip(app: &TestApp) {
    let store = &app.store;
    let alice = user("alice");
    let created = create_plain(store.as_ref(), &alice, new_task("write tests"), "created").await;
    assert_eq!(created.user_id.as_str(), "alice");
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        store.get(&alice, id_of(&created)).await.expect("found"),
        created
    );

    let updated = store
        .update(
            &alice,
            id_of(&created),
            changes(serde_json::json!({"status": "completed"})),
            &Expect::Any,
        )
        .await
        .expect("updated");
    assert_eq!(updated.title, "write tests");
    assert_eq!(updated.status.as_str(), "completed");

    store
        .delete(&alice, id_of(&created), &Expect::Any)
        .await
        .expect("deleted");
    assert!(matches!(
        store.get(&alice, id_of(&created)).await,
        Err(StoreError::NotFound)
    ));
}

async fn a_foreign_task_is_not_found_and_stays_unchanged(app: &TestApp) {
    let store = &app.store;
    let (alice, mallory) = (user("alice"), user("mallory"));
    let task = create_plain(store.as_ref(), &alice, new_task("alice's"), "created").await;
    let id = id_of(&task);

    assert!(matches!(
        store.get(&mallory, id).await,
        Err(StoreError::NotFound)
    ));
    let update = store
        .update(
            &mallory,
            id,
            changes(serde_json::json!({"title": "mine now"})),
            &Expect::Any,
        )
        .await;
    assert!(matches!(update, Err(StoreError::NotFound)));
    let empty_update = store
        .update(&mallory, id, UpdateTask::default(), &Expect::Any)
        .await;
    assert!(matches!(empty_update, Err(StoreError::NotFound)));
    assert!(matches!(
        store.delete(&mallory, id, &Expect::Any).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .list(&mallory, &TaskQuery::page(50, 0))
            .await
            .expect("listed")
            .is_empty()
    );

    assert_eq!(store.get(&alice, id).await.expect("still there"), task);
}

async fn list_is_newest_first_and_pages_are_stable(app: &TestApp) {
    let store = &app.store;
    let alice = user("alice");
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(
            create_plain(
                store.as_ref(),
                &alice,
                new_task(&format!("t{n}")),
                "created",
            )
            .await,
        );
    }
    create_plain(store.as_ref(), &user("bob"), new_task("bob's"), "created").await;
    created.reverse();

    let all = store
        .list(&alice, &TaskQuery::page(100, 0))
        .await
        .expect("listed");
    assert_eq!(all, created);
    let keys: Vec<(DateTime<Utc>, i64)> = all.iter().map(|t| (t.created_at, t.id.get())).collect();
    assert!(
        keys.windows(2).all(|pair| pair[0] > pair[1]),
        "strictly descending"
    );

    let mut paged = Vec::new();
    for offset in [0, 3, 6] {
        paged.extend(
            store
                .list(&alice, &TaskQuery::page(3, offset))
                .await
                .expect("page"),
        );
    }
    assert_eq!(paged, all);
}

async fn updated_at_moves_and_created_at_does_not(app: &TestApp) {
    let store = &app.store;
    let alice = user("alice");
    let task = create_plain(store.as_ref(), &alice, new_task("a"), "created").await;
    let mut previous = task.updated_at;
    // Back-to-back updates may land within one clock tick: updated_at must still move.
    for n in 0..20 {
        let updated = store
            .update(
                &alice,
                id_of(&task),
                changes(serde_json::json!({"title": format!("v{n}")})),
                &Expect::Any,
            )
            .await
            .expect("updated");
        assert_eq!(updated.created_at, task.created_at);
        assert!(updated.updated_at > previous, "update {n} moved updated_at");
        previous = updated.updated_at;
    }
    let unchanged = store
        .update(&alice, id_of(&task), UpdateTask::default(), &Expect::Any)
        .await
        .expect("empty update");
    assert_eq!(
        unchanged.updated_at, previous,
        "an empty update changes nothing"
    );
}

async fn ids_are_never_reused_after_delete(app: &TestApp) {
    let store = &app.store;
    let alice = user("alice");
    let first = create_plain(store.as_ref(), &alice, new_task("a"), "created").await;
    let newest = create_plain(store.as_ref(), &alice, new_task("b"), "created").await;
    store
        .delete(&alice, id_of(&newest), &Expect::Any)
        .await
        .expect("deleted");
    let next = create_plain(store.as_ref(), &alice, new_task("c"), "created").await;
    assert!(next.id > newest.id && newest.id > first.id);
}

async fn ping_answers(app: &TestApp) {
    app.store.ping().await.expect("database answers");
}

backend_tests!(
    tasks_round_trip,
    a_foreign_task_is_not_found_and_stays_unchanged,
    list_is_newest_first_and_pages_are_stable,
    updated_at_moves_and_created_at_does_not,
    ids_are_never_reused_after_delete,
    ping_answers,
);

/// The local server has TLS on, as Neon does: a URL with `sslmode=require` must connect, and
/// the connection it makes must be encrypted.
#[tokio::test]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
async fn postgres_honours_sslmode_require_in_the_url() {
    let database = PgTestDatabase::create().await;
    let url = database.url_with("sslmode=require");
    let pool = PoolSettings {
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(10),
        transaction_pooler: Default::default(),
    };
    let store = todo_backend::store::open(&url.parse().expect("valid URL"), pool)
        .await
        .expect("connects over TLS");
    store.ping().await.expect("answers over TLS");
    store.close().await;

    let options: PgConnectOptions = url.parse().expect("valid URL");
    let mut connection = PgConnection::connect_with(&options)
        .await
        .expect("connects");
    let encrypted: bool =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&mut connection)
            .await
            .expect("pg_stat_ssl is readable");
    assert!(encrypted, "sslmode=require gave an encrypted connection");
}

/// Behind a transaction-mode pooler, migrations run in one transaction with unnamed
/// statements. That path must agree with sqlx's migrator on what has been applied (either
/// may run first), be a no-op when repeated, and refuse a database whose applied migration
/// differs from the embedded one.
#[tokio::test]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
async fn pooler_mode_migrations_agree_with_the_migrator() {
    use todo_backend::store::{PgStore, Pool, TransactionPooler, Upkeep};

    let database = PgTestDatabase::create().await;
    let settings = |transaction_pooler| PoolSettings {
        max_connections: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
        transaction_pooler,
    };
    let pooled = PgStore::connect_with(database.options(), settings(TransactionPooler::On))
        .await
        .expect("connects");
    let direct = PgStore::connect_with(database.options(), settings(TransactionPooler::Off))
        .await
        .expect("connects");

    pooled
        .migrate()
        .await
        .expect("pooler-mode migrations apply");
    pooled
        .migrate()
        .await
        .expect("and are a no-op the second time");
    direct
        .migrate()
        .await
        .expect("sqlx's migrator accepts what they recorded");
    let task = create_plain(
        &pooled,
        &user("alice"),
        new_task("after migrations"),
        "the schema is there",
    )
    .await;
    assert_eq!(task.title, "after migrations");

    let mut connection = PgConnection::connect_with(&database.options())
        .await
        .expect("connects");
    let (applied, embedded): (i64, usize) = (
        sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
            .fetch_one(&mut connection)
            .await
            .expect("bookkeeping table is readable"),
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .expect("migrations directory")
            .count(),
    );
    assert_eq!(applied, embedded as i64, "each migration recorded once");

    sqlx::query("update _sqlx_migrations set checksum = '\\x00'")
        .execute(&mut connection)
        .await
        .expect("checksum tampered");
    let error = pooled
        .migrate()
        .await
        .expect_err("a changed migration is refused");
    assert!(
        error
            .to_string()
            .contains("previously applied but has been modified"),
        "unexpected error: {error}"
    );
    pooled.close().await;
    direct.close().await;
}

/// The create statement asks PostgreSQL for the position after the user's last one: its
/// function must agree with the service's own key arithmetic, edge cases included.
#[tokio::test]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
async fn the_databases_next_position_is_the_services() {
    use todo_backend::domain::Position;

    let app = TestApp::builder().postgres().build().await;
    let options = app.pg_options.clone().expect("a PostgreSQL app");
    let mut connection = PgConnection::connect_with(&options)
        .await
        .expect("connects");
    let mut keys: Vec<String> = [
        "a0", "az", "Zz", "Y0z", "dzzzz", "a0V", "b0i", "czzV1", "Zz1",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut walk = Position::first();
    for _ in 0..300 {
        walk = Position::between(Some(&walk), None).expect("after");
        keys.push(walk.as_str().to_owned());
    }
    let from_sql: Option<String> = sqlx::query_scalar("select task_position_after(null)")
        .fetch_one(&mut connection)
        .await
        .expect("runs");
    assert_eq!(from_sql.as_deref(), Some(Position::first().as_str()));
    for key in keys {
        let position = Position::parse(key.as_str()).expect("a valid key");
        let expected = Position::between(Some(&position), None).expect("after");
        let from_sql: String = sqlx::query_scalar("select task_position_after($1)")
            .bind(&key)
            .fetch_one(&mut connection)
            .await
            .expect("runs");
        assert_eq!(from_sql, expected.as_str(), "after {key}");
    }
}
