//! Tells the integration tests whether a PostgreSQL server was given.
//!
//! Without `TEST_DATABASE_URL` the PostgreSQL half of the suite is compiled as ignored, so
//! `cargo test` reports it as "ignored, needs TEST_DATABASE_URL" rather than as passed. Under
//! CI (`CI` set) it is never ignored: there a missing URL fails those tests.
//!
//! It also watches the migrations: `sqlx::migrate!` embeds them at compile time, but nothing
//! else tells cargo to rebuild when only a migration changed, which would leave a binary with
//! the old one.

fn main() {
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rustc-check-cfg=cfg(test_database)");
    let given = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if given("TEST_DATABASE_URL") || given("CI") {
        println!("cargo::rustc-cfg=test_database");
    }
}
