\set SHOW_CONTEXT never
-- Partitioned tables: the events name the tracked parent, not the leaf.
CREATE SCHEMA part;
CREATE TABLE part.enrolments (
    region text NOT NULL,
    id     int  NOT NULL,
    learner text,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE TABLE part.enrolments_eu PARTITION OF part.enrolments FOR VALUES IN ('eu');
-- A sub-partitioned branch, and a partition whose columns are in another order.
CREATE TABLE part.enrolments_us PARTITION OF part.enrolments FOR VALUES IN ('us') PARTITION BY HASH (id);
CREATE TABLE part.enrolments_us_0 PARTITION OF part.enrolments_us FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE part.enrolments_us_1 PARTITION OF part.enrolments_us FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE part.enrolments_asia (learner text, id int NOT NULL, region text NOT NULL);
ALTER TABLE part.enrolments ATTACH PARTITION part.enrolments_asia FOR VALUES IN ('asia');

SELECT audit_log.track('part.enrolments', redact_columns => '{learner}');

INSERT INTO part.enrolments VALUES ('eu', 1, 'Ada'), ('us', 2, 'Bob'), ('us', 3, 'Cy'), ('asia', 4, 'Dee');
UPDATE part.enrolments SET learner = 'Ada L.' WHERE id = 1;
UPDATE part.enrolments_asia SET learner = 'Dee D.' WHERE id = 4;
DELETE FROM part.enrolments_us_1 WHERE true;
SELECT entity, entity_id, action, old_values, new_values, changed_fields
  FROM audit_log.events WHERE entity LIKE 'part.%' AND action <> 'TRACK' ORDER BY id;

-- A partition created after track() is covered too.
CREATE TABLE part.enrolments_africa PARTITION OF part.enrolments FOR VALUES IN ('africa');
INSERT INTO part.enrolments VALUES ('africa', 5, 'Eve');
SELECT entity, entity_id, action FROM audit_log.events WHERE entity LIKE 'part.%' ORDER BY id DESC LIMIT 1;

-- TRUNCATE of the parent, or of a single partition, is one TRUNCATE event of the parent.
TRUNCATE part.enrolments_eu;
TRUNCATE part.enrolments;
TRUNCATE part.enrolments_us_0, part.enrolments_asia;
SELECT entity, action FROM audit_log.events WHERE entity LIKE 'part.%' AND action = 'TRUNCATE' ORDER BY id;

-- A partition cannot be tracked on its own while its parent is.
SELECT sqlstate_of($$SELECT audit_log.track('part.enrolments_eu')$$) AS partition_of_tracked;

-- Tracking the parent takes over partitions that were tracked on their own.
CREATE TABLE part.invoices (id int, year int, PRIMARY KEY (id, year)) PARTITION BY LIST (year);
CREATE TABLE part.invoices_2026 PARTITION OF part.invoices FOR VALUES IN (2026);
SELECT audit_log.track('part.invoices_2026');
SELECT audit_log.track('part.invoices');
SELECT entity, action FROM audit_log.events WHERE entity LIKE 'part.invoices%' ORDER BY id;
INSERT INTO part.invoices VALUES (1, 2026);
SELECT count(*) AS events_for_one_insert FROM audit_log.events
 WHERE entity LIKE 'part.invoices%' AND action = 'INSERT';

-- untrack() of the parent removes the triggers of every partition.
SELECT audit_log.untrack('part.enrolments');
SELECT count(*) AS capture_triggers_left FROM pg_trigger t
 WHERE t.tgrelid IN (SELECT relid FROM pg_partition_tree('part.enrolments'))
   AND t.tgfoid IN ('audit_log.capture_row()'::regprocedure, 'audit_log.capture_truncate()'::regprocedure);
INSERT INTO part.enrolments VALUES ('eu', 6, 'Fay');
TRUNCATE part.enrolments_eu;
SELECT entity, action FROM audit_log.events WHERE entity = 'part.enrolments' ORDER BY id DESC LIMIT 1;
