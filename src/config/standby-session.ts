import type pg from "pg";

/**
 * A standby database may refuse client writes (`ALTER DATABASE … SET
 * default_transaction_read_only = on`: rejoin leaves an old primary so, and a
 * fenced primary is so). diffrelay's own sessions on a standby are its only
 * writers, so they turn that default off for themselves, in the startup
 * packet, where it outranks the database's setting and survives RESET.
 */
export function asStandbyWriter(config: pg.ClientConfig): pg.ClientConfig {
  return {
    ...config,
    options: [config.options, "-c default_transaction_read_only=off"].filter(Boolean).join(" "),
  };
}
