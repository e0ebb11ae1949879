import type { DiffrelayConfig } from "../config/config-schema.js";

export interface SourceTopics {
  data: string;
  schemas: string;
}

/**
 * One data topic per source database and epoch, plus its compacted schema
 * topic: `<topicPrefix>.<database>` (or the configured `topic`), with `.e<n>`
 * from epoch 1 on.
 */
export function sourceTopics(
  config: Pick<DiffrelayConfig, "topic" | "topicPrefix" | "epoch">,
  databaseName: string,
): SourceTopics {
  const base = config.topic ?? `${config.topicPrefix}.${databaseName.replace(/[^A-Za-z0-9._-]/g, "_")}`;
  const data = config.epoch > 0 ? `${base}.e${config.epoch}` : base;
  return { data, schemas: `${data}.schemas` };
}

/** Each standby's applier has its own consumer group; its members tell whether it runs. */
export function applierGroupId(standbyName: string): string {
  return `diffrelay-apply-${standbyName}`;
}
