import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fillPlaceholders, loadMigrations } from "../../../src/migrations/migration-runner.js";

describe("migration files", () => {
  it("lists each side's files in order, versioned by side, with ensure files marked", () => {
    const source = loadMigrations("source");
    expect(source.map((m) => m.version)).toEqual([
      "source/001_publication_and_identity",
      "source/002_replication_slot",
      "source/003_ddl_capture",
      "source/004_rewrite_recopy",
      "source/005_capture_start",
    ]);
    expect(source.map((m) => m.ensure)).toEqual([true, true, false, false, true]);
    expect(loadMigrations("standby").every((m) => m.version.startsWith("standby/"))).toBe(true);
  });

  it("ignores files that are not NNN_name.sql, and fills placeholders, refusing unknown ones and the dollar tag", () => {
    const dir = mkdtempSync(join(tmpdir(), "diffrelay-migrations-"));
    writeFileSync(join(dir, "001_first.sql"), "SELECT {{a}};");
    writeFileSync(join(dir, "notes.sql"), "not a migration");
    const [only, ...rest] = loadMigrations("standby", dir);
    expect(rest).toEqual([]);
    if (!only) throw new Error("no migration listed");
    expect(fillPlaceholders(only, new Map([["a", "'x'"]]))).toBe("SELECT 'x';");
    expect(() => fillPlaceholders(only, new Map())).toThrow(/001_first.sql: unknown placeholder \{\{a\}\}/);
    expect(() => fillPlaceholders(only, new Map([["a", "$diffrelay$"]]))).toThrow(/may not contain/);
  });
});
