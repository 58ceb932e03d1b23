\set SHOW_CONTEXT never
-- Integrity: sealed events are the leaves of an append-only Merkle tree
-- (RFC 9162, SHA-256); a checkpoint an auditor keeps outside the database
-- makes every later edit, insertion, deletion or reordering detectable.
-- Runs after the other tests, on the trail they left.

-- Seals until nothing is left to seal: a seal takes only the events of
-- transactions that had ended when it ran, and an autovacuum's transaction
-- may briefly hold the watermark back. Each seal runs in a transaction of
-- its own (COMMIT inside the procedure).
CREATE PROCEDURE seal_everything() LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..200 LOOP
        PERFORM audit_log.seal();
        COMMIT;
        EXIT WHEN (SELECT unsealed_events FROM audit_log.seal_status()) = 0;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

-- Before any seal, the tree is empty: its root is SHA-256 of nothing.
SELECT audit_log.checkpoint() ~ '^audit_log/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n0\n47DEQpj8HBSa\+/TImW\+5JCeuQeRkm5NMpJWZG3hSuFU=\n$'
    AS empty_tree_checkpoint;
SELECT audit_log.checkpoint(0) = audit_log.checkpoint() AS same;
SELECT audit_log.checkpoint(5);
SELECT audit_log.checkpoint(-1);

-- A ledger of accounts, tracked, with a few changes.
CREATE TABLE ledger (id int PRIMARY KEY, amount numeric, note text, booked timestamptz, ratio float8);
SELECT audit_log.track('ledger');
INSERT INTO ledger VALUES (1, 10.50, 'rent', '2026-01-05 10:00+01', 0.1),
                          (2, 99.99, 'café ☕', '2026-01-06 11:30+01', 1.0/3),
                          (3, -4, NULL, NULL, 1e300);
UPDATE ledger SET amount = 11 WHERE id = 1;
DELETE FROM ledger WHERE id = 3;
SELECT tree_size, unsealed_events > 0 AS has_unsealed, oldest_unsealed_at IS NOT NULL AS dated,
       last_sealed_at FROM audit_log.seal_status();

-- The first seal takes every event, after one seal leaf.
CALL seal_everything();
SELECT (SELECT count(*) FROM audit_log.events) + (SELECT count(*) FROM audit_log.seals)
       = (SELECT max(tree_size) FROM audit_log.seals) AS every_event_is_a_leaf;
SELECT count(*) = 0 AS no_event_left_out
  FROM audit_log.events e
 WHERE NOT EXISTS (SELECT 1 FROM audit_log.tree_leaves l WHERE l.event_id = e.id);
SELECT unsealed_events, oldest_unsealed_at, waiting_for FROM audit_log.seal_status();
-- checkpoint(), the seals view and the tree agree; the log id is the same
-- in each.
SELECT audit_log.checkpoint() = (SELECT checkpoint FROM audit_log.seals ORDER BY tree_size DESC LIMIT 1) AS latest,
       split_part(audit_log.checkpoint(), E'\n', 2)::bigint = (SELECT max(tree_size) FROM audit_log.seals) AS size_line,
       decode(split_part(audit_log.checkpoint(), E'\n', 3), 'base64')
           = (SELECT root FROM audit_log.seals ORDER BY tree_size DESC LIMIT 1) AS root_line,
       split_part(audit_log.checkpoint(), E'\n', 1) = 'audit_log/' || (SELECT log_id FROM audit_log.log_identity) AS origin_line;
-- Nothing new: the same checkpoint, no new seal.
SELECT audit_log.checkpoint() AS before_reseal \gset
SELECT audit_log.seal() = :'before_reseal' AS same_checkpoint,
       (SELECT count(*) FROM audit_log.seals) AS seals;
SELECT * FROM audit_log.verify();
SELECT * FROM audit_log.verify(:'before_reseal');
-- Each seal in the view: its leaves, watermark, times.
SELECT events_added > 0 AS added, horizon <= sealed_at AS horizon_not_after_sealing,
       watermark > '0'::xid8 AS has_watermark, length(root) AS root_bytes
  FROM audit_log.seals ORDER BY tree_size LIMIT 1;

