\set SHOW_CONTEXT never
-- The log is written with the extension's rights, not the writer's: a role that
-- may write a tracked table needs no privilege on audit_log.events, and has none.
CREATE SCHEMA app;
CREATE TABLE app.orders (id int PRIMARY KEY, total numeric);
SELECT audit_log.track('app.orders');
CREATE ROLE app_writer;
GRANT USAGE ON SCHEMA app TO app_writer;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON app.orders TO app_writer;

SELECT has_table_privilege('app_writer', 'audit_log.events', 'SELECT') AS can_read_log,
       has_table_privilege('app_writer', 'audit_log.events', 'INSERT') AS can_insert_log;

SET ROLE app_writer;
SET audit_log.actor = 'web-user-17';
INSERT INTO app.orders VALUES (1, 10), (2, 20);
UPDATE app.orders SET total = 15 WHERE id = 1;
DELETE FROM app.orders WHERE id = 2;
TRUNCATE app.orders;
-- ... but cannot read or write the log itself.
SELECT count(*) FROM audit_log.events;
INSERT INTO audit_log.events (occurred_at, tx_id, db_user, entity, action)
VALUES (now(), pg_current_xact_id(), 'forger', 'app.orders', 'DELETE');
SELECT audit_log.track('app.orders');
RESET ROLE;

SELECT actor, db_user, entity, entity_id, action, old_values, new_values
  FROM audit_log.events WHERE entity = 'app.orders' ORDER BY id;
SELECT count(*) AS forged FROM audit_log.events WHERE db_user = 'forger';

-- The same as a role that connects (not only SET ROLE).
ALTER ROLE app_writer LOGIN;
\c - app_writer
SET audit_log.actor = 'web-user-18';
INSERT INTO app.orders VALUES (3, 30);
SELECT count(*) FROM audit_log.events;
\c - postgres
SELECT actor, db_user, entity_id, action FROM audit_log.events WHERE entity = 'app.orders' ORDER BY id DESC LIMIT 1;

-- Only set_actor() and the capture trigger functions are open to everyone.
SELECT p.oid::regprocedure AS function_executable_by_public
  FROM pg_proc p
 WHERE p.pronamespace = 'audit_log'::regnamespace
   AND has_function_privilege('app_writer', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

-- A trigger cannot be created by hand with a capture function: only track()
-- creates them (capture_triggers.sql has the whole story).
CREATE TABLE app.sneaky (id int PRIMARY KEY);
CREATE TRIGGER sneaky_capture AFTER INSERT ON app.sneaky FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row();
-- One made anyway (by a superuser with the guard off, or before it existed)
-- records nothing on a table that is not tracked ...
ALTER EVENT TRIGGER audit_log_guard_capture_triggers DISABLE;
CREATE TRIGGER sneaky_capture AFTER INSERT ON app.sneaky FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row();
INSERT INTO app.sneaky VALUES (1);
SELECT count(*) AS events_for_sneaky FROM audit_log.events WHERE entity = 'app.sneaky';
-- ... and the capture functions refuse to run in any other way than track() sets them up.
CREATE TRIGGER sneaky_before BEFORE INSERT ON app.sneaky FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row();
ALTER EVENT TRIGGER audit_log_guard_capture_triggers ENABLE;
INSERT INTO app.sneaky VALUES (2);
SELECT audit_log.capture_row();

-- Members of audit_log_admin track and untrack any table; members of
-- audit_log_reader read the trail but track nothing.
CREATE ROLE app_admin IN ROLE audit_log_admin;
CREATE ROLE app_auditor IN ROLE audit_log_reader;
CREATE TABLE app.invoices (id int PRIMARY KEY, amount numeric);
-- Naming a table (regclass) needs USAGE on its schema; nothing more is needed.
GRANT USAGE ON SCHEMA app TO app_admin, app_auditor;
-- Tracking needs the right to read the table (track_rights.sql).
GRANT SELECT ON app.invoices TO app_admin;
SET ROLE app_admin;
SELECT audit_log.track('app.invoices');
SELECT entity FROM audit_log.tracked_tables WHERE entity = 'app.invoices';
SELECT audit_log.untrack('app.invoices');
RESET ROLE;
SET ROLE app_auditor;
SELECT action, count(*) FROM audit_log.events WHERE entity = 'app.invoices' GROUP BY action ORDER BY action;
SELECT audit_log.track('app.invoices');
INSERT INTO audit_log.events (occurred_at, tx_id, db_user, entity, action)
VALUES (now(), pg_current_xact_id(), 'forger', 'app.invoices', 'DELETE');
RESET ROLE;

DROP OWNED BY app_writer, app_admin, app_auditor;
DROP ROLE app_writer, app_admin, app_auditor;
