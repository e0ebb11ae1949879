-- A column added with a volatile default (now(), clock_timestamp(), random(),
-- gen_random_uuid()), or as serial or identity, gets its values while the
-- source rewrites the table: no row change reaches the stream, and a standby
-- replaying the statement computes values of its own. So the source sends its
-- values after the statement, in the same transaction: each row of the table
-- is updated to itself under REPLICA IDENTITY DEFAULT, whose row messages carry
-- every column but the unchanged key, and the standby overwrites its values.
--
-- PostgreSQL itself tells these columns apart: a constant default is stored
-- once in the catalog (no rewrite), these ones rewrite the table with reason
-- AT_REWRITE_DEFAULT_VAL (2), which the table_rewrite event reports.
--
-- A table without a primary key cannot switch to DEFAULT identity (it keeps
-- FULL, whose diff of a row against itself is empty), so there the statement
-- is refused, with the way to add such a column that replicates.

CREATE OR REPLACE FUNCTION diffrelay.note_rewrite() RETURNS event_trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  IF pg_catalog.current_setting('diffrelay.capture_ddl', true) = 'off'
     OR pg_catalog.pg_event_trigger_table_rewrite_reason() & 2 = 0 THEN
    RETURN;
  END IF;
  PERFORM pg_catalog.set_config(
    'diffrelay.recopy',
    COALESCE(pg_catalog.current_setting('diffrelay.recopy', true), '')
      || pg_catalog.pg_event_trigger_table_rewrite_oid()::text || ',',
    true);
END
$fn$;

-- SECURITY DEFINER (its owner installed the event triggers, a superuser): the
-- self-update runs with the source's own triggers off, as a standby applies, so
-- that no user trigger (an updated_at, an audit row) sees it as a real update.
CREATE OR REPLACE FUNCTION diffrelay.recopy_rewritten() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $fn$
DECLARE
  pending text := pg_catalog.current_setting('diffrelay.recopy', true);
  rel regclass;
  ident "char";
  settable text;
  role_before text := pg_catalog.current_setting('session_replication_role');
  capture_before text := pg_catalog.current_setting('diffrelay.capture_ddl', true);
BEGIN
  IF pending IS NULL OR pending = '' THEN
    RETURN;
  END IF;
  PERFORM pg_catalog.set_config('diffrelay.recopy', '', true);
  FOR rel IN
    SELECT DISTINCT c.oid::regclass
      FROM pg_catalog.unnest(pg_catalog.string_to_array(pending, ',')) AS p(oid)
      JOIN pg_catalog.pg_class AS c ON p.oid <> '' AND c.oid = p.oid::oid
     -- diffrelay.recopy is a setting anyone may SET: only a table whose pg_class
     -- row this transaction rewrote (so whose owner ran the statement) is taken.
     -- A visible row whose xmin is still in progress is this transaction's own;
     -- txid_current() - age(xmin) is that xmin with its epoch.
     WHERE c.relkind IN ('r', 'p')
       AND pg_catalog.txid_status(pg_catalog.txid_current() - pg_catalog.age(c.xmin)) = 'in progress'
       AND c.relnamespace <> 'diffrelay'::regnamespace
       AND (EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE puballtables)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel AS r WHERE r.prrelid = c.oid))
  LOOP
    SELECT c.relreplident INTO ident FROM pg_catalog.pg_class AS c WHERE c.oid = rel;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i WHERE i.indrelid = rel AND i.indisprimary) THEN
      RAISE EXCEPTION 'diffrelay: % has no primary key, so the values this statement gives its existing rows cannot reach the standbys', rel
        USING HINT = 'add the column without a volatile default (or identity), fill it with UPDATE, then ALTER COLUMN ... SET DEFAULT; or give the table a primary key first',
              ERRCODE = 'feature_not_supported';
    END IF;
    -- Any column an UPDATE may assign to itself: the row message carries all of them anyway.
    SELECT pg_catalog.quote_ident(a.attname) INTO settable
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attgenerated = '' AND a.attidentity <> 'a'
     ORDER BY a.attnum LIMIT 1;
    IF settable IS NULL THEN
      RAISE EXCEPTION 'diffrelay: every column of % is generated, so its new values cannot be sent to the standbys', rel
        USING HINT = 'add the column in a way that does not rewrite the table', ERRCODE = 'feature_not_supported';
    END IF;
    PERFORM pg_catalog.set_config('diffrelay.capture_ddl', 'off', true);
    PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
    -- USING INDEX, like DEFAULT, logs no old row for an unchanged key.
    IF ident IN ('f', 'n') THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY DEFAULT', rel);
    END IF;
    EXECUTE pg_catalog.format('UPDATE %s SET %s = %s', rel, settable, settable);
    IF ident = 'f' THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', rel);
    ELSIF ident = 'n' THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY NOTHING', rel);
    END IF;
    PERFORM pg_catalog.set_config('session_replication_role', role_before, true);
    PERFORM pg_catalog.set_config('diffrelay.capture_ddl', COALESCE(capture_before, ''), true);
  END LOOP;
END
$fn$;

DO $diffrelay$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    DROP EVENT TRIGGER IF EXISTS diffrelay_note_rewrite;
    DROP EVENT TRIGGER IF EXISTS diffrelay_recopy_rewritten;
    CREATE EVENT TRIGGER diffrelay_note_rewrite ON table_rewrite EXECUTE FUNCTION diffrelay.note_rewrite();
    -- Fires after diffrelay_capture_ddl (event triggers fire in name order): the standby adds the column first.
    CREATE EVENT TRIGGER diffrelay_recopy_rewritten ON ddl_command_end EXECUTE FUNCTION diffrelay.recopy_rewritten();
  END IF;
END
$diffrelay$;
