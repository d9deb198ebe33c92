// End-to-end driver: Better Auth issues JWTs, todo-backend must accept them.
//
// Env:
//   AUTH_URL      Better Auth base URL, e.g. http://127.0.0.1:3000
//   API_URL       todo-backend base URL, e.g. http://127.0.0.1:8123 (not needed with --auth-only)
//   JWT_AUDIENCE  the audience server.mjs was started with (the API's URL): the tokens' `aud`
//   JWT_ALG       expected JWT/JWK algorithm (default EdDSA)
//
// Flags:
//   --auth-only   only exercise Better Auth (sign-up, /token, /jwks, claims); skip the API.
//
// Output: one "ok - name" / "not ok - name: why" line per check, "# ..." comment lines,
// then exactly "e2e: N passed, M failed". Exit status 1 if anything failed.
import crypto from "node:crypto";

const AUTH_URL = mustEnv("AUTH_URL").replace(/\/+$/, "");
const authOnly = process.argv.includes("--auth-only");
const API_URL = authOnly ? null : mustEnv("API_URL").replace(/\/+$/, "");
const ALG = process.env.JWT_ALG || "EdDSA";
const ORIGIN = new URL(AUTH_URL).origin;
const AUDIENCE = mustEnv("JWT_AUDIENCE");
// What a token may carry with `definePayload: ({ user }) => ({ name, email })`: those two and
// the registered claims Better Auth adds. Anything else would be more of the user than asked.
const CLAIMS = new Set(["iss", "aud", "sub", "iat", "exp", "nbf", "jti", "name", "email"]);

let passed = 0;
let failed = 0;

function mustEnv(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} must be set`);
    process.exit(2);
  }
  return v;
}

// Record one check. `fn` returns nothing on success and throws (or returns a string) on failure.
async function check(name, fn) {
  try {
    const why = await fn();
    if (typeof why === "string") throw new Error(why);
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${e.message}`.replace(/\s*\n\s*/g, " "));
  }
}

