-- Logical decoding carries no DDL. This event trigger writes each schema change
-- into the WAL as a transactional logical message, so it reaches the topic in
-- order with the data and standbys run it before any change that depends on it.
--
-- It also gives every table created later REPLICA IDENTITY FULL, which exact
-- diffs need and which a table without a primary key needs before it may be
-- updated at all under a FOR ALL TABLES publication.
--
-- What is replicated is the statement text (current_query()) under the
-- search_path it ran with, once per transaction and statement text. A query
-- string that mixes DDL with other statements is replayed whole, so run DDL as
-- statements of its own. CREATE TABLE AS / SELECT INTO are not replicated: their
-- rows would arrive twice (as DDL and as inserts); create the table, then insert.
--
-- Event triggers need a superuser; without one, DDL capture stays off and the
-- capture logs it (standbys then need schema changes applied by hand).

-- Writes the running statement once per transaction and statement text: a
-- statement that runs several commands (or the ALTER below) fires the triggers
-- more than once.
CREATE OR REPLACE FUNCTION diffrelay.emit_ddl() RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  marker text := pg_catalog.txid_current()::text || ':' || pg_catalog.md5(pg_catalog.current_query());
BEGIN
  IF pg_catalog.current_setting('diffrelay.ddl_marker', true) IS NOT DISTINCT FROM marker THEN
    RETURN;
  END IF;
  PERFORM pg_catalog.set_config('diffrelay.ddl_marker', marker, true);
  PERFORM pg_catalog.pg_logical_emit_message(
    true,
    'diffrelay.ddl',
    pg_catalog.json_build_object(
      'search_path', pg_catalog.current_setting('search_path'),
      'command', pg_catalog.current_query()
    )::text
  );
END
$fn$;

CREATE OR REPLACE FUNCTION diffrelay.capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  cmd record;
  wanted boolean := false;
BEGIN
  -- diffrelay's own setup runs with this off: it is not the user's schema.
  IF pg_catalog.current_setting('diffrelay.capture_ddl', true) = 'off' THEN
    RETURN;
  END IF;
  FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
    IF cmd.schema_name LIKE 'pg\_temp%' OR cmd.schema_name = 'diffrelay'
       OR cmd.command_tag IN ('CREATE TABLE AS', 'SELECT INTO') THEN
      CONTINUE;
    END IF;
    IF cmd.command_tag ~ '^(CREATE|ALTER) (TABLE|INDEX|TYPE|SEQUENCE|SCHEMA|DOMAIN|VIEW|MATERIALIZED VIEW|FUNCTION|PROCEDURE|EXTENSION|TRIGGER|RULE|POLICY|STATISTICS)$'
       OR cmd.command_tag = 'COMMENT' THEN
      wanted := true;
    END IF;
    IF cmd.command_tag = 'CREATE TABLE' AND cmd.object_type = 'table' THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', cmd.object_identity);
    END IF;
  END LOOP;
  IF wanted THEN
    PERFORM diffrelay.emit_ddl();
  END IF;
END
$fn$;

-- DROP commands are reported here, not by pg_event_trigger_ddl_commands().
CREATE OR REPLACE FUNCTION diffrelay.capture_drop() RETURNS event_trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  IF pg_catalog.current_setting('diffrelay.capture_ddl', true) = 'off' THEN
    RETURN;
  END IF;
  IF tg_tag ~ '^DROP (TABLE|INDEX|TYPE|SEQUENCE|SCHEMA|DOMAIN|VIEW|MATERIALIZED VIEW|FUNCTION|PROCEDURE|EXTENSION|TRIGGER|RULE|POLICY|STATISTICS)$'
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() d
                  WHERE d.original AND NOT d.is_temporary
                    AND d.schema_name IS DISTINCT FROM 'diffrelay') THEN
    PERFORM diffrelay.emit_ddl();
  END IF;
END
$fn$;

DO $diffrelay$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    DROP EVENT TRIGGER IF EXISTS diffrelay_capture_ddl;
    DROP EVENT TRIGGER IF EXISTS diffrelay_capture_drop;
    CREATE EVENT TRIGGER diffrelay_capture_ddl ON ddl_command_end EXECUTE FUNCTION diffrelay.capture_ddl();
    CREATE EVENT TRIGGER diffrelay_capture_drop ON sql_drop EXECUTE FUNCTION diffrelay.capture_drop();
  ELSE
    RAISE NOTICE 'diffrelay: not a superuser, so no event trigger: DDL is not captured';
  END IF;
END
$diffrelay$;
