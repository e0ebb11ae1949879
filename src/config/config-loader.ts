import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { redact } from "../observability/redact.js";
import { ConfigError } from "./config-error.js";
import { configSchema, type DiffrelayConfig } from "./config-schema.js";
import { SETTINGS, type Setting } from "./settings.js";

type Tree = Record<string, unknown>;

export interface ConfigSources {
  /** Flag values by flag name (without the leading dashes), as strings. */
  flags: Record<string, string | boolean | undefined>;
  env: NodeJS.ProcessEnv;
}

/**
 * Merges defaults < YAML file < environment < flags, then validates the whole
 * with zod. Every error names the key, the value given (secrets masked) and
 * what was expected.
 */
export function loadConfig({ flags, env }: ConfigSources): DiffrelayConfig {
  const tree: Tree = {};
  const origin = new Map<string, string>();
  const configPath = stringFlag(flags.config) ?? env.DIFFRELAY_CONFIG;
  if (configPath) {
    mergeInto(tree, readYaml(configPath), origin, `file ${configPath}`, "");
  }
  for (const s of SETTINGS) {
    const raw = env[s.env];
    if (raw !== undefined && raw !== "")
      setPath(tree, s.path, convert(s, raw, `$${s.env}`), origin, `$${s.env}`);
  }
  for (const s of SETTINGS) {
    const raw = flags[s.flag];
    if (raw === undefined) continue;
    const text = typeof raw === "boolean" ? String(raw) : raw;
    setPath(tree, s.path, convert(s, text, `--${s.flag}`), origin, `--${s.flag}`);
  }
  const result = configSchema.safeParse(tree);
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, tree, origin));
  return result.data;
}

function stringFlag(value: string | boolean | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function readYaml(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`config: cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config: ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`config: ${path} must hold a mapping of settings, got ${typeof parsed}`);
  }
  return parsed as Tree;
}

function convert(s: Setting, raw: string, where: string): unknown {
  switch (s.kind) {
    case "string":
      return raw;
    case "list":
      return raw
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part.length > 0);
    case "number": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n)) {
        throw new ConfigError(
          `config: ${s.path} (from ${where}) is ${JSON.stringify(raw)}; expected a number`,
        );
      }
      return n;
    }
    case "boolean":
      if (/^(true|1|yes|on)$/i.test(raw)) return true;
      if (/^(false|0|no|off)$/i.test(raw)) return false;
      throw new ConfigError(
        `config: ${s.path} (from ${where}) is ${JSON.stringify(raw)}; expected true or false`,
      );
  }
}

function mergeInto(
  target: Tree,
  source: Tree,
  origin: Map<string, string>,
  where: string,
  prefix: string,
): void {
  for (const [key, value] of Object.entries(source)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      if (target[key] === null || typeof target[key] !== "object") target[key] = {};
      mergeInto(target[key] as Tree, value as Tree, origin, where, path);
    } else {
      target[key] = value;
      origin.set(path, where);
    }
  }
}

function setPath(tree: Tree, path: string, value: unknown, origin: Map<string, string>, where: string): void {
  const parts = path.split(".");
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== "object" || Array.isArray(next)) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts[parts.length - 1] as string] = value;
  origin.set(path, where);
}

const SECRET_KEY = /password|secret|token/i;

function describeIssues(issues: z.core.$ZodIssue[], tree: Tree, origin: Map<string, string>): string {
  const lines = issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    const given = lookup(tree, issue.path.map(String));
    const shown =
      given === undefined ? "nothing" : SECRET_KEY.test(path) ? "(hidden)" : redact(JSON.stringify(given));
    const from = origin.get(path) ?? nearestOrigin(origin, path);
    return `  ${path || "(root)"}: given ${shown}${from ? ` (from ${from})` : ""}; expected ${expectation(issue)}`;
  });
  return `invalid configuration:\n${lines.join("\n")}`;
}

function nearestOrigin(origin: Map<string, string>, path: string): string | undefined {
  for (const [key, where] of origin)
    if (key.startsWith(`${path}.`) || path.startsWith(`${key}.`)) return where;
  return undefined;
}

function expectation(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") return `${issue.expected}`;
  if (issue.code === "invalid_value")
    return `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  return issue.message;
}

function lookup(tree: Tree, path: string[]): unknown {
  let node: unknown = tree;
  for (const part of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Tree)[part];
  }
  return node;
}

/** Reads a required section and says which setting provides it when it is missing. */
export function requireSetting<T>(value: T | undefined, path: string): T {
  if (value !== undefined) return value;
  const s = SETTINGS.find((candidate) => candidate.path === path);
  const how = s ? ` (set --${s.flag} or $${s.env})` : "";
  throw new ConfigError(`config: ${path} is required for this command${how}`);
}
