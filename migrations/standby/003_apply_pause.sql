-- A request, by diffrelay verify, that the applier stop just before the first
-- source transaction at or after before_lsn. The applier commits what it has,
-- records where it stands in paused_at_lsn, and waits until the row is gone:
-- the standby then holds exactly the source's state before before_lsn.
CREATE TABLE IF NOT EXISTS diffrelay.apply_pause (
  topic         text        PRIMARY KEY,
  before_lsn    pg_lsn      NOT NULL,
  paused_at_lsn pg_lsn,
  requested_at  timestamptz NOT NULL DEFAULT now()
);
