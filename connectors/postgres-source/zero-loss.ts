import type pg from "pg";
import { quoteIdent, quoteLiteral } from "../../src/sql/quote.js";
import { SourceConfigurationError } from "./source-errors.js";

/**
 * Zero-loss mode: the primary's commits wait for the capture. PostgreSQL
 * treats a replication client that sends standby status updates as a
 * synchronous standby when `synchronous_standby_names` names its
 * `application_name`; the capture reports as flushed only what Kafka has
 * acknowledged from all in-sync replicas, so a commit returns only once its
 * changes are durable in Kafka.
 */

/**
 * What the server's settings promise about the capture:
 * - `required`: every commit waits for the capture (nothing else can stand in for it);
 * - `optional`: the capture is one of several that may release a commit (`ANY 1 (…)`, a longer `FIRST` list, `*`);
 * - `off`: commits do not wait for it.
 */
export type ZeroLossGuarantee = "required" | "optional" | "off";

export interface SynchronousStandbys {
  method: "first" | "any";
  count: number;
  names: string[];
}

/** synchronous_standby_names parsed as PostgreSQL does (syncrep_gram.y); null when empty. */
export function parseSynchronousStandbyNames(text: string): SynchronousStandbys | null {
  const source = text.trim();
  if (source === "") return null;
  const head = /^(?:(FIRST|ANY)\s+)?(\d+)\s*\((.*)\)$/is.exec(source);
  if (head) {
    return {
      method: head[1]?.toLowerCase() === "any" ? "any" : "first",
      count: Number(head[2]),
      names: splitNames(head[3] as string),
    };
  }
  return { method: "first", count: 1, names: splitNames(source) };
}

function splitNames(list: string): string[] {
  const names: string[] = [];
  const pattern = /\s*(?:"((?:[^"]|"")*)"|([^,\s"]+))\s*(,|$)/y;
  let match = pattern.exec(list);
  while (match !== null) {
    names.push(match[1] !== undefined ? match[1].replaceAll('""', '"') : (match[2] as string));
    if (match[3] === "" || pattern.lastIndex >= list.length) break;
    match = pattern.exec(list);
  }
  return names;
}

/**
 * Whether commits wait for the standby named `applicationName`. PostgreSQL
 * compares names case-insensitively, and `*` matches any standby. Required
 * means every slot of the quorum is a name and one of them is the capture's:
 * with more names than the count, or a `*`, another standby can release a
 * commit while the capture is away.
 */
export function zeroLossGuarantee(settingText: string, applicationName: string): ZeroLossGuarantee {
  const parsed = parseSynchronousStandbyNames(settingText);
  if (parsed === null || parsed.count < 1) return "off";
  const ours = applicationName.toLowerCase();
  const named = parsed.names.some((n) => n.toLowerCase() === ours);
  const wildcard = parsed.names.includes("*");
  if (!named && !wildcard) return "off";
  return named && !wildcard && parsed.names.length === parsed.count ? "required" : "optional";
}

/** Values of synchronous_commit under which a commit does not wait for any synchronous standby. */
const NO_WAIT = new Set(["off", "local"]);

export interface ZeroLossState {
  guarantee: ZeroLossGuarantee;
  /** The server's synchronous_standby_names as found (after the capture set it, if it did). */
  synchronousStandbyNames: string;
  /** The server's default synchronous_commit. */
  synchronousCommit: string;
  /**
   * The sync_state (sync, quorum, potential, async) of the capture's walsender in pg_stat_replication:
   * "sync" when it is the synchronous standby commits wait for; null when it is not connected.
   */
  syncState: string | null;
  /** True when this call set synchronous_standby_names (ALTER SYSTEM). */
  changed: boolean;
}

/** What the server says now, without changing anything (for doctor, and before ensureZeroLoss decides). */
export async function readZeroLossState(
  client: pg.ClientBase,
  applicationName: string,
): Promise<ZeroLossState> {
  type Row = { names: string; commit: string; sync_state: string | null };
  const { rows } = await client.query<Row>(
    `SELECT pg_catalog.current_setting('synchronous_standby_names') AS names,
            (SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'synchronous_commit') AS commit,
            (SELECT sync_state FROM pg_catalog.pg_stat_replication WHERE application_name = $1
              ORDER BY sync_state = 'sync' DESC, backend_start DESC LIMIT 1) AS sync_state`,
    [applicationName],
  );
  const row = rows[0] as Row;
  const guarantee = NO_WAIT.has(row.commit) ? "off" : zeroLossGuarantee(row.names, applicationName);
  return {
    guarantee,
    synchronousStandbyNames: row.names,
    synchronousCommit: row.commit,
    syncState: row.sync_state,
    changed: false,
  };
}