-- New events go to a later seal, after a new seal leaf; the earlier
-- checkpoint still verifies: the tree only grows.
INSERT INTO ledger VALUES (6, 1, 'sealed later', NULL, NULL);
UPDATE ledger SET note = 'sealed later too' WHERE id = 2;
CALL seal_everything();
SELECT events_added FROM audit_log.seals ORDER BY tree_size DESC LIMIT 1;
SELECT * FROM audit_log.verify(:'before_reseal');
SELECT * FROM audit_log.verify(audit_log.checkpoint());
-- checkpoint(n) gives the checkpoint a seal produced at size n.
SELECT audit_log.checkpoint(split_part(:'before_reseal', E'\n', 2)::bigint) = :'before_reseal' AS earlier_checkpoint;

-- Refusals: a transaction that has already written (its own events could
-- never be in this seal), and snapshots that do not move.
BEGIN;
INSERT INTO ledger VALUES (4, 1, 'x', NULL, NULL);
SELECT audit_log.seal();
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT audit_log.seal();
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT audit_log.seal();
ROLLBACK;
-- A seal inside a transaction block that has not written is fine.
BEGIN;
SELECT audit_log.seal() = audit_log.checkpoint() AS in_a_block;
COMMIT;
-- A prepared transaction holds its events back, and every event of the
-- transactions after it, until it ends; seal_status() names it.
BEGIN;
INSERT INTO ledger VALUES (7, 7, 'prepared', NULL, NULL);
PREPARE TRANSACTION 'integrity_pay_7';
INSERT INTO ledger VALUES (8, 8, 'after the prepared one', NULL, NULL);
SELECT audit_log.seal() = audit_log.checkpoint() AS nothing_sealable;
SELECT unsealed_events, waiting_for FROM audit_log.seal_status();
COMMIT PREPARED 'integrity_pay_7';
CALL seal_everything();
SELECT (SELECT events_added FROM audit_log.seals ORDER BY tree_size DESC LIMIT 1) AS events_added,
       unsealed_events, waiting_for
  FROM audit_log.seal_status();

-- seal_status() reads only: a seal may follow it in the same transaction.
BEGIN;
SELECT unsealed_events >= 0 AS status_first FROM audit_log.seal_status();
SELECT audit_log.seal() = audit_log.checkpoint() AS then_seal;
COMMIT;
-- A checkpoint pasted without its last newline is still read.
SELECT count(*) AS problems FROM audit_log.verify(rtrim(audit_log.checkpoint(), E'\n'));
-- A malformed checkpoint is an error, not a verdict.
SELECT * FROM audit_log.verify('not a checkpoint');
SELECT * FROM audit_log.verify(E'audit_log/x\n01\nAAAA\n');

-- Session settings change no hash: leaves are built from export()'s text,
-- which is the same whatever TimeZone, DateStyle, extra_float_digits,
-- search_path or client_encoding say.
SET TimeZone = 'Pacific/Chatham';
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = -3;
SET search_path = ledger_nowhere, pg_catalog;
SET client_encoding = 'LATIN1';
SET IntervalStyle = 'sql_standard';
INSERT INTO public.ledger VALUES (5, 0.30000000000000004, 'settings', '2026-03-29 02:30+02', 2.0/3);
UPDATE public.ledger SET ratio = 1.0/7, booked = '2026-10-25 02:30+01' WHERE id = 5;
CALL public.seal_everything();
SELECT * FROM audit_log.verify();
RESET ALL;
SELECT * FROM audit_log.verify(audit_log.checkpoint());

