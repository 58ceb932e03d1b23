\set SHOW_CONTEXT never
-- Tracked tables change shape, names and schemas over the years. Each change
-- is a DDL event (with actor and db_user, like any event), capture follows at
-- once, exclusions and redactions follow their columns, and the history of a
-- renamed or dropped table stays reachable.
CREATE SCHEMA hr;
CREATE TABLE hr.staff (id int PRIMARY KEY, name text, salary numeric, notes text);
SELECT audit_log.track('hr.staff', exclude_columns => '{notes}', redact_columns => '{salary}');
SET audit_log.actor = 'dba@example.org';
INSERT INTO hr.staff VALUES (1, 'Ada', 5000, 'first hire');

-- What each DDL event says (statement text aside).
CREATE FUNCTION public.ddl_events(since bigint) RETURNS TABLE (actor text, db_user text, entity text, details jsonb)
LANGUAGE sql AS $$
    SELECT e.actor, e.db_user, e.entity, e.new_values - 'statement'
      FROM audit_log.events e WHERE e.action = 'DDL' AND e.id > since ORDER BY e.id
$$;
SELECT max(id) AS mark FROM audit_log.events \gset

-- Shape changes, each recorded.
ALTER TABLE hr.staff ADD COLUMN team text;
ALTER TABLE hr.staff RENAME COLUMN salary TO pay;
ALTER TABLE hr.staff RENAME COLUMN notes TO remarks;
ALTER TABLE hr.staff ALTER COLUMN id TYPE bigint;
SELECT * FROM public.ddl_events(:mark);
SELECT new_values ->> 'statement' AS statement FROM audit_log.events
 WHERE action = 'DDL' AND id > :mark ORDER BY id LIMIT 1;
-- The redacted and excluded columns kept their roles under their new names.
SELECT entity, exclude_columns, redact_columns FROM audit_log.tracked_tables WHERE entity = 'hr.staff';
UPDATE hr.staff SET pay = 5500, remarks = 'promoted', team = 'core' WHERE id = 1;
SELECT old_values, new_values, changed_fields FROM audit_log.events
 WHERE entity = 'hr.staff' AND action = 'UPDATE' ORDER BY id DESC LIMIT 1;

-- Another session sees the new shape at once.
\c
SET audit_log.actor = 'app';
INSERT INTO hr.staff VALUES (2, 'Grace', 6000, 'n/a', 'ops');
ALTER TABLE hr.staff DROP COLUMN team;
INSERT INTO hr.staff VALUES (3, 'Hedy', 6100, 'n/a');
-- Old events keep their old shape.
SELECT action, entity_id, new_values FROM audit_log.events
 WHERE entity = 'hr.staff' AND action = 'INSERT' ORDER BY id;

-- Renamed, then moved to another schema: later events carry the new name,
-- and the table's earlier events are found under it.
SELECT max(id) AS mark FROM audit_log.events \gset
ALTER TABLE hr.staff RENAME TO employees;
CREATE SCHEMA people;
ALTER TABLE hr.employees SET SCHEMA people;
UPDATE people.employees SET pay = 7000 WHERE id = 1;
SELECT * FROM public.ddl_events(:mark);
SELECT entity, action, entity_id FROM audit_log.history('people.employees', '{"id": 1}');
SELECT entity, action FROM audit_log.history('employees', '{"id": 1}');
SELECT count(*) AS listed_under_new_name FROM audit_log.list(entity => 'people.employees');
SELECT count(*) AS listed_under_old_name FROM audit_log.list(entity => 'hr.staff');
-- A schema rename renames its tables.
ALTER SCHEMA people RENAME TO personnel;
INSERT INTO personnel.employees VALUES (4, 'Joan', 6200, NULL);
SELECT * FROM public.ddl_events(:mark) OFFSET 2;
SELECT entity, action, entity_id FROM audit_log.list(entity => 'personnel.employees', max_rows => 3);

-- Dropped: the drop is an event with who did it, tracking ends, the history stays.
SET audit_log.actor = 'cleanup-job';
SELECT max(id) AS mark FROM audit_log.events \gset
DROP TABLE personnel.employees;
SELECT * FROM public.ddl_events(:mark);
SELECT count(*) AS still_tracked FROM audit_log.tracked_tables WHERE entity LIKE '%employees%';
SELECT count(*) AS still_in_tracked FROM audit_log.tracked WHERE relid::oid NOT IN (SELECT oid FROM pg_class);
SELECT action FROM audit_log.history('personnel.employees', '{"id": 1}');

-- Partitions dropped or renamed are recorded against their tracked table.
CREATE TABLE hr.visits (id int, site text, PRIMARY KEY (id, site)) PARTITION BY LIST (site);
CREATE TABLE hr.visits_paris PARTITION OF hr.visits FOR VALUES IN ('paris');
CREATE TABLE hr.visits_lyon PARTITION OF hr.visits FOR VALUES IN ('lyon');
SELECT audit_log.track('hr.visits');
SELECT max(id) AS mark FROM audit_log.events \gset
ALTER TABLE hr.visits_lyon RENAME TO visits_lyon_2026;
DROP TABLE hr.visits_paris;
DROP SCHEMA personnel;
SELECT * FROM public.ddl_events(:mark);

-- A rolled-back change leaves no event.
SELECT max(id) AS mark FROM audit_log.events \gset
BEGIN;
ALTER TABLE hr.visits ADD COLUMN note text;
ROLLBACK;
SELECT count(*) AS events_after_rollback FROM public.ddl_events(:mark);
RESET audit_log.actor;

-- DROP EXTENSION would destroy the trail: refused while it holds events,
-- unless a superuser says so. Shown in a database of its own.
\set main_database :DBNAME
CREATE DATABASE audit_log_drop;
\c audit_log_drop
\set SHOW_CONTEXT never
CREATE EXTENSION audit_log;
CREATE TABLE t (id int PRIMARY KEY);
-- An empty trail can go.
DROP EXTENSION audit_log;
CREATE EXTENSION audit_log;
SELECT audit_log.track('t');
INSERT INTO t VALUES (1);
DROP EXTENSION audit_log;
DROP EXTENSION audit_log CASCADE;
DROP SCHEMA audit_log CASCADE;
CREATE ROLE drop_app;
SET ROLE drop_app;
SET audit_log.drop_with_events = on;
RESET ROLE;
DROP ROLE drop_app;
SELECT count(*) AS events_kept FROM audit_log.events;
SET audit_log.drop_with_events = on;
SET client_min_messages = warning;
DROP EXTENSION audit_log CASCADE;
RESET client_min_messages;
SELECT count(*) AS extension_left FROM pg_extension WHERE extname = 'audit_log';
\c :main_database
DROP DATABASE audit_log_drop;

DROP FUNCTION public.ddl_events(bigint);
DROP SCHEMA hr CASCADE;
