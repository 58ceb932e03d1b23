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
-- The same refusal, the UPDATE run by a function and by a CTE.
CREATE FUNCTION logistics.send_to_lyon(parcel int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE logistics.parcels SET depot = 'lyon' WHERE id = parcel;
END
$$;
INSERT INTO logistics.parcels VALUES (5, 'paris', 1, 's5', NULL), (6, 'paris', 1, 's6', NULL);
SELECT max(id) AS mark FROM audit_log.events \gset
SELECT logistics.send_to_lyon(5);
WITH sent AS (UPDATE logistics.parcels SET depot = 'lyon' WHERE id = 6 RETURNING id) SELECT count(*) FROM sent;
SELECT action, entity_id FROM audit_log.events WHERE id > :mark ORDER BY id;
DROP TRIGGER refuse ON logistics.parcels_lyon;

-- Other triggers between the two halves of a move change nothing: one
-- that rolls back a savepoint of its own, one that runs a query (here in
-- the transaction's first statement, whose command id a query's executor
-- also reports), one that moves another row of the same table.
INSERT INTO logistics.parcels VALUES (7, 'lyon', 1, 's7', NULL), (8, 'lyon', 1, 's8', NULL),
                                     (9, 'lyon', 1, 's9', NULL), (10, 'lyon', 1, 's10', NULL);
CREATE FUNCTION logistics.shrug() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        NULL;
    END;
    RETURN NULL;
END
$$;
CREATE FUNCTION logistics.look() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM logistics.parcels;
    RETURN NULL;
END
$$;
CREATE FUNCTION logistics.follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.id = 9 THEN
        UPDATE logistics.parcels SET depot = 'paris' WHERE id = 10;
    END IF;
    RETURN NULL;
END
$$;
SELECT max(id) AS mark FROM audit_log.events \gset
CREATE TRIGGER shrug AFTER DELETE ON logistics.parcels_lyon FOR EACH ROW EXECUTE FUNCTION logistics.shrug();
UPDATE logistics.parcels SET depot = 'paris' WHERE id = 7;
DROP TRIGGER shrug ON logistics.parcels_lyon;
BEGIN;
CREATE TRIGGER look AFTER DELETE ON logistics.parcels_lyon FOR EACH ROW EXECUTE FUNCTION logistics.look();
COMMIT;
BEGIN;
UPDATE logistics.parcels SET depot = 'paris' WHERE id = 8;
COMMIT;
DROP TRIGGER look ON logistics.parcels_lyon;
CREATE TRIGGER follow AFTER DELETE ON logistics.parcels_lyon FOR EACH ROW EXECUTE FUNCTION logistics.follow();
UPDATE logistics.parcels SET depot = 'paris' WHERE id = 9;
DROP TRIGGER follow ON logistics.parcels_lyon;
SELECT action, entity_id, old_values ->> 'depot' AS old_depot, changed_fields
  FROM audit_log.events WHERE id > :mark AND action <> 'DDL' ORDER BY id;

-- MERGE both moves and inserts rows. Moving one into a partition that
-- refuses it while inserting another records the DELETE and the INSERT
-- they are, never one UPDATE pairing two rows; where no partition can
-- refuse a row, a MERGE's move is one UPDATE.
CREATE TRIGGER refuse BEFORE INSERT ON logistics.parcels_lyon FOR EACH ROW EXECUTE FUNCTION logistics.refuse();
SELECT max(id) AS mark FROM audit_log.events \gset
MERGE INTO logistics.parcels p
USING (VALUES (7, 'paris'), (11, 'paris')) AS s(id, depot) ON p.id = s.id AND p.depot = s.depot
 WHEN MATCHED THEN UPDATE SET depot = 'lyon'
 WHEN NOT MATCHED THEN INSERT (id, depot, weight) VALUES (s.id, s.depot, 11);
DROP TRIGGER refuse ON logistics.parcels_lyon;
MERGE INTO logistics.parcels p
USING (VALUES (8, 'paris'), (12, 'paris')) AS s(id, depot) ON p.id = s.id AND p.depot = s.depot
 WHEN MATCHED THEN UPDATE SET depot = 'lyon'
 WHEN NOT MATCHED THEN INSERT (id, depot, weight) VALUES (s.id, s.depot, 12);
SELECT action, entity_id, old_values ->> 'weight' AS old_weight, new_values ->> 'weight' AS new_weight
  FROM audit_log.events WHERE id > :mark AND action <> 'DDL' ORDER BY id;

-- A column added with a default after a row was written: the moved row's
-- old values hold the default (it lives in the table's description, not
-- in the row), and the column is not listed as changed.
ALTER TABLE logistics.parcels ADD COLUMN status text DEFAULT 'new';
SELECT max(id) AS mark FROM audit_log.events \gset
UPDATE logistics.parcels SET depot = 'paris' WHERE id = 8;
SELECT action, entity_id, old_values ->> 'status' AS old_status, new_values ->> 'status' AS new_status, changed_fields
  FROM audit_log.events WHERE id > :mark ORDER BY id;
RESET audit_log.actor;
DROP SCHEMA logistics CASCADE;
