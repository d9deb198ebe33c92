# syntax=docker/dockerfile:1
# The service as a container: built with Rust 1.95 (the crate needs 1.94 or newer: rust-version
# in Cargo.toml) from the locked dependencies, run as a non-root user from an image with no
# compiler and no curl in it. docs/containers.md describes it.

FROM rust:1.95-bookworm AS build
WORKDIR /src

# The dependencies first, in a layer of their own, so that a change to the service's code does
# not rebuild every crate: only the manifests, the lock file, the build script and vendor/
# invalidate it. Cargo refuses a manifest whose lib, bin or bench has no file, so the crate's
# own targets are stubs here; migrations/ exists because build.rs watches it.
COPY Cargo.toml Cargo.lock ./
COPY vendor vendor
COPY backend/Cargo.toml backend/build.rs backend/
RUN mkdir -p backend/src backend/benches backend/migrations \
 && echo 'fn main() {}' > backend/src/main.rs \
 && echo '' > backend/src/lib.rs \
 && echo 'fn main() {}' > backend/benches/verify.rs \
 && cargo build --release --locked --bin todo-backend

# Then the real sources. COPY keeps their modification times, which may be older than the stub
# build above, and cargo would then take the stubs' output as up to date: touching the crate's
# roots makes it rebuild the crate itself (and nothing else).
COPY backend backend
RUN touch backend/src/main.rs backend/src/lib.rs \
 && cargo build --release --locked --bin todo-backend

FROM debian:bookworm-slim
# ca-certificates: TLS to PostgreSQL (Neon) and to the JWKS endpoint. The service writes data/
# under its working directory (the development secret, a SQLite file); /app/data belongs to its
# user, so that a volume mounted there starts out writable by it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --create-home todo \
 && install -d -o todo /app/data
COPY --from=build /src/target/release/todo-backend /usr/local/bin/todo-backend
USER todo
WORKDIR /app
ENV HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
EXPOSE 8000
# No curl in this image: the binary asks its own /health (exit 0 on a 200). Load balancers and
# orchestrators should route on /ready instead (docs/operating.md).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["todo-backend", "healthcheck"]
ENTRYPOINT ["todo-backend"]
CMD ["serve"]
