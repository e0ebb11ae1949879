// What must hold after every role change of an HA cluster under an acknowledged-id load: the cluster settled
// (every node on one epoch, phase stable, the expected primary), exactly one writable primary (/primary
// answers 200 on it alone, and only its database accepts a write), every node equal to it row for row, and
// every acknowledged id present (zero-loss mode) or, without zero-loss mode, missing only if a rejoin report
// lists it. Each check returns the problems it saw, each naming the node, the ids and what was seen.
import pg from "pg";
import { ACK_LOAD_TABLES, type AcknowledgedIdLoad } from "./acknowledged-id-load.js";
import { NODE_NAMES, type RoleChangeCluster } from "./role-change-cluster.js";
import { runSql } from "./services.js";
import { compareTables, describeDifferences } from "./table-compare.js";

export interface CheckCounts {
  epoch: number;
  primary: string;
  acknowledged: number;
  unanswered: number;
  /** Acknowledged ids not on the primary (each one reported by a rejoin, or the check failed). */
  missing: number;
  /** Ids the rejoin reports so far list as committed on a left-behind primary and never published. */
  reported: number;
  /** Rows of acked_ids on the primary, equal on every node. */
  rows: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (list: Iterable<number>, max = 20) => {
  const all = [...list];
  return `${all.slice(0, max).join(", ")}${all.length > max ? ` … (${all.length} in all)` : ""}`;
};

export class RoleChangeChecker {
  /** Ids seen on every node at an earlier check: from then on they are on every node for good. */
  private readonly settled = new Map<number, string>();
  /** Every rejoin report seen (node:reportId) and the acked_ids keys it lists. */
  private readonly reports = new Map<string, number[]>();
  private markerCount = 0;

  constructor(
    private readonly rc: RoleChangeCluster,
    private readonly load: AcknowledgedIdLoad,
    private readonly zeroLoss: boolean,
  ) {}

  /** Ids listed by any rejoin report so far. */
  reportedIds(): Set<number> {
    return new Set([...this.reports.values()].flat());
  }

  /**
   * Waits until every node answers on one epoch in phase stable (or one of `phases`: a change whose
   * command died serves at phase promoting) with `primary` the primary: its /primary 200, the others'
   * /replica 200. Returns the epoch, or the problem with every node's status.
   */
  async settle(
    primary: string,
    timeoutMs: number,
    phases: readonly string[] = ["stable"],
  ): Promise<{ epoch: number } | { problem: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const statuses = await Promise.all(NODE_NAMES.map((n) => this.rc.status(n)));
      const epoch = statuses[0]?.clusterEpoch;
      const agreed = statuses.every(
        (s, i) =>
          s !== null &&
          s.clusterEpoch === epoch &&
          phases.includes(s.phase) &&
          s.clusterPrimary === primary &&
          s.epoch === epoch &&
          s.nodeRole === (NODE_NAMES[i] === primary ? "primary" : "standby"),
      );
      if (agreed && typeof epoch === "number") {
        const answers = await Promise.all(
          NODE_NAMES.map((n) => this.rc.cluster.probe(n, n === primary ? "/primary" : "/replica")),
        );
        if (answers.every((code) => code === 200)) return { epoch };
      }
      const exited = NODE_NAMES.filter((n) => this.rc.exitOf(n) !== undefined);
      if (exited.length || Date.now() > deadline) {
        return {
          problem: `the cluster did not settle with ${primary} the primary ${exited.length ? `: node ${exited.join(", ")} exited` : `within ${timeoutMs} ms`} (every node on one epoch, phase ${phases.join(" or ")}, ${primary} /primary 200, the others /replica 200):\n${await this.rc.describe()}`,
        };
      }
      await sleep(250);
    }
  }

