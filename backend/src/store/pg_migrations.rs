//! Applying the embedded migrations through a transaction-mode pooler.
//!
//! sqlx's `Migrator` holds a session advisory lock and prepares named statements, which it
//! never closes. Behind a transaction-mode pooler the lock may be taken on one server
//! connection and released on another, and the names outlive the client: the next start that
//! lands on the same server connection fails with `prepared statement "sqlx_s_1" already
//! exists`. This does the same work in a single transaction with unnamed statements and a
//! transaction-scoped lock, all of which a pooler keeps on one server connection. It keeps
//! sqlx's bookkeeping table, so `todo-backend migrate` on the direct URL, `sqlx migrate info`
//! and this path all agree on what has been applied.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AssertSqlSafe, PgPool};

/// Any fixed key; concurrent starts behind the pooler wait on it. sqlx's migrator (the direct
/// URL) locks another key, but should both run at once the primary key on `version`, written
/// in the same transaction as the migration, makes the later one fail and roll back whole:
/// no migration is ever applied twice.
const LOCK_KEY: i64 = 0x746f_646f_6d69_6772; // "todomigr"

pub(super) async fn run(migrator: &Migrator, pool: &PgPool) -> Result<(), MigrateError> {
    let table = &*migrator.table_name;
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .persistent(false)
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    // Simple-protocol statements (no parameters) never create a prepared statement.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "create table if not exists {table} (
            version bigint primary key,
            description text not null,
            installed_on timestamptz not null default now(),
            success boolean not null,
            checksum bytea not null,
            execution_time bigint not null
        )"
    )))
    .execute(&mut *tx)
    .await?;
    let applied: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(AssertSqlSafe(format!(
        "select version, checksum, success from {table} order by version"
    )))
    .persistent(false)
    .fetch_all(&mut *tx)
    .await?;

    let embedded = || {
        migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
    };
    for (version, checksum, success) in &applied {
        if !success {
            return Err(MigrateError::Dirty(*version));
        }
        match embedded().find(|m| m.version == *version) {
            Some(migration) if *migration.checksum != **checksum => {
                return Err(MigrateError::VersionMismatch(*version));
            }
            Some(_) => {}
            None if migrator.ignore_missing => {}
            None => return Err(MigrateError::VersionMissing(*version)),
        }
    }
    for migration in embedded().filter(|m| applied.iter().all(|(v, ..)| *v != m.version)) {
        sqlx::raw_sql(migration.sql.clone())
            .execute(&mut *tx)
            .await
            .map_err(|error| MigrateError::ExecuteMigration(error, migration.version))?;
        sqlx::query(AssertSqlSafe(format!(
            "insert into {table} (version, description, success, checksum, execution_time)
             values ($1, $2, true, $3, -1)"
        )))
        .persistent(false)
        .bind(migration.version)
        .bind(&*migration.description)
        .bind(&*migration.checksum)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
