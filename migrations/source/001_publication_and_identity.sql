-- diffrelay:ensure
-- Re-run at every capture start: it states the setup the configuration asks for
-- and changes nothing once that setup is in place. Placeholders are filled by
-- source-migrator.ts with quoted identifiers and literals. The migration runner
-- runs it in one transaction with its record.
--
-- publish_via_partition_root is false on purpose: with true, PostgreSQL does not
-- publish a TRUNCATE of a single partition at all (checked on PG15), so an exact
-- standby would keep rows the source removed. Standbys have the same partitions
-- (DDL is replicated), so changes are applied to the partition they came from.


CREATE SCHEMA IF NOT EXISTS diffrelay;

-- Sets REPLICA IDENTITY on every table the publication covers (partitions
-- included: the old row is logged per partition) and returns each table's mode.
-- FULL unless the table, or a partitioned table it belongs to, is configured as
-- "default" and it has a primary key: without a key, DEFAULT logs no old row.
CREATE OR REPLACE FUNCTION diffrelay.ensure_replica_identity(publication name, default_identity oid[])
RETURNS TABLE (table_name text, identity text)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $fn$
DECLARE
  r record;
  wanted "char";
BEGIN
  FOR r IN
    -- Published tables by OID (pg_get_publication_tables), never by name: a
    -- name-to-regclass cast may be evaluated on every relation of the view
    -- pg_publication_tables, TOAST tables included, which a non-superuser may
    -- not look up ("permission denied for schema pg_toast").
    WITH published AS MATERIALIZED (
      SELECT DISTINCT c.oid, c.relreplident
        FROM pg_get_publication_tables(publication::text) gpt
        -- pg_partition_tree lists nothing for a table outside any partition tree.
        CROSS JOIN LATERAL (SELECT gpt.relid UNION SELECT relid FROM pg_partition_tree(gpt.relid)) tree
        JOIN pg_class c ON c.oid = tree.relid
       WHERE c.relkind IN ('r', 'p')
    )
    SELECT published.oid, published.relreplident,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = published.oid AND i.indisprimary) AS has_pk,
           (published.oid = ANY (default_identity)
            OR EXISTS (SELECT 1 FROM pg_partition_ancestors(published.oid) a WHERE a.relid = ANY (default_identity)))
             AS configured_default
      FROM published
  LOOP
    wanted := CASE WHEN r.configured_default AND r.has_pk THEN 'd' ELSE 'f' END;
    IF r.relreplident IS DISTINCT FROM wanted THEN
      EXECUTE format('ALTER TABLE %s REPLICA IDENTITY %s', r.oid::regclass,
                     CASE wanted WHEN 'd' THEN 'DEFAULT' ELSE 'FULL' END);
    END IF;
    table_name := r.oid::regclass::text;
    identity := CASE wanted WHEN 'd' THEN 'default' ELSE 'full' END;
    RETURN NEXT;
  END LOOP;
END
$fn$;

DO $diffrelay$
DECLARE
  existing pg_publication;
BEGIN
  SELECT * INTO existing FROM pg_catalog.pg_publication WHERE pubname = {{publication_literal}};
  IF NOT FOUND THEN
    CREATE PUBLICATION {{publication_ident}} {{publication_target}} WITH (publish_via_partition_root = false);
  ELSIF existing.puballtables IS DISTINCT FROM {{all_tables}} THEN
    RAISE EXCEPTION 'publication % exists but % all tables; the configuration asks for the opposite',
      existing.pubname, CASE WHEN existing.puballtables THEN 'covers' ELSE 'does not cover' END
      USING ERRCODE = 'object_not_in_prerequisite_state';
  ELSE
    {{publication_alter}}
    IF existing.pubviaroot THEN
      ALTER PUBLICATION {{publication_ident}} SET (publish_via_partition_root = false);
    END IF;
  END IF;
END
$diffrelay$;
