// The client against a running service (run.sh starts one on SQLite and gives its URL and a
// token in TODO_BASE_URL and TODO_TOKEN).

import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { after, test } from "node:test";

import {
  allTasks,
  applyChange,
  cachedToken,
  createTodoClient,
  emptyReplica,
  ifMatch,
  nextCursor,
  subscribe,
  sync,
  type Change,
  type Task,
} from "../src/index.js";

const baseUrl = required("TODO_BASE_URL");
const token = required("TODO_TOKEN");
const client = createTodoClient({ baseUrl, token: async () => token });

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined) {
    throw new Error(`${name} is not set: run the tests with clients/typescript/run.sh`);
  }
  return value;
}

async function create(title: string): Promise<Task> {
  const { data, error } = await client.POST("/api/tasks", { body: { title } });
  assert.ok(data, JSON.stringify(error));
  return data;
}

test("If-Match from a task's version: the write at that version wins, a stale one is a 412", async () => {
  const task = await create("conditional");
  const first = await client.PATCH("/api/tasks/{task_id}", {
    params: { path: { task_id: task.id }, header: ifMatch(task) },
    body: { title: "first" },
    headers: { "Content-Type": "application/merge-patch+json" },
  });
  assert.equal(first.response.status, 200);
  assert.equal(first.data?.version, task.version + 1);
  const second = await client.PATCH("/api/tasks/{task_id}", {
    params: { path: { task_id: task.id }, header: ifMatch(task) },
    body: { title: "second" },
    headers: { "Content-Type": "application/merge-patch+json" },
  });
  assert.equal(second.response.status, 412);
  assert.equal(second.error?.status_code, 412);
  assert.equal(second.response.headers.get("etag"), `"${task.id}-${task.version + 1}"`);
  const read = await client.GET("/api/tasks/{task_id}", {
    params: { path: { task_id: task.id }, header: { "If-None-Match": `"${task.id}-${task.version + 1}"` } },
  });
  assert.equal(read.response.status, 304);
});

test("every page of a list, following Link", async () => {
  const made = new Set<number>();
  for (let n = 0; n < 5; n += 1) {
    made.add((await create(`paged ${n}`)).id);
  }
  const seen: number[] = [];
  for await (const task of allTasks(client, { limit: 2, sort: "position" })) {
    seen.push(task.id);
  }
  assert.equal(new Set(seen).size, seen.length, "no task twice");
  for (const id of made) {
    assert.ok(seen.includes(id), `task ${id} listed`);
  }
  assert.equal(nextCursor('</api/tasks?limit=2&cursor=abc>; rel="next"'), "abc");
  assert.equal(nextCursor(null), undefined);
});

test("a page without its count, as allTasks asks", async () => {
  await create("counted or not");
  const counted = await client.GET("/api/tasks", { params: { query: { limit: 1 } } });
  assert.ok(Number(counted.response.headers.get("x-total-count")) >= 1);
  const uncounted = await client.GET("/api/tasks", {
    params: { query: { limit: 1 }, header: { Prefer: "count=none" } },
  });
  assert.equal(uncounted.response.status, 200);
  assert.equal(uncounted.response.headers.get("x-total-count"), null);
  assert.equal(uncounted.response.headers.get("preference-applied"), "count=none");
  assert.deepEqual(uncounted.data, counted.data);
});

test("the sync loop keeps a replica equal to the service", async () => {
  const replica = emptyReplica();
  await sync(client, replica);
  const gone = await create("to delete");
  const kept = await create("to keep");
  await client.DELETE("/api/tasks/{task_id}", { params: { path: { task_id: gone.id } } });
  assert.ok((await sync(client, replica)) >= 2);
  assert.ok(!replica.tasks.has(gone.id));
  assert.equal(replica.tasks.get(kept.id)?.title, "to keep");
  const listed: number[] = [];
  for await (const task of allTasks(client, { limit: 100 })) {
    listed.push(task.id);
  }
  assert.deepEqual([...replica.tasks.keys()].sort((a, b) => a - b), listed.sort((a, b) => a - b));
  assert.equal(await sync(client, replica), 0, "nothing new");
});

test("the token is fetched once, and again only near its expiry", async () => {
  let calls = 0;
  let clock = 0;
  const jwt = (exp: number) =>
    `x.${btoa(JSON.stringify({ exp })).replace(/=+$/, "")}.y`;
  const cached = cachedToken(async () => {
    calls += 1;
    return jwt(900);
  }, () => clock);
  await Promise.all([cached(), cached(), cached()]);
  assert.equal(calls, 1, "one fetch for callers at once");
  clock = 800_000;
  await cached();
  assert.equal(calls, 1, "still fresh at 800 s of 900");
  clock = 880_000;
  await cached();
  assert.equal(calls, 2, "fetched again 20 s before expiry");
});

/** A TCP proxy to the service whose connections the test can cut. */
function proxy(target: URL): Promise<{ url: string; cut: () => void; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = connect(Number(target.port), target.hostname);
    sockets.add(inbound).add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", drop).on("close", drop);
    outbound.on("error", drop).on("close", drop);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}`,
        cut: () => {
          for (const socket of sockets) {
            socket.destroy();
          }
          sockets.clear();
        },
        server,
      });
    });
  });
}

test("the event stream resumes after its connection is cut: every change once, in order", async () => {
  const via = await proxy(new URL(baseUrl));
  after(() => via.server.close());
  const received: Change[] = [];
  let disconnects = 0;
  let arrived: () => void = () => {};
  const subscription = subscribe({
    baseUrl: via.url,
    token: async () => token,
    lastEventId: (await client.GET("/api/tasks/changes", { params: { query: { limit: 1000 } } })).data?.next_cursor ?? "0",
    initialDelayMs: 50,
    onChange: (change) => {
      received.push(change);
      arrived();
    },
    onDisconnect: () => {
      disconnects += 1;
    },
  });
  const until = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error(`${received.length} of ${count} events`)), 10_000);
      const check = () => {
        if (received.length >= count) {
          clearTimeout(timeout);
          resolve();
        }
      };
      arrived = check;
      check();
    });
  const before = await create("before the cut");
  await until(1);
  via.cut();
  // Written while the client is cut off: it must get them when it is back.
  const during = [await create("during 1"), await create("during 2")];
  await until(3);
  const afterwards = await create("after");
  await until(4);
  subscription.close();
  await subscription.closed;
  assert.ok(disconnects >= 1, "the cut was noticed");
  const ids = received.map((change) => ("task" in change ? change.task.id : undefined));
  assert.deepEqual(ids, [before.id, during[0]?.id, during[1]?.id, afterwards.id]);
  const replica = new Map<number, Task>();
  for (const change of received) {
    applyChange(replica, change);
  }
  assert.equal(replica.size, 4);
});
