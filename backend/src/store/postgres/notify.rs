//! Both halves of PostgreSQL `LISTEN`/`NOTIFY` for live updates: the channel writes are
//! announced on (the statement itself is [`super::PgStore`]'s `announce`), and a listening
//! session of its own, so that the driver's types stay inside the store.

use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};

use crate::domain::UserId;

/// The channel writes are announced on, for instances that `LISTEN`.
pub const NOTIFY_CHANNEL: &str = "todo_changes";

/// Announces that `owners` wrote: one statement for many writers; a payload is one user id,
/// far below NOTIFY's 8000-byte cap.
pub(super) async fn announce(
    conn: &mut PgConnection,
    persistent: bool,
    owners: &[UserId],
) -> Result<(), sqlx::Error> {
    let owners: Vec<&str> = owners.iter().map(UserId::as_str).collect();
    sqlx::query("select pg_notify($1, owner) from unnest($2::text[]) as owner")
        .persistent(persistent)
        .bind(NOTIFY_CHANNEL)
        .bind(&owners)
        .execute(conn)
        .await?;
    Ok(())
}

/// Where a listening session is opened: one connection of its own, opened when first asked.
#[derive(Debug, Clone)]
pub struct Listening {
    pool: PgPool,
}

impl Listening {
    /// On `options`, which must reach the server directly: a transaction pooler cannot keep a
    /// session's `LISTEN`.
    pub fn new(options: PgConnectOptions) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options);
        Listening { pool }
    }

    /// A session listening on [`NOTIFY_CHANNEL`].
    pub async fn open(&self) -> Result<Listener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(Listener(listener))
    }
}

/// A session listening for announcements.
pub struct Listener(PgListener);

impl Listener {
    /// Waits for the next announcement: `true` when one came, `false` when the session is
    /// lost (the caller opens another). Who wrote does not matter to a listener: the poll it
    /// hurries reads every user's position.
    pub async fn next(&mut self) -> bool {
        matches!(self.0.try_recv().await, Ok(Some(_)))
    }
}
