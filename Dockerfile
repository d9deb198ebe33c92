# syntax=docker/dockerfile:1
# The service as a container: built with the toolchain the project pins (rust-version in
# Cargo.toml) from the locked dependencies, run as a non-root user from an image with no
# compiler in it.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY vendor vendor
COPY backend backend
RUN cargo build --release --locked --bin todo-backend

FROM debian:bookworm-slim
# ca-certificates: TLS to PostgreSQL (Neon) and to the JWKS endpoint.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --create-home todo
COPY --from=build /src/target/release/todo-backend /usr/local/bin/todo-backend
USER todo
WORKDIR /app
ENV HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
EXPOSE 8000
# No shell or curl needed: the orchestrator's probe calls /ready (see README).
ENTRYPOINT ["todo-backend"]
CMD ["serve"]
