//! What verifying a bearer token costs per request: HS256 (shared secret) against EdDSA (what
//! Better Auth issues by default, checked against a JWKS served in-process), the first time a
//! token is seen and when it is seen again (the verified-token cache).
//!
//! `cargo bench --bench verify` prints the median over several batches of each, and the ratio
//! of EdDSA to HS256 measured in the same run (this machine is shared and noisy: compare the
//! ratio, not absolute numbers across runs).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use todo_backend::auth::hs256::HmacSecret;
use todo_backend::auth::{AuthSettings, JwksSettings, Verifier};

const BATCHES: usize = 9;
const SECRET: &str = "bench-secret-0123456789-abcdefghijklmnop";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);

    // An Ed25519 key published by a JWKS endpoint on a loopback port.
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("randomness");
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": public, "kid": "k", "alg": "EdDSA"}]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new().route(
        "/api/auth/jwks",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let secret = HmacSecret::new(SECRET).expect("long enough");
    let settings = JwksSettings::new(
        format!("{base}/api/auth/jwks").parse().expect("URL"),
        base.clone(),
        base.clone(),
        Duration::from_secs(60),
    );
    let settings = AuthSettings::new(Some(secret), Some(settings), Duration::from_secs(60));
    let verifier = Verifier::from_settings(&settings).expect("client");

    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    // Better Auth's default payload carries the user row; keep the tokens comparable.
    let claims = json!({"sub": "user_2NNEqLx", "iss": base, "aud": base, "exp": exp,
                        "iat": exp - 900, "name": "Alice", "email": "alice@example.com",
                        "emailVerified": true, "image": null});
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signs");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k".into());
    let der = signing.to_pkcs8_der().expect("pkcs8");
    let ed_key = EncodingKey::from_ed_der(der.as_bytes());
    let eddsa = jsonwebtoken::encode(&header, &claims, &ed_key).expect("signs");
    // Distinct tokens (each with its own jti), so that each is verified in full.
    let fresh: Vec<String> = (0..iterations * BATCHES)
        .map(|n| {
            let mut claims = claims.clone();
            claims["jti"] = json!(n);
            jsonwebtoken::encode(&header, &claims, &ed_key).expect("signs")
        })
        .collect();

    // Wait (bounded) for the background key load.
    let deadline = Instant::now() + Duration::from_secs(10);
    while verifier.verify(&eddsa).await.is_err() {
        assert!(Instant::now() < deadline, "JWKS never loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut hs_batches = Vec::new();
    let mut fresh_batches = Vec::new();
    let mut repeat_batches = Vec::new();
    // Interleaved, so drift in machine load hits all alike.
    for chunk in fresh.chunks(iterations) {
        hs_batches.push(batch(&verifier, std::iter::repeat_n(&hs256, iterations)).await);
        fresh_batches.push(batch(&verifier, chunk.iter()).await);
        repeat_batches.push(batch(&verifier, std::iter::repeat_n(&eddsa, iterations)).await);
    }
    let hs = median(&mut hs_batches);
    let fresh = median(&mut fresh_batches);
    let repeat = median(&mut repeat_batches);
    println!("token verification, median of {BATCHES} batches of {iterations}:");
    println!("  HS256                  {hs:>8.2} µs/verify");
    println!("  EdDSA, first sight     {fresh:>8.2} µs/verify (signature checked)");
    println!("  EdDSA, seen before     {repeat:>8.2} µs/verify (verified-token cache)");
    println!("  EdDSA first / HS256  = {:.1}x", fresh / hs);
    println!("  EdDSA cached / HS256 = {:.1}x", repeat / hs);
}

/// Mean microseconds per verification over one batch of tokens.
async fn batch<'a>(verifier: &Verifier, tokens: impl ExactSizeIterator<Item = &'a String>) -> f64 {
    let count = tokens.len();
    let started = Instant::now();
    for token in tokens {
        let user = verifier.verify(std::hint::black_box(token)).await;
        std::hint::black_box(user.expect("valid token"));
    }
    started.elapsed().as_secs_f64() * 1e6 / count as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
