-- The applier's position lives on the standby and commits in the same
-- transaction as the changes it covers: that is what makes apply exactly once.
CREATE TABLE IF NOT EXISTS diffrelay.apply_position (
  topic           text        NOT NULL,
  partition       integer     NOT NULL,
  -- The Kafka offset to read next: just after the last fully applied message.
  next_offset     bigint      NOT NULL,
  -- Commit LSN of the last applied source transaction; anything at or below it is a duplicate.
  last_commit_lsn pg_lsn      NOT NULL,
  last_commit_time timestamptz,
  source_id       text,
  epoch           integer     NOT NULL DEFAULT 0,
  standby_name    text        NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);
