import kafkajs, { type Admin, type DescribeAclResource } from "kafkajs";
import { messageLimits } from "../../src/kafka/message-limits.js";
import {
  type DurabilityTarget,
  durabilityTarget,
  partitionOffsets,
  type TopicOffsets,
} from "../../src/kafka/topic-admin.js";
import { applierGroupId, type SourceTopics } from "../../src/kafka/topic-names.js";
import { CheckList, formatBytes, formatDuration } from "./doctor-report.js";

// kafkajs is CommonJS: its enums come through the default export under ESM.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ConfigResourceTypes, ResourcePatternTypes } =
  kafkajs;

export interface KafkaCheckOptions {
  admin: Admin;
  topics: SourceTopics;
  maxMessageBytes: number;
  /** The configured replication factor and min.insync.replicas; undefined: min(3, brokers) and RF-1 (at least 1). */
  replicationFactor?: number;
  minInsyncReplicas?: number;
  /** The SASL user, when SASL is on: its ACLs are checked. */
  saslUser?: string;
  /** Which clients use these credentials: the capture (a source is configured), appliers (by standby name). */
  capture: boolean;
  standbys: string[];
}

export interface KafkaFindings {
  checks: CheckList;
  /** The data topic's retained offsets; null when the topic or the brokers are out of reach. */
  offsets: TopicOffsets | null;
}

/** A standby stopped for less than this should never need a re-seed. */
const MIN_COMFORTABLE_RETENTION_MS = 24 * 3_600_000;

export async function checkKafka(options: KafkaCheckOptions): Promise<KafkaFindings> {
  const checks = new CheckList("kafka");
  const { admin, topics } = options;
  let brokers: number;
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    brokers = cluster.brokers.length;
    checks.add(
      "brokers",
      "ok",
      `${brokers} reachable (${cluster.brokers.map((b) => `${b.host}:${b.port}`).join(", ")})`,
    );
  } catch (err) {
    checks.add(
      "brokers",
      "fail",
      `not reachable: ${(err as Error).message}`,
      "check kafka.brokers, TLS and SASL settings",
    );
    return { checks, offsets: null };
  }
  const existing = new Set(await admin.listTopics());
  if (!existing.has(topics.data)) {
    checks.add(
      "topic",
      "warn",
      `${topics.data} does not exist yet: partitions, replication and retention are checked once it does`,
      "start the capture (it creates the topic with 1 partition), or create it",
    );
  } else {
    const offsets = await checkDataTopic(options, checks, brokers);
    await checks.run("schema topic", () => checkSchemaTopic(admin, topics.schemas, existing, checks));
    if (options.saslUser !== undefined) await checks.run("ACLs", () => checkAcls(options, checks));
    return { checks, offsets };
  }
  if (options.saslUser !== undefined) await checks.run("ACLs", () => checkAcls(options, checks));
  return { checks, offsets: null };
}

async function topicConfig(admin: Admin, topic: string, names: string[]): Promise<Map<string, string>> {
  const described = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: names }],
    includeSynonyms: false,
  });
  const entries = described.resources[0]?.configEntries ?? [];
  return new Map(entries.map((e) => [e.configName, e.configValue]));
}

