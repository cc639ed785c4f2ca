// chDB's connection, with one defect of chDB 3.4 taken care of: after a statement fails part-way
// through its output, the connection hands that output to the *next* statement in place of the
// next statement's own result (seen with `SELECT … throwIf(…)`: the next `SELECT 1` returned the
// failed query's 196,228 rows). Statements on one chDB connection run one at a time anyway; here
// they also queue in this process, and a failed one is followed by a throwaway query that takes
// what it left before the next statement runs.
import type { ChdbConnection } from "chdb/connection";

type Operation = "ping" | "query" | "insert" | "command" | "exec";

/** `connection` with each operation queued behind the previous one, and a failed one flushed. */
export function guardedChdbConnection(connection: ChdbConnection): ChdbConnection {
  let queue: Promise<unknown> = Promise.resolve();
  const flush = async () => {
    await connection.chdb.queryAsync("SELECT 1", { format: "TabSeparated" }).catch(() => undefined);
  };
  const run =
    <P, R>(operation: (params: P) => Promise<R>) =>
    (params: P): Promise<R> => {
      const result = queue.then(async () => {
        try {
          return await operation(params);
        } catch (error) {
          await flush();
          throw error;
        }
      });
      queue = result.catch(() => undefined);
      return result;
    };
  const guarded: Partial<Record<Operation, unknown>> = {};
  for (const name of ["ping", "query", "insert", "command", "exec"] as const) {
    guarded[name] = run((params: never) => (connection[name] as (p: never) => Promise<unknown>)(params));
  }
  return new Proxy(connection, {
    get(target, property) {
      if (typeof property === "string" && property in guarded) return guarded[property as Operation];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
