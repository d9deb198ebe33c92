//! Why a request was not authenticated.

use axum::http::HeaderValue;

/// Every reason a request is refused with 401. The `Display` text is the response's
/// `detail`: it says what was wrong without ever echoing the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token in the Authorization header")]
    MissingToken,
    #[error("the Authorization header must use the Bearer scheme")]
    WrongScheme,
    #[error("more than one Authorization header")]
    DuplicateHeader,
    #[error("token is larger than {} KiB", super::MAX_TOKEN_BYTES / 1024)]
    TooLarge,
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted")]
    AlgorithmNotAccepted,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token has no `{0}` claim")]
    MissingClaim(String),
    #[error("token claim `{0}` has the wrong type")]
    InvalidClaim(String),
    #[error("token subject (`sub`) must be a non-empty string of at most 255 characters")]
    InvalidSubject,
    #[error("token has no key id (`kid`)")]
    MissingKeyId,
    #[error("token was signed with an unknown key")]
    UnknownKey,
    #[error("token issuer (`iss`) is not accepted")]
    WrongIssuer,
    #[error("token audience (`aud`) is not accepted")]
    WrongAudience,
    #[error("token header lists critical extensions (`crit`) this service does not support")]
    UnsupportedCritical,
    /// Not the caller's fault: the signing keys have not been fetched yet. Answered with 503.
    #[error("the token signing keys are not available yet, retry shortly")]
    KeysUnavailable,
}

impl AuthError {
    /// The `WWW-Authenticate` challenge (RFC 6750): a bare `Bearer` when no token was sent,
    /// `invalid_token` with a short description otherwise.
    pub fn www_authenticate(&self) -> HeaderValue {
        match self {
            AuthError::MissingToken => HeaderValue::from_static(r#"Bearer realm="todo-backend""#),
            other => {
                // The description is our own fixed text; quotes are the only character that
                // could break the header's syntax, and none of our messages contain them.
                let description = other.to_string().replace('"', "'");
                HeaderValue::from_str(&format!(
                    r#"Bearer realm="todo-backend", error="invalid_token", error_description="{description}""#
                ))
                .unwrap_or_else(|_| {
                    HeaderValue::from_static(r#"Bearer realm="todo-backend", error="invalid_token""#)
                })
            }
        }
    }
}

impl From<crate::domain::InvalidUserId> for AuthError {
    fn from(_: crate::domain::InvalidUserId) -> Self {
        AuthError::InvalidSubject
    }
}

/// Why token verification could not be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot use the development secret {path}: {cause}")]
    DevelopmentSecret { path: String, cause: std::io::Error },
    #[error(
        "`token` signs HS256 tokens and needs JWT_SECRET; with only BETTER_AUTH_URL set, \
         tokens come from Better Auth"
    )]
    NoSigningSecret,
    #[error("cannot set up the JWKS client: {0}")]
    JwksClient(#[from] reqwest::Error),
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match error.into_kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
            ErrorKind::InvalidClaimFormat(claim) => AuthError::InvalidClaim(claim),
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::MissingAlgorithm => AuthError::AlgorithmNotAccepted,
            _ => AuthError::Malformed,
        }
    }
}