async function checkDataTopic(
  options: KafkaCheckOptions,
  checks: CheckList,
  brokers: number,
): Promise<TopicOffsets> {
  const { admin, topics } = options;
  const metadata = await admin.fetchTopicMetadata({ topics: [topics.data] });
  const partitions = metadata.topics[0]?.partitions ?? [];
  if (partitions.length === 1) checks.add("topic", "ok", `${topics.data}: 1 partition`);
  else
    checks.add(
      "topic",
      "fail",
      `${topics.data} has ${partitions.length} partitions: offset order is commit order only with exactly 1`,
      "delete the topic and let the capture create it (then re-seed the standbys)",
    );
  const config = await topicConfig(admin, topics.data, [
    "min.insync.replicas",
    "retention.ms",
    "retention.bytes",
    "max.message.bytes",
  ]);

  const rf = partitions[0]?.replicas.length ?? 0;
  const minIsr = Number(config.get("min.insync.replicas") ?? "1");
  const target = durabilityTargetOrFinding(options, brokers, checks);
  const wantRf = target?.replicationFactor ?? rf;
  const wantIsr = target?.minInsyncReplicas ?? minIsr;
  const source = options.replicationFactor === undefined ? "expected min(3, brokers)" : "configured";
  if (rf < wantRf)
    checks.add(
      "replication",
      "warn",
      `replication factor ${rf}, ${source} ${wantRf}: losing ${rf === 1 ? "the broker" : `${rf} brokers`} loses frames no standby has applied yet`,
      "raise it with kafka-reassign-partitions.sh",
    );
  else checks.add("replication", "ok", `replication factor ${rf} (${source} ${wantRf})`);
  if (minIsr > rf)
    checks.add(
      "min.insync.replicas",
      "fail",
      `${minIsr} with replication factor ${rf}: no produce with acks=all can succeed, the capture stalls`,
      `kafka-configs.sh --alter --entity-type topics --entity-name ${topics.data} --add-config min.insync.replicas=${Math.min(wantIsr, rf)}`,
    );
  else if (minIsr < wantIsr)
    checks.add(
      "min.insync.replicas",
      "warn",
      `${minIsr}, ${options.minInsyncReplicas === undefined ? "expected replication factor - 1 =" : "configured"} ${wantIsr}: an acknowledged frame may exist on one broker only`,
      `kafka-configs.sh --alter --entity-type topics --entity-name ${topics.data} --add-config min.insync.replicas=${wantIsr}`,
    );
  else checks.add("min.insync.replicas", "ok", `${minIsr}`);

  const retentionMs = Number(config.get("retention.ms") ?? "-1");
  const retentionBytes = Number(config.get("retention.bytes") ?? "-1");
  const byBytes =
    retentionBytes >= 0
      ? `, or less once the partition holds ${formatBytes(retentionBytes)} (retention.bytes)`
      : "";
  if (retentionMs < 0)
    checks.add(
      "retention",
      retentionBytes >= 0 ? "warn" : "ok",
      `unlimited by time${byBytes}: a standby may stay stopped that long`,
    );
  else {
    const message = `a standby may be stopped up to ${formatDuration(retentionMs)} (retention.ms ${retentionMs})${byBytes}; stopped longer it must be re-seeded`;
    if (retentionMs < MIN_COMFORTABLE_RETENTION_MS || retentionBytes >= 0)
      checks.add(
        "retention",
        "warn",
        message,
        `raise retention.ms on ${topics.data} above your longest standby maintenance`,
      );
    else checks.add("retention", "ok", message);
  }

  const maxMessage = Number(config.get("max.message.bytes") ?? "0");
  try {
    // The capture sizes its messages from this limit the same way; larger values travel in pieces.
    const limits = messageLimits(maxMessage, options.maxMessageBytes);
    checks.add(
      "max.message.bytes",
      "ok",
      `${maxMessage}: the capture's messages stay below ${limits.messageLimitBytes} bytes, closed at ${limits.maxMessageBytes}; larger values are split across messages`,
    );
  } catch (err) {
    checks.add(
      "max.message.bytes",
      "fail",
      `${maxMessage} on the topic: ${(err as Error).message}`,
      `raise max.message.bytes on ${topics.data} to at least 16384`,
    );
  }
  return partitionOffsets(admin, topics.data);
}

async function checkSchemaTopic(
  admin: Admin,
  topic: string,
  existing: Set<string>,
  checks: CheckList,
): Promise<void> {
  if (!existing.has(topic)) {
    checks.add(
      "schema topic",
      "warn",
      `${topic} does not exist yet`,
      "start the capture: it creates it compacted",
    );
    return;
  }
  const policy = (await topicConfig(admin, topic, ["cleanup.policy"])).get("cleanup.policy") ?? "";
  if (policy.split(",").includes("compact"))
    checks.add("schema topic", "ok", `${topic}: cleanup.policy ${policy}`);
  else
    checks.add(
      "schema topic",
      "fail",
      `${topic} has cleanup.policy ${policy}: table definitions expire, and appliers cannot decode frames that refer to them`,
      `kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config cleanup.policy=compact`,
    );
}

export interface AclNeed {
  resourceType: number;
  name: string;
  operation: number;
  label: string;
}

