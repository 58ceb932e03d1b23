\set SHOW_CONTEXT never
-- Who may do what, tried by roles that log in, as an attacker would.
--
--   sec_owner   owns and writes a tracked table: an application role
--   sec_reader  member of audit_log_reader: an auditor
--   sec_admin   member of audit_log_admin: the DBA who turns auditing on
--   postgres    superuser
CREATE ROLE sec_owner LOGIN;
CREATE ROLE sec_reader LOGIN IN ROLE audit_log_reader;
CREATE ROLE sec_admin LOGIN IN ROLE audit_log_admin;
CREATE SCHEMA sec AUTHORIZATION sec_owner;
GRANT USAGE ON SCHEMA sec TO sec_admin, sec_reader;
SET ROLE sec_owner;
CREATE TABLE sec.accounts (id int PRIMARY KEY, owner_name text, balance numeric);
RESET ROLE;
-- An admin tracks what it may read (track_rights.sql).
GRANT SELECT ON sec.accounts TO sec_admin;
SELECT audit_log.track('sec.accounts');

-- The application role writes its table; every change is captured.
\c - sec_owner
\set SHOW_CONTEXT never
SET audit_log.actor = 'teller-1';
INSERT INTO sec.accounts VALUES (1, 'Ada', 100), (2, 'Grace', 200);
UPDATE sec.accounts SET balance = 150 WHERE id = 1;
DELETE FROM sec.accounts WHERE id = 2;
-- It cannot read the trail, by any door.
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.events$$) AS read_events;
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.tracked_tables$$) AS read_tracked_tables;
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.tracked$$) AS read_tracked;
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.list()$$) AS list;
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.history('sec.accounts', '{"id": 1}')$$) AS history;
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.changes(1)$$) AS changes;
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.export()$$) AS export;
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.export_csv()$$) AS export_csv;
SELECT sqlstate_of($$SELECT audit_log.matching_entities('accounts')$$) AS helper;
-- It cannot forge, edit or remove events.
SELECT sqlstate_of($$INSERT INTO audit_log.events (occurred_at, tx_id, db_user, entity, action)
                     VALUES (now(), pg_current_xact_id(), 'someone', 'sec.accounts', 'DELETE')$$) AS insert_event;
SELECT sqlstate_of($$UPDATE audit_log.events SET actor = 'nobody'$$) AS update_events;
SELECT sqlstate_of($$DELETE FROM audit_log.events$$) AS delete_events;
SELECT sqlstate_of($$TRUNCATE audit_log.events$$) AS truncate_events;
SELECT sqlstate_of($$SELECT setval('audit_log.events_id_seq', 1)$$) AS reset_sequence;
SELECT sqlstate_of($$SELECT audit_log.record_tracking('DDL', 'sec.accounts', '{}')$$) AS record_by_hand;
-- It cannot turn auditing off or change what is recorded, not even on its own table.
SELECT sqlstate_of($$SELECT audit_log.untrack('sec.accounts')$$) AS untrack_own_table;
SELECT sqlstate_of($$SELECT audit_log.track('sec.accounts', exclude_columns => '{balance}')$$) AS retrack_own_table;
SELECT sqlstate_of($$SELECT audit_log.track_schema('sec')$$) AS track_schema;
SELECT sqlstate_of($$SET audit_log.require_actor = off$$) AS set_require_actor;
SELECT sqlstate_of($$ALTER ROLE sec_owner SET audit_log.require_actor = off$$) AS alter_own_role;

-- The auditor reads everything and changes nothing.
\c - sec_reader
\set SHOW_CONTEXT never
SELECT actor, db_user, action, entity_id FROM audit_log.list(entity => 'sec.accounts') ORDER BY id;
SELECT count(*) AS history_events FROM audit_log.history('sec.accounts', '{"id": 1}');
SELECT entity FROM audit_log.tracked_tables WHERE entity LIKE 'sec.%';
SELECT count(*) AS exported FROM audit_log.export(entity => 'sec.accounts');
SELECT count(*) AS csv_lines FROM audit_log.export_csv(entity => 'sec.accounts');
SELECT sqlstate_of($$SELECT audit_log.track('sec.accounts')$$) AS track;
SELECT sqlstate_of($$SELECT audit_log.untrack('sec.accounts')$$) AS untrack;
SELECT sqlstate_of($$INSERT INTO audit_log.events SELECT * FROM audit_log.events LIMIT 1$$) AS copy_an_event;
SELECT sqlstate_of($$UPDATE audit_log.events SET actor = 'nobody'$$) AS update_events;
SELECT sqlstate_of($$INSERT INTO sec.accounts VALUES (9, 'Eve', 0)$$) AS write_the_table;

-- The admin tracks and untracks any table, and reads.
\c - sec_admin
\set SHOW_CONTEXT never
SELECT audit_log.untrack('sec.accounts');
SELECT audit_log.track('sec.accounts', redact_columns => '{balance}');
SELECT audit_log.track_schema('sec');
SELECT action, new_values FROM audit_log.list(entity => 'sec.accounts', max_rows => 3) ORDER BY id;
SELECT sqlstate_of($$DELETE FROM audit_log.events$$) AS delete_events;
SELECT sqlstate_of($$INSERT INTO audit_log.events SELECT * FROM audit_log.events LIMIT 1$$) AS copy_an_event;