-- The format is public: a leaf recomputed here in plain SQL from export()'s
-- text (items of tag, 4-byte big-endian length and UTF-8 bytes; the header
-- in clear, the body as its SHA-256) is the leaf seal() stored.
CREATE FUNCTION item(tag int, value text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN ''::bytea
                ELSE set_byte('\x00'::bytea, 0, tag) || int4send(octet_length(convert_to(value, 'UTF8')))
                     || convert_to(value, 'UTF8') END
$$;
CREATE FUNCTION leaf_hash_of(e audit_log.export_row) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256('\x00'::bytea
                  || item(1, e.id) || item(2, e.occurred_at) || item(3, e.tx_id) || item(4, e.actor)
                  || item(5, e.db_user) || item(8, e.entity) || item(9, e.entity_id) || item(10, e.action)
                  || '\x0f00000020'::bytea
                  || sha256(item(6, e.application_name) || item(7, e.client_addr) || item(11, e.changed_fields)
                            || item(12, e.old_values) || item(13, e.new_values) || item(14, e.context)))
$$;
SELECT count(*) AS sealed_events, count(*) FILTER (WHERE leaf_hash_of(x) = l.leaf_hash) AS recomputed_in_sql
  FROM audit_log.export() x
  JOIN audit_log.tree_leaves l ON l.event_id = x.id::bigint
 WHERE x.entity = 'public.ledger';

-- Who may do what: admins seal; readers verify, read checkpoints and the
-- seals; everybody else is refused.
CREATE ROLE integrity_admin IN ROLE audit_log_admin;
CREATE ROLE integrity_reader IN ROLE audit_log_reader;
CREATE ROLE integrity_nobody;
SET ROLE integrity_reader;
SELECT count(*) FROM audit_log.verify();
SELECT audit_log.checkpoint() IS NOT NULL AS reads_checkpoints;
SELECT count(*) > 0 AS reads_seals FROM audit_log.seals;
SELECT tree_size > 0 AS reads_status FROM audit_log.seal_status();
SELECT audit_log.seal();
RESET ROLE;
SET ROLE integrity_admin;
SELECT audit_log.seal() = audit_log.checkpoint() AS admin_seals;
RESET ROLE;
SET ROLE integrity_nobody;
SELECT audit_log.seal();
SELECT * FROM audit_log.verify();
SELECT audit_log.checkpoint();
SELECT * FROM audit_log.seal_status();
SELECT * FROM audit_log.seals;
RESET ROLE;
DROP ROLE integrity_admin, integrity_reader, integrity_nobody;

-- The tree is append-only like the events, even for a superuser who has
-- not disabled its guards.
UPDATE audit_log.tree_leaves SET leaf_hash = '\x00' WHERE leaf_index = 1;
DELETE FROM audit_log.tree_leaves WHERE leaf_index = 1;
TRUNCATE audit_log.tree_leaves;
INSERT INTO audit_log.tree_leaves VALUES (1000000, '\x00', NULL);
UPDATE audit_log.tree_seals SET horizon = 'infinity';
DELETE FROM audit_log.tree_seals;
INSERT INTO audit_log.tree_seals SELECT tree_size + 1000000, seal_leaf_index, watermark, sealed_at,
       horizon, cluster, restored_through, root, frontier FROM audit_log.tree_seals LIMIT 1;
UPDATE audit_log.log_identity SET log_id = gen_random_uuid();
DELETE FROM audit_log.log_identity;
ALTER TABLE audit_log.tree_leaves DISABLE TRIGGER tree_leaves_append_only;
ALTER TABLE audit_log.tree_seals DISABLE TRIGGER ALL;

-- Tampering. A superuser who first disables the guards (the extension's
-- event triggers, then the tables' triggers) can rewrite history; verify()
-- names what was touched, and nothing else. Each case runs in a
-- transaction rolled back at its end.
SELECT max(tree_size) AS size, audit_log.checkpoint() AS kept FROM audit_log.seals \gset
SELECT min(id) AS first_id FROM audit_log.events WHERE entity = 'public.ledger' \gset
SELECT set_config('test.kept', :'kept', false) IS NOT NULL AS kept,
       set_config('test.size', :'size', false) IS NOT NULL AS size,
       set_config('test.first_id', :'first_id', false) IS NOT NULL AS first_id;
CREATE FUNCTION tampered() RETURNS TABLE(problem text, event text, leaf text, detail text)
LANGUAGE sql AS $$
    SELECT v.problem,
           CASE WHEN v.event_id IS NOT NULL
                THEN 'ledger event +' || (v.event_id - current_setting('test.first_id')::bigint) END,
           CASE WHEN v.leaf_index IS NOT NULL
                THEN 'size - ' || (current_setting('test.size')::bigint - v.leaf_index) END,
           regexp_replace(v.detail, '[0-9]+', 'N', 'g')
      FROM audit_log.verify(checkpoint => current_setting('test.kept')) v
$$;
CREATE PROCEDURE disable_guards() LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'audit\_log\_%' LOOP
        EXECUTE format('ALTER EVENT TRIGGER %I DISABLE', t);
    END LOOP;
    ALTER TABLE audit_log.events DISABLE TRIGGER ALL;
    ALTER TABLE audit_log.tree_leaves DISABLE TRIGGER ALL;
    ALTER TABLE audit_log.tree_seals DISABLE TRIGGER ALL;
END
$$;

-- One byte of one sealed value.
BEGIN;
CALL disable_guards();
UPDATE audit_log.events SET new_values = jsonb_set(new_values, '{amount}', '10.51')
 WHERE id = :first_id + 1;
SELECT * FROM tampered();
ROLLBACK;
-- Another actor.
BEGIN;
CALL disable_guards();
UPDATE audit_log.events SET actor = 'someone.else@example.org' WHERE id = :first_id + 2;
SELECT * FROM tampered();
ROLLBACK;
-- An event deleted.
BEGIN;
CALL disable_guards();
DELETE FROM audit_log.events WHERE id = :first_id + 3;
SELECT * FROM tampered();
ROLLBACK;
-- A forged event among sealed ones: its transaction id lies below a
-- watermark already used, so no seal can ever take it.
BEGIN;
CALL disable_guards();
INSERT INTO audit_log.events (id, occurred_at, tx_id, actor, db_user, entity, entity_id, action, new_values)
SELECT :first_id + 1000000, occurred_at, tx_id, 'forger', db_user, entity, '{"id": 9}', 'INSERT', '{"id": 9}'
  FROM audit_log.events WHERE id = :first_id + 2;
SELECT * FROM tampered();
ROLLBACK;
-- A second event under a sealed event's id, a month later (each month's
-- partition keeps its ids unique, the log as a whole cannot).
BEGIN;
CALL disable_guards();
INSERT INTO audit_log.events
SELECT (jsonb_populate_record(e, jsonb_build_object('occurred_at', e.occurred_at + interval '1 month'))).*
  FROM audit_log.events e WHERE id = :first_id + 2;
SELECT * FROM tampered();
ROLLBACK;
-- Two events' values swapped.
BEGIN;
CALL disable_guards();
UPDATE audit_log.events e SET old_values = o.old_values, new_values = o.new_values
  FROM audit_log.events o
 WHERE (e.id, o.id) IN ((:first_id + 1, :first_id + 2), (:first_id + 2, :first_id + 1));
SELECT * FROM tampered();
ROLLBACK;
-- An event rewritten together with its stored leaf hash: the seals' roots
-- no longer agree with the leaves.
BEGIN;
CALL disable_guards();
UPDATE audit_log.events SET actor = 'someone.else@example.org' WHERE id = :first_id + 2;
UPDATE audit_log.tree_leaves l SET leaf_hash = (SELECT leaf_hash_of(x) FROM audit_log.export() x
                                                 WHERE x.id = (:first_id + 2)::text)
 WHERE l.event_id = :first_id + 2;
SELECT problem, detail FROM tampered() GROUP BY problem, detail ORDER BY problem, detail;
ROLLBACK;
-- A seal's horizon moved: its seal leaf no longer matches.
BEGIN;
CALL disable_guards();
UPDATE audit_log.tree_seals SET horizon = 'infinity'
 WHERE tree_size = (SELECT min(tree_size) FROM audit_log.tree_seals);
SELECT problem, event IS NOT NULL AS names_events, count(*) > 0 AS found
  FROM tampered() GROUP BY 1, 2 ORDER BY 1, 2;
ROLLBACK;
-- The newest sealed events deleted with the newest leaves and seal: the
-- tree verifies on its own, the kept checkpoint does not.
BEGIN;
CALL disable_guards();
DELETE FROM audit_log.events WHERE id IN (SELECT event_id FROM audit_log.tree_leaves
                                          WHERE leaf_index >= (SELECT max(seal_leaf_index) FROM audit_log.tree_seals));
DELETE FROM audit_log.tree_leaves WHERE leaf_index >= (SELECT max(seal_leaf_index) FROM audit_log.tree_seals);
DELETE FROM audit_log.tree_seals WHERE tree_size = (SELECT max(tree_size) FROM audit_log.tree_seals);
SELECT count(*) AS problems_without_checkpoint FROM audit_log.verify();
SELECT * FROM tampered();
ROLLBACK;
-- Checkpoints that are not this tree's: a forged root, another log's, a
-- bigger tree than this one.
SELECT problem, regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail FROM audit_log.verify(
    regexp_replace(:'kept', E'\n[^\n]*\n$', E'\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n'));
SELECT problem, regexp_replace(detail, '[0-9a-f-]{36}', '<log id>', 'g') AS detail FROM audit_log.verify(
    regexp_replace(:'kept', '^audit_log/[^\n]*', 'audit_log/00000000-0000-4000-8000-000000000000'));
SELECT problem, regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail FROM audit_log.verify(
    regexp_replace(:'kept', E'\n[0-9]+\n', E'\n999999999\n'));
-- After all this, nothing was changed.
SELECT * FROM audit_log.verify(:'kept');

DROP FUNCTION tampered(), leaf_hash_of(audit_log.export_row), item(int, text);
DROP PROCEDURE disable_guards();
