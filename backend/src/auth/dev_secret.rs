//! The development secret: what lets `cargo run` work with no configuration.
//!
//! When no authentication is configured, the service generates a random HS256 secret once and
//! keeps it in `data/dev-secret` (mode 0600), so that `todo-backend token alice`, run in the
//! same directory, mints tokens the running service accepts. It fails closed: no real frontend
//! knows this secret, so no token from one will verify.

use std::io::{self, Write};
use std::path::Path;

use super::SetupError;
use super::hs256::HmacSecret;

/// Where the development secret lives, relative to the working directory.
pub const DEV_SECRET_PATH: &str = "data/dev-secret";

/// The development secret at [`DEV_SECRET_PATH`], created if needed, with a warning that says
/// it is in use: tokens from a real frontend will not verify against it.
pub fn resolve() -> Result<HmacSecret, SetupError> {
    let path = Path::new(DEV_SECRET_PATH);
    let (secret, created) =
        load_or_create(path).map_err(|cause| SetupError::DevelopmentSecret {
            path: DEV_SECRET_PATH.into(),
            cause,
        })?;
    tracing::warn!(
        "no JWT_SECRET set: using the development secret in {DEV_SECRET_PATH} ({}); get a \
         token with `{} token alice`. Tokens from a real frontend will not verify.",
        if created { "created now" } else { "existing" },
        invocation(),
    );
    Ok(secret)
}

/// How this binary was started, for a hint a person can paste: `cargo run --` under cargo
/// (which sets `CARGO` for what it runs), else the path it was invoked by.
fn invocation() -> String {
    if std::env::var_os("CARGO").is_some() {
        return "cargo run --".into();
    }
    std::env::args()
        .next()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "todo-backend".into())
}

/// Reads the development secret at `path`, creating it first if it does not exist.
/// Returns the secret and whether it was created now.
pub fn load_or_create(path: &Path) -> io::Result<(HmacSecret, bool)> {
    match read(path) {
        Ok(secret) => return Ok((secret, false)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| io::Error::other(error.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match create_private(path) {
        Ok(mut file) => {
            file.write_all(hex.as_bytes())?;
            file.sync_all()?;
            Ok((secret_from(hex)?, true))
        }
        // Another process created it between our read and our create: use theirs.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok((read(path)?, false)),
        Err(error) => Err(error),
    }
}

fn read(path: &Path) -> io::Result<HmacSecret> {
    secret_from(std::fs::read_to_string(path)?.trim().to_owned())
}

fn secret_from(text: String) -> io::Result<HmacSecret> {
    HmacSecret::new(text).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{DEV_SECRET_PATH} is corrupt: the secret {error}; delete it to make a new one"
            ),
        )
    })
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_created_once_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/dev-secret");
        let (_, created) = load_or_create(&path).expect("created");
        assert!(created);
        let first = std::fs::read_to_string(&path).expect("readable");
        assert_eq!(first.len(), 64);
        let (_, created) = load_or_create(&path).expect("reused");
        assert!(!created);
        assert_eq!(std::fs::read_to_string(&path).expect("readable"), first);
    }

    #[cfg(unix)]
    #[test]
    fn the_secret_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dev-secret");
        load_or_create(&path).expect("created");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_truncated_secret_is_an_error_not_a_weak_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dev-secret");
        std::fs::write(&path, "abc").expect("written");
        assert!(load_or_create(&path).is_err());
    }
}
