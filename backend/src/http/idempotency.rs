//! The `Idempotency-Key` request header (the IETF httpapi draft, as Stripe uses it): a
//! client's name for one request, so that sending it again cannot do it twice.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::{json_bytes, parse_json};
use crate::domain::IdempotencyKey;
use crate::domain::sync::MAX_IDEMPOTENCY_KEY_BYTES;

/// The header's name.
pub const HEADER: &str = "idempotency-key";

/// A JSON body (as [`super::extract::ValidJson`]) and the request's idempotency key, if it
/// sent one, with the fingerprint of the request it names: the method, the path and the body
/// in a canonical form (members sorted, no white space), so that the same request spelt
/// differently is still the same request.
#[derive(Debug)]
pub struct IdempotentJson<T> {
    pub value: T,
    pub key: Option<IdempotencyKey>,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for IdempotentJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let key = key(request.headers())?;
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let bytes = json_bytes(request, state).await?;
        let value = parse_json(&bytes)?;
        let key = match key {
            None => None,
            Some(key) => {
                // The body parsed as T, so it is valid JSON.
                let body: Value = serde_json::from_slice(&bytes)
                    .map_err(|_| ApiError::invalid_field("body", "is not valid JSON"))?;
                Some(IdempotencyKey::new(key, fingerprint(&method, &path, &body)))
            }
        };
        Ok(IdempotentJson { value, key })
    }
}

/// The key a request sent, if any. The draft's structured-field string (`"abc"`) and the
/// bare form (`abc`) name the same key. 400 for a key that is empty, longer than 255
/// characters, not printable ASCII, or sent twice.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid("must be sent once"));
    }
    let text = value
        .to_str()
        .map_err(|_| invalid("must be printable ASCII"))?;
    // The draft's form is a quoted sf-string; a value that is not one (say `"abc`) is a key
    // in the bare form, which allows any printable ASCII, quotes included.
    let key = text
        .strip_prefix('"')
        .and_then(unquote)
        .unwrap_or_else(|| text.to_owned());
    if key.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(invalid("must be at most 255 characters"));
    }
    if !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(invalid("must be printable ASCII"));
    }
    Ok(Some(key))
}

fn invalid(message: &str) -> ApiError {
    ApiError::BadRequest(format!("Idempotency-Key {message}"))
}

/// The inside of an sf-string after its opening quote: `\"` and `\\` escape, the closing
/// quote ends it, and nothing may follow.
fn unquote(rest: &str) -> Option<String> {
    let mut key = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                escaped @ ('"' | '\\') => key.push(escaped),
                _ => return None,
            },
            '"' => return chars.as_str().is_empty().then_some(key),
            c => key.push(c),
        }
    }
    None
}

/// SHA-256 of the method, the path and the canonical body.
fn fingerprint(method: &Method, path: &str, body: &Value) -> [u8; 32] {
    let mut canonical = Vec::new();
    write_canonical(body, &mut canonical);
    let mut digest = Sha256::new();
    digest.update(method.as_str().as_bytes());
    digest.update(b" ");
    digest.update(path.as_bytes());
    digest.update(b"\n");
    digest.update(&canonical);
    digest.finalize().into()
}

/// JSON with every object's members sorted by name, whatever order the map type keeps.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(members) => {
            let mut sorted: Vec<_> = members.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::from(name.as_str()).to_string().as_bytes());
                out.push(b':');
                write_canonical(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn key_of(value: &[u8]) -> Result<Option<String>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER,
            HeaderValue::from_bytes(value).expect("header value"),
        );
        key(&headers)
    }

    #[test]
    fn quoted_and_bare_keys_are_the_same_key() {
        assert_eq!(key_of(b"abc-1").ok().flatten().as_deref(), Some("abc-1"));
        assert_eq!(
            key_of(b"\"abc-1\"").ok().flatten().as_deref(),
            Some("abc-1")
        );
        assert_eq!(key_of(br#""a\"b""#).ok().flatten().as_deref(), Some("a\"b"));
        assert_eq!(key(&HeaderMap::new()).ok(), Some(None));
        // Not a quoted string: the bare form, quotes and all.
        assert_eq!(key_of(b"\"abc").ok().flatten().as_deref(), Some("\"abc"));
        assert_eq!(key_of(b"\"a\"b").ok().flatten().as_deref(), Some("\"a\"b"));
    }

    #[test]
    fn bad_keys_are_refused() {
        let long = vec![b'k'; 256];
        for bad in [&b"\"\""[..], &long, b"a\tb", "é".as_bytes()] {
            assert!(
                matches!(key_of(bad), Err(ApiError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(key_of(&vec![b'k'; 255]).is_ok());
    }

    #[test]
    fn the_fingerprint_ignores_spelling_but_not_meaning() {
        let post = |body: &str| {
            let value: Value = serde_json::from_str(body).expect("json");
            fingerprint(&Method::POST, "/api/tasks", &value)
        };
        assert_eq!(
            post(r#"{"title":"a","priority":"high"}"#),
            post(r#"{ "priority": "high", "title": "a" }"#)
        );
        assert_ne!(post(r#"{"title":"a"}"#), post(r#"{"title":"b"}"#));
        let value: Value = serde_json::from_str(r#"{"title":"a"}"#).expect("json");
        assert_ne!(
            fingerprint(&Method::POST, "/api/tasks", &value),
            fingerprint(&Method::POST, "/api/tasks/1/move", &value)
        );
    }
}