function finish() {
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// fetch with a timeout, returning { status, headers, body } with the body parsed as JSON if possible.
async function request(method, url, { token, cookie, json } = {}) {
  // Node's fetch sends Fetch-Metadata headers (sec-fetch-mode: cors), so Better Auth's CSRF
  // check treats it like a browser and wants an Origin on POSTs. Act like a page served
  // from the auth origin (baseURL is always a trusted origin). The API ignores it.
  const headers = { origin: ORIGIN };
  if (token) headers.authorization = `Bearer ${token}`;
  if (cookie) headers.cookie = cookie;
  if (json !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body };
}

function expectStatus(res, want) {
  if (res.status !== want) {
    throw new Error(`expected HTTP ${want}, got ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
  }
}

const b64urlJson = (s) => JSON.parse(Buffer.from(s, "base64url").toString("utf8"));

function decodeJwt(token) {
  const [h, p, s] = token.split(".");
  if (s === undefined) throw new Error(`not a compact JWS: ${token.slice(0, 40)}...`);
  return { header: b64urlJson(h), payload: b64urlJson(p) };
}

// Verify a JWS against a JWK with plain node:crypto, independently of Better Auth and the API.
// It makes sure the tampered tokens below really are invalid (so a 401 means something).
function verifyWithJwk(token, jwk) {
  const [h, p, s] = token.split(".");
  const key = crypto.createPublicKey({ key: jwk, format: "jwk" });
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, "base64url");
  switch (jwk.alg) {
    case "EdDSA":
      return crypto.verify(null, data, key, sig);
    case "ES256":
      return crypto.verify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, sig);
    case "ES512":
      return crypto.verify("sha512", data, { key, dsaEncoding: "ieee-p1363" }, sig);
    case "RS256":
      return crypto.verify("sha256", data, key, sig);
    case "PS256":
      return crypto.verify("sha256", data, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig);
    default:
      throw new Error(`no local verifier for alg ${jwk.alg}`);
  }
}

// Sign up a fresh user; sign-up signs in too (autoSignIn), so keep its session cookie.
async function signUp(name) {
  const email = `${name}-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const res = await request("POST", `${AUTH_URL}/api/auth/sign-up/email`, {
    json: { name, email, password: "correct horse battery staple" },
  });
  expectStatus(res, 200);
  // Keep only "name=value" of each Set-Cookie; that is what a browser would send back.
  const cookie = res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  if (!cookie) throw new Error("sign-up returned no session cookie");
  if (!res.body?.user?.id) throw new Error(`sign-up returned no user id: ${JSON.stringify(res.body)}`);
  return { name, email, id: res.body.user.id, cookie };
}

async function getJwt(user) {
  const res = await request("GET", `${AUTH_URL}/api/auth/token`, { cookie: user.cookie });
  expectStatus(res, 200);
  if (typeof res.body?.token !== "string") throw new Error(`no token in ${JSON.stringify(res.body)}`);
  return res.body.token;
}

// ---------------------------------------------------------------- Better Auth side

const users = {};
for (const name of ["alice", "bob"]) {
  await check(`${name} signs up and gets a JWT from /api/auth/token`, async () => {
    const u = await signUp(name);
    u.jwt = await getJwt(u);
    users[name] = u;
  });
}
const { alice, bob } = users;
if (!alice || !bob) finish(); // nothing below can work without both tokens

const aliceJwt = decodeJwt(alice.jwt);
console.log(`# alice id: ${alice.id}`);
console.log(`# alice JWT header: ${JSON.stringify(aliceJwt.header)}`);
console.log(`# alice JWT claims: ${JSON.stringify(aliceJwt.payload)}`);

await check(`JWT header alg is ${ALG}`, () => {
  if (aliceJwt.header.alg !== ALG) return `header alg is ${aliceJwt.header.alg}`;
  if (!aliceJwt.header.kid) return "header has no kid";
});

let jwk;
await check(`/api/auth/jwks lists the token's kid with alg ${ALG} and it verifies`, async () => {
  const res = await request("GET", `${AUTH_URL}/api/auth/jwks`);
  expectStatus(res, 200);
  jwk = res.body?.keys?.find((k) => k.kid === aliceJwt.header.kid);
  if (!jwk) return `kid ${aliceJwt.header.kid} not in ${JSON.stringify(res.body)}`;
  if (jwk.alg !== ALG) return `JWK alg is ${jwk.alg}`;
  if (!verifyWithJwk(alice.jwt, jwk)) return "signature does not verify against the JWK";
});

await check("claims: sub = user id, iss = the auth server's origin, exp in the future", () => {
  const c = aliceJwt.payload;
  const now = Math.floor(Date.now() / 1000);
  if (c.sub !== alice.id) return `sub ${c.sub} != user id ${alice.id}`;
  if (c.iss !== ORIGIN) return `iss ${c.iss} != ${ORIGIN}`;
  if (!(c.exp > now)) return `exp ${c.exp} is not after now (${now})`;
  if (decodeJwt(bob.jwt).payload.sub !== bob.id) return "bob's sub is not bob's id";
});

await check(`claims: aud = ${AUDIENCE} (jwt.audience), name and email (definePayload), nothing else`, () => {
  for (const user of [alice, bob]) {
    const c = decodeJwt(user.jwt).payload;
    if (c.aud !== AUDIENCE) return `${user.name}'s aud is ${JSON.stringify(c.aud)}, not "${AUDIENCE}"`;
    if (c.name !== user.name) return `${user.name}'s name claim is ${JSON.stringify(c.name)}`;
    if (c.email !== user.email) return `${user.name}'s email claim is ${JSON.stringify(c.email)}, not ${user.email}`;
    const extra = Object.keys(c).filter((k) => !CLAIMS.has(k));
    if (extra.length) return `${user.name}'s token also carries ${extra.join(", ")}`;
  }
});

// Two forged tokens that must be rejected: a flipped signature character, and bob's payload
// under alice's header and signature. A character in the middle is changed because the last
// base64url character of a signature may carry only padding bits.
const [h, p, s] = alice.jwt.split(".");
const mid = Math.floor(s.length / 2);
const flippedSig = `${h}.${p}.${s.slice(0, mid)}${s[mid] === "A" ? "B" : "A"}${s.slice(mid + 1)}`;
const swappedPayload = `${h}.${bob.jwt.split(".")[1]}.${s}`;

await check("forged tokens do not verify locally (sanity check of the tamper tests)", () => {
  if (!jwk) return "no JWK to verify with";
  if (verifyWithJwk(flippedSig, jwk)) return "flipped-signature token still verifies";
  if (verifyWithJwk(swappedPayload, jwk)) return "swapped-payload token still verifies";
});

if (authOnly) finish();

// ---------------------------------------------------------------- todo-backend side

let task;
await check("alice POST /api/tasks -> 201 with user_id = alice's id", async () => {
  const res = await request("POST", `${API_URL}/api/tasks`, { token: alice.jwt, json: { title: "from better auth" } });
  expectStatus(res, 201);
  task = res.body;
  if (task?.title !== "from better auth") return `unexpected task ${JSON.stringify(task)}`;
  if (task.user_id !== alice.id) return `user_id ${task.user_id} != ${alice.id}`;
  if (task.id === undefined) return `task has no id: ${JSON.stringify(task)}`;
});

await check("alice GET /api/tasks -> 200 containing her task", async () => {
  const res = await request("GET", `${API_URL}/api/tasks`, { token: alice.jwt });
  expectStatus(res, 200);
  if (!Array.isArray(res.body)) return `not an array: ${JSON.stringify(res.body)}`;
  if (!task || !res.body.some((t) => t.id === task.id)) return `task missing from ${JSON.stringify(res.body)}`;
});

await check("bob GET /api/tasks/{alice's id} -> 404", async () => {
  if (!task) return "no task was created";
  expectStatus(await request("GET", `${API_URL}/api/tasks/${task.id}`, { token: bob.jwt }), 404);
});

await check("bob GET /api/tasks -> 200 []", async () => {
  const res = await request("GET", `${API_URL}/api/tasks`, { token: bob.jwt });
  expectStatus(res, 200);
  if (!Array.isArray(res.body) || res.body.length !== 0) return `expected [], got ${JSON.stringify(res.body)}`;
});

await check("token with a changed signature character -> 401", async () => {
  expectStatus(await request("GET", `${API_URL}/api/tasks`, { token: flippedSig }), 401);
});

await check("alice's signature over bob's payload -> 401", async () => {
  expectStatus(await request("GET", `${API_URL}/api/tasks`, { token: swappedPayload }), 401);
});

await check("no token -> 401 with JSON {detail, status_code}", async () => {
  const res = await request("GET", `${API_URL}/api/tasks`);
  expectStatus(res, 401);
  if (res.body?.status_code !== 401 || typeof res.body?.detail !== "string") {
    return `error body is not {detail, status_code: 401}: ${JSON.stringify(res.body)}`;
  }
});

finish();
