//! Upgrading a live database: rows written by the previous release keep everything they had
//! and are served with the new fields.

use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Executor};

use todo_backend::domain::{Priority, SortKey, TaskQuery, UserId};
use todo_backend::store::{self, TaskStore};

use crate::support::app::{POOL, PgTestDatabase};

/// The first release's schema: only its own migration.
async fn previous_release(backend: &str) -> Migrator {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = "20261126000000_create_tasks.sql";
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend)
        .join(first);
    std::fs::copy(source, dir.path().join(first)).expect("copied");
    let migrator = Migrator::new(dir.path()).await.expect("reads migrations");
    // The migrator has read the files; the directory may go.
    drop(dir);
    migrator
}

/// Rows as the previous release wrote them: alice's five tasks, the third completed, and one
/// of bob's.
fn rows(now: i64, timestamp: impl Fn(i64) -> String) -> String {
    let mut sql = String::new();
    for n in 0..5 {
        let status = if n == 2 { "completed" } else { "pending" };
        sql.push_str(&format!(
            "insert into tasks (user_id, title, description, status, created_at, updated_at)
             values ('alice', 'Äpfel {n}', 'Old ROW', '{status}', {t}, {u});",
            t = timestamp(now + n),
            u = timestamp(now + n + 100),
        ));
    }
    sql.push_str(&format!(
        "insert into tasks (user_id, title, status, created_at, updated_at)
         values ('bob', 'theirs', 'pending', {t}, {t});",
        t = timestamp(now)
    ));
    sql
}

async fn check_upgraded(store: &dyn TaskStore) {
    let alice = UserId::parse("alice").expect("valid");
    let newest_first = store
        .list(&alice, &TaskQuery::page(50, 0))
        .await
        .expect("lists");
    assert_eq!(newest_first.len(), 5, "every row kept");
    let mut by_position = TaskQuery::page(50, 0);
    by_position.sort = "position".parse::<SortKey>().expect("valid");
    let ordered = store.list(&alice, &by_position).await.expect("lists");
    let ids = |tasks: &[todo_backend::domain::Task]| tasks.iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&ordered),
        ids(&newest_first),
        "positions keep the newest-first order"
    );
    for task in &newest_first {
        assert_eq!(task.priority, Priority::None);
        assert!(task.tags.names().is_empty());
        assert_eq!(task.version, 1);
        assert_eq!(task.due_at, None);
        assert_eq!(task.description.as_deref(), Some("Old ROW"));
        if task.title == "Äpfel 2" {
            assert_eq!(task.completed_at, Some(task.updated_at));
        } else {
            assert_eq!(task.completed_at, None);
        }
    }
    // The folded text was filled in: search and the title sort work on old rows.
    let mut search = TaskQuery::page(50, 0);
    search.filter.search = Some("äpfel 3".into());
    let found = store.list(&alice, &search).await.expect("searches");
    assert_eq!(found.len(), 1, "{found:?}");
    let mut in_description = TaskQuery::page(50, 0);
    in_description.filter.search = Some("old row".into());
    assert_eq!(
        store
            .count(&alice, &in_description.filter)
            .await
            .expect("counts"),
        5
    );
}

#[tokio::test]
async fn sqlite_rows_of_the_previous_release_survive_the_upgrade() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("todo.db").display());
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("url");
    let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
        .await
        .expect("opens");
    previous_release("sqlite")
        .await
        .run(&pool)
        .await
        .expect("old schema");
    let now = chrono::Utc::now().timestamp_micros();
    pool.execute(AssertSqlSafe(rows(now, |t| t.to_string())))
        .await
        .expect("old rows");
    pool.close().await;

    let store = store::open(&url.parse().expect("url"), POOL)
        .await
        .expect("upgrades");
    check_upgraded(store.as_ref()).await;
}

#[tokio::test]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
async fn postgres_rows_of_the_previous_release_survive_the_upgrade() {
    let database = PgTestDatabase::create().await;
    let pool = sqlx::PgPool::connect_with(database.options())
        .await
        .expect("connects");
    previous_release("postgres")
        .await
        .run(&pool)
        .await
        .expect("old schema");
    let now = chrono::Utc::now().timestamp_micros();
    let sql = rows(now, |t| format!("to_timestamp({t}::float8 / 1e6)"));
    pool.execute(AssertSqlSafe(sql)).await.expect("old rows");
    pool.close().await;

    let store = store::open(&database.url_with("").parse().expect("url"), POOL)
        .await
        .expect("upgrades");
    check_upgraded(store.as_ref()).await;
    store.close().await;
}
