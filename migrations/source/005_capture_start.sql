-- diffrelay:ensure
-- Numbers the capture's starts: each start takes the next value for its capture
-- id (src/wire/capture-id.ts), which appliers use to tell a stale capture's late
-- messages from the current one's. A sequence never goes back: a value taken by
-- a committed transaction is not handed out again, not even after a crash; and
-- unlike a clock it does not depend on the capture host. Re-run at every start:
-- a database that became a primary after being a standby gets it then. Sequences
-- in the diffrelay schema are not replicated.
CREATE SEQUENCE IF NOT EXISTS diffrelay.capture_start AS bigint MINVALUE 1 MAXVALUE 4294967295 NO CYCLE;
