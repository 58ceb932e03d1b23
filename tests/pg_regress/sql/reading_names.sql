\set SHOW_CONTEXT never
-- A name stands for one table over a stretch of the trail. list(),
-- history() and export() follow a table back through its renames, but a
-- new table that takes an old name does not inherit the old one's events,
-- two tables that swap names keep their own, and a dropped table stays
-- reachable by its last name. Readers need no right on the tables' schema.
CREATE SCHEMA names;
CREATE TABLE names.acct (id int PRIMARY KEY, v text);
SELECT audit_log.track('names.acct');
SET audit_log.actor = 'clerk';
INSERT INTO names.acct VALUES (1, 'old account');
-- The table is archived under another name; a new one takes its name.
ALTER TABLE names.acct RENAME TO acct_archive;
UPDATE names.acct_archive SET v = 'old account, archived';
CREATE TABLE names.acct (id int PRIMARY KEY, v text);
SELECT audit_log.track('names.acct');
INSERT INTO names.acct VALUES (1, 'new account');
SELECT action, new_values ->> 'v' AS v FROM audit_log.history('names.acct_archive', '{"id": 1}');
SELECT action, new_values ->> 'v' AS v FROM audit_log.history('names.acct', '{"id": 1}');

-- Two tables swap names.
CREATE TABLE names.a (id int PRIMARY KEY, v text);
CREATE TABLE names.b (id int PRIMARY KEY, v text);
SELECT audit_log.track('names.a');
SELECT audit_log.track('names.b');
INSERT INTO names.a VALUES (1, 'first a');
INSERT INTO names.b VALUES (1, 'first b');
ALTER TABLE names.a RENAME TO tmp;
ALTER TABLE names.b RENAME TO a;
ALTER TABLE names.tmp RENAME TO b;
UPDATE names.a SET v = v || ', now a';
UPDATE names.b SET v = v || ', now b';
SELECT action, coalesce(new_values, old_values) ->> 'v' AS v FROM audit_log.history('names.a', '{"id": 1}');
SELECT action, coalesce(new_values, old_values) ->> 'v' AS v FROM audit_log.history('names.b', '{"id": 1}');

-- list() and export() take the same events for the same filter.
SELECT (SELECT count(*) FROM audit_log.list(entity => 'names.b', max_rows => 1000)) AS listed,
       (SELECT count(*) FROM audit_log.export(entity => 'names.b')) AS exported;
SELECT (SELECT count(*) FROM audit_log.list(entity => 'acct', max_rows => 1000)) AS listed,
       (SELECT count(*) FROM audit_log.export(entity => 'acct')) AS exported;
SELECT action, entity, new_values::jsonb ->> 'renamed_from' AS renamed_from
  FROM audit_log.export(entity => 'names.b');

-- Dropped, the archive stays reachable by its last name.
DROP TABLE names.acct_archive;
SELECT action, new_values ->> 'v' AS v FROM audit_log.history('names.acct_archive', '{"id": 1}');
SELECT action FROM audit_log.list(entity => 'names.acct_archive') ORDER BY id;

-- changes() of an INSERT and a DELETE for a reader with no right on the
-- table's schema.
DELETE FROM names.acct;
CREATE ROLE names_reader LOGIN IN ROLE audit_log_reader;
SET ROLE names_reader;
SELECT e.action, c.* FROM audit_log.events e, audit_log.changes(e.id) c
 WHERE e.entity = 'names.acct' AND e.action IN ('INSERT', 'DELETE')
   AND e.id > (SELECT max(id) FROM audit_log.events WHERE entity = 'names.acct' AND action = 'TRACK')
 ORDER BY e.id, c.field;
RESET ROLE;
RESET audit_log.actor;
DROP SCHEMA names CASCADE;
DROP ROLE names_reader;
