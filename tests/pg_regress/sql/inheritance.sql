\set SHOW_CONTEXT never
-- Inheritance children (not partitions) hold rows that the parent's queries
-- read, update and delete, but a change to them fires only the child's own
-- triggers: a tracked table's child would be a hole in the trail. So a
-- tracked table cannot gain one, and a table that has one cannot be
-- tracked. Partitions, which are captured as their tracked table, are the
-- way to split a tracked table.
CREATE ROLE inh_owner LOGIN;
CREATE SCHEMA inh AUTHORIZATION inh_owner;
SET ROLE inh_owner;
CREATE TABLE inh.orders (id int PRIMARY KEY, total numeric);
CREATE TABLE inh.archive (id int NOT NULL, total numeric);
RESET ROLE;
SELECT audit_log.track('inh.orders');

-- The owner tries both ways to add a child; each is refused, nothing changes.
\c - inh_owner
SET audit_log.actor = 'inh-owner';
CREATE TABLE inh.orders_more () INHERITS (inh.orders);
ALTER TABLE inh.archive INHERIT inh.orders;
SELECT count(*) AS children FROM pg_inherits WHERE inhparent = 'inh.orders'::regclass;
-- Untracked tables inherit freely; the tracked one is captured as before.
CREATE TABLE inh.notes (id int, body text);
CREATE TABLE inh.notes_more () INHERITS (inh.notes);
INSERT INTO inh.orders VALUES (1, 10);
UPDATE inh.orders SET total = 11;
\c - postgres
SELECT action, entity, entity_id FROM audit_log.events WHERE actor = 'inh-owner' ORDER BY id;

-- A table with a child cannot be tracked, alone or with its schema (which
-- names it), until the child goes.
SELECT audit_log.track('inh.notes');
SELECT audit_log.track_schema('inh');
SELECT audit_log.track_schema('inh', exclude_tables => '{notes}');
SELECT entity FROM audit_log.tracked_tables WHERE entity LIKE 'inh.%' ORDER BY 1;
ALTER TABLE inh.notes_more NO INHERIT inh.notes;
SELECT audit_log.track('inh.notes');
-- Tracked now, it refuses new children like any tracked table.
CREATE TABLE inh.notes_again () INHERITS (inh.notes);
SELECT count(*) AS children FROM pg_inherits WHERE inhparent = 'inh.notes'::regclass;

DROP SCHEMA inh CASCADE;
DROP ROLE inh_owner;
