// SQL helpers shared by the bench modules (kept apart from context.ts so imports do not cycle).
import pg from "pg";

export async function sql<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

export function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
