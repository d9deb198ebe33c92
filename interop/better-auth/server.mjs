// A real Better Auth server for the todo-backend interop test, configured as
// docs/better-auth.md ("Connect a Better Auth frontend") shows: the jwt() plugin with the API's URL as the tokens'
// audience and only the claims the API needs (name, email) besides the registered ones.
//
// Env:
//   AUTH_PORT     (required) port to listen on, on 127.0.0.1
//   JWT_AUDIENCE  (required) the API's URL: jwt.audience, the tokens' `aud`
//   JWT_ALG       signing algorithm of the jwt() plugin: EdDSA (default), ES256, RS256
//                 (Better Auth also accepts ES512 and PS256)
//
// Prints "READY" on stdout once it accepts connections.
import http from "node:http";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { jwt } from "better-auth/plugins";
import { toNodeHandler } from "better-auth/node";
// Note: getMigrations lives in "better-auth/db/migration", not "better-auth/db".
import { getMigrations } from "better-auth/db/migration";

const port = Number(process.env.AUTH_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error("AUTH_PORT must be set to a port number");
  process.exit(2);
}
const audience = process.env.JWT_AUDIENCE;
if (!audience) {
  console.error("JWT_AUDIENCE must be set to the API's URL");
  process.exit(2);
}
const alg = process.env.JWT_ALG || "EdDSA";
const ALGS = ["EdDSA", "ES256", "ES512", "RS256", "PS256"];
if (!ALGS.includes(alg)) {
  console.error(`JWT_ALG must be one of ${ALGS.join(", ")}, got ${alg}`);
  process.exit(2);
}
// Same shape as Better Auth's default ({ alg: "EdDSA", crv: "Ed25519" }) for EdDSA.
const keyPairConfig = alg === "EdDSA" ? { alg, crv: "Ed25519" } : { alg };

const options = {
  baseURL: `http://127.0.0.1:${port}`,
  // Fixed test secret. It signs the session cookie and encrypts the JWKS private keys.
  secret: "interop-test-secret-not-for-production-0123456789",
  // One in-memory database per server process: every run starts clean.
  database: new Database(":memory:"),
  emailAndPassword: { enabled: true },
  // The e2e driver signs up two users in quick succession; keep limits out of the way.
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  plugins: [
    jwt({
      jwks: { keyPairConfig },
      jwt: {
        audience, // the API's URL
        definePayload: ({ user }) => ({ name: user.name, email: user.email }),
      },
    }),
  ],
};

// Create the tables (user, session, account, verification, jwks) before serving.
const { runMigrations } = await getMigrations(options);
await runMigrations();

const auth = betterAuth(options);
const server = http.createServer(toNodeHandler(auth));
server.listen(port, "127.0.0.1", () => {
  console.log("READY");
});

// run.sh stops us with SIGTERM. Everything is in memory, so just exit (status 0).
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
