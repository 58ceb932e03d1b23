\set SHOW_CONTEXT never
-- Time travel (API section 9): a table, or one row, as it was at a given
-- time; a baseline so that rows older than tracking have a story; undoing
-- an event or a whole transaction.
CREATE SCHEMA tt;
-- Refusals, with event ids (which depend on the tests before) left out.
CREATE FUNCTION tt.refusal(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'done';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'event [0-9]+', 'event N', 'g');
END
$$;
CREATE TABLE tt.courses (id int PRIMARY KEY, title text, price numeric(8,2), seats int, notes text, secret text);
INSERT INTO tt.courses VALUES (1, 'SQL', 100.00, 10, 'old', 's1'), (2, 'Rust', 200.00, 12, NULL, 's2');

-- Without a baseline, rows already there have no story: as_of() does not
-- invent them, and says how many it cannot account for.
CREATE TABLE tt.untold (id int PRIMARY KEY, v text);
INSERT INTO tt.untold VALUES (1, 'a'), (2, 'b');
SELECT audit_log.track('tt.untold');
SELECT count(*) AS rows_known FROM audit_log.as_of('tt.untold', clock_timestamp());

-- A baseline accounts for every row from then on (the live table is then
-- not even read), until rows arrive that capture did not see: a partition
-- attached with its rows, rows written while the table was not tracked.
CREATE TABLE tt.parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE tt.parted_low PARTITION OF tt.parted FOR VALUES FROM (0) TO (100);
INSERT INTO tt.parted VALUES (1, 'a');
SELECT audit_log.track('tt.parted', baseline => true);
SELECT count(*) AS rows_known FROM audit_log.as_of('tt.parted', clock_timestamp());
CREATE TABLE tt.parted_high (id int PRIMARY KEY, v text);
INSERT INTO tt.parted_high VALUES (100, 'b'), (101, 'c');
ALTER TABLE tt.parted ATTACH PARTITION tt.parted_high FOR VALUES FROM (100) TO (200);
SELECT count(*) AS rows_known FROM audit_log.as_of('tt.parted', clock_timestamp());
SELECT audit_log.track('tt.parted', baseline => true);
SELECT count(*) AS rows_known FROM audit_log.as_of('tt.parted', clock_timestamp());
SELECT audit_log.untrack('tt.parted');
INSERT INTO tt.parted VALUES (2, 'd');
SELECT audit_log.track('tt.parted');
SELECT count(*) AS rows_known FROM audit_log.as_of('tt.parted', clock_timestamp());
DROP TABLE tt.parted;

-- With one, every row gets a BASELINE event in the TRACK transaction,
-- excluded columns absent and redacted ones masked, as for any event.
SELECT audit_log.track('tt.courses', exclude_columns => '{notes}', redact_columns => '{secret}', baseline => true);
SELECT action, entity_id, new_values FROM audit_log.events
 WHERE entity = 'tt.courses' ORDER BY id;
SELECT clock_timestamp() AS t0 \gset

-- A day of changes: an update, a new row, a key change, a deletion.
SET audit_log.actor = 'alice';
UPDATE tt.courses SET price = 120.00 WHERE id = 1;
INSERT INTO tt.courses VALUES (3, 'Go', 300.00, 8, 'n', 's3');
SELECT clock_timestamp() AS t1 \gset
UPDATE tt.courses SET id = 20 WHERE id = 2;
DELETE FROM tt.courses WHERE id = 3;
SELECT clock_timestamp() AS t2 \gset

-- The whole table at each instant; typed rows with jsonb_populate_record.
SELECT entity_id, "row" FROM audit_log.as_of('tt.courses', :'t0');
SELECT entity_id, "row" FROM audit_log.as_of('tt.courses', :'t1');
SELECT entity_id, "row" FROM audit_log.as_of('tt.courses', :'t2');
SELECT r.id, r.title, r.price FROM audit_log.as_of('tt.courses', :'t1') AS a,
       jsonb_populate_record(NULL::tt.courses, a."row") AS r ORDER BY r.id;
-- One row, followed through its change of key; a deleted row is absent.
SELECT "row" ->> 'id' AS id_then FROM audit_log.as_of('tt.courses', :'t1', '{"id": 20}');
SELECT "row" ->> 'id' AS id_now FROM audit_log.as_of('tt.courses', :'t2', '{"id": 20}');
SELECT count(*) AS deleted FROM audit_log.as_of('tt.courses', :'t2', '{"id": 3}');
-- Before the table was tracked, nothing: the rows its baseline found later
-- were there untold. A rename keeps the past.
SELECT count(*) AS before_tracking FROM audit_log.as_of('tt.courses', :'t0'::timestamptz - interval '1 hour');
ALTER TABLE tt.courses RENAME TO trainings;
SELECT count(*) AS after_rename FROM audit_log.as_of('tt.trainings', :'t1');
ALTER TABLE tt.trainings RENAME TO courses;

