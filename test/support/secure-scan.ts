import { expect } from "vitest";
import type { DiffrelayProcess } from "./child-process.js";

/** The password of a postgres:// URL, decoded (what a leak would print). */
export function urlPassword(url: string): string {
  const password = decodeURIComponent(new URL(url).password);
  if (!password) throw new Error("the URL carries no password: nothing to prove");
  return password;
}

/** The same URL with another password (a wrong-password attempt). */
export function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** Every form a secret could leak in: as given, percent-encoded, and as JSON would escape it. */
function forms(secret: string): string[] {
  return [...new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])];
}

/** Fails naming where the secret appeared, without printing the secret itself. */
export function expectNoSecret(where: string, text: string, secrets: string[]): void {
  expect(text.length, `${where}: nothing was captured to inspect`).toBeGreaterThan(0);
  for (const [i, secret] of secrets.entries()) {
    for (const form of forms(secret)) {
      const at = text.indexOf(form);
      if (at >= 0) {
        const context = text
          .slice(Math.max(0, at - 80), at + form.length + 40)
          .replaceAll(form, `<SECRET #${i}>`);
        expect.fail(`${where} leaks secret #${i}: …${context}…`);
      }
    }
  }
}

/** The /metrics URL a service logged ("serving metrics, /healthz and /status"). */
export async function metricsBase(p: DiffrelayProcess, timeoutMs = 60_000): Promise<string> {
  const out = await p.waitForOutput(/"url":"http:\/\/[^"]+\/metrics"[^\n]*serving metrics/, timeoutMs);
  const match = /"url":"(http:\/\/[^"]+)\/metrics"/.exec(out);
  if (!match?.[1]) throw new Error("no metrics URL in the output");
  return match[1];
}

/** /metrics, /status and /healthz of a running service, concatenated for scanning. */
export async function scrapeEndpoints(base: string): Promise<string> {
  const parts: string[] = [];
  for (const path of ["/metrics", "/status", "/healthz"]) {
    const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
    parts.push(`${path} ${res.status}\n${await res.text()}`);
  }
  return parts.join("\n");
}
