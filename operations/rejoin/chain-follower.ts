import type { Kafka } from "kafkajs";
import { readPosition, writePosition } from "../../connectors/postgres-standby/index.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import type { Logger } from "../../src/observability/logger.js";
import { drainStandby, type StandbyTarget, withDatabase } from "../promote/promote-steps.js";
import type { ChainLink } from "./epoch-chain.js";
import { RejoinRefusedError } from "./rejoin-errors.js";

export interface ChainFollowOptions {
  config: DiffrelayConfig;
  kafka: Kafka;
  logger: Logger;
  standby: StandbyTarget;
  /** From the first topic to apply to the one the applier then follows (epochChain's links, or the part after a rewind). */
  links: ChainLink[];
}

/**
 * Applies every link's topic but the last exactly to its drained end, checked
 * (what the next epoch's primary started from), then positions the database
 * at the next topic's start; returns with it positioned on the last link's
 * topic, where its applier then runs. Each step commits its own position, so
 * a run that stops anywhere resumes where the database's positions say: from
 * the latest link it holds a position on.
 *
 * A position on a later epoch's topic names no source: the applier takes the
 * source of the topic's first message, as for a seed's position, since only
 * that epoch's primary writes its topic.
 */
export async function followEpochChain(options: ChainFollowOptions): Promise<void> {
  const { links, standby, config, logger } = options;
  const held = await withDatabase(standby.url, config, async (client) => {
    for (let i = links.length - 1; i >= 0; i--) {
      const position = await readPosition(client, (links[i] as ChainLink).topics.data, 0);
      if (position) return { index: i, nextOffset: position.nextOffset };
    }
    return null;
  });
  if (!held) {
    throw new RejoinRefusedError(
      `standby ${standby.name} holds a position on none of ${links.map((l) => l.topics.data).join(", ")}: which of their changes it holds is unknown; re-seed it`,
    );
  }
  for (let i = held.index; i < links.length - 1; i++) {
    const link = links[i] as ChainLink;
    const next = links[i + 1] as ChainLink;
    const end = link.end as bigint;
    await drainStandby({ config, kafka: options.kafka, logger, standby, topics: link.topics, end });
    await withDatabase(standby.url, config, async (client) => {
      const reached = (await readPosition(client, link.topics.data, 0))?.nextOffset ?? null;
      if (reached !== end) {
        throw new RejoinRefusedError(
          `standby ${standby.name} applied ${link.topics.data} (epoch ${link.epoch}) to offset ${reached ?? "none"}, not exactly to its drained end ${end}: ` +
            `it does not hold what epoch ${next.epoch} started from; see the applier's errors above, then restart the node (or re-seed it)`,
        );
      }
      await client.query("BEGIN");
      await writePosition(client, standby.name, {
        topic: next.topics.data,
        partition: 0,
        nextOffset: 0n,
        lastCommitLsn: 0n,
        lastCommitTimeMicros: null,
        sourceId: null,
        epoch: next.epoch,
      });
      await client.query("COMMIT");
    });
    logger.info(
      { topic: link.topics.data, epoch: link.epoch, endOffset: end.toString(), next: next.topics.data },
      `applied ${link.topics.data} to its drained end ${end}: following epoch ${next.epoch}'s ${next.topics.data}`,
    );
  }
}
