-- The end of the demo (scripts/demo.sh): a superuser rewrites a sealed event,
-- and verify() names it. Runs after demo/training.sql and the auditor's check.
\set ON_ERROR_STOP on
SELECT id AS price_change FROM audit_log.list(entity => 'trainings', action => 'update', max_rows => 1) \gset
SELECT audit_log.checkpoint() AS checkpoint \gset

\echo '== 15. A superuser disables every guard and rewrites one sealed event'
BEGIN;
DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'audit\_log\_%' LOOP
        EXECUTE format('ALTER EVENT TRIGGER %I DISABLE', t);
    END LOOP;
END $$;
ALTER TABLE audit_log.events DISABLE TRIGGER ALL;
UPDATE audit_log.events SET new_values = jsonb_set(new_values, '{price}', '100')
 WHERE id = :price_change;
COMMIT;

\echo '== 16. verify() names the tampered event'
SELECT * FROM audit_log.verify(:'checkpoint');