/** The synchronous_standby_names value that makes every commit wait for this capture alone. */
export function zeroLossSetting(applicationName: string): string {
  return quoteIdent(applicationName);
}

function refuse(message: string, cause?: unknown): SourceConfigurationError {
  return new SourceConfigurationError("zero_loss", message, cause === undefined ? undefined : { cause });
}

/**
 * Makes the server's commits wait for the capture named `applicationName`:
 * sets synchronous_standby_names when it is empty (ALTER SYSTEM and
 * pg_reload_conf, which need a superuser or those grants), accepts it when it
 * already names the capture, and refuses (exit 3) otherwise, naming the exact
 * line to put in postgresql.conf. Never replaces another standby's setting.
 * Call it only once the slot exists: creating a slot waits for running
 * transactions, which would be waiting for this very capture.
 */
export async function ensureZeroLoss(client: pg.ClientBase, applicationName: string): Promise<ZeroLossState> {
  const wanted = zeroLossSetting(applicationName);
  const line = `synchronous_standby_names = ${quoteLiteral(wanted)}`;
  const found = await readZeroLossState(client, applicationName);
  if (NO_WAIT.has(found.synchronousCommit)) {
    throw refuse(
      `zero-loss mode: the source's synchronous_commit is ${found.synchronousCommit}, so commits would not wait for the capture; ` +
        "set synchronous_commit = on (or remote_write, remote_apply) in postgresql.conf (or ALTER SYSTEM, ALTER DATABASE) and reload",
    );
  }
  if (found.guarantee !== "off") return found;
  if (found.synchronousStandbyNames.trim() !== "") {
    throw refuse(
      `zero-loss mode: the source's synchronous_standby_names is ${quoteLiteral(found.synchronousStandbyNames)}, which does not name the capture ` +
        `(application_name ${quoteLiteral(applicationName)}); diffrelay does not replace it. Add the capture to it, e.g. ` +
        `FIRST 2 (<your standby>, ${wanted}) for commits that wait for both, and reload`,
    );
  }
  try {
    await client.query(`ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(wanted)}`);
    await client.query("SELECT pg_catalog.pg_reload_conf()");
  } catch (err) {
    if ((err as { code?: string }).code !== "42501") throw err;
    throw refuse(
      `zero-loss mode: the capture role may not set synchronous_standby_names (${(err as Error).message}); ` +
        `put ${line} in the source's postgresql.conf and reload (SELECT pg_reload_conf()), or GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names ` +
        "and EXECUTE ON FUNCTION pg_reload_conf() to the capture role",
      err,
    );
  }
  // The reload reaches this session at its next command, once the postmaster has re-read the file.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await readZeroLossState(client, applicationName);
    if (now.guarantee === "required") return { ...now, changed: true };
    if (Date.now() > deadline) {
      throw refuse(
        `zero-loss mode: ALTER SYSTEM SET ${line} was accepted but the server still says ${quoteLiteral(now.synchronousStandbyNames)} after a reload; ` +
          "check postgresql.auto.conf and the server log",
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A database that is no longer a source: undoes what ensureZeroLoss set.
 * While synchronous_standby_names names a capture that no longer runs, every
 * commit on the server that waits for a synchronous standby waits forever.
 * Only the exact value ensureZeroLoss writes is removed (ALTER SYSTEM RESET);
 * any other value is the operator's and stays. Returns what it found:
 * `released`, `not-set` (nothing names the capture alone), or `still-set`
 * (the value comes from postgresql.conf, which ALTER SYSTEM does not change).
 */
export async function releaseZeroLoss(
  client: pg.ClientBase,
  applicationName: string,
): Promise<"released" | "not-set" | "still-set"> {
  const names = async () =>
    (
      await client.query<{ names: string }>(
        "SELECT pg_catalog.current_setting('synchronous_standby_names') AS names",
      )
    ).rows[0]?.names.trim() ?? "";
  const ours = zeroLossSetting(applicationName);
  if ((await names()) !== ours) return "not-set";
  await client.query("ALTER SYSTEM RESET synchronous_standby_names");
  await client.query("SELECT pg_catalog.pg_reload_conf()");
  // The reload reaches this session at its next command, once the postmaster has re-read the files.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await names()) !== ours) return "released";
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return "still-set";
}
