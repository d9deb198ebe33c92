//! Authentication (`src/auth/`): shared-secret tokens, and tokens checked against a JWKS.

mod jwks;
mod tokens;
