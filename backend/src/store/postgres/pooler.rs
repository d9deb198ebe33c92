//! Working through a transaction-mode pooler (PgBouncer, Neon's `-pooler` endpoints): when
//! pooler mode is on, and how migrations are applied in it.
//!
//! sqlx's `Migrator` holds a session advisory lock and prepares named statements, which it
//! never closes. Behind a transaction-mode pooler the lock may be taken on one server
//! connection and released on another, and the names outlive the client: the next start that
//! lands on the same server connection fails with `prepared statement "sqlx_s_1" already
//! exists`. This does the same work in a single transaction with unnamed statements and a
//! transaction-scoped lock, all of which a pooler keeps on one server connection. It keeps
//! sqlx's bookkeeping table, so `todo-backend migrate` on the direct URL, `sqlx migrate info`
//! and this path all agree on what has been applied.

use std::str::FromStr;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AssertSqlSafe, PgPool};

/// Whether PostgreSQL is reached through a pooler in transaction mode, where a session's
/// server connection can change between transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransactionPooler {
    /// On when the host name contains `-pooler`, as Neon's pooled endpoints do, or the port
    /// is PgBouncer's default, 6432.
    #[default]
    Auto,
    On,
    Off,
}

impl TransactionPooler {
    /// Resolves `Auto` for a given database host and port.
    pub fn is_on_for(self, host: &str, port: u16) -> bool {
        match self {
            TransactionPooler::Auto => host.contains("-pooler") || port == 6432,
            TransactionPooler::On => true,
            TransactionPooler::Off => false,
        }
    }
}

impl FromStr for TransactionPooler {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.to_ascii_lowercase().as_str() {
            "auto" => Ok(TransactionPooler::Auto),
            "true" | "on" => Ok(TransactionPooler::On),
            "false" | "off" => Ok(TransactionPooler::Off),
            _ => Err(format!("{raw:?} is not one of auto, true, false")),
        }
    }
}

/// Any fixed key; concurrent starts behind the pooler wait on it. sqlx's migrator (the direct
/// URL) locks another key, but should both run at once the primary key on `version`, written
/// in the same transaction as the migration, makes the later one fail and roll back whole:
/// no migration is ever applied twice.
const LOCK_KEY: i64 = 0x746f_646f_6d69_6772; // "todomigr"

/// Applies `migrator`'s migrations in one transaction, with unnamed statements only.
pub(super) async fn migrate(migrator: &Migrator, pool: &PgPool) -> Result<(), MigrateError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neon_pooled_hosts_and_pgbouncers_port_turn_pooler_mode_on() {
        let neon = "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech";
        assert!(TransactionPooler::Auto.is_on_for(neon, 5432));
        let direct = "ep-cool-darkness-123456.us-east-2.aws.neon.tech";
        assert!(!TransactionPooler::Auto.is_on_for(direct, 5432));
        assert!(TransactionPooler::Auto.is_on_for("10.0.0.5", 6432));
        assert!(!TransactionPooler::Off.is_on_for(neon, 6432));
        assert!(TransactionPooler::On.is_on_for("127.0.0.1", 5432));
    }

    #[test]
    fn the_setting_parses_its_names() {
        for (raw, mode) in [
            ("auto", TransactionPooler::Auto),
            ("true", TransactionPooler::On),
            ("on", TransactionPooler::On),
            ("FALSE", TransactionPooler::Off),
        ] {
            assert_eq!(raw.parse(), Ok(mode), "{raw}");
        }
        assert!("maybe".parse::<TransactionPooler>().is_err());
    }
}
