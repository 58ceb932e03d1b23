\set SHOW_CONTEXT never
-- Capture triggers are the extension's. A table's owner may create and
-- replace triggers on the table, but not capture ones: a capture trigger
-- replaced in place (same OID, name and state, so no DDL event would show
-- it), a second one (every row recorded twice), one made to depend on an
-- extension (whose DROP would remove it without a trace) are all refused.
-- A capture function fired by any other trigger refuses to run, and
-- track() repairs a table tampered with before these guards existed.
-- (Renaming, disabling or dropping a capture trigger is recorded instead:
-- silencing.sql.)
CREATE ROLE trig_owner LOGIN;
CREATE SCHEMA trig AUTHORIZATION trig_owner;
CREATE EXTENSION seg;
SET ROLE trig_owner;
CREATE TABLE trig.learners (id int PRIMARY KEY, name text);
CREATE TABLE trig.sessions (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE trig.sessions_eu PARTITION OF trig.sessions FOR VALUES IN ('eu');
CREATE TABLE trig.notes (id int PRIMARY KEY);
CREATE FUNCTION trig.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
RESET ROLE;
SELECT audit_log.track('trig.learners');
SELECT audit_log.track('trig.sessions');

-- Runs a command; says ok, or its SQLSTATE and message (OIDs masked).
CREATE FUNCTION public.attempt(command text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE command;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9]+', 'N', 'g');
END
$$;
-- The capture triggers of a table, OIDs masked, with what they call and
-- when; whether each is named after the tracked table; extensions they
-- depend on.
CREATE FUNCTION public.capture_triggers(target regclass, root regclass)
RETURNS TABLE (name text, canonical boolean, definition text, depends_on text)
LANGUAGE sql AS $$
    SELECT regexp_replace(t.tgname, '[0-9]+', 'N'),
           t.tgname IN ('audit_log_row_' || root::oid, 'audit_log_truncate_' || root::oid),
           regexp_replace(pg_get_triggerdef(t.oid), '.* (AFTER|BEFORE) ', '\1 '),
           (SELECT string_agg(e.extname, ', ') FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
             WHERE d.classid = 'pg_trigger'::regclass AND d.objid = t.oid AND d.deptype = 'x')
      FROM pg_trigger t
     WHERE t.tgrelid = target
       AND (t.tgfoid IN ('audit_log.capture_row()'::regprocedure, 'audit_log.capture_truncate()'::regprocedure)
            OR t.tgname LIKE 'audit\_log\_%')
     ORDER BY t.tgname
$$;
-- Fills in a capture trigger's name, which carries the tracked table's OID.
CREATE FUNCTION public.on_capture(command text, target regclass, kind text DEFAULT 'row')
RETURNS text LANGUAGE sql AS $$
    SELECT public.attempt(format(command, 'audit_log_' || kind || '_' || target::oid))
$$;

-- (a) Replaced in place, to fire never, or to call something else: refused.
SET ROLE trig_owner;
SELECT public.on_capture('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON trig.learners
    FOR EACH ROW WHEN (false) EXECUTE FUNCTION audit_log.capture_row()', 'trig.learners');
SELECT public.on_capture('CREATE OR REPLACE TRIGGER %I AFTER INSERT ON trig.learners
    FOR EACH ROW EXECUTE FUNCTION trig.noop()', 'trig.learners');
SELECT public.on_capture('CREATE OR REPLACE TRIGGER %I AFTER TRUNCATE ON trig.sessions_eu
    FOR EACH STATEMENT EXECUTE FUNCTION trig.noop()', 'trig.sessions', 'truncate');
-- An ordinary trigger replaced by one calling a capture function: refused too.
CREATE TRIGGER mine AFTER INSERT ON trig.learners FOR EACH ROW EXECUTE FUNCTION trig.noop();
SELECT public.attempt('CREATE OR REPLACE TRIGGER mine AFTER INSERT OR UPDATE OR DELETE ON trig.learners
    FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row()');
DROP TRIGGER mine ON trig.learners;

-- (b) A second capture trigger, on the table or on a partition (which has
-- its parent's clone), or one on a table that is not tracked: refused.
SELECT public.attempt('CREATE TRIGGER twice AFTER INSERT OR UPDATE OR DELETE ON trig.learners
    FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row()');
SELECT public.attempt('CREATE TRIGGER twice AFTER INSERT OR UPDATE OR DELETE ON trig.sessions_eu
    FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row()');
SELECT public.attempt('CREATE TRIGGER twice AFTER TRUNCATE ON trig.sessions_eu
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.capture_truncate()');
SELECT public.attempt('CREATE TRIGGER inserts_only AFTER INSERT ON trig.learners
    FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row()');
SELECT public.attempt('CREATE TRIGGER some_rows AFTER INSERT OR UPDATE OR DELETE ON trig.learners
    FOR EACH ROW WHEN (NEW.id > 100) EXECUTE FUNCTION audit_log.capture_row()');
SELECT public.attempt('CREATE CONSTRAINT TRIGGER later AFTER INSERT OR UPDATE OR DELETE ON trig.learners
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row()');
SELECT public.attempt('CREATE TRIGGER own_capture AFTER INSERT OR UPDATE OR DELETE ON trig.notes
    FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row()');

-- (c) Made to depend on an extension any owner may create: refused (NO
-- DEPENDS, which removes such a dependency, is harmless).
SELECT public.on_capture('ALTER TRIGGER %I ON trig.learners DEPENDS ON EXTENSION seg', 'trig.learners');
SELECT public.on_capture('ALTER TRIGGER %I ON trig.sessions_eu DEPENDS ON EXTENSION seg', 'trig.sessions', 'truncate');
SELECT public.on_capture('ALTER TRIGGER %I ON trig.learners NO DEPENDS ON EXTENSION seg', 'trig.learners');

-- Nothing changed: capture goes on, once per row.
SET audit_log.actor = 'owner';
INSERT INTO trig.learners VALUES (1, 'Ada');
INSERT INTO trig.sessions VALUES (1, 'eu');
RESET ROLE;
SELECT action, entity, entity_id FROM audit_log.events WHERE actor = 'owner' ORDER BY id;
SELECT * FROM public.capture_triggers('trig.learners', 'trig.learners');
SELECT * FROM public.capture_triggers('trig.sessions_eu', 'trig.sessions');

-- Triggers tampered with before these guards existed (simulated by a
-- superuser with the guard off): a second capture trigger makes every write
-- fail rather than record it twice, ...
ALTER EVENT TRIGGER audit_log_guard_capture_triggers DISABLE;
CREATE TRIGGER twice AFTER INSERT OR UPDATE OR DELETE ON trig.learners
    FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row();
CREATE TRIGGER twice_too AFTER TRUNCATE ON trig.sessions_eu
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.capture_truncate();
-- ... a capture trigger replaced by one that never fires, and another made
-- to depend on an extension, ...
SELECT public.on_capture('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON trig.sessions
    FOR EACH ROW WHEN (false) EXECUTE FUNCTION audit_log.capture_row()', 'trig.sessions');
SELECT public.on_capture('ALTER TRIGGER %I ON trig.learners DEPENDS ON EXTENSION seg', 'trig.learners', 'truncate');
ALTER EVENT TRIGGER audit_log_guard_capture_triggers ENABLE;
SET ROLE trig_owner;
SET audit_log.actor = 'owner';
SELECT public.attempt('INSERT INTO trig.learners VALUES (2, ''Alan'')');
SELECT public.attempt('TRUNCATE trig.sessions_eu');
RESET ROLE;
SELECT * FROM public.capture_triggers('trig.learners', 'trig.learners');
SELECT * FROM public.capture_triggers('trig.sessions', 'trig.sessions');
-- ... and track() again puts back exactly what it creates.
SELECT audit_log.track('trig.learners');
SELECT audit_log.track('trig.sessions');
SELECT * FROM public.capture_triggers('trig.learners', 'trig.learners');
SELECT * FROM public.capture_triggers('trig.sessions', 'trig.sessions');
SELECT * FROM public.capture_triggers('trig.sessions_eu', 'trig.sessions');
DROP EXTENSION seg;
SET ROLE trig_owner;
SET audit_log.actor = 'owner';
INSERT INTO trig.learners VALUES (2, 'Alan');
INSERT INTO trig.sessions VALUES (2, 'eu');
TRUNCATE trig.sessions_eu;
RESET ROLE;
SELECT action, entity, entity_id FROM audit_log.events WHERE actor = 'owner' ORDER BY id;

-- A capture trigger replaced by a trigger calling another function under
-- its name: track() repairs that too.
ALTER EVENT TRIGGER audit_log_guard_capture_triggers DISABLE;
SELECT public.on_capture('CREATE OR REPLACE TRIGGER %I AFTER INSERT ON trig.learners
    FOR EACH ROW EXECUTE FUNCTION trig.noop()', 'trig.learners');
ALTER EVENT TRIGGER audit_log_guard_capture_triggers ENABLE;
SELECT audit_log.track('trig.learners');
SELECT * FROM public.capture_triggers('trig.learners', 'trig.learners');

-- A renamed capture trigger (recorded) keeps capturing. Dropped (recorded),
-- it may be created again as track() creates it, as a restore does: it is
-- given its canonical name, whatever OID the name it came with carries.
SET audit_log.actor = 'after-rename';
SELECT public.on_capture('ALTER TRIGGER %I ON trig.learners RENAME TO renamed_capture', 'trig.learners');
INSERT INTO trig.learners VALUES (3, 'Grace');
DROP TRIGGER renamed_capture ON trig.learners;
CREATE TRIGGER audit_log_row_1 AFTER INSERT OR UPDATE OR DELETE ON trig.learners
    FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row();
INSERT INTO trig.learners VALUES (4, 'Edsger');
SELECT action, entity_id, new_values ->> 'command_tag' AS command_tag
  FROM audit_log.events WHERE actor = 'after-rename' ORDER BY id;
SELECT * FROM public.capture_triggers('trig.learners', 'trig.learners');

DROP SCHEMA trig CASCADE;
DROP FUNCTION public.attempt(text), public.capture_triggers(regclass, regclass),
              public.on_capture(text, regclass, text);
DROP ROLE trig_owner;
