\set SHOW_CONTEXT never
-- A row moved to another partition by an UPDATE of the partition key is one
-- UPDATE event, as if it had stayed: PostgreSQL deletes it from one partition
-- and inserts it into the other, and capture pairs the two back together. The
-- event's entity_id is the new key (the partition key is part of it), and
-- history() follows the row through the move as through any key change.
CREATE SCHEMA logistics;
CREATE TABLE logistics.parcels (id int, depot text, weight numeric, secret text, note text,
                                PRIMARY KEY (id, depot)) PARTITION BY LIST (depot);
CREATE TABLE logistics.parcels_lyon PARTITION OF logistics.parcels FOR VALUES IN ('lyon');
-- A partition whose columns are in another order, with a dropped column.
CREATE TABLE logistics.parcels_paris (junk int, note text, secret text, weight numeric, depot text NOT NULL, id int NOT NULL);
ALTER TABLE logistics.parcels_paris DROP COLUMN junk;
ALTER TABLE logistics.parcels ATTACH PARTITION logistics.parcels_paris FOR VALUES IN ('paris');
SELECT audit_log.track('logistics.parcels', exclude_columns => '{note}', redact_columns => '{secret}');
SET audit_log.actor = 'dispatcher';
INSERT INTO logistics.parcels VALUES (1, 'lyon', 2.5, 's1', 'fragile'), (2, 'lyon', 1.0, 's2', NULL),
                                     (3, 'paris', 4.0, 's3', NULL);
SELECT max(id) AS mark FROM audit_log.events \gset

-- One row moves, with other changes; one moves back the other way.
UPDATE logistics.parcels SET depot = 'paris', weight = 2.6 WHERE id = 1;
UPDATE logistics.parcels SET depot = 'lyon', secret = 's3-new' WHERE id = 3;
-- Several rows in one statement, some moving and some staying.
UPDATE logistics.parcels SET depot = CASE WHEN id = 2 THEN 'paris' ELSE depot END, weight = weight + 1;
SELECT action, entity_id, old_values, new_values, changed_fields
  FROM audit_log.events WHERE id > :mark ORDER BY id;

-- The history of a moved row is one record, from its first key.
SELECT action, entity_id, changed_fields FROM audit_log.history('logistics.parcels', '{"id": 1, "depot": "paris"}');

-- A row inserted and moved in the same transaction, and a move rolled back.
SELECT max(id) AS mark FROM audit_log.events \gset
BEGIN;
INSERT INTO logistics.parcels VALUES (4, 'lyon', 1.0, 's4', NULL);
UPDATE logistics.parcels SET depot = 'paris' WHERE id = 4;
SAVEPOINT before_mistake;
UPDATE logistics.parcels SET depot = 'lyon' WHERE id = 4;
ROLLBACK TO SAVEPOINT before_mistake;
SAVEPOINT failing;
UPDATE logistics.parcels SET depot = 'lyon', weight = 1 / 0 WHERE id = 4;
ROLLBACK TO SAVEPOINT failing;
COMMIT;
SELECT action, entity_id, changed_fields FROM audit_log.events WHERE id > :mark ORDER BY id;

-- When the new partition refuses the row (a BEFORE INSERT trigger returning
-- NULL), PostgreSQL has still deleted it: that is recorded as a DELETE.
CREATE FUNCTION logistics.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER refuse BEFORE INSERT ON logistics.parcels_lyon FOR EACH ROW EXECUTE FUNCTION logistics.refuse();
SELECT max(id) AS mark FROM audit_log.events \gset
UPDATE logistics.parcels SET depot = 'lyon' WHERE id = 4;
SELECT count(*) AS rows_left_for_4 FROM logistics.parcels WHERE id = 4;
SELECT action, entity_id FROM audit_log.events WHERE id > :mark ORDER BY id;
RESET audit_log.actor;
DROP SCHEMA logistics CASCADE;
