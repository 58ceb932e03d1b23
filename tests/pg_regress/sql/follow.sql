\set SHOW_CONTEXT never
-- track_schema(..., follow_new_tables => true): tables created in the schema
-- later are tracked as they are created, by whoever creates them.
CREATE SCHEMA crm2;
CREATE TABLE crm2.contacts (id int PRIMARY KEY, email text);
CREATE TABLE crm2.scratch (id int);
SELECT audit_log.track_schema('crm2', exclude_tables => '{scratch}');
SELECT * FROM audit_log.tracked_schema_settings WHERE schema_name = 'crm2';
SET audit_log.actor = 'migrations';
CREATE TABLE crm2.deals (id int PRIMARY KEY, amount numeric);
CREATE TABLE crm2.deals_2025 AS SELECT 1 AS id, 10.0 AS amount;
SELECT 2 AS id, 'x' AS tag INTO crm2.tags;
CREATE TEMP TABLE notes (id int);
-- An excluded name stays excluded, even for a new table of that name.
DROP TABLE crm2.scratch;
CREATE TABLE crm2.scratch (id int);
SELECT entity FROM audit_log.tracked_tables WHERE entity LIKE 'crm2.%' ORDER BY entity;
SELECT actor, entity, action FROM audit_log.events
 WHERE entity LIKE 'crm2.%' AND action = 'TRACK' ORDER BY id;
INSERT INTO crm2.deals VALUES (1, 100);
SELECT entity, action, new_values FROM audit_log.events WHERE entity = 'crm2.deals' AND action = 'INSERT';

-- A partitioned table created there is tracked; its partitions follow it
-- (TRUNCATE of one partition included) instead of being tracked on their own.
CREATE TABLE crm2.orders (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE crm2.orders_eu PARTITION OF crm2.orders FOR VALUES IN ('eu');
INSERT INTO crm2.orders VALUES (1, 'eu');
TRUNCATE crm2.orders_eu;
SELECT entity, action, entity_id FROM audit_log.events WHERE entity LIKE 'crm2.orders%' ORDER BY id;

-- A table full of rows, tracked on its own when it was created, attached as a
-- partition: its own tracking ends (UNTRACK), the parent's takes over, and
-- no trigger name collides.
CREATE TABLE crm2.orders_us (id int, region text, PRIMARY KEY (id, region));
INSERT INTO crm2.orders_us SELECT g, 'us' FROM generate_series(1, 3) g;
ALTER TABLE crm2.orders ATTACH PARTITION crm2.orders_us FOR VALUES IN ('us');
UPDATE crm2.orders SET id = id + 10 WHERE region = 'us' AND id = 1;
TRUNCATE crm2.orders_us;
SELECT entity, action, entity_id, new_values - 'statement' AS details FROM audit_log.events
 WHERE entity LIKE 'crm2.orders%' AND id > (SELECT max(id) FROM audit_log.events WHERE entity = 'crm2.orders_us' AND action = 'TRACK')
 ORDER BY id;
SELECT tgrelid::regclass AS partition, count(*) AS capture_triggers
  FROM pg_trigger WHERE tgrelid IN ('crm2.orders_eu'::regclass, 'crm2.orders_us'::regclass)
 GROUP BY 1 ORDER BY 1;

-- Detached, a partition leaves the parent's capture: the detach is recorded,
-- and its later changes are not the parent's.
ALTER TABLE crm2.orders DETACH PARTITION crm2.orders_eu;
INSERT INTO crm2.orders_eu VALUES (5, 'eu');
TRUNCATE crm2.orders_eu;
SELECT entity, action, new_values - 'statement' AS details FROM audit_log.events
 WHERE entity LIKE 'crm2.orders%' ORDER BY id DESC LIMIT 1;
SELECT count(*) AS capture_triggers_left FROM pg_trigger
 WHERE tgrelid = 'crm2.orders_eu'::regclass AND tgname LIKE 'audit_log%';

-- Following can be turned off (track_schema() again, same exclusions).
SELECT audit_log.track_schema('crm2', exclude_tables => '{scratch}', follow_new_tables => false);
SELECT * FROM audit_log.tracked_schema_settings WHERE schema_name = 'crm2';
CREATE TABLE crm2.later (id int PRIMARY KEY);
SELECT count(*) AS later_tracked FROM audit_log.tracked_tables WHERE entity = 'crm2.later';
RESET audit_log.actor;
DROP SCHEMA crm2 CASCADE;