  /**
   * With the load paused: one writable primary, every node equal, every acknowledged id accounted for.
   * Returns the counts and the problems (empty when everything holds).
   */
  async check(primary: string, epoch: number): Promise<{ counts: CheckCounts; problems: string[] }> {
    const problems: string[] = [];
    const primaryUrl = this.rc.url(primary);

    // One writable primary: by the API, and by the databases themselves.
    for (const n of NODE_NAMES) {
      const code = await this.rc.cluster.probe(n, "/primary");
      if ((code === 200) !== (n === primary))
        problems.push(`${n}/primary answered ${code}; the primary is ${primary}`);
    }
    const marker = -++this.markerCount;
    const markerRefused = await runSql(
      primaryUrl,
      "WITH row AS (INSERT INTO acked_ids (id, writer, node) VALUES ($1, 0, $2) RETURNING id) INSERT INTO acked_events SELECT id, 0 FROM row",
      [marker, primary],
    ).then(
      () => null,
      (err: Error) => err.message,
    );
    if (markerRefused !== null) {
      // Without the marker nothing tells when a standby has caught up: a comparison would mean nothing.
      problems.push(`the primary ${primary} refused a write: ${markerRefused}`);
      return { counts: this.counts(primary, epoch, 0, 0, 0), problems };
    }
    for (const n of NODE_NAMES.filter((x) => x !== primary)) {
      const accepted = await this.acceptsWrite(this.rc.url(n));
      if (accepted !== null) problems.push(`${n} (not the primary) ${accepted}`);
    }

    // Every node equal: the marker reached each, then the tables compare row for row.
    for (const n of NODE_NAMES.filter((x) => x !== primary)) {
      const deadline = Date.now() + 60_000;
      let arrived = false;
      while (!arrived && Date.now() < deadline) {
        arrived =
          (await runSql(this.rc.url(n), "SELECT 1 FROM acked_ids WHERE id = $1", [marker])).rowCount === 1;
        if (!arrived) await sleep(100);
      }
      if (!arrived) {
        problems.push(`${n} did not apply the marker row ${marker} written on ${primary} within 60 s`);
        continue;
      }
      const differences = describeDifferences(
        await compareTables(primaryUrl, this.rc.url(n), ACK_LOAD_TABLES),
      );
      for (const d of differences) problems.push(`${n} differs from the primary ${primary}: ${d}`);
    }

    // Both tables hold each id once, together (one statement wrote both).
    const shape = await runSql<{ doubled: string; unpaired: string }>(
      primaryUrl,
      `SELECT (SELECT count(*) - count(DISTINCT id) FROM acked_events)::text AS doubled,
              (SELECT count(*) FROM acked_ids i FULL JOIN (SELECT DISTINCT id FROM acked_events) e USING (id)
                WHERE i.id IS NULL OR e.id IS NULL)::text AS unpaired`,
    );
    const { doubled, unpaired } = shape.rows[0] ?? { doubled: "?", unpaired: "?" };
    if (doubled !== "0") problems.push(`${primary}: ${doubled} acked_events rows are there twice`);
    if (unpaired !== "0")
      problems.push(`${primary}: ${unpaired} ids are in one of acked_ids, acked_events only`);

    // Every acknowledged id accounted for.
    await this.readReports();
    const reported = this.reportedIds();
    const present = new Set(
      (await runSql<{ id: string }>(primaryUrl, "SELECT id::text FROM acked_ids")).rows.map((r) =>
        Number(r.id),
      ),
    );
    const missing = this.load.acknowledged.filter((a) => !present.has(a.id));
    const unreported = missing.filter((a) => !reported.has(a.id));
    const describeAcks = (list: typeof missing) =>
      list
        .slice(0, 10)
        .map((a) => `${a.id} (writer ${a.writer}, acknowledged by ${a.node} at ${a.at})`)
        .join(", ") + (list.length > 10 ? ` … (${list.length} in all)` : "");
    if (this.zeroLoss && missing.length > 0)
      problems.push(
        `zero-loss mode: ${missing.length} acknowledged ids are not on the primary ${primary}: ${describeAcks(missing)}`,
      );
    if (!this.zeroLoss && unreported.length > 0)
      problems.push(
        `${unreported.length} acknowledged ids are not on the primary ${primary} and no rejoin report lists them: ${describeAcks(unreported)}`,
      );
    const backAgain = [...reported].filter((id) => present.has(id));
    if (backAgain.length)
      problems.push(`ids a rejoin reported (and undid) are on the primary ${primary}: ${ids(backAgain)}`);
    const acknowledged = this.load.acknowledgedIds();
    const unanswered = new Set(this.load.unanswered.map((u) => u.id));
    const refused = new Set(this.load.refused);
    const stray = [...present].filter((id) => id > 0 && !acknowledged.has(id) && !unanswered.has(id));
    if (stray.length)
      problems.push(
        `${primary} holds ids no INSERT of the load answered or left unanswered${stray.some((id) => refused.has(id)) ? " (some were refused as read-only)" : ""}: ${ids(stray)}`,
      );
    const strayReported = [...reported].filter(
      (id) => id > 0 && !acknowledged.has(id) && !unanswered.has(id),
    );
    if (strayReported.length)
      problems.push(`rejoin reports list ids the load never wrote: ${ids(strayReported)}`);
    const gone = [...this.settled].filter(([id]) => !present.has(id));
    if (gone.length)
      problems.push(
        `ids that were on every node at an earlier check are gone from ${primary}: ${gone
          .slice(0, 10)
          .map(([id, at]) => `${id} (${at})`)
          .join(", ")}`,
      );
    if (problems.length === 0)
      for (const id of present) if (!this.settled.has(id)) this.settled.set(id, `epoch ${epoch}`);
    if (this.load.errors.length)
      problems.push(`the load saw unexpected errors: ${this.load.errors.slice(0, 5).join("; ")}`);

    return { counts: this.counts(primary, epoch, missing.length, reported.size, present.size), problems };
  }

