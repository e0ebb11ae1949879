import { settingSchemaInfo } from "../../src/config/setting-schema.js";
import type { Setting } from "../../src/config/settings.js";
import { commandSettings } from "./arguments.js";
import type { Command, CommandFlag } from "./command.js";

interface HelpRow {
  flag: string;
  env: string;
  default: string;
  description: string;
}

/** `<a|b|c>` for an enum, else a word for what the value is. */
export function settingValueName(s: Setting): string {
  if (s.kind === "boolean") return "";
  const { choices } = settingSchemaInfo(s.path);
  if (choices && shortChoices(choices)) return `<${choices.join("|")}>`;
  if (choices) return "<value>";
  if (s.kind === "number") return "<n>";
  if (s.kind === "list") return s.flag === "standbys" ? "<name=url,...>" : "<a,b,...>";
  if (s.flag.endsWith("-url")) return "<url>";
  if (s.flag.endsWith("-file")) return "<file>";
  return "<string>";
}

// Long lists of choices go into the description, so the flag column stays narrow.
const shortChoices = (choices: readonly string[]) => choices.join("|").length <= 20;

function describe(s: Setting): string {
  const { choices } = settingSchemaInfo(s.path);
  const oneOf = choices && !shortChoices(choices) ? `; one of ${choices.join(", ")}` : "";
  return `${s.description}${oneOf} [${s.path}]`;
}

function showDefault(s: Setting, required: boolean): string {
  if (required) return "required";
  const value = settingSchemaInfo(s.path).default;
  if (value === undefined) return "-";
  if (Array.isArray(value)) return value.length === 0 ? "none" : value.join(",");
  if (typeof value === "number" && /Bytes$/.test(s.path) && value >= 1024)
    return `${value} (${bytes(value)})`;
  return String(value);
}

function bytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  return n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`;
}

function flagRow(flag: string, spec: CommandFlag): HelpRow {
  const value = spec.type === "boolean" ? "" : ` <${spec.value ?? "value"}>`;
  return {
    flag: `--${flag}${value}`,
    env: "",
    default: spec.default === undefined ? "-" : String(spec.default),
    description: spec.description,
  };
}

function renderRows(rows: HelpRow[]): string[] {
  const flagWidth = Math.max(...rows.map((r) => r.flag.length)) + 2;
  const envWidth = Math.max(...rows.map((r) => r.env.length)) + 2;
  return rows.flatMap((r) => [
    `  ${r.flag.padEnd(flagWidth)}${r.env.padEnd(envWidth)}${r.default}`.trimEnd(),
    `      ${r.description}`,
  ]);
}

/** The help of one command: only the settings and flags it reads, each with env var, default and meaning. */
export function commandHelp(name: string, command: Command): string {
  const required = new Set(command.required ?? []);
  const settingRows = commandSettings(command).map((s) => {
    const value = settingValueName(s);
    return {
      flag: `--${s.flag}${value ? ` ${value}` : ""}`,
      env: s.env,
      default: showDefault(s, required.has(s.path)),
      description: describe(s),
    };
  });
  const flagRows = Object.entries(command.flags ?? {}).map(([flag, spec]) => flagRow(flag, spec));
  const common: HelpRow[] = [
    {
      flag: "--config <file>",
      env: "DIFFRELAY_CONFIG",
      default: "-",
      description: "YAML file of settings (keys in [brackets] above)",
    },
    { flag: "-h, --help", env: "", default: "", description: "show this help" },
  ];
  const lines = [`usage: diffrelay ${name} [options]`, "", command.summary, ""];
  if (settingRows.length > 0) {
    lines.push(
      "settings (flag, environment variable, default; a flag wins over the variable, which wins over --config):",
    );
    lines.push(...renderRows(settingRows), "");
  }
  lines.push(`options of ${name}:`, ...renderRows([...flagRows, ...common]));
  return lines.join("\n");
}

export function rootUsage(commands: Record<string, Command>): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length), "completion".length) + 2;
  return [
    "usage: diffrelay <command> [options]",
    "",
    "commands:",
    ...Object.entries(commands).map(([name, command]) => `  ${name.padEnd(width)}${command.summary}`),
    `  ${"help".padEnd(width)}diffrelay help <command> is diffrelay <command> --help`,
    `  ${"completion".padEnd(width)}print a bash or zsh completion script: diffrelay completion bash|zsh`,
    "",
    "  -V, --version  print the version",
    "",
    "Every setting can come from --config FILE (YAML), an environment variable, or a flag;",
    "flags win over the environment, which wins over the file. diffrelay <command> --help lists",
    "a command's settings; docs/operations.md has them all.",
  ].join("\n");
}