-- Undoing an event: the row must still be as the event left it.
SELECT id AS price_update FROM audit_log.events WHERE entity = 'tt.courses' AND action = 'UPDATE' ORDER BY id LIMIT 1 \gset
SELECT audit_log.revert(:price_update);
SELECT id, price FROM tt.courses WHERE id = 1;
SELECT (context ->> 'reverts')::bigint = :price_update AS names_the_event, changed_fields
  FROM audit_log.events WHERE entity = 'tt.courses' ORDER BY id DESC LIMIT 1;
-- Twice: the row is no longer as that event left it.
SELECT tt.refusal(format('SELECT audit_log.revert(%s)', :price_update)) AS twice;
-- A deletion needs every value: the excluded column is not in the trail.
SELECT id AS deletion FROM audit_log.events WHERE entity = 'tt.courses' AND action = 'DELETE' \gset
SELECT tt.refusal(format('SELECT audit_log.revert(%s)', :deletion)) AS deletion;
-- Only row events; unknown events.
SELECT id AS tracking FROM audit_log.events WHERE entity = 'tt.courses' AND action = 'TRACK' \gset
SELECT tt.refusal(format('SELECT audit_log.revert(%s)', :tracking)) AS tracking;
SELECT audit_log.revert(-1);

-- A whole transaction, in reverse order: a row changed twice, a key change,
-- a row inserted then deleted.
CREATE TABLE tt.stock (sku text PRIMARY KEY, qty int NOT NULL, label text);
SELECT audit_log.track('tt.stock');
INSERT INTO tt.stock VALUES ('a', 1, 'A'), ('b', 2, 'B');
SELECT jsonb_agg(s ORDER BY sku) AS before FROM tt.stock AS s \gset
BEGIN;
UPDATE tt.stock SET qty = qty + 10 WHERE sku = 'a';
UPDATE tt.stock SET qty = qty + 10, label = 'A+' WHERE sku = 'a';
UPDATE tt.stock SET sku = 'b2' WHERE sku = 'b';
INSERT INTO tt.stock VALUES ('c', 3, 'C');
DELETE FROM tt.stock WHERE sku = 'c';
SELECT pg_current_xact_id() AS batch \gset
COMMIT;
SELECT audit_log.revert_transaction(:'batch') AS undone;
SELECT jsonb_agg(s ORDER BY sku) = :'before'::jsonb AS restored FROM tt.stock AS s;
SELECT count(*) AS marked FROM audit_log.events WHERE entity = 'tt.stock' AND context ? 'reverts';
-- Undone already: the rows are no longer as the transaction left them, and
-- nothing changes.
SELECT tt.refusal(format('SELECT audit_log.revert_transaction(%L)', :'batch')) AS again;
SELECT jsonb_agg(s ORDER BY sku) = :'before'::jsonb AS unchanged FROM tt.stock AS s;
SELECT audit_log.revert_transaction('1');

-- With the caller's rights: a reader without UPDATE on the table cannot.
CREATE ROLE tt_reader;
GRANT audit_log_reader TO tt_reader;
GRANT USAGE ON SCHEMA tt TO tt_reader;
GRANT EXECUTE ON FUNCTION tt.refusal(text) TO tt_reader;
GRANT SELECT ON tt.stock TO tt_reader;
UPDATE tt.stock SET qty = 5 WHERE sku = 'a';
SELECT max(id) AS last_update FROM audit_log.events WHERE entity = 'tt.stock' \gset
SET ROLE tt_reader;
SELECT tt.refusal(format('SELECT audit_log.revert(%s)', :last_update)) AS without_update;
RESET ROLE;
-- With UPDATE on it, the same reader can: its own write, recorded as such.
GRANT UPDATE ON tt.stock TO tt_reader;
SET ROLE tt_reader;
SELECT audit_log.revert(:last_update);
RESET ROLE;
SELECT qty FROM tt.stock WHERE sku = 'a';
SELECT (context ->> 'reverts')::bigint = :last_update AS names_the_event FROM audit_log.events
 WHERE entity = 'tt.stock' ORDER BY id DESC LIMIT 1;
DROP OWNED BY tt_reader;
DROP ROLE tt_reader;

-- A dropped table's events cannot be undone; its past can still be read.
SELECT max(id) AS stock_event FROM audit_log.events WHERE entity = 'tt.stock' AND action = 'UPDATE' \gset
SELECT clock_timestamp() AS before_drop \gset
DROP TABLE tt.stock;
SELECT tt.refusal(format('SELECT audit_log.revert(%s)', :stock_event)) AS dropped;
SELECT entity_id, "row" FROM audit_log.as_of('tt.stock', :'before_drop');

-- Bad arguments.
SELECT * FROM audit_log.as_of(NULL, now());
SELECT * FROM audit_log.as_of('tt.courses', now(), '[1]');
SELECT count(*) AS unknown_table FROM audit_log.as_of('tt.nothing', now());
DROP SCHEMA tt CASCADE;
