\set SHOW_CONTEXT never
-- Switching capture off by hand is recorded. Disabling a capture trigger,
-- making it fire only for replication, renaming or dropping it succeeds (a
-- DBA may have a reason), but leaves a DDL event in the trail, in the same
-- transaction, with who did it. untrack() is the way to stop auditing, and it
-- records UNTRACK.
CREATE ROLE quiet_owner LOGIN;
CREATE SCHEMA quiet AUTHORIZATION quiet_owner;
SET ROLE quiet_owner;
CREATE TABLE quiet.ledger (id int PRIMARY KEY, amount numeric);
CREATE TABLE quiet.parts (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE quiet.parts_eu PARTITION OF quiet.parts FOR VALUES IN ('eu');
CREATE TABLE quiet.parts_us PARTITION OF quiet.parts FOR VALUES IN ('us');
RESET ROLE;
SELECT audit_log.track('quiet.ledger');
SELECT audit_log.track('quiet.parts');

CREATE TABLE public.quiet_seen AS SELECT max(id) AS seen FROM audit_log.events;
-- What each DDL event says, with trigger names (which carry an OID) masked.
CREATE FUNCTION public.silencing_events() RETURNS TABLE (
    actor text, db_user text, entity text, command_tag text, object text, changed_triggers text)
LANGUAGE sql AS $$
    SELECT e.actor, e.db_user, e.entity, e.new_values ->> 'command_tag', e.new_values ->> 'object',
           (SELECT string_agg(regexp_replace(t ->> 'trigger', '[0-9]+', 'N') || ' on ' || (t ->> 'table')
                              || ': ' || (t ->> 'change')
                              || coalesce(' to ' || regexp_replace(t ->> 'new_name', '[0-9]+', 'N'), ''),
                              '; ' ORDER BY t ->> 'table', t ->> 'trigger')
              FROM jsonb_array_elements(e.new_values -> 'capture_triggers') AS t)
      FROM audit_log.events e
     WHERE e.action = 'DDL' AND e.entity LIKE 'quiet.%'
       AND e.id > (SELECT seen FROM public.quiet_seen)
     ORDER BY e.id
$$;
CREATE FUNCTION public.mark_seen() RETURNS void LANGUAGE sql AS $$
    UPDATE public.quiet_seen SET seen = (SELECT max(id) FROM audit_log.events)
$$;

-- The table's owner disables every trigger for a bulk load, then enables them.
\c - quiet_owner
SET audit_log.actor = 'night-batch';
ALTER TABLE quiet.ledger DISABLE TRIGGER ALL;
INSERT INTO quiet.ledger VALUES (1, 10);
ALTER TABLE quiet.ledger ENABLE TRIGGER ALL;
INSERT INTO quiet.ledger VALUES (2, 20);
\c - postgres
SELECT * FROM public.silencing_events();
SELECT action, entity_id FROM audit_log.events
 WHERE entity = 'quiet.ledger' AND action IN ('INSERT', 'DDL') ORDER BY id;
SELECT public.mark_seen();

-- One named trigger, then the replica-only trick (capture triggers are
-- ordinary triggers: ENABLE REPLICA would silence them for normal sessions).
-- (Trigger names carry the table's OID: public.on_capture_trigger() fills it in.)
CREATE FUNCTION public.on_capture_trigger(command text, kind text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(command, (SELECT tgname FROM pg_trigger
                              WHERE tgrelid = 'quiet.ledger'::regclass
                                AND tgname LIKE 'audit_log_' || kind || '_%'));
END
$$;
SELECT public.on_capture_trigger('ALTER TABLE quiet.ledger DISABLE TRIGGER %I', 'row');
SELECT public.on_capture_trigger('ALTER TABLE quiet.ledger ENABLE REPLICA TRIGGER %I', 'row');
SELECT public.on_capture_trigger('ALTER TABLE quiet.ledger ENABLE ALWAYS TRIGGER %I', 'row');
-- Back to plain enabled; enabling what is already enabled changes no trigger
-- (the ALTER TABLE is still recorded, as any ALTER TABLE of a tracked table).
ALTER TABLE quiet.ledger ENABLE TRIGGER USER;
ALTER TABLE quiet.ledger ENABLE TRIGGER USER;
SELECT * FROM public.silencing_events();
SELECT public.mark_seen();

-- Renamed, then dropped: the trail says so. Writes after the drop are not
-- captured, and the trail shows why; track() again repairs the triggers.
SELECT public.on_capture_trigger('ALTER TRIGGER %I ON quiet.ledger RENAME TO sneaky_name', 'truncate');
DROP TRIGGER sneaky_name ON quiet.ledger;
SELECT public.on_capture_trigger('DROP TRIGGER %I ON quiet.ledger', 'row');
INSERT INTO quiet.ledger VALUES (3, 30);
SELECT * FROM public.silencing_events();
SELECT audit_log.track('quiet.ledger');
INSERT INTO quiet.ledger VALUES (4, 40);
SELECT action, entity_id FROM audit_log.events
 WHERE entity = 'quiet.ledger' AND id > (SELECT seen FROM public.quiet_seen) ORDER BY id;
SELECT public.mark_seen();

-- A partition silenced on its own is recorded against the tracked parent.
ALTER TABLE quiet.parts_eu DISABLE TRIGGER ALL;
ALTER TABLE quiet.parts_eu ENABLE TRIGGER ALL;
-- ... and so is the parent, with all its partitions.
ALTER TABLE quiet.parts DISABLE TRIGGER USER;
ALTER TABLE quiet.parts ENABLE TRIGGER USER;
SELECT * FROM public.silencing_events();
SELECT public.mark_seen();

-- Rolled back, the change and its event both vanish.
BEGIN;
ALTER TABLE quiet.ledger DISABLE TRIGGER ALL;
ROLLBACK;
SELECT count(*) AS events_after_rollback FROM public.silencing_events();

-- track() and untrack() change triggers too, but record TRACK and UNTRACK,
-- not DDL.
SELECT audit_log.track('quiet.ledger', exclude_columns => '{amount}');
SELECT audit_log.untrack('quiet.ledger');
SELECT audit_log.untrack('quiet.parts');
SELECT count(*) AS ddl_events FROM public.silencing_events();
SELECT action FROM audit_log.events
 WHERE entity LIKE 'quiet.%' AND id > (SELECT seen FROM public.quiet_seen) ORDER BY id;

-- Other ALTER TABLEs and trigger DDL on untracked tables record nothing.
ALTER TABLE quiet.ledger ADD COLUMN note text;
CREATE FUNCTION quiet.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER noop AFTER INSERT ON quiet.ledger FOR EACH ROW EXECUTE FUNCTION quiet.noop();
ALTER TABLE quiet.ledger DISABLE TRIGGER ALL;
DROP TRIGGER noop ON quiet.ledger;
SELECT count(*) AS ddl_events FROM public.silencing_events();

DROP SCHEMA quiet CASCADE;
DROP FUNCTION public.silencing_events(), public.mark_seen(), public.on_capture_trigger(text, text);
DROP TABLE public.quiet_seen;
DROP ROLE quiet_owner;
