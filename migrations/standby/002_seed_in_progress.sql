-- Set while `diffrelay seed` replaces the standby's tables, cleared in the
-- transaction that writes the seeded position: an applier refuses to start on
-- half-copied tables left by an interrupted seed.
CREATE TABLE IF NOT EXISTS diffrelay.seed_in_progress (
  topic      text        PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now()
);
