import { z } from "zod";

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\//, "a postgres:// or postgresql:// connection URL");

const tlsSchema = z.object({
  /** Path of a PEM CA bundle that the server certificate must chain to. */
  caFile: z.string().optional(),
  /** Skip certificate verification. Only for tests against self-signed servers. */
  insecure: z.boolean().default(false),
});

const kafkaSchema = z.object({
  brokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, "host:port")).min(1),
  clientId: z.string().default("diffrelay"),
  tls: tlsSchema.extend({ enabled: z.boolean().default(false) }).default({ enabled: false, insecure: false }),
  sasl: z
    .object({
      mechanism: z.enum(["plain", "scram-sha-256", "scram-sha-512"]),
      username: z.string(),
      password: z.string(),
    })
    .optional(),
  /**
   * Replication factor of the topics diffrelay creates. Unset: min(3, brokers in the cluster), so that
   * acks=all means copies on several brokers wherever there are several.
   */
  replicationFactor: z.number().int().min(1).max(32).optional(),
  /** min.insync.replicas of those topics. Unset: replication factor - 1 (at least 1). */
  minInsyncReplicas: z.number().int().min(1).max(32).optional(),
  /** An existing topic below the configured durability stops the capture (exit 3) instead of a warning. */
  requireDurability: z.boolean().default(false),
});

const captureSchema = z.object({
  publication: z.string().min(1).default("diffrelay"),
  slot: z
    .string()
    .regex(/^[a-z0-9_]{1,63}$/, "lower-case letters, digits and _ (PostgreSQL slot name rules)")
    // Unset: diffrelay_<database> (see connectors/postgres-source/slot-name.ts).
    .optional(),
  /** Schema-qualified tables to publish; empty with no schemas means all tables. */
  tables: z.array(z.string()).default([]),
  schemas: z.array(z.string()).default([]),
  /** Per-table replica identity; FULL (exact diffs) unless a table is listed here as "default". */
  identity: z.record(z.string(), z.enum(["full", "default"])).default({}),
  /**
   * Kafka batch compression. Measured with the demo's pgbench load (bytes of the
   * topic's log per row change): none 36, snappy 14, gzip 9. gzip is also
   * Node's native zlib, while snappy here is pure JavaScript.
   */
  compression: z.enum(["none", "gzip", "snappy"]).default("gzip"),
  /** A Kafka message is closed at this size; larger transactions are split into chunks. */
  maxMessageBytes: z
    .number()
    .int()
    .min(4096)
    .max(8 * 1024 * 1024)
    .default(512 * 1024),
  /**
   * A value whose text takes more bytes stops the capture (exit 7) before its
   * transaction is confirmed. The default is the hard limit, V8's largest
   * string (536870888); lower it to bound the capture's memory per row.
   */
  maxValueBytes: z.number().int().min(1024).max(536_870_888).default(536_870_888),
  /** How long frames may wait for more frames before they are sent; 0: only for what has already arrived. */
  lingerMs: z.number().int().min(0).max(1000).default(0),
  /** Bytes of frames waiting for Kafka before the replication socket is paused. */
  maxPendingBytes: z
    .number()
    .int()
    .min(65536)
    .default(16 * 1024 * 1024),
  heartbeatIntervalMs: z.number().int().min(100).default(10_000),
  /**
   * Commits on the source wait until their changes are durable in Kafka: the
   * capture makes itself the source's synchronous standby (synchronous_standby_names).
   */
  zeroLoss: z.boolean().default(false),
});

const applySchema = z.object({
  /** Consecutive source transactions grouped into one standby transaction, bounded by rows... */
  maxRowsPerTransaction: z.number().int().min(1).default(5000),
  /** ...and by how long the group may stay open. */
  maxGroupMs: z.number().int().min(0).default(20),
  maxRowsPerStatement: z.number().int().min(1).default(1000),
  onDrift: z.enum(["stop", "log"]).default("stop"),
  /** When set, messages that do not decode go to this topic instead of stopping the applier. */
  deadLetterTopic: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "Kafka topic characters [A-Za-z0-9._-]")
    .optional(),
});

