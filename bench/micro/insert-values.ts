// The applier's CPU per row for what it does with a bulk insert before the standby sees it: decode the
// Kafka message and write the rows' COPY data. Once with an insert's values decoded as text (as verify
// and every reader but the applier still do), once as the message's bytes (as the applier does since
// issue 25, item 1), alternated; rows like the bench's 10-column accounts. In process, so it resolves
// what the end-to-end bench on two shared cores cannot.
//   node --import tsx bench/micro/insert-values.ts
import { CopyTextWriter } from "../../src/sql/copy-text.js";
import { DataMessageBuilder, decodeDataMessage } from "../../src/wire/data-message.js";

const ROWS_PER_MESSAGE = 2000;
const MESSAGES = 100;
const PASSES = 10;
const relation = { relationId: 16384, version: 1 };

/** Row g of accountsInsert (bench/context.ts), as the source's text. */
function accountsRow(g: number): string[] {
  const opened = new Date(Date.UTC(2026, 0, 1) + g * 1000)
    .toISOString()
    .replace("T", " ")
    .replace(".000Z", "+00");
  return [
    String(g),
    `owner ${g}`,
    ((g % 1000) * 1.25).toFixed(2),
    "EUR",
    opened,
    `{tag${g % 7},vip}`,
    `{"tier": ${g % 3}, "since": ${2020 + (g % 6)}}`,
    "n".repeat(40),
    "t",
    "1",
  ];
}

function messages(): Buffer[] {
  const built: Buffer[] = [];
  for (let m = 0; m < MESSAGES; m++) {
    const builder = new DataMessageBuilder({ sourceId: 1n, epoch: 0 }, { captureId: 1n, session: 1 });
    builder.beginTransaction({ commitLsn: 1000n, commitTimeMicros: 1n, xid: 5, chunk: m, finalChunk: false });
    for (let r = 1; r <= ROWS_PER_MESSAGE; r++) {
      builder.addChange({ kind: "insert", relation, values: accountsRow(m * ROWS_PER_MESSAGE + r) });
    }
    built.push(builder.finish());
  }
  return built;
}

/** CPU µs per row (every thread of the process: GC's included) for one pass over the messages. */
function pass(all: Buffer[], insertValues: "text" | "bytes"): number {
  const before = process.cpuUsage();
  let written = 0;
  for (const buf of all) {
    const decoded =
      insertValues === "bytes" ? decodeDataMessage(buf, { insertValues }) : decodeDataMessage(buf);
    const copy = new CopyTextWriter(ROWS_PER_MESSAGE * 64);
    for (const chunk of decoded.chunks) {
      for (const change of chunk.changes) {
        if (change.kind === "insert") copy.row(change.values.length, (i) => change.values[i] ?? null);
      }
    }
    written += copy.bytes().length;
  }
  const used = process.cpuUsage(before);
  if (written === 0) throw new Error("no COPY data written");
  return (used.user + used.system) / (ROWS_PER_MESSAGE * MESSAGES);
}

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  return `${median.toFixed(2)} µs (${(sorted[0] as number).toFixed(2)}–${(sorted.at(-1) as number).toFixed(2)})`;
}

const all = messages();
// Warm the JIT on both paths before measuring.
for (let i = 0; i < 3; i++) {
  pass(all, "text");
  pass(all, "bytes");
}
const text: number[] = [];
const bytes: number[] = [];
for (let i = 0; i < PASSES; i++) {
  text.push(pass(all, "text"));
  bytes.push(pass(all, "bytes"));
}
console.log(
  `decode + COPY data, CPU per row, median (range) of ${PASSES} alternated passes over ${MESSAGES * ROWS_PER_MESSAGE} rows:`,
);
console.log(`  values as text:  ${summary(text)}`);
console.log(`  values as bytes: ${summary(bytes)}`);
