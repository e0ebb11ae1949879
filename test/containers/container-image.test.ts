// The image users run, run here: diffrelay:<version> as `capture` and `apply` beside the local stack's
// servers (host networking, so all traffic stays on 127.0.0.1), as a non-root user, answering /healthz,
// stopping cleanly within the 10 s that compose and Kubernetes give between SIGTERM and SIGKILL.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metricsUrl } from "../support/capture-process.js";
import { docker, type ImageProcess, requireImage, runImage } from "../support/image-process.js";
import { exitWithin, ReplicationPipeline, tail } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const STOP_GRACE_MS = 10_000;
const DDL = "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL, tags text[]);";

describe("the diffrelay image", () => {
  let pipeline: ReplicationPipeline;
  const started: ImageProcess[] = [];

  beforeAll(async () => {
    await requireImage();
    const services = testServices();
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "image",
      ddl: DDL,
      runner: (args) => {
        const p = runImage(args);
        started.push(p);
        return p;
      },
    });
  });

  afterAll(async () => {
    await pipeline?.stop();
  });

  it("prints its version, the package's", async () => {
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    const p = runImage(["--version"]);
    expect(await p.exited, p.output()).toEqual({ code: 0, signal: null });
    expect(p.output().trim()).toBe(version);
  });

  it("runs as a non-root user", () => {
    const capture = pipeline.capture as ImageProcess;
    // PID 1 in the container is diffrelay itself: its real and effective uids.
    const status = docker(["exec", capture.container, "cat", "/proc/1/status"]);
    const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    expect(uids?.slice(1, 3)).toEqual(["1000", "1000"]);
    expect(docker(["exec", capture.container, "cat", "/proc/1/cmdline"]).split("\0")[0]).toBe("node");
  });

  it("replicates to a standby that ends equal, and answers /healthz", async () => {
    await runSql(
      pipeline.source.url,
      "INSERT INTO items SELECT g, 'row ' || g, ARRAY['a', g::text] FROM generate_series(1, 500) g",
    );
    await runSql(pipeline.source.url, "UPDATE items SET label = label || ' updated' WHERE id % 3 = 0");
    await runSql(pipeline.source.url, "DELETE FROM items WHERE id % 7 = 0");
    await pipeline.waitForCatchUp();
    const comparison = await compareTables(pipeline.source.url, pipeline.standby("s1").db.url, [
      "public.items",
    ]);
    expect(describeDifferences(comparison)).toEqual([]);
    expect(comparison[0]?.standbyRows).toBe(500 - Math.floor(500 / 7));

    for (const p of [pipeline.capture, pipeline.standby("s1").applier]) {
      const healthz = metricsUrl(p).replace(/\/metrics$/, "/healthz");
      await expect.poll(async () => (await fetch(healthz)).status, { timeout: 30_000 }).toBe(200);
    }
  });

  it("stops cleanly on SIGTERM within 10 s, capture and apply alike", async () => {
    for (const p of [pipeline.standby("s1").applier, pipeline.capture] as ImageProcess[]) {
      const t0 = Date.now();
      // What `docker stop` and compose do: SIGTERM to PID 1, SIGKILL after the grace period.
      expect(p.kill("SIGTERM")).toBe(true);
      const exit = await exitWithin(p, STOP_GRACE_MS);
      expect(exit, tail(p.output())).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeLessThan(STOP_GRACE_MS);
    }
    // --rm: nothing is left behind once they exit.
    const names = started.map((p) => p.container);
    expect(
      docker(["ps", "-a", "--format", "{{.Names}}"])
        .split("\n")
        .filter((n) => names.includes(n)),
    ).toEqual([]);
  });
});
