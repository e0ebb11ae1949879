// Acceptance: one transaction of a million rows passes through the capture in chunks, complete and in order,
// while the capture process's peak resident memory stays bounded.
import { readlinkSync } from "node:fs";
import { basename } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatLsn, parseLsn } from "../../src/change/lsn.js";
import { decodeDataMessage } from "../../src/wire/data-message.js";
import {
  type CaptureFixture,
  metricsUrl,
  procCmdline,
  procMemoryBytes,
  scrapeMetrics,
  startCaptureFixture,
} from "../support/capture-process.js";
import { withClient } from "../support/services.js";

const ROWS = 1_000_000;
const RSS_LIMIT_BYTES = 256 * 1024 * 1024;
const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

let fixture: CaptureFixture;

beforeAll(async () => {
  fixture = await startCaptureFixture(
    "cap_big",
    "CREATE TABLE big (id bigint PRIMARY KEY, h text NOT NULL, n numeric, at timestamptz)",
  );
});

afterAll(async () => {
  await fixture?.stop();
});

describe("diffrelay capture: a million-row transaction", () => {
  it("publishes it whole, in chunks, with the capture's peak RSS under 256 MB", {
    timeout: 600_000,
  }, async () => {
    const proc = fixture.capture;
    // The pid we measure is the capture itself: node running bin/diffrelay.js, not a shell around it.
    expect(basename(readlinkSync(`/proc/${proc.pid}/exe`))).toMatch(/^node/);
    expect(procCmdline(proc.pid).slice(1, 3)).toEqual([
      expect.stringMatching(/bin\/diffrelay\.js$/),
      "capture",
    ]);
    const startRss = procMemoryBytes(proc.pid, "VmRSS");

    const t0 = Date.now();
    const lsnBefore = await withClient(fixture.db.url, async (c) => {
      await c.query("BEGIN");
      await c.query(
        `INSERT INTO big SELECT g, md5(g::text), g * 1.25, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 ms'
         FROM generate_series(1, ${ROWS}) g`,
      );
      const { rows } = await c.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn");
      await c.query("COMMIT");
      return parseLsn(rows[0]?.lsn as string);
    });
    const committedMs = Date.now() - t0;

    // Sample while it streams: VmHWM is the kernel's own peak, VmRSS shows the shape over time.
    let maxRss = startRss;
    const sampler = setInterval(() => {
      try {
        maxRss = Math.max(maxRss, procMemoryBytes(proc.pid, "VmRSS"));
      } catch {
        // The process is gone; the final VmHWM read below reports that.
      }
    }, 100);
    const reader = fixture.follower;
    try {
      await reader.waitForCommitLsn(lsnBefore, 540_000);
    } finally {
      clearInterval(sampler);
    }
    const streamedMs = Date.now() - t0;
    const peak = procMemoryBytes(proc.pid, "VmHWM");
    // For the record: how much of the resident memory is the V8 heap right after the transaction.
    const metrics = await scrapeMetrics(metricsUrl(proc));
    const heapTotal = metrics.get("diffrelay_capture_nodejs_heap_size_total_bytes") ?? Number.NaN;
    const external = metrics.get("diffrelay_capture_nodejs_external_memory_bytes") ?? Number.NaN;
    await reader.waitForEnd();

    // One message at a time, so the test itself never holds a million decoded rows.
    let nextId = 1;
    let nextChunk = 0;
    let finals = 0;
    let commitLsn: bigint | undefined;
    let maxMessageBytes = 0;
    for (const record of reader.records) {
      maxMessageBytes = Math.max(maxMessageBytes, record.value.length);
      for (const chunk of decodeDataMessage(record.value).chunks) {
        const h = chunk.header;
        commitLsn ??= h.commitLsn;
        expect([formatLsn(h.commitLsn), h.chunk, finals]).toEqual([formatLsn(commitLsn), nextChunk, 0]);
        nextChunk++;
        if (h.finalChunk) finals++;
        for (const change of chunk.changes) {
          if (change.kind !== "insert") throw new Error(`unexpected ${change.kind} in chunk ${h.chunk}`);
          if (change.values[0] !== String(nextId)) {
            throw new Error(`chunk ${h.chunk}: expected row ${nextId}, got ${change.values[0]}`);
          }
          nextId++;
        }
      }
    }
    const inserts = nextId - 1;
    expect(commitLsn).toBeGreaterThanOrEqual(lsnBefore);
    expect(finals).toBe(1);
    expect(inserts).toBe(ROWS);
    expect(nextChunk).toBeGreaterThan(1);
    // Spot-check the last row's exact values against the source's text (the capture formats in UTC).
    const last = reader.records[reader.records.length - 1];
    const lastInsert = last ? decodeDataMessage(last.value).chunks.at(-1)?.changes.at(-1) : undefined;
    const sourceRow = await withClient(fixture.db.url, async (c) => {
      await c.query("SET TimeZone = 'UTC'");
      const { rows } = await c.query<{ v: string[] }>(
        `SELECT ARRAY[id::text, h, n::text, at::text] AS v FROM big WHERE id = ${ROWS}`,
      );
      return rows[0]?.v;
    });
    expect(lastInsert).toEqual(expect.objectContaining({ kind: "insert", values: sourceRow }));

    console.log(
      `1,000,000-row transaction: committed in ${(committedMs / 1000).toFixed(1)} s, on the fixture.topic after ` +
        `${(streamedMs / 1000).toFixed(1)} s, ${nextChunk} chunks in ${reader.records.length} messages ` +
        `(largest ${maxMessageBytes} bytes); capture RSS ${MiB(startRss)} at start, sampled max ${MiB(maxRss)}, ` +
        `peak (VmHWM) ${MiB(peak)}; after it: V8 heap ${MiB(heapTotal)}, external ${MiB(external)}`,
    );
    expect(peak).toBeLessThan(RSS_LIMIT_BYTES);
  });
});
