// A typed client for todo-backend. The types of every route, body and answer are generated
// from the service's OpenAPI document (src/schema.d.ts, by openapi-typescript); the requests
// go through openapi-fetch. What generators do not do is here: a token provider that caches
// the token until it expires, `If-Match` from a task's version, every page of a list
// (following `Link`), a change-feed sync loop, and the live event stream with resume and
// reconnect.

import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, paths };
export type Task = components["schemas"]["Task"];
export type List = components["schemas"]["List"];
/** One entry of the change feed, and the `data` of every event of the event stream. */
export type Change = components["schemas"]["Change"];
export type ErrorBody = components["schemas"]["ErrorBody"];
export type TaskQuery = NonNullable<paths["/api/tasks"]["get"]["parameters"]["query"]>;
export type TodoClient = Client<paths>;

/** Gives a JWT for the signed-in user: Better Auth's `authClient.token()`, say. */
export type TokenSource = () => Promise<string>;

/** How long before a token's `exp` it is fetched again. */
const TOKEN_MARGIN_MS = 30_000;

/**
 * `source`, asked again only when the token it gave last is within 30 s of its `exp` (Better
 * Auth's tokens live 15 minutes), and once for many callers at the same moment.
 */
export function cachedToken(source: TokenSource, now: () => number = Date.now): TokenSource {
  let token: string | undefined;
  let expires = 0;
  let pending: Promise<string> | undefined;
  return () => {
    if (token !== undefined && now() < expires - TOKEN_MARGIN_MS) {
      return Promise.resolve(token);
    }
    pending ??= source()
      .then((fresh) => {
        token = fresh;
        // A token without a readable `exp` is used for a minute.
        expires = expiryOf(fresh) ?? now() + 60_000;
        return fresh;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

/** The `exp` of a JWT, in milliseconds; undefined when it has none. */
export function expiryOf(jwt: string): number | undefined {
  const payload = jwt.split(".")[1];
  if (payload === undefined) {
    return undefined;
  }
  try {
    const claims: unknown = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
    if (typeof claims === "object" && claims !== null && "exp" in claims) {
      const exp = claims.exp;
      return typeof exp === "number" ? exp * 1000 : undefined;
    }
  } catch {
    // Not a JWT we can read: no expiry known.
  }
  return undefined;
}

export interface ClientOptions {
  /** The service's URL, such as `https://api.example.com` (no `/api`). */
  baseUrl: string;
  token: TokenSource;
  fetch?: typeof globalThis.fetch;
}

/** A client whose every request carries `Authorization: Bearer <token>`. */
export function createTodoClient(options: ClientOptions): TodoClient {
  const token = cachedToken(options.token);
  const client = createClient<paths>({
    baseUrl: options.baseUrl,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  });
  client.use({
    async onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${await token()}`);
      return request;
    },
  });
  return client;
}

/** The strong ETag of a task at the version the client holds. */
export function etagOf(task: Pick<Task, "id" | "version">): string {
  return `"${task.id}-${task.version}"`;
}

/** The header that makes a write apply only to the version of `task` the client holds. */
export function ifMatch(task: Pick<Task, "id" | "version">): { "If-Match": string } {
  return { "If-Match": etagOf(task) };
}

/** A response the service refused: its status and its JSON error body. */
export class TodoError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody | undefined,
  ) {
    super(body?.detail ?? `HTTP ${status}`);
    this.name = "TodoError";
  }
}

/** The `cursor` of a `Link: <...>; rel="next"` header, if it names a next page. */
export function nextCursor(link: string | null): string | undefined {
  if (link === null) {
    return undefined;
  }
  for (const part of link.split(",")) {
    const match = /<([^>]*)>\s*;\s*rel="?next"?/.exec(part);
    if (match?.[1] !== undefined) {
      return new URL(match[1], "http://link.invalid").searchParams.get("cursor") ?? undefined;
    }
  }
  return undefined;
}

/**
 * Every task that matches `query`, page after page, as `Link: rel="next"` leads. It reads no
 * total, so it asks for none (`Prefer: count=none`): the service skips counting the matches.
 */
export async function* allTasks(client: TodoClient, query: TaskQuery = {}): AsyncGenerator<Task> {
  let page: TaskQuery = query;
  for (;;) {
    const { data, error, response } = await client.GET("/api/tasks", {
      params: { query: page, header: { Prefer: "count=none" } },
    });
    if (data === undefined) {
      throw new TodoError(response.status, error);
    }
    yield* data;
    const cursor = nextCursor(response.headers.get("link"));
    if (cursor === undefined) {
      return;
    }
    // The cursor says where the next page starts; an offset with it is refused.
    const { offset: _offset, ...rest } = query;
    page = { ...rest, cursor };
  }
}

/** A local copy of the caller's tasks, and where in the change feed it stands. */
export interface Replica {
  tasks: Map<number, Task>;
  cursor: string;
}

export function emptyReplica(): Replica {
  return { tasks: new Map(), cursor: "0" };
}

/** Applies one change of the feed or the event stream to `tasks`. */
export function applyChange(tasks: Map<number, Task>, change: Change): void {
  if ("task" in change) {
    tasks.set(change.task.id, change.task);
  } else if ("id" in change) {
    tasks.delete(change.id);
  }
}

/**
 * Brings `replica` up to date with the change feed, page by page; the number of changes
 * applied. A cursor the service no longer keeps history for (410) starts the copy again.
 */
export async function sync(client: TodoClient, replica: Replica): Promise<number> {
  let applied = 0;
  for (;;) {
    const { data, error, response } = await client.GET("/api/tasks/changes", {
      params: { query: { since: replica.cursor, limit: 500 } },
    });
    if (response.status === 410) {
      replica.tasks.clear();
      replica.cursor = "0";
      continue;
    }
    if (data === undefined) {
      throw new TodoError(response.status, error);
    }
    for (const change of data.changes) {
      applyChange(replica.tasks, change);
      applied += 1;
    }
    replica.cursor = data.next_cursor;
    if (!data.has_more) {
      return applied;
    }
  }
}

export interface SubscribeOptions {
  baseUrl: string;
  token: TokenSource;
  /** Every change, with its id (a feed cursor), in order, each once. */
  onChange: (change: Change, id: string) => void;
  /** Resume after this event id (or feed cursor) instead of now. */
  lastEventId?: string;
  /** The history after the resume point is gone (410): sync from the start, then resume. */
  onGone?: () => void;
  /** A connection failed or ended; the stream reconnects after `delayMs`. */
  onDisconnect?: (reason: unknown, delayMs: number) => void;
  /**
   * The service refused the subscription for good (a 4xx other than 401, 408, 410 and 429,
   * such as a malformed `lastEventId`): the subscription is closed.
   */
  onError?: (error: TodoError) => void;
  /** The first wait before reconnecting, doubled each time up to `maxDelayMs`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  fetch?: typeof globalThis.fetch;
}

export interface Subscription {
  /** The id of the last event delivered: where a new subscription would resume. */
  readonly lastEventId: string | undefined;
  close(): void;
  /** Settles when the subscription is closed. */
  readonly closed: Promise<void>;
}

/**
 * The live event stream (Server-Sent Events over `fetch`, so that the token goes in a header):
 * each change handed to `onChange` once, in order; after a dropped connection it reconnects
 * with backoff and resumes from the last event it delivered.
 */
export function subscribe(options: SubscribeOptions): Subscription {
  let token = cachedToken(options.token);
  const fetchFn = options.fetch ?? globalThis.fetch;
  const initial = options.initialDelayMs ?? 250;
  const max = options.maxDelayMs ?? 30_000;
  const stop = new AbortController();
  let lastEventId = options.lastEventId;
  let delay = initial;

  const run = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      try {
        const headers: Record<string, string> = {
          Accept: "text/event-stream",
          Authorization: `Bearer ${await token()}`,
        };
        if (lastEventId !== undefined) {
          headers["Last-Event-ID"] = lastEventId;
        }
        const response = await fetchFn(`${options.baseUrl}/api/tasks/events`, {
          headers,
          signal: stop.signal,
        });
        if (response.status === 410) {
          lastEventId = undefined;
          options.onGone?.();
          throw new TodoError(410, undefined);
        }
        if (response.status === 401) {
          // A new cache: the next connection asks the source for a new token.
          token = cachedToken(options.token);
        }
        const retried = [401, 408, 429].includes(response.status) || response.status >= 500;
        if (!response.ok && !retried) {
          const error = new TodoError(response.status, undefined);
          options.onError?.(error);
          stop.abort();
          return;
        }
        if (!response.ok || response.body === null) {
          throw new TodoError(response.status, undefined);
        }
        // Connected: the next failure waits the shortest time again.
        delay = initial;
        for await (const event of events(response.body)) {
          if (event.data === undefined || event.event === undefined) {
            continue;
          }
          const change = JSON.parse(event.data) as Change;
          options.onChange(change, event.id ?? change.cursor);
          // Only once delivered: a change whose handler threw is sent again on reconnect.
          if (event.id !== undefined) {
            lastEventId = event.id;
          }
        }
        throw new Error("the event stream ended");
      } catch (reason) {
        if (stop.signal.aborted) {
          return;
        }
        // Spread out, so that many clients cut off together do not return together.
        const wait = Math.round(delay * (0.5 + Math.random() / 2));
        options.onDisconnect?.(reason, wait);
        await sleep(wait, stop.signal);
        delay = Math.min(delay * 2, max);
      }
    }
  };
  const closed = run();
  return {
    get lastEventId() {
      return lastEventId;
    },
    close() {
      stop.abort();
    },
    closed,
  };
}

interface Event {
  id?: string;
  event?: string;
  data?: string;
}

/** The events of a `text/event-stream` body (comments and retry hints left out). */
async function* events(body: ReadableStream<Uint8Array>): AsyncGenerator<Event> {
  const decoder = new TextDecoder();
  let buffer = "";
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parse(block);
        if (event !== undefined) {
          yield event;
        }
        end = buffer.indexOf("\n\n");
      }
    }
  } finally {
    // Closes the connection too, when the reader stops early (a handler threw).
    await reader.cancel().catch(() => {});
  }
}

function parse(block: string): Event | undefined {
  const event: Event = {};
  let fields = 0;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) {
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "id") {
      event.id = value;
    } else if (name === "event") {
      event.event = value;
    } else if (name === "data") {
      event.data = event.data === undefined ? value : `${event.data}\n${value}`;
    } else {
      continue;
    }
    fields += 1;
  }
  return fields === 0 ? undefined : event;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