  private counts(
    primary: string,
    epoch: number,
    missing: number,
    reported: number,
    rows: number,
  ): CheckCounts {
    return {
      epoch,
      primary,
      acknowledged: this.load.acknowledged.length,
      unanswered: this.load.unanswered.length,
      missing,
      reported,
      rows,
    };
  }

  /** null when the database refuses a write; otherwise what it did. The write is rolled back. */
  async acceptsWrite(url: string): Promise<string | null> {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (err) {
      // A fenced database takes no connections (55000, 57P03): it accepts no write either.
      const code = (err as { code?: string }).code;
      return code === "55000" || code === "57P03" ? null : `could not be asked for a write: ${String(err)}`;
    }
    try {
      await client.query("BEGIN");
      await client.query("INSERT INTO acked_ids (id, writer, node) VALUES (-1000000, 0, 'write probe')");
      await client.query("ROLLBACK");
      return "accepted a write (rolled back)";
    } catch (err) {
      const code = (err as { code?: string }).code;
      return code === "25006" ? null : `refused a write with ${code}, not as read-only: ${String(err)}`;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Reads every rejoin report each node's database holds (a node that never rejoined has none). */
  private async readReports(): Promise<void> {
    for (const n of NODE_NAMES) {
      const { rows } = await runSql<{ report: string; ids: string[] | null }>(
        this.rc.url(n),
        `SELECT r.id::text AS report,
                array_agg(c.ch->'key'->>'id') FILTER (WHERE c.ch->>'table' = 'public.acked_ids') AS ids
           FROM diffrelay.rejoin_report r
           LEFT JOIN LATERAL jsonb_array_elements(r.report->'unpublished') t(tx) ON true
           LEFT JOIN LATERAL jsonb_array_elements(t.tx->'changes') c(ch) ON true
          WHERE r.repaired_at IS NOT NULL
          GROUP BY r.id`,
      ).catch((err: { code?: string }) => {
        // 42P01: no diffrelay.rejoin_report on a database that never rejoined.
        if (err.code === "42P01") return { rows: [] };
        throw err;
      });
      for (const r of rows) this.reports.set(`${n}:${r.report}`, (r.ids ?? []).map(Number));
    }
  }
}
