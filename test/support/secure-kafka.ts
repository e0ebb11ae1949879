import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../scripts/stack/free-port.js";
import { ensureKafkaJars, kafkaListsTopics, writeLog4jConfig } from "../../scripts/stack/kafka-broker.js";
import { awaitReaped, isAlive, run, tail, terminate, waitUntil } from "../../scripts/stack/processes.js";
import type { ServerCertificate } from "./tls-certs.js";

export const SECURE_KAFKA_USER = "diffrelay-client";

export interface SecureKafka {
  /** The SASL_SSL listener: the only one clients are given. */
  broker: string;
  /** The SCRAM-SHA-256 password of SECURE_KAFKA_USER. */
  password: string;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * A private single-node KRaft broker in `dir` whose client listener is SASL_SSL with SCRAM-SHA-256 (the
 * user is created at format time, as KRaft allows) and a server certificate from the test's CA, given as a
 * PEM keystore. The controller listener and an inter-broker listener stay PLAINTEXT on 127.0.0.1: a single
 * node only talks to itself on them, and clients are never pointed at them.
 */
export async function startSecureKafka(
  dir: string,
  cert: ServerCertificate,
  caFile: string,
): Promise<SecureKafka> {
  const libDir = await ensureKafkaJars("4.1.1", () => undefined);
  mkdirSync(join(dir, "data"), { recursive: true });
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await freePort());
  const [saslPort, internalPort, controllerPort] = [...ports] as [number, number, number];
  const password = randomBytes(18).toString("base64url");
  const logFile = join(dir, "kafka.log");
  const properties = join(dir, "server.properties");
  writeFileSync(
    properties,
    [
      "process.roles=broker,controller",
      "node.id=1",
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=SASL_SSL://127.0.0.1:${saslPort},INTERNAL://127.0.0.1:${internalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=SASL_SSL://127.0.0.1:${saslPort},INTERNAL://127.0.0.1:${internalPort}`,
      "controller.listener.names=CONTROLLER",
      "inter.broker.listener.name=INTERNAL",
      "listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
      "sasl.enabled.mechanisms=SCRAM-SHA-256",
      "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256",
      "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
      "listener.name.sasl_ssl.ssl.keystore.type=PEM",
      `listener.name.sasl_ssl.ssl.keystore.location=${cert.keystoreFile}`,
      "listener.name.sasl_ssl.ssl.truststore.type=PEM",
      `listener.name.sasl_ssl.ssl.truststore.location=${caFile}`,
      "ssl.client.auth=none",
      `log.dirs=${join(dir, "data")}`,
      "auto.create.topics.enable=false",
      "num.partitions=1",
      "default.replication.factor=1",
      "offsets.topic.replication.factor=1",
      "offsets.topic.num.partitions=4",
      "transaction.state.log.replication.factor=1",
      "transaction.state.log.min.isr=1",
      "share.coordinator.state.topic.replication.factor=1",
      "share.coordinator.state.topic.min.isr=1",
      "group.initial.rebalance.delay.ms=0",
      "message.max.bytes=4194304",
      "",
    ].join("\n"),
  );
  writeLog4jConfig(dir, logFile);
  let clusterId = randomBytes(16).toString("base64url");
  while (clusterId.startsWith("-")) clusterId = randomBytes(16).toString("base64url");
  const log4j = `-Dlog4j2.configurationFile=${join(dir, "log4j2.properties")}`;
  const classpath = join(libDir, "*");
  await run(
    "java",
    [
      log4j,
      "-cp",
      classpath,
      "kafka.tools.StorageTool",
      "format",
      "--standalone",
      "-t",
      clusterId,
      "-c",
      properties,
      "--add-scram",
      `SCRAM-SHA-256=[name=${SECURE_KAFKA_USER},password=${password}]`,
    ],
    { cwd: dir },
  );
  const out = openSync(join(dir, "kafka.out"), "a");
  const child = spawn(
    "java",
    [
      "-Xmx512m",
      "-Xms128m",
      "-XX:+UseG1GC",
      "-Djava.awt.headless=true",
      log4j,
      "-cp",
      classpath,
      "kafka.Kafka",
      properties,
    ],
    { cwd: dir, stdio: ["ignore", out, out] },
  );
  closeSync(out);
  if (!child.pid) throw new Error("java did not start for the SASL_SSL broker");
  const pid = child.pid;
  const broker = `127.0.0.1:${saslPort}`;
  const stop = async () => {
    await terminate(pid, 20_000);
    await awaitReaped(pid);
  };
  try {
    // Ready means: a kafkajs client completes TLS (verifying our CA) and SCRAM, and lists topics.
    await waitUntil(
      `SASL_SSL Kafka on ${broker}`,
      90_000,
      async () => {
        if (!isAlive(pid)) throw new Error(`Kafka (pid ${pid}) exited`);
        return kafkaListsTopics({
          clientId: "secure-kafka-probe",
          brokers: [broker],
          ssl: { ca: [readFileSync(caFile, "utf8")] },
          sasl: { mechanism: "scram-sha-256", username: SECURE_KAFKA_USER, password },
          connectionTimeout: 3_000,
        });
      },
      () => `${tail(join(dir, "kafka.out"), 15)}\n${tail(logFile)}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { broker, password, pid, logFile, stop };
}
