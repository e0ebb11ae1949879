import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/config/config-error.js";
import { loadConfig } from "../../../src/config/config-loader.js";

function yamlFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "diffrelay-config-")), "config.yaml");
  writeFileSync(path, text);
  return path;
}

describe("loadConfig", () => {
  it("takes flags over the environment over the file over defaults", () => {
    const file = yamlFile(
      "topicPrefix: from-file\nkafka:\n  brokers: [file:9092]\ncapture:\n  slot: file_slot\n",
    );
    const config = loadConfig({
      flags: { config: file, brokers: "flag:9092" },
      env: { DIFFRELAY_TOPIC_PREFIX: "from-env", DIFFRELAY_SLOT: "env_slot" },
    });
    expect(config.kafka?.brokers).toEqual(["flag:9092"]);
    expect(config.topicPrefix).toBe("from-env");
    expect(config.capture.slot).toBe("env_slot");
    expect(config.capture.publication).toBe("diffrelay");
    expect(config.apply.onDrift).toBe("stop");
  });

  it("names the key, the value given, where it came from and what was expected", () => {
    const attempt = () => loadConfig({ flags: {}, env: { DIFFRELAY_SOURCE_URL: "mysql://x" } });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      /source\.url: given "mysql:\/\/x" \(from \$DIFFRELAY_SOURCE_URL\); expected .*postgres/,
    );
  });

  it("reads a node's rejoin settings; its reported database address may carry no secret", () => {
    const config = loadConfig({
      flags: {
        "manual-rejoin": true,
        "database-address": "postgres://db-a:5432/app",
        "peer-user": "rejoiner",
      },
      env: { DIFFRELAY_NODE_PEER_PASSWORD: "s3cret" },
    });
    expect(config.node).toMatchObject({
      manualRejoin: true,
      databaseAddress: "postgres://db-a:5432/app",
      peerUser: "rejoiner",
      peerPassword: "s3cret",
    });
    const withSecret = () =>
      loadConfig({ flags: { "database-address": "postgres://app:s3cret@db-a:5432/app" }, env: {} });
    expect(withSecret).toThrow(/node\.databaseAddress: .*without user and password/);
    expect(withSecret).not.toThrow(/s3cret/);
    const withQuerySecret = () =>
      loadConfig({ flags: { "database-address": "postgres://db-a:5432/app?password=s3cret" }, env: {} });
    expect(withQuerySecret).toThrow(/node\.databaseAddress: .*without user and password/);
    expect(withQuerySecret).not.toThrow(/s3cret/);
  });

  it("reads the topic durability settings from flags, environment and file", () => {
    const config = loadConfig({
      flags: { brokers: "k:9092", "kafka-replication-factor": "3", "kafka-require-durability": true },
      env: { DIFFRELAY_KAFKA_MIN_INSYNC_REPLICAS: "2" },
    });
    expect(config.kafka?.replicationFactor).toBe(3);
    expect(config.kafka?.minInsyncReplicas).toBe(2);
    expect(config.kafka?.requireDurability).toBe(true);
    const defaults = loadConfig({ flags: { config: yamlFile("kafka:\n  brokers: [k:9092]\n") }, env: {} });
    expect(defaults.kafka?.replicationFactor).toBeUndefined();
    expect(defaults.kafka?.minInsyncReplicas).toBeUndefined();
    expect(defaults.kafka?.requireDurability).toBe(false);
    expect(() =>
      loadConfig({ flags: { brokers: "k:9092", "kafka-replication-factor": "0" }, env: {} }),
    ).toThrow(/kafka\.replicationFactor/);
  });

  it("rejects a number that is not one, naming the flag", () => {
    expect(() => loadConfig({ flags: { "linger-ms": "soon" }, env: {} })).toThrow(
      /capture\.lingerMs \(from --linger-ms\) is "soon"; expected a number/,
    );
  });

  it("lists every enum value it accepts", () => {
    expect(() => loadConfig({ flags: { "on-drift": "ignore" }, env: {} })).toThrow(
      /apply\.onDrift: given "ignore".*expected one of "stop", "log"/,
    );
  });

  it("hides secrets in its errors", () => {
    const attempt = () =>
      loadConfig({
        flags: { brokers: "k:9092", "kafka-sasl-mechanism": "plain", "kafka-sasl-password": "hunter2" },
        env: {},
      });
    expect(attempt).toThrow(/kafka\.sasl\.username/);
    try {
      attempt();
    } catch (err) {
      expect((err as Error).message).not.toContain("hunter2");
    }
  });

  it("masks a password inside a rejected connection string", () => {
    const attempt = () => loadConfig({ flags: { "source-url": "mysql://u:hunter2@db/app" }, env: {} });
    expect(attempt).toThrow(/given "mysql:\/\/u:\*\*\*\*@db\/app"/);
  });

  it("says which file is not YAML", () => {
    const file = yamlFile("source: [unclosed");
    expect(() => loadConfig({ flags: { config: file }, env: {} })).toThrow(/is not valid YAML/);
  });
});
