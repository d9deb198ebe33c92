//! Test keys and an in-process JWKS endpoint that can be told to misbehave.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A signing key with its public JWK.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public key as Better Auth would publish it.
    pub jwk: Value,
    /// The raw public key bytes, for algorithm-confusion attacks.
    pub public_bytes: Vec<u8>,
}

impl TestKey {
    /// A token with these claims, its header naming this key's `kid` and `alg`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signs")
    }

    /// A token whose header also lists `crit` extensions.
    pub fn sign_with_crit(&self, claims: &Value, crit: &[&str]) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.crit = Some(crit.iter().map(|name| (*name).to_owned()).collect());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signs")
    }

    /// The same key published under another kid (and, for RSA, another algorithm).
    pub fn with_kid(&self, kid: &str, alg: Algorithm) -> TestKey {
        let mut key = self.clone();
        key.kid = kid.to_owned();
        key.alg = alg;
        key.jwk["kid"] = json!(kid);
        key.jwk["alg"] = json!(format!("{alg:?}"));
        key
    }
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes
}

/// A fresh Ed25519 key (Better Auth's default).
pub fn ed25519(kid: &str) -> TestKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let signing = ed25519_dalek::SigningKey::from_bytes(&random_bytes());
    let der = signing.to_pkcs8_der().expect("pkcs8");
    let public = signing.verifying_key().to_bytes().to_vec();
    TestKey {
        kid: kid.to_owned(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&public),
                    "kid": kid, "alg": "EdDSA"}),
        public_bytes: public,
    }
}

/// A fresh P-256 key.
pub fn p256(kid: &str) -> TestKey {
    use p256::pkcs8::EncodePrivateKey;
    let signing = p256::ecdsa::SigningKey::from_slice(&random_bytes()).expect("valid scalar");
    let der = signing.to_pkcs8_der().expect("pkcs8");
    let point = signing.verifying_key().to_encoded_point(false);
    let (x, y) = (point.x().expect("x"), point.y().expect("y"));
    TestKey {
        kid: kid.to_owned(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x),
                    "y": URL_SAFE_NO_PAD.encode(y), "kid": kid, "alg": "ES256"}),
        public_bytes: point.as_bytes().to_vec(),
    }
}

/// One RSA-2048 key per test run (generating them is slow), published as RS256.
pub fn rsa(kid: &str) -> TestKey {
    static KEY: LazyLock<TestKey> = LazyLock::new(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("keygen");
        let der = private.to_pkcs1_der().expect("pkcs1");
        let (n, e) = (private.n().to_bytes_be(), private.e().to_bytes_be());
        TestKey {
            kid: "rsa".into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n),
                        "e": URL_SAFE_NO_PAD.encode(&e), "kid": "rsa", "alg": "RS256"}),
            public_bytes: n,
        }
    });
    KEY.with_kid(kid, Algorithm::RS256)
}

/// How the JWKS endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Serve,
    Error500,
    Garbage,
    /// Answers only after this long.
    Slow(Duration),
}

struct Shared {
    keys: Mutex<Vec<Value>>,
    behaviour: Mutex<Behaviour>,
    hits: AtomicUsize,
}

/// A JWKS endpoint on a loopback port, serving whatever keys the test publishes.
pub struct JwksServer {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(keys: &[&TestKey]) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve_on(listener, keys)
    }

    /// Starts serving on an address picked earlier (to test a server that comes up late).
    pub async fn start_at(address: SocketAddr, keys: &[&TestKey]) -> JwksServer {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("bind again");
        Self::serve_on(listener, keys)
    }

    fn serve_on(listener: tokio::net::TcpListener, keys: &[&TestKey]) -> JwksServer {
        let address = listener.local_addr().expect("address");
        let shared = Arc::new(Shared {
            keys: Mutex::new(keys.iter().map(|key| key.jwk.clone()).collect()),
            behaviour: Mutex::new(Behaviour::Serve),
            hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/api/auth/jwks", get(jwks))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksServer {
            address,
            shared,
            task,
        }
    }

    /// The base URL, as `BETTER_AUTH_URL` would be set.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn publish(&self, keys: &[&TestKey]) {
        *lock(&self.shared.keys) = keys.iter().map(|key| key.jwk.clone()).collect();
    }

    pub fn behave(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// How many times the key set was requested.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = *lock(&shared.behaviour);
    match behaviour {
        Behaviour::Serve => {}
        Behaviour::Error500 => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Behaviour::Garbage => return "<html>not a key set</html>".into_response(),
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
    }
    let keys = lock(&shared.keys).clone();
    axum::Json(json!({ "keys": keys })).into_response()
}
