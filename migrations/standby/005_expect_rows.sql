-- Lets the standby itself refuse a statement that changed another number of
-- rows than the source did: the applier sends a group's statements, its
-- position and its COMMIT in one round trip, each row statement wrapped as
--   WITH applied AS (<statement> RETURNING 1) SELECT diffrelay.expect_rows(count(*), <n>) FROM applied
-- so that a missing or extra row aborts the transaction before its COMMIT
-- instead of being seen by the applier only after it. The applier then rolls
-- back and applies the group again one exchange at a time, where a drift is
-- reported (or logged) exactly as before.
CREATE OR REPLACE FUNCTION diffrelay.expect_rows(affected bigint, expected bigint)
RETURNS void
LANGUAGE plpgsql
AS $body$
BEGIN
  IF affected IS DISTINCT FROM expected THEN
    RAISE EXCEPTION 'diffrelay: a replicated statement affected % rows where the source changed %', affected, expected
      USING HINT = 'the applier rolls this group back and applies it again statement by statement, where it names the change';
  END IF;
END
$body$;
