-- Nobody silences capture quietly. A capture trigger disabled, set to fire
-- only for replication, renamed or dropped by hand (ALTER TABLE ... DISABLE
-- TRIGGER, ALTER TRIGGER ... RENAME, DROP TRIGGER) is recorded as a DDL event
-- of the tracked table, with who did it, in the same transaction; disabling,
-- renaming or dropping the triggers that keep audit_log.events append-only is
-- refused. track() and untrack() change capture triggers too, but record
-- TRACK and UNTRACK instead: they take the table out of audit_log.tracked
-- before they drop its triggers.
--
-- Two event triggers bracket the commands that can do it (src/guard.rs): the
-- first notes watched_trigger_states(), the second hands the noted states to
-- record_trigger_changes(). Those two are called straight through fmgr: they
-- are SECURITY DEFINER (the caller may own the table but has no right on the
-- trail) and executable by nobody else.

-- Every capture trigger and every guard of the log, by trigger OID.
CREATE FUNCTION audit_log.watched_trigger_states()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(t.oid::text,
                                     jsonb_build_object('table', t.tgrelid::oid,
                                                        'name', t.tgname,
                                                        'enabled', t.tgenabled)),
                    '{}')
      FROM pg_trigger t
     WHERE t.tgfoid IN ('audit_log.capture_row()'::regprocedure,
                        'audit_log.capture_truncate()'::regprocedure)
        OR t.tgrelid = 'audit_log.events'::regclass
$$;

-- Compares the triggers with what watched_trigger_states() saw before the
-- statement and records, per tracked table, what happened to its capture.
CREATE FUNCTION audit_log.record_trigger_changes(before jsonb, command_tag text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changes jsonb;
    silenced record;
BEGIN
    SELECT jsonb_agg(jsonb_build_object(
               'relid', (w.value ->> 'table')::oid,
               'trigger', w.value ->> 'name',
               'change', CASE
                   WHEN t.oid IS NULL THEN 'dropped'
                   WHEN t.tgname <> w.value ->> 'name' THEN 'renamed'
                   WHEN t.tgenabled = 'D' THEN 'disabled'
                   WHEN t.tgenabled = 'R' THEN 'fires only under session_replication_role = replica'
                   WHEN t.tgenabled = 'A' THEN 'fires always, also under session_replication_role = replica'
                   ELSE 'enabled'
               END,
               'new_name', CASE WHEN t.tgname <> w.value ->> 'name' THEN t.tgname END))
      INTO changes
      FROM jsonb_each(before) AS w
      LEFT JOIN pg_trigger t ON t.oid = w.key::oid
     WHERE t.oid IS NULL
        OR t.tgname <> w.value ->> 'name'
        OR t.tgenabled::text <> w.value ->> 'enabled';
    IF changes IS NULL THEN
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM jsonb_array_elements(changes) AS c
                WHERE (c ->> 'relid')::oid = 'audit_log.events'::regclass) THEN
        RAISE EXCEPTION 'the triggers that keep audit_log.events append-only cannot be disabled, renamed or dropped'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    -- A table that no longer exists, or is no longer tracked (untrack()), is
    -- not silenced: its drop or its UNTRACK event says what happened.
    FOR silenced IN
        SELECT tracked.relid AS target,
               jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                   'trigger', c.trigger,
                   'table', c.relid::regclass::text,
                   'change', c.change,
                   'new_name', c.new_name))
                   ORDER BY c.relid::regclass::text, c.trigger) AS triggers
          FROM jsonb_to_recordset(changes) AS c(relid oid, trigger text, change text, new_name text)
          JOIN pg_class k ON k.oid = c.relid
         CROSS JOIN LATERAL (
               -- pg_partition_ancestors() knows only partitions and their parents.
               SELECT t.relid
                 FROM (SELECT c.relid::regclass AS relid
                       UNION SELECT a.relid FROM pg_partition_ancestors(c.relid) AS a) AS candidate
                 JOIN audit_log.tracked t ON t.relid = candidate.relid
                LIMIT 1) AS tracked
         GROUP BY tracked.relid
    LOOP
        PERFORM audit_log.record_tracking('DDL', silenced.target,
            jsonb_build_object('command_tag', command_tag,
                               'object', silenced.target::regclass::text,
                               'capture_triggers', silenced.triggers));
    END LOOP;
END
$$;

CREATE FUNCTION audit_log.note_trigger_states()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_note_trigger_states';
CREATE FUNCTION audit_log.record_trigger_changes()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_record_trigger_changes';

CREATE EVENT TRIGGER audit_log_note_trigger_states ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER TRIGGER', 'DROP TRIGGER')
    EXECUTE FUNCTION audit_log.note_trigger_states();
CREATE EVENT TRIGGER audit_log_record_trigger_changes ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'ALTER TRIGGER', 'DROP TRIGGER')
    EXECUTE FUNCTION audit_log.record_trigger_changes();
