import type { DiffrelayConfig } from "../config/config-schema.js";

export interface SourceTopics {
  data: string;
  schemas: string;
}

/** One data topic per source database, plus its compacted schema topic. */
export function sourceTopics(
  config: Pick<DiffrelayConfig, "topic" | "topicPrefix">,
  databaseName: string,
): SourceTopics {
  const data = config.topic ?? `${config.topicPrefix}.${databaseName.replace(/[^A-Za-z0-9._-]/g, "_")}`;
  return { data, schemas: `${data}.schemas` };
}
