\set SHOW_CONTEXT never
-- A command is followed wherever it reaches a tracked table, whatever names
-- it: another tag that PostgreSQL lets rename a table, recursion to an
-- inheritance child, a schema rename, a drop by CASCADE or DROP OWNED, a
-- tablespace move, DDL run by a function, a DO block or an extension's
-- script. (DDL costs only what it touches: bench/results/ddl.md.)
CREATE SCHEMA reach;
CREATE TABLE reach.patients (id int PRIMARY KEY, name text, ssn text, diagnosis text);
SELECT audit_log.track('reach.patients', exclude_columns => '{ssn}', redact_columns => '{diagnosis}');
SET audit_log.actor = 'dba@example.org';
CREATE FUNCTION public.reach_events(since bigint) RETURNS TABLE (entity text, details jsonb)
LANGUAGE sql AS $$
    SELECT e.entity, e.new_values - 'statement'
      FROM audit_log.events e WHERE e.action = 'DDL' AND e.id > since ORDER BY e.id
$$;
CREATE FUNCTION public.options(target text) RETURNS TABLE (exclude_columns text[], redact_columns text[])
LANGUAGE sql AS $$
    SELECT t.exclude_columns, t.redact_columns FROM audit_log.tracked_tables t WHERE t.entity = target
$$;

-- Columns and the table renamed through ALTER VIEW, ALTER MATERIALIZED VIEW,
-- ALTER FOREIGN TABLE and ALTER INDEX, which PostgreSQL accepts on a table:
-- exclusion and redaction follow, each rename is recorded.
SELECT max(id) AS mark FROM audit_log.events \gset
ALTER VIEW reach.patients RENAME COLUMN ssn TO ssn_v;
ALTER MATERIALIZED VIEW reach.patients RENAME COLUMN diagnosis TO dx;
ALTER FOREIGN TABLE reach.patients RENAME COLUMN name TO full_name;
ALTER INDEX reach.patients RENAME TO patient_files;
SELECT * FROM public.reach_events(:mark);
SELECT * FROM public.options('reach.patient_files');
INSERT INTO reach.patient_files VALUES (1, 'Ada', '123-45-6789', 'HIV+');
SELECT new_values FROM audit_log.events WHERE entity = 'reach.patient_files' AND action = 'INSERT';
-- Renaming an index of the table is not a change of the table.
SELECT max(id) AS mark FROM audit_log.events \gset
ALTER INDEX reach.patients_pkey RENAME TO patient_files_pkey;
SELECT count(*) AS ddl_events FROM public.reach_events(:mark);

-- Inheritance: a rename on an untracked parent recurses to its tracked
-- child, whose exclusion follows.
CREATE TABLE reach.people (id int PRIMARY KEY, secret text);
CREATE TABLE reach.staff (team text) INHERITS (reach.people);
ALTER TABLE reach.staff ADD PRIMARY KEY (id);
SELECT audit_log.track('reach.staff', exclude_columns => '{secret}');
SELECT max(id) AS mark FROM audit_log.events \gset
ALTER TABLE reach.people RENAME COLUMN secret TO pin;
SELECT * FROM public.reach_events(:mark);
SELECT * FROM public.options('reach.staff');
INSERT INTO reach.staff VALUES (1, '0000', 'ops');
SELECT new_values FROM audit_log.events WHERE entity = 'reach.staff' AND action = 'INSERT';

-- DDL run by a function and by a DO block is recorded like any other.
CREATE FUNCTION public.migrate_patients() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    ALTER TABLE reach.patient_files ADD COLUMN ward text;
    ALTER TABLE reach.patient_files RENAME COLUMN ssn_v TO national_id;
END
$$;
SELECT max(id) AS mark FROM audit_log.events \gset
SELECT public.migrate_patients();
DO $$ BEGIN EXECUTE 'ALTER TABLE reach.patient_files RENAME COLUMN dx TO condition'; END $$;
SELECT * FROM public.reach_events(:mark);
SELECT * FROM public.options('reach.patient_files');

