\set SHOW_CONTEXT never
-- Capture and tracking run with the extension's rights, so nothing of the
-- caller's may stand in for what they use: not a function, an operator or a
-- table planted in the caller's search_path, not a crafted object name.
CREATE ROLE mallory LOGIN;
CREATE ROLE trap_admin LOGIN IN ROLE audit_log_admin;
CREATE SCHEMA trap AUTHORIZATION mallory;
GRANT USAGE ON SCHEMA trap TO trap_admin;
SET ROLE mallory;
CREATE TABLE trap.loans (id int PRIMARY KEY, who text, amount numeric, due date);
-- Every trap writes here when it runs: it must stay empty.
CREATE TABLE trap.sprung (what text, by_whom text);
GRANT INSERT ON trap.sprung TO PUBLIC;
CREATE FUNCTION trap.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO trap.sprung VALUES ('to_jsonb', current_user) RETURNING '"forged"'::jsonb $$;
CREATE FUNCTION trap.jsonb_build_object(VARIADIC text[]) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO trap.sprung VALUES ('jsonb_build_object', current_user) RETURNING '{}'::jsonb $$;
CREATE FUNCTION trap.always_equal(a text, b text) RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO trap.sprung VALUES ('= on text', current_user) RETURNING true $$;
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.always_equal);
CREATE FUNCTION trap.oid_equal(a oid, b oid) RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO trap.sprung VALUES ('= on oid', current_user) RETURNING true $$;
CREATE OPERATOR trap.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = trap.oid_equal);
CREATE FUNCTION trap.regclass_equal(a regclass, b regclass) RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO trap.sprung VALUES ('= on regclass', current_user) RETURNING true $$;
CREATE OPERATOR trap.= (LEFTARG = regclass, RIGHTARG = regclass, FUNCTION = trap.regclass_equal);
CREATE FUNCTION trap.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql AS $$
    INSERT INTO trap.sprung VALUES ('format', current_user) RETURNING 'SELECT 1' $$;
CREATE FUNCTION trap.upper(text) RETURNS text LANGUAGE sql AS $$
    INSERT INTO trap.sprung VALUES ('upper', current_user) RETURNING 'INSERT' $$;
-- Tables named like the extension's own, in the trap schema and as temporary tables.
CREATE TABLE trap.events (id bigint, actor text, entity text, action text);
CREATE TABLE trap.tracked (relid regclass, exclude_columns text[], redact_columns text[]);
CREATE TABLE trap.pg_trigger (oid oid);
RESET ROLE;
-- The admin may read what it tracks (track_rights.sql).
GRANT SELECT ON trap.loans TO trap_admin;
SELECT audit_log.track('trap.loans', redact_columns => '{amount}');

-- The writer puts its schema before pg_catalog and temporary look-alikes first.
\c - mallory
\set SHOW_CONTEXT never
SET search_path = trap, pg_catalog;
CREATE TEMP TABLE events (id bigint, actor text, entity text, action text);
CREATE TEMP TABLE tracked (relid regclass, exclude_columns text[], redact_columns text[]);
SET audit_log.actor = 'mallory';
INSERT INTO trap.loans VALUES (1, 'Bob', 1000, '2027-01-31');
UPDATE trap.loans SET who = 'Robert', amount = 900 WHERE id = 1;
DELETE FROM trap.loans;
TRUNCATE trap.loans;
ALTER TABLE trap.loans DISABLE TRIGGER ALL;
ALTER TABLE trap.loans ENABLE TRIGGER ALL;
SELECT count(*) AS landed_in_look_alikes FROM (
    SELECT 1 FROM pg_temp.events UNION ALL SELECT 1 FROM trap.events
    UNION ALL SELECT 1 FROM pg_temp.tracked UNION ALL SELECT 1 FROM trap.tracked) AS x;

