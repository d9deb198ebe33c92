// A stand-in for Better Auth's JWT plugin, for the benchmark's EdDSA rows: it makes an
// Ed25519 key, serves it at /api/auth/jwks as Better Auth does, and prints one EdDSA token per
// user given on the command line (iss and aud: its own origin, Better Auth's defaults), one
// per line, then keeps serving until it is killed. Node's standard library only.
//
//   node bench/issuer.mjs PORT TTL_SECONDS USER...
import { createServer } from "node:http";
import { generateKeyPairSync, sign, randomUUID } from "node:crypto";

const [port, ttl, ...users] = process.argv.slice(2);
const origin = `http://127.0.0.1:${port}`;
const kid = randomUUID();
const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const jwks = JSON.stringify({
  keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "EdDSA", use: "sig" }],
});

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
function token(sub) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: "EdDSA", kid, typ: "JWT" });
  const body = b64({ sub, iss: origin, aud: origin, iat: now, exp: now + Number(ttl) });
  const signature = sign(null, Buffer.from(`${head}.${body}`), privateKey).toString("base64url");
  return `${head}.${body}.${signature}`;
}

createServer((request, response) => {
  if (request.url === "/api/auth/jwks") {
    response.writeHead(200, { "content-type": "application/json" }).end(jwks);
  } else {
    response.writeHead(404).end();
  }
}).listen(Number(port), "127.0.0.1", () => {
  for (const user of users) console.log(token(user));
});
