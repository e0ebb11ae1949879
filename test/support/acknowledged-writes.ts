// A client-side log of acknowledged commits, for failover tests: what a client saw committed must survive.
import { withClient } from "./services.js";

/**
 * `clients` sessions inserting ids into `acks (id, written_by)`, client k writing k, k + clients, …, until
 * their server dies. Resolves with every id whose COMMIT returned; one in flight at the kill is not in it.
 */
export function writeUntilDead(url: string, clients: number): Promise<string[]> {
  const one = async (client: number): Promise<string[]> => {
    const acknowledged: string[] = [];
    await withClient(url, async (c) => {
      c.on("error", () => undefined);
      try {
        for (let id = client; ; id += clients) {
          await c.query("INSERT INTO acks (id, written_by) VALUES ($1, $2)", [id, client]);
          acknowledged.push(String(id));
        }
      } catch {
        // The server was killed: a commit that did not return is not acknowledged.
      }
    }).catch(() => undefined);
    return acknowledged;
  };
  return Promise.all(Array.from({ length: clients }, (_, i) => one(i + 1))).then((ids) => ids.flat());
}
