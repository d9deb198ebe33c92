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

/// The release before lists: every migration but the lists'.
async fn release_before_lists(backend: &str) -> Migrator {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for entry in std::fs::read_dir(&source).expect("migrations") {
        let name = entry.expect("an entry").file_name();
        if *name.to_string_lossy() < *"20261206" {
            std::fs::copy(source.join(&name), dir.path().join(&name)).expect("copied");
        }
    }
    let migrator = Migrator::new(dir.path()).await.expect("reads migrations");
    drop(dir);
    migrator
}

/// Tasks as the release before lists wrote them: alice's three (one in the trash) and bob's
/// one, with the folded text and positions that release filled in.
fn rows_before_lists(timestamp: impl Fn(i64) -> String) -> String {
    let now = chrono::Utc::now().timestamp_micros();
    let mut sql = String::new();
    for (n, (user, position)) in [
        ("alice", "a0"),
        ("alice", "a1"),
        ("alice", "a2"),
        ("bob", "a0"),
    ]
    .into_iter()
    .enumerate()
    {
        sql.push_str(&format!(
            "insert into tasks (user_id, title, title_key, status, created_at, updated_at, position)
             values ('{user}', 'old {n}', 'old {n}', 'pending', {t}, {t}, '{position}');",
            t = timestamp(now + n as i64),
        ));
    }
    sql.push_str("update tasks set deleted_at = updated_at, version = 2 where title = 'old 1';");
    sql
}

/// Every old task is in its creator's Inbox, in its old order; the trash is still the trash;
/// a cursor of the old feed is told to start again, and the feed from the start holds them.
async fn check_lists_upgrade(store: &dyn TaskStore, old_cursor: i64) {
    use todo_backend::domain::ChangeCursor;
    let alice = UserId::parse("alice").expect("valid");
    let lists = store.lists_of(&alice).await.expect("lists");
    assert_eq!(lists.len(), 1, "{lists:?}");
    let inbox = &lists[0];
    assert!(inbox.is_inbox);
    assert_eq!(inbox.owner_id, alice);
    assert_eq!(inbox.member_count, 1);
    let mut by_position = TaskQuery::page(50, 0);
    by_position.sort = "position".parse::<SortKey>().expect("valid");
    let tasks = store.list(&alice, &by_position).await.expect("lists");
    let titles: Vec<&str> = tasks.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["old 0", "old 2"]);
    assert!(tasks.iter().all(|t| t.list_id == inbox.id));
    // Each was given a uid of its own (a UUID), and is a top-level task that does not repeat.
    let uids: std::collections::BTreeSet<&str> = tasks.iter().map(|t| t.uid.as_str()).collect();
    assert_eq!(uids.len(), tasks.len(), "{tasks:?}");
    for task in &tasks {
        assert!(uuid::Uuid::parse_str(task.uid.as_str()).is_ok(), "{task:?}");
        assert_eq!((task.parent_id, task.recurrence.as_ref()), (None, None));
        assert_eq!(task.completed_count, 0);
    }
    assert_eq!(
        store
            .count(&alice, &TaskQuery::page(50, 0).filter)
            .await
            .expect("counts"),
        2,
        "the live count came along"
    );
    let old: ChangeCursor = old_cursor.to_string().parse().expect("a cursor");
    assert!(matches!(
        store.changes(&alice, old, 100, true).await,
        Err(store::StoreError::HistoryExpired)
    ));
    let feed = store
        .changes(&alice, ChangeCursor::START, 100, true)
        .await
        .expect("the feed");
    assert_eq!(
        feed.changes.len(),
        4,
        "the Inbox, two tasks, a deletion: {feed:?}"
    );
    // New writes land after the old ones, in the same Inbox.
    let created = store
        .create(
            &alice,
            serde_json::from_str(r#"{"title":"new"}"#).expect("a task"),
            None,
        )
        .await
        .expect("creates");
    let todo_backend::domain::Once::Done(created) = created else {
        panic!("not a replay");
    };
    assert_eq!(created.list_id, inbox.id);
    assert!(created.position > tasks[1].position);
    let after = store
        .changes(&alice, feed.next_cursor, 100, true)
        .await
        .expect("the feed");
    assert_eq!(after.changes.len(), 1, "{after:?}");
    let bob = UserId::parse("bob").expect("valid");
    let bobs = store
        .list(&bob, &TaskQuery::page(50, 0))
        .await
        .expect("lists");
    assert_eq!(bobs.len(), 1);
    assert_ne!(bobs[0].list_id, inbox.id, "bob's own Inbox");
}

#[tokio::test]
async fn sqlite_tasks_move_into_their_creators_inbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("todo.db").display());
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("url");
    let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
        .await
        .expect("opens");
    release_before_lists("sqlite")
        .await
        .run(&pool)
        .await
        .expect("old schema");
    pool.execute(AssertSqlSafe(rows_before_lists(|t| t.to_string())))
        .await
        .expect("old rows");
    let cursor: i64 =
        sqlx::query_scalar("select last_change from task_owners where user_id = 'alice'")
            .fetch_one(&pool)
            .await
            .expect("a counter");
    pool.close().await;
    let store = store::open(&url.parse().expect("url"), POOL)
        .await
        .expect("upgrades");
    check_lists_upgrade(store.as_ref(), cursor).await;
}

#[tokio::test]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
async fn postgres_tasks_move_into_their_creators_inbox() {
    let database = PgTestDatabase::create().await;
    let pool = sqlx::PgPool::connect_with(database.options())
        .await
        .expect("connects");
    release_before_lists("postgres")
        .await
        .run(&pool)
        .await
        .expect("old schema");
    let sql = rows_before_lists(|t| format!("to_timestamp({t}::float8 / 1e6)"));
    pool.execute(AssertSqlSafe(sql)).await.expect("old rows");
    let cursor: i64 =
        sqlx::query_scalar("select last_change from task_owners where user_id = 'alice'")
            .fetch_one(&pool)
            .await
            .expect("a counter");
    pool.close().await;
    let store = store::open(&database.url_with("").parse().expect("url"), POOL)
        .await
        .expect("upgrades");
    check_lists_upgrade(store.as_ref(), cursor).await;
    store.close().await;
}
