\set SHOW_CONTEXT never
-- track(), untrack(), track_schema() and the tracked_tables view.
CREATE SCHEMA school;
CREATE TABLE school.trainings (
    id       int PRIMARY KEY,
    title    text NOT NULL,
    price    numeric,
    notes    text,
    password text
);
CREATE TABLE school.sessions (id int PRIMARY KEY, training_id int, starts_on date);
CREATE TABLE school.learners (email text NOT NULL, name text);   -- no primary key
CREATE TABLE school.rooms (code text NOT NULL, floor int);
CREATE UNIQUE INDEX rooms_code ON school.rooms (code);
ALTER TABLE school.rooms REPLICA IDENTITY USING INDEX rooms_code;

SET audit_log.actor = 'dba@example.org';

-- track() starts capture and records a TRACK event holding the options.
SELECT audit_log.track('school.trainings', exclude_columns => '{notes}', redact_columns => '{password}');
SELECT entity, exclude_columns, redact_columns, tracked_by FROM audit_log.tracked_tables ORDER BY entity;
SELECT actor, db_user, entity, entity_id, action, old_values, new_values, changed_fields
  FROM audit_log.events WHERE entity LIKE 'school.%' ORDER BY id;

-- Capture triggers: AFTER row triggers and a TRUNCATE statement trigger.
SELECT tgname ~ '^audit_log_(row|truncate)_[0-9]+$' AS named_by_audit_log,
       tgfoid::regprocedure, pg_get_triggerdef(oid) ~ 'FOR EACH ROW' AS per_row
  FROM pg_trigger WHERE tgrelid = 'school.trainings'::regclass ORDER BY 2;

-- Calling it again replaces the options (and records another TRACK event).
SELECT audit_log.track('school.trainings', redact_columns => '{password,notes}');
SELECT entity, exclude_columns, redact_columns FROM audit_log.tracked_tables ORDER BY entity;
SELECT count(*) AS capture_triggers FROM pg_trigger WHERE tgrelid = 'school.trainings'::regclass;

-- Repeated names are kept once; NULL arrays mean no option.
SELECT audit_log.track('school.trainings', NULL, '{password,password}');
SELECT exclude_columns, redact_columns FROM audit_log.tracked_tables WHERE entity = 'school.trainings';

-- A table without primary key can be tracked: entity_id will be NULL, and a WARNING says so.
SELECT audit_log.track('school.learners');
-- The replica-identity index stands in for a missing primary key.
SELECT audit_log.track('school.rooms');
SELECT audit_log.identity_columns('school.rooms'), audit_log.identity_columns('school.trainings');

