import pg from "pg";
import { migrateSource } from "../../../connectors/postgres-source/index.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { postgresClientConfig } from "../../../src/config/postgres-connection.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { loadMigrations, runMigrations } from "../../../src/migrations/migration-runner.js";
import type { Command } from "../command.js";
import { PUBLICATION, PUBLISHED_TABLES, SOURCE_CONNECTION } from "../setting-groups.js";

export const migrateCommand: Command = {
  summary: "apply the versioned setup to the source (publication, slot, identity) and/or the standby",
  settings: [...SOURCE_CONNECTION, ...PUBLICATION, ...PUBLISHED_TABLES, "standby.url", "standby.tls.caFile"],
  async run({ config }) {
    if (!config.source && !config.standby?.url) {
      throw new ConfigError("config: migrate needs source.url (--source-url) or standby.url (--standby-url)");
    }
    if (config.source) {
      const client = new pg.Client(postgresClientConfig(config.source.url, config.source.tls));
      await client.connect();
      try {
        const result = await migrateSource(client, {
          publicationName: config.capture.publication,
          slotName: config.capture.slot,
          tables: config.capture.tables,
          schemas: config.capture.schemas,
          identity: config.capture.identity,
        });
        console.log(`source: applied ${result.applied.length ? result.applied.join(", ") : "nothing new"}`);
        for (const table of result.tables)
          console.log(`  ${table.name}: REPLICA IDENTITY ${table.identity.toUpperCase()}`);
      } finally {
        await client.end();
      }
    }
    if (config.standby?.url) {
      const client = new pg.Client(postgresClientConfig(config.standby.url, config.standby.tls));
      await client.connect();
      try {
        const applied = await runMigrations(client, loadMigrations("standby"));
        console.log(`standby: applied ${applied.length ? applied.join(", ") : "nothing new"}`);
      } finally {
        await client.end();
      }
    }
    return EXIT.ok;
  },
};
