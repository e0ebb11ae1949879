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

/**
 * A session whose commits wait for no synchronous standby. On a database that
 * was a zero-loss source, synchronous_standby_names names its capture; once
 * that capture is gone (killed, fenced, demoted), every commit that waits for
 * it waits forever. diffrelay's own writes there (the fence's ALTER DATABASE,
 * rejoin's report and repair) are durable once flushed locally.
 */
export function withLocalCommits(config: pg.ClientConfig): pg.ClientConfig {
  return {
    ...config,
    options: [config.options, "-c synchronous_commit=local"].filter(Boolean).join(" "),
  };
}
