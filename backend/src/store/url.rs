//! `DATABASE_URL`, parsed once into options for the backend it names.

use std::fmt;
use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::sqlite::SqliteConnectOptions;
use url::Url;

/// A parsed `DATABASE_URL`: which backend it names and the driver options it holds. Its
/// `Display` and `Debug` show it with any password replaced, so it can go into logs.
#[derive(Clone)]
pub struct DatabaseUrl {
    redacted: String,
    target: Target,
}

#[derive(Clone)]
pub(super) enum Target {
    Postgres(Box<PgConnectOptions>),
    Sqlite {
        options: Box<SqliteConnectOptions>,
        in_memory: bool,
    },
}

/// The database engines this service can store tasks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl DatabaseUrl {
    pub fn backend(&self) -> Backend {
        match self.target {
            Target::Postgres(_) => Backend::Postgres,
            Target::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// The connection options, when the URL names PostgreSQL.
    pub fn postgres_options(&self) -> Option<&PgConnectOptions> {
        match &self.target {
            Target::Postgres(options) => Some(options),
            Target::Sqlite { .. } => None,
        }
    }

    pub(super) fn target(&self) -> &Target {
        &self.target
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let scheme = raw
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let target = match scheme.as_str() {
            "postgres" | "postgresql" => {
                let url = Url::parse(raw).map_err(|error| format!("not a valid URL: {error}"))?;
                Target::Postgres(Box::new(postgres_options(&url)?))
            }
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(raw)
                    .map_err(|error| format!("not a valid SQLite URL: {error}"))?;
                let in_memory = raw.contains(":memory:") || raw.contains("mode=memory");
                Target::Sqlite {
                    options: Box::new(options),
                    in_memory,
                }
            }
            _ => return Err("must start with postgres://, postgresql:// or sqlite:".into()),
        };
        Ok(DatabaseUrl {
            redacted: redact(raw),
            target,
        })
    }
}

fn postgres_options(url: &Url) -> Result<PgConnectOptions, String> {
    let options = PgConnectOptions::from_url(url)
        .map_err(|error| format!("not a valid PostgreSQL URL: {error}"))?;
    // As in libpq: `sslmode=require` with a root certificate given also verifies the chain
    // (sqlx alone would ignore the certificate and accept any server).
    let has_root_cert = url.query_pairs().any(|(key, _)| key == "sslrootcert")
        || std::env::var_os("PGSSLROOTCERT").is_some();
    if has_root_cert && matches!(options.get_ssl_mode(), PgSslMode::Require) {
        return Ok(options.ssl_mode(PgSslMode::VerifyCa));
    }
    Ok(options)
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted)
    }
}

/// The URL with any password replaced.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:[redacted]@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<DatabaseUrl, String> {
        raw.parse()
    }

    #[test]
    fn the_backend_is_chosen_by_scheme() {
        let backend = |raw: &str| parse(raw).map(|url| url.backend());
        assert_eq!(backend("postgres://u@h/db"), Ok(Backend::Postgres));
        assert_eq!(backend("postgresql://h/db"), Ok(Backend::Postgres));
        assert_eq!(backend("POSTGRES://h/db"), Ok(Backend::Postgres));
        assert_eq!(backend("sqlite://data/todo.db"), Ok(Backend::Sqlite));
        assert_eq!(backend("sqlite::memory:"), Ok(Backend::Sqlite));
        for bad in [
            "mysql://h/db",
            "data/todo.db",
            "",
            "postgres://h:notaport/db",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_show() {
        let url = parse("postgres://alice:s3cret@db.example.com:5432/app?sslmode=require")
            .expect("valid");
        let shown = "postgres://alice:[redacted]@db.example.com:5432/app?sslmode=require";
        assert_eq!(url.to_string(), shown);
        assert!(!format!("{url:?}").contains("s3cret"));
        let no_password = parse("postgres://alice@db/app").expect("valid");
        assert_eq!(no_password.to_string(), "postgres://alice@db/app");
        let sqlite = parse("sqlite://data/todo.db").expect("valid");
        assert_eq!(sqlite.to_string(), "sqlite://data/todo.db");
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain() {
        let url = parse("postgres://h/db?sslmode=require&sslrootcert=/tmp/ca.pem").expect("valid");
        let Target::Postgres(options) = url.target() else {
            panic!("postgres");
        };
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyCa));
    }
}
