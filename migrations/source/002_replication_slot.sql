-- diffrelay:ensure
-- Re-run at every capture start, like 001: it creates the slot if it is missing.
--
-- The slot comes after the publication has committed: pgoutput looks the
-- publication up with the snapshot of the WAL it decodes, so a slot older than
-- its publication fails with "publication does not exist". Slot creation must
-- also be the first thing its transaction does.
DO $diffrelay$
DECLARE
  existing record;
BEGIN
  SELECT plugin, database, slot_type INTO existing
    FROM pg_catalog.pg_replication_slots WHERE slot_name = {{slot_literal}};
  IF NOT FOUND THEN
    PERFORM pg_catalog.pg_create_logical_replication_slot({{slot_literal}}, 'pgoutput');
  ELSIF existing.slot_type <> 'logical' OR existing.plugin <> 'pgoutput'
        OR existing.database <> pg_catalog.current_database() THEN
    RAISE EXCEPTION 'replication slot % exists but is not a pgoutput logical slot of database %',
      {{slot_literal}}, pg_catalog.current_database()
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
END
$diffrelay$;
