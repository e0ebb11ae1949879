import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";

/**
 * A table and columns whose names are SQL-injection payloads of the DROP shape replicate like any other
 * name, and nothing else happens: the `victim` table exists, untouched, on the source and the standby.
 */
const TABLE = `"x""; DROP TABLE victim; --"`;
const KEY = `"id""; DROP TABLE victim; --"`;
const TEXT_COL = `"v'); DROP TABLE victim; --"`;
const DOLLAR_COL = `"$1; DELETE FROM victim; $$"`;
const DDL = `
CREATE TABLE public.victim (id int PRIMARY KEY, note text NOT NULL);
CREATE TABLE public.${TABLE} (${KEY} int PRIMARY KEY, ${TEXT_COL} text, ${DOLLAR_COL} text);
`;

let pipeline: ReplicationPipeline;

beforeAll(async () => {
  const services = testServices();
  const standbyServer = services.standbyUrls[0];
  if (!standbyServer) throw new Error("the identifier test needs a standby server");
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "inj1", serverUrl: standbyServer }],
    brokers: services.kafkaBrokers,
    prefix: "sec_ident",
    ddl: DDL,
  });
});

afterAll(async () => {
  await pipeline?.stop();
});

const tables = (url: string) =>
  runSql<{ t: string }>(
    url,
    "SELECT relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r' ORDER BY 1",
  ).then((r) => r.rows.map((row) => row.t));

describe("hostile identifiers (DROP-injection shape)", () => {
  it("replicate inserts, updates (key and non-key) and deletes exactly, and the victim table survives", async () => {
    const source = pipeline.source.url;
    const standby = pipeline.standby("inj1").db.url;
    await runSql(source, "INSERT INTO public.victim VALUES (1, 'source row')");
    const tablesBefore = await tables(standby);

    await runSql(
      source,
      `INSERT INTO public.${TABLE} (${KEY}, ${TEXT_COL}, ${DOLLAR_COL})
       SELECT g, 'v''); DROP TABLE victim; -- ' || g, '$1; DELETE FROM victim; $$' FROM generate_series(1, 20) g`,
    );
    await runSql(
      source,
      `UPDATE public.${TABLE} SET ${TEXT_COL} = 'changed; DROP TABLE victim;' WHERE ${KEY} <= 5`,
    );
    await runSql(source, `UPDATE public.${TABLE} SET ${KEY} = ${KEY} + 100 WHERE ${KEY} BETWEEN 6 AND 8`);
    await runSql(source, `DELETE FROM public.${TABLE} WHERE ${KEY} IN (9, 10)`);
    await pipeline.waitForCatchUp();

    const dump = `SELECT ${KEY} AS k, ${TEXT_COL} AS v, ${DOLLAR_COL} AS d FROM public.${TABLE} ORDER BY 1`;
    const want = (await runSql(source, dump)).rows;
    const got = (await runSql(standby, dump)).rows;
    expect(want).toHaveLength(18);
    expect(want.filter((r) => r.v === "changed; DROP TABLE victim;")).toHaveLength(5);
    expect(want.map((r) => r.k)).toContain(106);
    expect(got).toEqual(want);

    // Nothing else happened: the victim tables hold what they held, the standby's table list is unchanged.
    expect((await runSql(source, "SELECT id, note FROM public.victim")).rows).toEqual([
      { id: 1, note: "source row" },
    ]);
    expect((await runSql(standby, "SELECT id, note FROM public.victim")).rows).toEqual([
      { id: 1, note: "source row" },
    ]);
    expect(await tables(standby)).toEqual(tablesBefore);
    expect(tablesBefore).toContain('x"; DROP TABLE victim; --');
    expect(tablesBefore).toContain("victim");
  });
});
