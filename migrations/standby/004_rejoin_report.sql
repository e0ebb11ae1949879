-- What `diffrelay rejoin` found on an old primary before it repaired it: the
-- transactions it committed that never reached the new primary (commit LSNs,
-- tables, keys). Written and committed before anything is changed, so the
-- record survives whatever happens next; repaired_at is set in the repair's
-- own transaction, which also writes the position on the new topic.
CREATE TABLE IF NOT EXISTS diffrelay.rejoin_report (
  id          bigserial   PRIMARY KEY,
  old_topic   text        NOT NULL,
  new_topic   text        NOT NULL,
  report      jsonb       NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  repaired_at timestamptz
);
