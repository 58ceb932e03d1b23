\set SHOW_CONTEXT never
-- Reading the trail: list(), history(), changes().
CREATE SCHEMA rd;
CREATE SCHEMA "Sales Team";
CREATE TABLE rd.courses (id int PRIMARY KEY, title text, price numeric);
CREATE TABLE rd."Pupils" (id int PRIMARY KEY, name text);
CREATE TABLE "Sales Team"."Pupils" (id int PRIMARY KEY, name text);
CREATE TABLE rd.registrations (region text, id int, learner text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE rd.registrations_eu PARTITION OF rd.registrations FOR VALUES IN ('eu');
CREATE TABLE rd.registrations_us PARTITION OF rd.registrations FOR VALUES IN ('us');
SELECT audit_log.track_schema('rd');
SELECT audit_log.track('"Sales Team"."Pupils"');

-- Events are numbered from here on, so that the output does not depend on
-- the tests before this one.
SELECT coalesce(max(id), 0) AS base FROM audit_log.events \gset
CREATE VIEW rd.trail AS
SELECT e.id - :base AS n, e.actor, e.entity, e.entity_id, e.action, e.changed_fields
  FROM audit_log.events e;

SET audit_log.actor = 'alice@example.org';
INSERT INTO rd.courses VALUES (1, 'SQL', 100), (2, 'Rust', 200);
SELECT now() AS t_alice \gset
SET audit_log.actor = 'bob@example.org';
UPDATE rd.courses SET price = 110 WHERE id = 1;
INSERT INTO rd."Pupils" VALUES (1, 'Ada');
INSERT INTO "Sales Team"."Pupils" VALUES (1, 'Alan');
SELECT occurred_at AS t_bob_learner FROM audit_log.events ORDER BY id DESC LIMIT 1 \gset
RESET audit_log.actor;
UPDATE rd.courses SET id = 10 WHERE id = 1;          -- a new key
UPDATE rd.courses SET title = 'SQL II' WHERE id = 10;
DELETE FROM rd.courses WHERE id = 2;
INSERT INTO rd.registrations VALUES ('eu', 1, 'Ada');
UPDATE rd.registrations_eu SET learner = 'Ada L.' WHERE id = 1;
TRUNCATE rd."Pupils";

-- Newest first; max_rows pages (default 100).
SELECT l.id - :base AS n, l.actor, l.entity, l.entity_id, l.action FROM audit_log.list() l WHERE l.id > :base;
SELECT l.id - :base AS n, l.action FROM audit_log.list(max_rows => 3) l;

-- Each filter alone.
SELECT l.id - :base AS n, l.actor, l.action FROM audit_log.list(actor => 'bob@example.org') l;
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(action => 'update') l WHERE l.id > :base;
SELECT l.id - :base AS n, l.action FROM audit_log.list(action => 'TrUnCaTe') l WHERE l.id > :base;
-- since is inclusive, until exclusive.
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(since => :'t_bob_learner') l;
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(until => :'t_bob_learner') l WHERE l.id > :base;
SELECT count(*) AS empty_period FROM audit_log.list(since => :'t_bob_learner', until => :'t_bob_learner');

-- entity: schema.table or a bare name, case-sensitive, with or without quotes.
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(entity => 'rd.courses') l WHERE l.id > :base;
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(entity => 'courses') l WHERE l.id > :base;
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(entity => 'Pupils') l WHERE l.id > :base;
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(entity => '"Sales Team"."Pupils"') l WHERE l.id > :base;
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(entity => 'Sales Team.Pupils') l WHERE l.id > :base;
SELECT l.id - :base AS n, l.entity, l.action FROM audit_log.list(entity => 'rd."Pupils"') l WHERE l.id > :base;
SELECT count(*) AS lower_case_is_another_table FROM audit_log.list(entity => 'pupils');
SELECT count(*) AS unknown_table FROM audit_log.list(entity => 'nope.nothing');
-- A partitioned table is listed under its own name, whatever the partition.
SELECT l.id - :base AS n, l.entity, l.entity_id, l.action FROM audit_log.list(entity => 'registrations') l WHERE l.id > :base;

-- Filters combine with AND.
SELECT l.id - :base AS n, l.actor, l.entity, l.action
  FROM audit_log.list(since => :'t_alice', actor => 'bob@example.org', entity => 'Pupils', action => 'insert') l;

-- Keyset paging: before_id continues below the last event seen, and events
-- written meanwhile neither shift nor repeat the next page.
SELECT min(l.id) AS last_seen FROM audit_log.list(max_rows => 4) l \gset
SELECT l.id - :base AS n, l.action FROM audit_log.list(max_rows => 4, before_id => :last_seen) l;
INSERT INTO rd.courses VALUES (3, 'Go', 300), (4, 'Zig', 400);
SELECT l.id - :base AS n, l.action FROM audit_log.list(max_rows => 4, before_id => :last_seen) l;
-- Walking every page gives every event exactly once.
WITH RECURSIVE pages(page, ids) AS (
    SELECT 1, ARRAY(SELECT id FROM audit_log.list(max_rows => 5) ORDER BY occurred_at DESC, id DESC)
    UNION ALL
    SELECT page + 1, ARRAY(SELECT id FROM audit_log.list(max_rows => 5, before_id => ids[cardinality(ids)])
                            ORDER BY occurred_at DESC, id DESC)
      FROM pages WHERE cardinality(ids) = 5
)
SELECT count(*) = count(DISTINCT id) AS none_repeated,
       count(*) = (SELECT count(*) FROM audit_log.events) AS none_skipped
  FROM pages, unnest(ids) AS id;

-- Bad filters are errors; an action no event has (any well-formed word:
-- applications write their own) finds nothing.
SELECT sqlstate_of($$SELECT * FROM audit_log.list(action => 'CREATE')$$) AS unknown_action;
SELECT sqlstate_of($$SELECT * FROM audit_log.list(action => 'create table')$$) AS malformed_action;
SELECT sqlstate_of($$SELECT * FROM audit_log.list(max_rows => 0)$$) AS zero_rows;
SELECT sqlstate_of($$SELECT * FROM audit_log.list(max_rows => NULL)$$) AS null_rows;
SELECT sqlstate_of($$SELECT * FROM audit_log.list(since => '2026-02-01', until => '2026-01-01')$$) AS backwards;
SELECT sqlstate_of($$SELECT * FROM audit_log.list(before_id => -1)$$) AS unknown_before_id;
SELECT sqlstate_of($$SELECT * FROM audit_log.list(entity => 'a.b.c')$$) AS bad_name;
SELECT sqlstate_of($$SELECT * FROM audit_log.list(entity => '"unterminated')$$) AS bad_quotes;
SELECT * FROM audit_log.list(action => 'create table');

-- history(): one row's events, oldest first, across its key change.
SELECT h.id - :base AS n, h.entity_id, h.action, h.changed_fields FROM audit_log.history('courses', '{"id": 10}') h;
SELECT h.id - :base AS n, h.entity_id, h.action FROM audit_log.history('rd.courses', '{"id": 1}') h;
SELECT h.id - :base AS n, h.entity_id, h.action FROM audit_log.history('registrations', '{"region": "eu", "id": 1}') h;
SELECT count(*) AS no_such_row FROM audit_log.history('courses', '{"id": 999}');
SELECT count(*) AS no_such_table FROM audit_log.history('nothing', '{"id": 1}');
SELECT sqlstate_of($$SELECT * FROM audit_log.history('Pupils', '{"id": 1}')$$) AS ambiguous;
SELECT h.entity, h.action FROM audit_log.history('"Sales Team"."Pupils"', '{"id": 1}') h;
SELECT sqlstate_of($$SELECT * FROM audit_log.history(NULL, '{"id": 1}')$$) AS null_entity;
-- The history of a dropped table stays reachable.
CREATE TABLE rd.ephemeral (id int PRIMARY KEY, v text);
SELECT audit_log.track('rd.ephemeral');
INSERT INTO rd.ephemeral VALUES (1, 'x');
DROP TABLE rd.ephemeral;
SELECT h.entity, h.action, h.new_values FROM audit_log.history('ephemeral', '{"id": 1}') h;

-- changes(): one event, a row per field.
SELECT id AS update_id FROM audit_log.events WHERE entity = 'rd.courses' AND changed_fields = '{price}' \gset
SELECT * FROM audit_log.changes(:update_id);
SELECT id AS insert_id FROM audit_log.events WHERE entity = 'rd.courses' AND action = 'INSERT' ORDER BY id LIMIT 1 \gset
SELECT * FROM audit_log.changes(:insert_id);
SELECT id AS delete_id FROM audit_log.events WHERE entity = 'rd.courses' AND action = 'DELETE' \gset
SELECT * FROM audit_log.changes(:delete_id);
SELECT id AS truncate_id FROM audit_log.events WHERE entity = 'rd."Pupils"' AND action = 'TRUNCATE' \gset
SELECT count(*) AS truncate_fields FROM audit_log.changes(:truncate_id);
SELECT id AS track_id FROM audit_log.events WHERE entity = 'rd.courses' AND action = 'TRACK' \gset
SELECT count(*) AS track_fields FROM audit_log.changes(:track_id);
SELECT count(*) AS unknown_event FROM audit_log.changes(-1);
SELECT count(*) AS null_event FROM audit_log.changes(NULL);
