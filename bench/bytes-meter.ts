// Bytes that cross the interconnect for one phase of work, measured three ways at once (see
// scripts/measure/bandwidth.ts): diffrelay's Kafka log, pgoutput as a native subscriber of the
// run's publication receives it, and the WAL that physical replication would ship.
import pg from "pg";
import {
  createMeasuringSlot,
  currentWalLsnText,
  dropSlot,
  kafkaTopicLogBytes,
  pgoutputBytes,
  walBytesBetween,
} from "../scripts/measure/bandwidth.js";
import type { Run } from "./context.js";

export interface PhaseBytes {
  /** The topic's Kafka log growth (compressed batches with Kafka's overhead); 0 without diffrelay. */
  kafka: number;
  pgoutput: number;
  wal: number;
  /** Replica identity of the measured table during the phase: "f" (FULL) or "d" (DEFAULT). */
  identity: string;
}

export class BytesMeter {
  private client?: pg.Client;
  private walBefore = "";
  private kafkaBefore = 0;
  private readonly slot: string;

  constructor(
    private readonly run: Run,
    private readonly table: string,
  ) {
    this.slot = `${run.db}_measure`;
  }

  private get publication(): string {
    // The native publication when there is one: what a subscriber of it is sent. Otherwise the
    // capture's, which carries what a native subscriber would get with the capture's identity.
    const publication = this.run.native?.publication ?? this.run.diffrelay?.publication;
    if (!publication) throw new Error("a bytes meter needs a publication: attach a system to the run");
    return publication;
  }

  async start(): Promise<void> {
    this.client = new pg.Client(this.run.primary);
    await this.client.connect();
    await dropSlot(this.client, this.slot);
    await createMeasuringSlot(this.client, this.slot);
    this.walBefore = await currentWalLsnText(this.client);
    this.kafkaBefore = this.kafkaBytes();
  }

  /** Call once every standby has caught up with the phase (a marker), so Kafka holds all of it. */
  async stop(): Promise<PhaseBytes> {
    const client = this.client;
    if (!client) throw new Error("bytes meter not started");
    try {
      const walAfter = await currentWalLsnText(client);
      const pgoutput = await pgoutputBytes(client, this.slot, this.publication);
      const wal = await walBytesBetween(client, this.walBefore, walAfter);
      const identity = await client.query<{ r: string }>(
        "SELECT relreplident::text AS r FROM pg_class WHERE oid = $1::regclass",
        [this.table],
      );
      return {
        kafka: this.kafkaBytes() - this.kafkaBefore,
        pgoutput,
        wal,
        identity: identity.rows[0]?.r ?? "?",
      };
    } finally {
      await dropSlot(client, this.slot);
      await client.end();
      this.client = undefined;
    }
  }

  private kafkaBytes(): number {
    const topic = this.run.diffrelay?.topic;
    return topic ? kafkaTopicLogBytes(this.run.stack.kafkaDataDir, topic) : 0;
  }
}