-- A partition that lives in another schema is renamed with that schema.
CREATE SCHEMA archive;
CREATE TABLE reach.visits (id int, year int, PRIMARY KEY (id, year)) PARTITION BY LIST (year);
CREATE TABLE archive.visits_2024 PARTITION OF reach.visits FOR VALUES IN (2024);
SELECT audit_log.track('reach.visits');
SELECT max(id) AS mark FROM audit_log.events \gset
ALTER SCHEMA archive RENAME TO cold;
SELECT * FROM public.reach_events(:mark);
INSERT INTO reach.visits VALUES (1, 2024);
TRUNCATE cold.visits_2024;
SELECT entity, action, entity_id FROM audit_log.events WHERE id > :mark AND action <> 'DDL' ORDER BY id;

-- A tablespace move of every table: each tracked table moved is recorded.
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE reach_space LOCATION '';
CREATE TABLE reach.plain (id int);
SELECT max(id) AS mark FROM audit_log.events \gset
ALTER TABLE ALL IN TABLESPACE pg_default SET TABLESPACE reach_space;
SELECT entity, details ->> 'command_tag' AS command_tag FROM public.reach_events(:mark)
 WHERE entity LIKE 'reach.%' ORDER BY entity;
SELECT count(*) FILTER (WHERE e.entity = t.entity) = count(*) AS every_tracked_table_recorded
  FROM audit_log.tracked_tables t
  LEFT JOIN public.reach_events(:mark) e ON e.entity = t.entity;
ALTER TABLE ALL IN TABLESPACE reach_space SET TABLESPACE pg_default;
DROP TABLE reach.plain;
DROP TABLESPACE reach_space;
RESET allow_in_place_tablespaces;

-- Another extension's script: its DDL on a tracked table is recorded (and
-- followed), its own tables are not taken in by follow_new_tables.
CREATE TABLE reach.inventory (id int PRIMARY KEY, item text, cost numeric);
SELECT audit_log.track_schema('reach', exclude_tables => '{people}');
SELECT audit_log.track('reach.inventory', exclude_columns => '{cost}');
SELECT max(id) AS mark FROM audit_log.events \gset
CREATE EXTENSION audit_log_test_ext VERSION '1.0';
ALTER EXTENSION audit_log_test_ext UPDATE TO '1.1';
SELECT * FROM public.reach_events(:mark);
SELECT * FROM public.options('reach.inventory');
SELECT count(*) AS extension_table_tracked FROM audit_log.tracked_tables WHERE entity = 'reach.ext_settings';
DROP EXTENSION audit_log_test_ext;

-- Ownership: REASSIGN OWNED is not an event-trigger command (it changes
-- shared objects), so it leaves no DDL event; capture goes on as before.
-- DROP OWNED drops the role's tracked tables, each drop recorded.
CREATE ROLE reach_owner;
CREATE ROLE reach_heir;
CREATE TABLE reach.owned (id int PRIMARY KEY, v text);
ALTER TABLE reach.owned OWNER TO reach_owner;
SELECT audit_log.track('reach.owned');
SELECT max(id) AS mark FROM audit_log.events \gset
REASSIGN OWNED BY reach_owner TO reach_heir;
INSERT INTO reach.owned VALUES (1, 'kept');
SELECT action, entity FROM audit_log.events WHERE id > :mark ORDER BY id;
SELECT max(id) AS mark FROM audit_log.events \gset
DROP OWNED BY reach_heir;
SELECT * FROM public.reach_events(:mark);
SELECT count(*) AS still_tracked FROM audit_log.tracked_tables WHERE entity = 'reach.owned';
DROP ROLE reach_owner, reach_heir;

-- DROP SCHEMA ... CASCADE: every tracked table in it is recorded as dropped.
SELECT max(id) AS mark FROM audit_log.events \gset
SET client_min_messages = warning;
DROP SCHEMA reach, cold CASCADE;
RESET client_min_messages;
SELECT entity, details ->> 'command_tag' AS command_tag, details -> 'dropped' AS dropped
  FROM public.reach_events(:mark) ORDER BY entity;
SELECT count(*) AS tracked_left FROM audit_log.tracked_tables WHERE entity LIKE 'reach.%' OR entity LIKE 'cold.%';

RESET audit_log.actor;
DROP FUNCTION public.reach_events(bigint), public.options(text), public.migrate_patients();
