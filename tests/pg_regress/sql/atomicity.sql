\set SHOW_CONTEXT never
-- Events are written in the same transaction as the change: a rolled-back
-- change leaves no event, a committed one always has one.
CREATE SCHEMA atom;
CREATE TABLE atom.accounts (id int PRIMARY KEY, balance numeric CHECK (balance >= 0));
SELECT audit_log.track('atom.accounts');

BEGIN;
INSERT INTO atom.accounts VALUES (1, 100);
ROLLBACK;
SELECT count(*) AS events_after_rollback FROM audit_log.events WHERE entity = 'atom.accounts' AND action <> 'TRACK';

BEGIN;
INSERT INTO atom.accounts VALUES (1, 100);
SAVEPOINT transfer;
UPDATE atom.accounts SET balance = 50 WHERE id = 1;
INSERT INTO atom.accounts VALUES (2, 50);
ROLLBACK TO SAVEPOINT transfer;
UPDATE atom.accounts SET balance = 90 WHERE id = 1;
COMMIT;
SELECT action, entity_id, new_values FROM audit_log.events
 WHERE entity = 'atom.accounts' AND action <> 'TRACK' ORDER BY id;

-- A statement that fails half-way records none of its rows.
INSERT INTO atom.accounts VALUES (3, 30), (4, -1);
UPDATE atom.accounts SET balance = balance - 95;
SELECT count(*) AS events FROM audit_log.events WHERE entity = 'atom.accounts' AND action <> 'TRACK';

-- An error inside a PL/pgSQL exception block rolls back its events with it.
DO $$
BEGIN
    INSERT INTO atom.accounts VALUES (5, 5);
    BEGIN
        INSERT INTO atom.accounts VALUES (6, 6);
        RAISE EXCEPTION 'undo the inner block';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
END
$$;
SELECT new_values FROM audit_log.events WHERE entity = 'atom.accounts' AND action = 'INSERT' ORDER BY id;

-- Every committed change has its event: the trail replays to the table's contents.
SELECT (SELECT jsonb_agg(to_jsonb(acc) ORDER BY acc.id) FROM atom.accounts acc) =
       (SELECT jsonb_agg(last.values ORDER BY last.key)
          FROM (SELECT DISTINCT ON (entity_id) entity_id->'id' AS key, new_values AS values, action
                  FROM audit_log.events WHERE entity = 'atom.accounts' AND entity_id IS NOT NULL
                 ORDER BY entity_id, id DESC) AS last
         WHERE last.action <> 'DELETE') AS trail_replays_to_table;

-- COPY FROM is captured row by row too. The log it wrote into is closed
-- before the next command, so DDL on the log later in the same transaction
-- (an extension upgrade, say) does not find it in use.
BEGIN;
COPY atom.accounts FROM stdin;
7	70
8	80
\.
ALTER TABLE audit_log.events ALTER COLUMN actor SET STATISTICS 200;
SELECT count(*) AS copied_rows_recorded FROM audit_log.events
 WHERE entity = 'atom.accounts' AND action = 'INSERT' AND new_values->>'id' IN ('7', '8');
ROLLBACK;