-- Refusals: each is a clear error with its SQLSTATE, and changes nothing.
CREATE VIEW school.v_trainings AS SELECT * FROM school.trainings;
CREATE MATERIALIZED VIEW school.mv_trainings AS SELECT * FROM school.trainings;
CREATE SEQUENCE school.seq;
CREATE TEMPORARY TABLE scratch (id int PRIMARY KEY);
CREATE FOREIGN DATA WRAPPER dummy_fdw;
CREATE SERVER dummy_server FOREIGN DATA WRAPPER dummy_fdw;
CREATE FOREIGN TABLE school.remote (id int) SERVER dummy_server;
SELECT sqlstate_of($$SELECT audit_log.track('school.v_trainings')$$) AS view;
SELECT sqlstate_of($$SELECT audit_log.track('school.mv_trainings')$$) AS materialized_view;
SELECT sqlstate_of($$SELECT audit_log.track('school.remote')$$) AS foreign_table;
SELECT sqlstate_of($$SELECT audit_log.track('school.seq')$$) AS sequence;
SELECT sqlstate_of($$SELECT audit_log.track('scratch')$$) AS temporary_table;
SELECT sqlstate_of($$SELECT audit_log.track('pg_catalog.pg_class')$$) AS system_catalog;
SELECT sqlstate_of($$SELECT audit_log.track('audit_log.events')$$) AS own_table;
SELECT sqlstate_of($$SELECT audit_log.track('audit_log.tracked')$$) AS own_config;
SELECT sqlstate_of($$SELECT audit_log.track('school.nope')$$) AS unknown_table;
SELECT sqlstate_of($$SELECT audit_log.track(NULL)$$) AS null_table;
SELECT sqlstate_of($$SELECT audit_log.track('school.sessions', '{nope}')$$) AS unknown_excluded;
SELECT sqlstate_of($$SELECT audit_log.track('school.sessions', '{}', '{starts_on,nope}')$$) AS unknown_redacted;
SELECT sqlstate_of($$SELECT audit_log.track('school.sessions', '{id}')$$) AS excluded_key;
SELECT sqlstate_of($$SELECT audit_log.track('school.sessions', '{}', '{id}')$$) AS redacted_key;
SELECT sqlstate_of($$SELECT audit_log.track('school.rooms', '{code}')$$) AS excluded_replica_identity;
SELECT sqlstate_of($$SELECT audit_log.track('school.sessions', '{starts_on}', '{starts_on}')$$) AS both;
SELECT sqlstate_of($$SELECT audit_log.track('school.sessions', '{NULL}')$$) AS null_column;
-- The error as psql shows it:
SELECT audit_log.track('school.sessions', exclude_columns => '{id}');
-- ... and nothing was done: sessions is not tracked, has no trigger, no event.
SELECT count(*) AS tracked FROM audit_log.tracked_tables WHERE entity = 'school.sessions';
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'school.sessions'::regclass;
SELECT count(*) AS events FROM audit_log.events WHERE entity = 'school.sessions';
-- A failure after the first steps rolls them back too: the re-track of trainings
-- with a bad option leaves its previous options and triggers in place.
SELECT audit_log.track('school.trainings', '{nope}');
SELECT exclude_columns, redact_columns FROM audit_log.tracked_tables WHERE entity = 'school.trainings';

-- untrack() stops capture, keeps the history and records an UNTRACK event.
SELECT audit_log.untrack('school.learners');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'school.learners'::regclass;
INSERT INTO school.learners VALUES ('x@example.org', 'X');
SELECT entity, action, new_values FROM audit_log.events WHERE entity = 'school.learners' ORDER BY id;
SELECT sqlstate_of($$SELECT audit_log.untrack('school.learners')$$) AS not_tracked;
SELECT sqlstate_of($$SELECT audit_log.untrack(NULL)$$) AS null_table;

-- track_schema() tracks every table of a schema, counts those already tracked
-- (keeping their options), and honours exclude_tables.
CREATE SCHEMA crm;
CREATE TABLE crm.accounts (id int PRIMARY KEY);
CREATE TABLE crm.contacts (id int PRIMARY KEY, account_id int);
CREATE TABLE crm.audit_scratch (id int PRIMARY KEY);
CREATE TABLE crm.events (id int, at timestamptz, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE crm.events_2026 PARTITION OF crm.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT audit_log.track('crm.contacts', exclude_columns => '{account_id}');
SELECT audit_log.track_schema('crm', exclude_tables => '{audit_scratch}');
SELECT entity, exclude_columns FROM audit_log.tracked_tables WHERE entity LIKE 'crm.%' ORDER BY entity;
SELECT schema_name, exclude_tables, follow_new_tables FROM audit_log.tracked_schemas;
SELECT audit_log.track_schema('crm', exclude_tables => '{audit_scratch}');
SELECT sqlstate_of($$SELECT audit_log.track_schema('nope')$$) AS unknown_schema;
SELECT sqlstate_of($$SELECT audit_log.track_schema('crm', '{nope}')$$) AS unknown_excluded_table;
SELECT sqlstate_of($$SELECT audit_log.track_schema(NULL)$$) AS null_schema;

-- The trail of all this, oldest first.
SELECT actor, entity, action, new_values FROM audit_log.events
 WHERE entity LIKE 'school.%' OR entity LIKE 'crm.%' ORDER BY id;

RESET audit_log.actor;
