// The dependency direction is part of the design (docs/architecture.md): app -> operations -> connectors -> src.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative import of a file, as a path from the repository root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) =>
    normalize(relative(ROOT, join(ROOT, dirname(file), m[1] as string))),
  );
}

function violations(dirs: string[], forbidden: (target: string, file: string) => boolean): string[] {
  return dirs.flatMap((dir) =>
    sourceFiles(dir).flatMap((file) =>
      importsOf(file)
        .filter((target) => forbidden(target, file))
        .map((target) => `${file} imports ${target}`),
    ),
  );
}

const connectorOf = (path: string) => /^connectors\/([^/]+)\//.exec(path)?.[1] ?? null;
const isConnectorIndex = (path: string) => /^connectors\/[^/]+\/index\.js$/.test(path);

describe("layering", () => {
  it("src/ is shared: it imports no connector, operation or app code", () => {
    expect(violations(["src"], (t) => /^(connectors|operations|app)\//.test(t))).toEqual([]);
  });

  it("a connector imports neither operations, the app, nor another connector", () => {
    expect(
      violations(
        ["connectors"],
        (t, file) =>
          /^(operations|app)\//.test(t) || (connectorOf(t) !== null && connectorOf(t) !== connectorOf(file)),
      ),
    ).toEqual([]);
  });

  it("operations and the app use a connector only through its index.ts", () => {
    expect(
      violations(["operations", "app"], (t) => t.startsWith("connectors/") && !isConnectorIndex(t)),
    ).toEqual([]);
  });

  it("operations do not import the app", () => {
    expect(violations(["operations"], (t) => t.startsWith("app/"))).toEqual([]);
  });
});
