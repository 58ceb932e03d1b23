-- A training organisation's schema, audited for a Qualiopi audit.
\set ON_ERROR_STOP on
\pset pager off
\pset footer off
SET client_min_messages = warning;

\echo '== 1. The DBA installs the extension and turns auditing on, without touching the application'
CREATE EXTENSION audit_log;
CREATE SCHEMA training;
CREATE TABLE training.trainings (
    id             serial PRIMARY KEY,
    title          text NOT NULL,
    duration_hours int,
    price          numeric(8, 2)
);
CREATE TABLE training.sessions (
    id          serial PRIMARY KEY,
    training_id int NOT NULL REFERENCES training.trainings,
    starts_on   date,
    trainer     text,
    room        text
);
CREATE TABLE training.learners (
    id           serial PRIMARY KEY,
    full_name    text NOT NULL,
    email        text,
    phone        text,
    satisfaction int
);
-- Phone numbers are personal data: recorded as changed, never shown.
SELECT audit_log.track('training.learners', redact_columns => '{phone}');
-- Every other table of the schema; learners keeps its options.
SELECT audit_log.track_schema('training') AS tables_tracked;
SELECT entity, exclude_columns, redact_columns, tracked_by FROM audit_log.tracked_tables ORDER BY entity;

\echo '== 2. Alice (pedagogical manager) creates a training and a session, through the app'
BEGIN;
SELECT audit_log.set_actor('alice@certeef.example', '{"request_id": "req-1001", "ip": "203.0.113.10"}');
INSERT INTO training.trainings (title, duration_hours, price) VALUES ('SQL for analysts', 14, 900.00);
INSERT INTO training.sessions (training_id, starts_on, trainer, room) VALUES (1, '2026-12-07', 'Bob', 'Room A');
COMMIT;

\echo '== 3. Bob (trainer) enrols learners, moves the session and records satisfaction'
BEGIN;
SELECT audit_log.set_actor('bob@certeef.example', '{"request_id": "req-1002"}');
INSERT INTO training.learners (full_name, email, phone) VALUES
    ('Ada Lovelace', 'ada@example.org', '+33 6 00 00 00 01'),
    ('Alan Turing', 'alan@example.org', '+33 6 00 00 00 02');
UPDATE training.sessions SET room = 'Room B', starts_on = '2026-12-08' WHERE id = 1;
UPDATE training.learners SET satisfaction = 9 WHERE id = 1;
UPDATE training.learners SET phone = '+33 6 99 99 99 99' WHERE id = 2;
COMMIT;

\echo '== 4. Alice changes the price, then deletes a learner enrolled by mistake'
BEGIN;
SELECT audit_log.set_actor('alice@certeef.example', '{"request_id": "req-1003", "reason": "2027 price list"}');
UPDATE training.trainings SET price = 950.00 WHERE id = 1;
DELETE FROM training.learners WHERE id = 2;
COMMIT;

\echo '== 5. A rolled-back change leaves no trace; an UPDATE that changes nothing neither'
BEGIN;
SELECT audit_log.set_actor('mallory@certeef.example');
DELETE FROM training.trainings WHERE false;
UPDATE training.learners SET satisfaction = 1;
ROLLBACK;
UPDATE training.trainings SET price = price;

\echo '== 6. The trail, newest first: who changed what, when'
SELECT id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS "when (UTC)",
       coalesce(actor, db_user) AS who, entity, entity_id, action, changed_fields
  FROM audit_log.list();

\echo '== 7. What Bob did to learners'
SELECT id, entity_id, action, changed_fields
  FROM audit_log.list(actor => 'bob@certeef.example', entity => 'learners');

\echo '== 8. The story of one training, oldest first'
SELECT id, actor, action, changed_fields FROM audit_log.history('trainings', '{"id": 1}');

\echo '== 9. One change in detail: before and after'
SELECT id AS price_change FROM audit_log.list(entity => 'trainings', action => 'update', max_rows => 1) \gset
SELECT * FROM audit_log.changes(:price_change);

\echo '== 10. The trail cannot be edited, not even by a superuser'
\set ON_ERROR_STOP off
DELETE FROM audit_log.events WHERE actor = 'alice@certeef.example';
\set ON_ERROR_STOP on

\echo '== 11. Export for the auditor (CSV)'
\copy (SELECT * FROM audit_log.export()) TO 'audit.csv' WITH (FORMAT csv, HEADER)

\echo '== 12. Sealing: the trail becomes a Merkle tree; the auditor keeps its checkpoint'
-- A seal takes the events of ended transactions; a second one, a moment
-- later, takes what an autovacuum's transaction may have held back.
SELECT audit_log.seal() IS NOT NULL AS first_seal, pg_sleep(0.5) \gset
SELECT audit_log.seal() AS checkpoint \gset
\echo :checkpoint
SELECT tree_size, events_added, horizon <= sealed_at AS horizon_ok FROM audit_log.seals;
SELECT * FROM audit_log.verify(:'checkpoint');

\echo '== 13. Proof for the auditor: the export and its proof, from one snapshot'
BEGIN ISOLATION LEVEL REPEATABLE READ;
\copy (SELECT * FROM audit_log.export()) TO 'audit.csv' WITH (FORMAT csv, HEADER)
\pset tuples_only on
\pset format unaligned
\o audit.proof
SELECT audit_log.export_proof();
\o
\pset tuples_only off
\pset format aligned
COMMIT;
