import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The version in diffrelay's package.json. This module runs from app/cli/
 * (tsx) or dist/app/cli/ (built), so the file is two or three levels up.
 */
export function diffrelayVersion(): string {
  for (const relative of ["../../package.json", "../../../package.json"]) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (!existsSync(path)) continue;
    const pkg = JSON.parse(readFileSync(path, "utf8")) as { name?: string; version?: string };
    if (pkg.name === "diffrelay" && pkg.version) return pkg.version;
  }
  throw new Error("diffrelay's package.json not found next to the installation");
}