-- The admin (and the superuser) call the API with the same search_path.
\c - trap_admin
\set SHOW_CONTEXT never
SET search_path = trap, pg_catalog;
SELECT audit_log.track('trap.loans', exclude_columns => '{due}', redact_columns => '{amount}');
SELECT audit_log.track_schema('trap', exclude_tables => '{sprung,events,tracked,pg_trigger}');
SELECT count(*) AS listed FROM audit_log.list(entity => 'trap.loans', action => 'update');
SELECT count(*) AS history FROM audit_log.history('trap.loans', '{"id": 1}');
SELECT count(*) AS exported FROM audit_log.export(entity => 'loans');
SELECT count(*) AS csv_lines FROM audit_log.export_csv(entity => 'loans');
SELECT audit_log.untrack('trap.loans');
\c - postgres
\set SHOW_CONTEXT never
SELECT max(id) AS loan_update FROM audit_log.events WHERE entity = 'trap.loans' AND action = 'UPDATE' \gset
SET search_path = trap, pg_catalog;
SELECT audit_log.track('trap.loans', redact_columns => '{amount}');
SELECT count(*) AS listed FROM audit_log.list(entity => 'loans');
SELECT field, old_value, new_value FROM audit_log.changes(:loan_update);
RESET search_path;

-- No trap ran, and the trail holds the real values.
SELECT * FROM trap.sprung;
SELECT action, actor, entity_id, old_values, new_values - 'capture_triggers' AS new_values,
       changed_fields, jsonb_path_query_array(new_values, '$.capture_triggers[*].change') AS trigger_changes
  FROM audit_log.events WHERE entity = 'trap.loans' ORDER BY id;

-- Names crafted to break out of the SQL that track() builds: quotes,
-- semicolons, newlines, backslashes, in schema, table and column names.
CREATE SCHEMA "we'ird; schema";
CREATE TABLE "we'ird; schema"."Tab"" le; DROP TABLE trap.loans; --" (
    "id'); DROP TABLE trap.loans; --" int PRIMARY KEY,
    "multi
line" text,
    "back\slash" text,
    "semi;colon" text);
SELECT audit_log.track($$"we'ird; schema"."Tab"" le; DROP TABLE trap.loans; --"$$,
                       exclude_columns => ARRAY[E'multi\nline'],
                       redact_columns => ARRAY['semi;colon']);
SELECT entity FROM audit_log.tracked_tables WHERE entity LIKE '%weird%' OR entity LIKE '%we''ird%';
INSERT INTO "we'ird; schema"."Tab"" le; DROP TABLE trap.loans; --" VALUES (1, 'a', 'b', 'c');
UPDATE "we'ird; schema"."Tab"" le; DROP TABLE trap.loans; --" SET "back\slash" = 'd', "semi;colon" = 'e';
SELECT entity, action, entity_id, new_values, changed_fields
  FROM audit_log.list(entity => $$"we'ird; schema"."Tab"" le; DROP TABLE trap.loans; --"$$) ORDER BY id;
SELECT count(*) AS by_bare_name FROM audit_log.list(entity => $$"Tab"" le; DROP TABLE trap.loans; --"$$);
SELECT count(*) AS history FROM audit_log.history($$"Tab"" le; DROP TABLE trap.loans; --"$$,
                                                   $${"id'); DROP TABLE trap.loans; --": 1}$$);
SELECT audit_log.track_schema($$we'ird; schema$$);
SELECT audit_log.untrack($$"we'ird; schema"."Tab"" le; DROP TABLE trap.loans; --"$$);
SELECT count(*) AS loans_still_there FROM pg_class WHERE oid = 'trap.loans'::regclass;

DROP SCHEMA trap, "we'ird; schema" CASCADE;
DROP OWNED BY trap_admin;
DROP ROLE mallory, trap_admin;

-- The roles belong to the cluster, the extension to one database: a second
-- database gets the extension, and the roles (with their members) are left
-- as they are.
CREATE ROLE second_auditor IN ROLE audit_log_reader;
ALTER ROLE audit_log_reader CONNECTION LIMIT 5;
\set main_database :DBNAME
CREATE DATABASE audit_log_second;
\c audit_log_second
CREATE EXTENSION audit_log;
SELECT rolname, rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname LIKE 'audit\_log\_%' ORDER BY 1;
SELECT pg_has_role('second_auditor', 'audit_log_reader', 'MEMBER') AS member_kept,
       pg_has_role('audit_log_admin', 'audit_log_reader', 'MEMBER') AS admin_is_reader;
SELECT has_table_privilege('audit_log_reader', 'audit_log.events', 'SELECT') AS reader_reads_here;
\c :main_database
DROP DATABASE audit_log_second;
ALTER ROLE audit_log_reader CONNECTION LIMIT -1;
DROP ROLE second_auditor;
