// A real browser reads the live event stream: Debian's Chromium, headless, loads a page from
// one origin, opens GET /api/tasks/events on the API's (another) origin with `fetch` and a
// bearer header (EventSource cannot send one), and must see the event caused by a POST made
// outside the browser, while the response is still open (so nothing on the way buffers it).
//
// Environment: API (the service's base URL), TOKEN (a bearer token for it), PAGE_PORT (the
// page's port, whose origin the service allows), CHROMIUM (the browser's path). Prints one line per check and "browser: N passed, M failed" last.
import http from "node:http";
import { chromium } from "playwright-core";

const api = process.env.API;
const token = process.env.TOKEN;
let passed = 0;
let failed = 0;
function check(ok, what, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok" : "not ok"} - ${what}${ok || !detail ? "" : `: ${detail}`}`);
}

// The page's own origin: a plain server on another port.
const page = http.createServer((_, response) => {
  response.writeHead(200, { "content-type": "text/html" });
  response.end("<!doctype html><title>events</title><p>listening</p>");
});
await new Promise((resolve) => page.listen(Number(process.env.PAGE_PORT), "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${page.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const tab = await browser.newPage();
  await tab.goto(origin);
  // Opens the stream and keeps every frame that arrives in window.frames.
  const status = await tab.evaluate(
    async ({ api, token }) => {
      window.frames_ = [];
      const response = await fetch(`${api}/api/tasks/events`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      (async () => {
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            window.frames_.push(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      })();
      return { status: response.status, type: response.headers.get("content-type") };
    },
    { api, token },
  );
  check(status.status === 200, "the stream opens across origins with a bearer token", JSON.stringify(status));
  check(status.type === "text/event-stream", "as text/event-stream", status.type);

  const title = `from outside the browser ${Date.now()}`;
  const created = await fetch(`${api}/api/tasks`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ title }),
  });
  check(created.status === 201, "a POST outside the browser creates a task", String(created.status));
  const task = await created.json();

  const frame = await tab
    .waitForFunction(
      (id) => window.frames_.find((frame) => frame.includes(`"id":${id},`)),
      task.id,
      { timeout: 10_000 },
    )
    .then((handle) => handle.jsonValue())
    .catch((error) => String(error));
  const lines = Object.fromEntries(
    String(frame)
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
  );
  check(lines.event === "upsert", "the browser sees the upsert event while the stream is open", frame);
  let data = {};
  try {
    data = JSON.parse(lines.data);
  } catch {}
  check(data.task?.title === title && lines.id === data.cursor, "its data is the change-feed entry, its id the cursor", lines.data);
} finally {
  await browser.close();
  page.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
