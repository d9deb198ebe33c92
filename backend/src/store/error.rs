//! What can go wrong in storage, and how a driver's error is sorted into it.

use crate::domain::TaskId;

/// What can go wrong in storage, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such task for this caller (it may exist in a list they are not a member of).
    #[error("task not found")]
    NotFound,
    /// No such list for this caller (it may exist, without them).
    #[error("list not found")]
    ListNotFound,
    /// Something else the request names is missing (an invitation, a member); for an
    /// invitation's token, every kind of unusable one alike.
    #[error("{0}")]
    Missing(&'static str),
    /// The caller is a member of the list, without the role this needs.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A field names something the request cannot use (an assignee who is not a member).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    /// The request conflicts with the list's state (the owner accepting their own invitation).
    #[error("{0}")]
    Conflict(&'static str),
    /// The list already holds a task with the uid: this one.
    #[error("the list already holds a task with this uid")]
    UidTaken(TaskId),
    /// The task exists, at a version the condition does not admit.
    #[error("the task has changed: it is at version {version}")]
    VersionMismatch { id: TaskId, version: i64 },
    /// A request with this idempotency key is still being processed.
    #[error("a request with this idempotency key is in progress")]
    KeyInFlight,
    /// The idempotency key was used for a different request.
    #[error("this idempotency key was used for a different request")]
    KeyReused,
    /// Changes after the cursor have been purged: the client must sync from scratch.
    #[error("changes after this cursor are no longer kept")]
    HistoryExpired,
    /// The database cannot be reached right now or is overloaded; retrying later may work.
    #[error("database unavailable: {}", describe(.0))]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug, a corrupt row, a failed migration, a refused login.
    #[error("database error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(error.into())
    }
}

/// Whether `error` is a unique-constraint violation (a position another write took first).
pub(super) fn is_unique_violation(error: &StoreError) -> bool {
    match error {
        StoreError::Other(cause) => cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .is_some_and(|db| db.is_unique_violation()),
        _ => false,
    }
}

/// Whether the database broke a deadlock or a serialization conflict by aborting this
/// transaction (PostgreSQL's 40P01 and 40001): nothing was written, and the same write tried
/// again from the start succeeds. Two moves crossing between the same two lists, or a move
/// meeting a member's removal, lock the same rows in opposite orders.
pub(super) fn is_aborted_by_conflict(error: &StoreError) -> bool {
    match error {
        StoreError::Other(cause) => cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .and_then(|db| db.code())
            .is_some_and(|code| matches!(code.as_ref(), "40P01" | "40001")),
        _ => false,
    }
}

/// Sorts a driver error into "try again later" and "something is wrong". Which database
/// error codes are transient depends on the backend, so each passes its own test.
/// A write that would give two tasks of one list the same uid.
pub(super) fn is_uid_violation(error: &StoreError) -> bool {
    match error {
        StoreError::Other(cause) => cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .is_some_and(|db| {
                db.is_unique_violation()
                    && (db.constraint() == Some("tasks_list_id_uid_idx")
                        || db.message().contains("tasks.uid"))
            }),
        _ => false,
    }
}

pub(super) fn classify(error: sqlx::Error, transient_code: fn(&str) -> bool) -> StoreError {
    let transient = match &error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    };
    if transient {
        StoreError::Unavailable(error)
    } else {
        StoreError::Other(error.into())
    }
}

/// Whether a failure to open the database may pass by waiting (a server still booting, not
/// yet listening, not yet accepting connections), for the start-up retries. A certificate
/// that does not verify or a missing file will not.
pub fn worth_waiting_for(error: &StoreError) -> bool {
    use std::io::ErrorKind::*;
    let StoreError::Unavailable(cause) = error else {
        return false;
    };
    match cause {
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ConnectionRefused
                | ConnectionReset
                | ConnectionAborted
                | NotConnected
                | TimedOut
                | UnexpectedEof
                | HostUnreachable
                | NetworkUnreachable
                | AddrNotAvailable
        ),
        sqlx::Error::Tls(_) => false,
        // A database that does not exist is no server still booting: no wait will create
        // it (a missing role or a bad password is never classed as unavailable at all).
        sqlx::Error::Database(db) => db.code().as_deref() != Some("3D000"),
        _ => true,
    }
}

/// One line saying why the database could not be reached, for start-up errors: the cause
/// (refused, DNS, TLS, authentication, missing database) rather than the pool's "timed out".
pub fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the server running, and on this host and port?)".into()
        }
        sqlx::Error::Io(io) => format!("cannot connect: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("the server refused: {} (SQLSTATE {code})", db.message()),
            None => format!("the server refused: {}", db.message()),
        },
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_shutdowns_are_transient() {
        let never = |_: &str| false;
        assert!(matches!(
            classify(sqlx::Error::PoolTimedOut, never),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::PoolClosed, never),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::RowNotFound, never),
            StoreError::Other(_)
        ));
    }

    #[test]
    fn start_up_errors_name_their_cause() {
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert!(describe(&refused).contains("connection refused"));
        assert!(describe(&sqlx::Error::PoolTimedOut).contains("timed out"));
    }
}
