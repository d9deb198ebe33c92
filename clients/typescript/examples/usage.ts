// What a Next.js app writes with this client; type-checked in CI (`npm run build`), never
// run. No cast and no `@ts-expect-error`: the conditional request and the event payload are
// typed from the OpenAPI document.

import { createTodoClient, ifMatch, subscribe, type Change, type Task } from "../src/index.js";

declare const authClient: { token(): Promise<{ data: { token: string } | null }> };

const token = async (): Promise<string> => {
  const { data } = await authClient.token();
  if (data === null) {
    throw new Error("signed out");
  }
  return data.token;
};

export const api = createTodoClient({ baseUrl: "https://api.example.com", token });

/** Completes `task` unless someone changed it since it was shown: then returns the latest. */
export async function complete(task: Task): Promise<Task> {
  const { data, error, response } = await api.PATCH("/api/tasks/{task_id}", {
    params: { path: { task_id: task.id }, header: ifMatch(task) },
    body: { status: "completed" },
  });
  if (data !== undefined) {
    return data;
  }
  if (response.status === 412) {
    const latest = await api.GET("/api/tasks/{task_id}", { params: { path: { task_id: task.id } } });
    if (latest.data !== undefined) {
      return latest.data;
    }
  }
  throw new Error(error?.detail ?? `HTTP ${response.status}`);
}

/** Keeps `tasks` live: each change of the event stream applied as it comes. */
export function follow(tasks: Map<number, Task>): () => void {
  const subscription = subscribe({
    baseUrl: "https://api.example.com",
    token,
    onChange: (change: Change) => {
      switch (change.op) {
        case "upsert":
          if ("task" in change) {
            tasks.set(change.task.id, change.task);
          }
          break;
        case "delete":
          if ("id" in change) {
            tasks.delete(change.id);
          }
          break;
      }
    },
  });
  return () => subscription.close();
}