/** What the configured clients call (docs/security.md): the capture, and each standby's applier. */
export function aclNeeds(topics: SourceTopics, capture: boolean, standbys: string[]): AclNeed[] {
  const needs: AclNeed[] = [];
  const topic = (name: string, operation: number, label: string) =>
    needs.push({ resourceType: AclResourceTypes.TOPIC, name, operation, label });
  for (const name of [topics.data, topics.schemas]) {
    if (capture) {
      topic(name, AclOperationTypes.CREATE, `Create on topic ${name}`);
      topic(name, AclOperationTypes.WRITE, `Write on topic ${name}`);
    }
    if (standbys.length > 0) topic(name, AclOperationTypes.READ, `Read on topic ${name}`);
    topic(name, AclOperationTypes.DESCRIBE, `Describe on topic ${name}`);
  }
  if (capture)
    needs.push({
      resourceType: AclResourceTypes.CLUSTER,
      name: "kafka-cluster",
      operation: AclOperationTypes.DESCRIBE_CONFIGS,
      label: "DescribeConfigs on the cluster",
    });
  for (const standby of standbys) {
    const group = applierGroupId(standby, topics.data);
    needs.push({
      resourceType: AclResourceTypes.GROUP,
      name: group,
      operation: AclOperationTypes.READ,
      label: `Read on group ${group}`,
    });
  }
  return needs;
}

// Kafka lets Read, Write, Delete and Alter imply Describe.
const IMPLIES_DESCRIBE = new Set<number>([
  AclOperationTypes.READ,
  AclOperationTypes.WRITE,
  AclOperationTypes.DELETE,
  AclOperationTypes.ALTER,
]);

/** The needs that the principal's ACLs do not allow (a matching DENY wins over any ALLOW). */
export function missingAcls(needs: AclNeed[], resources: DescribeAclResource[]): AclNeed[] {
  const matches = (need: AclNeed, r: DescribeAclResource) =>
    r.resourceType === need.resourceType &&
    (r.resourcePatternType === ResourcePatternTypes.PREFIXED
      ? need.name.startsWith(r.resourceName)
      : r.resourceName === "*" || r.resourceName === need.name);
  const covers = (need: AclNeed, operation: number) =>
    operation === AclOperationTypes.ALL ||
    operation === need.operation ||
    (need.operation === AclOperationTypes.DESCRIBE && IMPLIES_DESCRIBE.has(operation));
  return needs.filter((need) => {
    const acls = resources.filter((r) => matches(need, r)).flatMap((r) => r.acls);
    // Implication works for ALLOW only: denying Read does not deny Describe.
    const denies = (operation: number) => operation === AclOperationTypes.ALL || operation === need.operation;
    if (acls.some((a) => a.permissionType === AclPermissionTypes.DENY && denies(a.operation))) return true;
    return !acls.some((a) => a.permissionType === AclPermissionTypes.ALLOW && covers(need, a.operation));
  });
}

async function checkAcls(options: KafkaCheckOptions, checks: CheckList): Promise<void> {
  const principal = `User:${options.saslUser}`;
  let resources: DescribeAclResource[];
  try {
    const response = await options.admin.describeAcls({
      resourceType: AclResourceTypes.ANY,
      resourcePatternType: ResourcePatternTypes.ANY,
      operation: AclOperationTypes.ANY,
      permissionType: AclPermissionTypes.ANY,
    });
    // ACLs for User:* apply to every principal.
    resources = response.resources
      .map((r) => ({
        ...r,
        acls: r.acls.filter((a) => a.principal === principal || a.principal === "User:*"),
      }))
      .filter((r) => r.acls.length > 0);
  } catch (err) {
    checks.add(
      "ACLs",
      "warn",
      `cannot tell: describing ACLs failed (${(err as Error).message}); without an authorizer any authenticated user may use the topics`,
      "check the ACLs listed in docs/security.md with kafka-acls.sh",
    );
    return;
  }
  const missing = missingAcls(aclNeeds(options.topics, options.capture, options.standbys), resources);
  if (missing.length === 0) checks.add("ACLs", "ok", `${principal} has what the configured clients call`);
  else
    checks.add(
      "ACLs",
      "fail",
      `${principal} lacks ${missing.map((m) => m.label).join(", ")}`,
      "kafka-acls.sh --add --allow-principal ... for each (docs/security.md)",
    );
}

/** The capture's own target for this cluster; a configuration it would refuse is a finding of its own. */
function durabilityTargetOrFinding(
  options: KafkaCheckOptions,
  brokers: number,
  checks: CheckList,
): DurabilityTarget | null {
  try {
    return durabilityTarget(options, brokers);
  } catch (err) {
    checks.add("durability settings", "fail", (err as Error).message, "change the settings it names");
    return null;
  }
}
