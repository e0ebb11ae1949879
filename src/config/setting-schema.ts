import type { z } from "zod";
import { configSchema } from "./config-schema.js";

/**
 * What the zod schema says about one setting: its default and, for an enum, its
 * allowed values. Help and completion read them from here so that a default
 * changed in config-schema.ts cannot go stale in the help text.
 */
export interface SettingSchemaInfo {
  /** undefined when the schema gives the setting no default. */
  default: unknown;
  /** Allowed values of an enum (or of a list of enum values), else undefined. */
  choices: readonly string[] | undefined;
}

type Def = { type: string; innerType?: z.ZodType; defaultValue?: unknown; element?: z.ZodType };

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

export function settingSchemaInfo(path: string): SettingSchemaInfo {
  let node: z.ZodType = configSchema;
  // What the enclosing defaults give at this node (a section's default object).
  let inherited: unknown;
  for (const part of path.split(".")) {
    const here = unwrap(node);
    const value = here.default ?? inherited;
    const shape = (here.node as unknown as { shape?: Record<string, z.ZodType> }).shape;
    const child = shape?.[part];
    if (child === undefined) throw new Error(`setting ${path}: the config schema has no key ${part}`);
    inherited =
      value !== null && typeof value === "object" ? (value as Record<string, unknown>)[part] : undefined;
    node = child;
  }
  const leaf = unwrap(node);
  return { default: leaf.default ?? inherited, choices: choicesOf(leaf.node) };
}

function unwrap(schema: z.ZodType): { node: z.ZodType; default: unknown } {
  let node = schema;
  let value: unknown;
  for (;;) {
    const def = defOf(node);
    if (def.type === "default" && value === undefined) value = def.defaultValue;
    if ((def.type === "default" || def.type === "optional" || def.type === "nullable") && def.innerType) {
      node = def.innerType;
      continue;
    }
    return { node, default: value };
  }
}

function choicesOf(schema: z.ZodType): readonly string[] | undefined {
  const def = defOf(schema);
  if (def.type === "array" && def.element) return choicesOf(unwrap(def.element).node);
  if (def.type !== "enum") return undefined;
  return (schema as unknown as { options: string[] }).options;
}