const seedSchema = z.object({
  /** Tables (or ranges of large tables) copied at once, each on its own pair of connections. */
  parallel: z.number().int().min(1).max(64).default(4),
  /** Tables estimated above this many rows are copied as ctid ranges of about this size. */
  rangeRows: z.number().int().min(1000).default(1_000_000),
});

export const configSchema = z.object({
  source: z.object({ url: postgresUrl, tls: tlsSchema.optional() }).optional(),
  kafka: kafkaSchema.optional(),
  /** Topic names are <topicPrefix>.<source database> unless `topic` is set. */
  topicPrefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "Kafka topic characters [A-Za-z0-9._-]")
    .default("diffrelay"),
  topic: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "Kafka topic characters [A-Za-z0-9._-]")
    .optional(),
  /**
   * The source epoch: 0 for the first primary, one more after each promotion.
   * From epoch 1 on, topic names end in `.e<epoch>`, so frames of an old
   * primary and of its successor can never share a topic.
   */
  epoch: z.number().int().min(0).default(0),
  standby: z
    .object({
      name: z.string().regex(/^[A-Za-z0-9_-]+$/, "letters, digits, _ and -"),
      url: postgresUrl,
      tls: tlsSchema.optional(),
    })
    .partial()
    .optional(),
  capture: captureSchema.default(captureSchema.parse({})),
  apply: applySchema.default(applySchema.parse({})),
  seed: seedSchema.default(seedSchema.parse({})),
  /** Every standby of the deployment, as name=url entries: what status reports and promote re-points. */
  standbys: z
    .array(z.string().regex(/^[A-Za-z0-9_-]+=postgres(ql)?:\/\//, "name=postgres://..."))
    .default([]),
  /** The HA cluster a `node` belongs to, and what `switchover` and `list` act on. */
  cluster: z
    .object({
      name: z.string().regex(/^[A-Za-z0-9_-]+$/, "letters, digits, _ and -"),
      /** The other nodes, as name=http://host:port entries (their HTTP API). */
      members: z.array(z.string().regex(/^[A-Za-z0-9_-]+=https?:\/\//, "name=http://host:port")).default([]),
      initialPrimary: z.string().optional(),
    })
    .optional(),
  node: z
    .object({
      name: z.string().regex(/^[A-Za-z0-9_-]+$/, "letters, digits, _ and -"),
      url: z
        .string()
        .regex(/^https?:\/\//, "http://host:port")
        .optional(),
      databaseUrl: postgresUrl,
      /** Reported to the other nodes: no user or password, Kafka holds no database secret. */
      databaseAddress: postgresUrl.refine((url) => {
        try {
          const parsed = new URL(url);
          return parsed.username === "" && parsed.password === "" && !parsed.searchParams.has("password");
        } catch {
          return false;
        }
      }, "postgres://host:port/db without user and password"),
      /** Credentials for the other nodes' databases (their reports carry none). */
      peerUser: z.string().min(1),
      peerPassword: z.string(),
      manualRejoin: z.boolean(),
      /** The primary's lease (operations/lease): the standbys elect when they have seen no renewal for this long. */
      leaseTtlMs: z.number().int().min(1000),
      leaseRenewMs: z.number().int().min(100),
      /** 0: never a candidate of an automatic failover; higher first. */
      failoverPriority: z.number().int().min(0),
      /** This node never starts an election; `diffrelay failover` stays. */
      manualFailover: z.boolean(),
    })
    .partial()
    .optional(),
  metrics: z
    .object({
      host: z.string().default("127.0.0.1"),
      /** 0 picks a free port, logged at start. */
      port: z.number().int().min(0).max(65535).default(0),
    })
    .default({ host: "127.0.0.1", port: 0 }),
  /**
   * Identical failures in a row at one position after which a capture or an
   * applier reports itself stalled (/healthz 503, /status, diffrelay_stalled).
   */
  stallAfter: z.number().int().min(1).default(5),
  /**
   * How long a capture, applier or node may take to stop after SIGTERM/SIGINT before it exits
   * anyway (exit 11): a Kafka or database that stops answering must not keep it alive.
   */
  stopTimeoutMs: z.number().int().min(1).default(20_000),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
});

export type DiffrelayConfig = z.infer<typeof configSchema>;