-- The superuser does everything through the API, but cannot edit the trail
-- through SQL either, nor switch its guards off.
\c - postgres
\set SHOW_CONTEXT never
SELECT sqlstate_of($$UPDATE audit_log.events SET actor = 'nobody' WHERE entity = 'sec.accounts'$$) AS update_events;
SELECT sqlstate_of($$DELETE FROM audit_log.events WHERE entity = 'sec.accounts'$$) AS delete_events;
SELECT sqlstate_of($$TRUNCATE audit_log.events$$) AS truncate_events;
SELECT sqlstate_of($$INSERT INTO audit_log.events SELECT * FROM audit_log.events LIMIT 1$$) AS copy_an_event;
SELECT sqlstate_of($$INSERT INTO audit_log.events (occurred_at, tx_id, db_user, entity, action)
                     VALUES (now(), pg_current_xact_id(), 'someone', 'sec.accounts', 'DELETE')$$) AS forge_event;
SELECT sqlstate_of($$ALTER TABLE audit_log.events DISABLE TRIGGER events_append_only$$) AS disable_guard;
SELECT sqlstate_of($$ALTER TABLE audit_log.events DISABLE TRIGGER ALL$$) AS disable_all_guards;
SELECT sqlstate_of($$ALTER TABLE audit_log.events ENABLE TRIGGER events_no_truncate$$) AS guard_to_origin_only;
SELECT sqlstate_of($$DROP TRIGGER events_no_forgery ON audit_log.events$$) AS drop_guard;
SELECT sqlstate_of($$ALTER TRIGGER events_append_only ON audit_log.events RENAME TO events_was_append_only$$) AS rename_guard;
SET session_replication_role = replica;
SELECT sqlstate_of($$DELETE FROM audit_log.events$$) AS delete_as_replica;
RESET session_replication_role;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'audit_log.events'::regclass ORDER BY tgname;
SELECT count(*) AS forged FROM audit_log.events WHERE db_user = 'someone';

-- db_user is the login role, whatever audit_log.actor claims and whatever SET
-- ROLE does: actor is what the application says, db_user what PostgreSQL
-- authenticated.
GRANT sec_owner TO sec_admin;
\c - sec_admin
SET ROLE sec_owner;
SET audit_log.actor = 'postgres';
INSERT INTO sec.accounts VALUES (3, 'Hedy', 300);
\c - postgres
\set SHOW_CONTEXT never
SET ROLE sec_owner;
INSERT INTO sec.accounts VALUES (4, 'Joan', 400);
RESET ROLE;
SELECT entity_id, actor, db_user FROM audit_log.events
 WHERE entity = 'sec.accounts' AND action = 'INSERT' AND entity_id->>'id' IN ('3', '4') ORDER BY id;

-- Strict mode, set for a role by the superuser: a write without an actor
-- fails, names the setting, and does not happen; an empty actor is no actor;
-- set_actor() inside the transaction satisfies it.
ALTER ROLE sec_owner SET audit_log.require_actor = on;
\c - sec_owner
\set SHOW_CONTEXT never
SHOW audit_log.require_actor;
INSERT INTO sec.accounts VALUES (5, 'Katherine', 500);
SET audit_log.actor = '';
UPDATE sec.accounts SET balance = 0;
BEGIN;
SELECT audit_log.set_actor('');
DELETE FROM sec.accounts;
ROLLBACK;
SELECT sqlstate_of($$RESET audit_log.require_actor$$) AS reset_it;
SELECT sqlstate_of($$SET audit_log.require_actor = off$$) AS switch_it_off;
BEGIN;
SELECT audit_log.set_actor('teller-2');
INSERT INTO sec.accounts VALUES (5, 'Katherine', 500);
COMMIT;
SET audit_log.actor = 'teller-3';
UPDATE sec.accounts SET balance = 501 WHERE id = 5;
SELECT id, owner_name, balance FROM sec.accounts ORDER BY id;
\c - postgres
\set SHOW_CONTEXT never
ALTER ROLE sec_owner RESET audit_log.require_actor;
SELECT action, actor, entity_id FROM audit_log.events
 WHERE entity = 'sec.accounts' AND entity_id->>'id' = '5' ORDER BY id;

-- User input reaches filters and exports as values, never as SQL text.
\c - sec_owner
SET audit_log.actor = $$o'hara"; DROP TABLE sec.accounts; --$$;
UPDATE sec.accounts SET balance = 502 WHERE id = 5;
\c - sec_reader
\set SHOW_CONTEXT never
SELECT actor, entity_id FROM audit_log.list(actor => $$o'hara"; DROP TABLE sec.accounts; --$$);
SELECT count(*) AS exported FROM audit_log.export(actor => $$o'hara"; DROP TABLE sec.accounts; --$$);
SELECT count(*) FROM audit_log.list(actor => $$' OR '1'='1$$);
SELECT count(*) FROM audit_log.list(entity => $$accounts'; DROP TABLE sec.accounts; --$$);
SELECT count(*) FROM audit_log.list(entity => $$sec.accounts' OR entity <> '$$);
SELECT count(*) FROM audit_log.list(entity => $$"sec"."accounts"$$);
SELECT count(*) FROM audit_log.list(entity => $$".";"$$);
SELECT count(*) FROM audit_log.list(entity => '"');
SELECT count(*) FROM audit_log.list(entity => E'sec.accounts\n; SELECT 1');
SELECT count(*) FROM audit_log.export(entity => $$accounts') UNION SELECT * FROM audit_log.events --$$);
SELECT count(*) FROM audit_log.export_csv(actor => $$x'); SELECT pg_sleep(10); --$$);
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.list(action => 'UPDATE''; DROP TABLE sec.accounts; --')$$) AS hostile_action;
SELECT sqlstate_of($$SELECT count(*) FROM audit_log.history($h$accounts' OR true --$h$, '{"id": 5}')$$) AS hostile_history;
SELECT count(*) AS accounts_still_there FROM pg_class WHERE oid = 'sec.accounts'::regclass;
\c - postgres
