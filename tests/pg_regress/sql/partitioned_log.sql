\set SHOW_CONTEXT never
-- Capture writes straight into the partition of a partitioned log that takes
-- the statement's start time, found from the partition bounds (no tuple
-- routing through SQL), else into the default partition. The log is turned
-- into a partitioned one by hand here, in a database of its own.
CREATE DATABASE audit_log_partitioned;
\c audit_log_partitioned
SET client_min_messages = warning;
CREATE EXTENSION audit_log;
CREATE FUNCTION sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE TABLE trainings (id int PRIMARY KEY, title text);
SELECT audit_log.track('trainings');
INSERT INTO trainings VALUES (1, 'before partitioning');
-- What was written so far stays where it is, in a partition ending now.
DO $$
DECLARE
    boundary timestamptz := clock_timestamp();
    next_month timestamptz := date_trunc('month', now()) + interval '1 month';
BEGIN
    ALTER TABLE audit_log.events RENAME TO events_until_now;
    CREATE TABLE audit_log.events (LIKE audit_log.events_until_now INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
        PARTITION BY RANGE (occurred_at);
    EXECUTE format('ALTER TABLE audit_log.events ATTACH PARTITION audit_log.events_until_now
                    FOR VALUES FROM (MINVALUE) TO (%L)', boundary);
    EXECUTE format('CREATE TABLE audit_log.events_current PARTITION OF audit_log.events
                    FOR VALUES FROM (%L) TO (%L)', boundary, next_month);
    EXECUTE format('CREATE TABLE audit_log.events_next_month PARTITION OF audit_log.events
                    FOR VALUES FROM (%L) TO (%L)', next_month, next_month + interval '1 month');
END
$$;

-- This statement's events go to the partition of its start time, however many rows.
SET audit_log.actor = 'alice';
INSERT INTO trainings SELECT g, 'row ' || g FROM generate_series(2, 1001) AS g;
UPDATE trainings SET title = 'renamed' WHERE id = 1;
SELECT e.tableoid::regclass AS partition, e.action, count(*)
  FROM audit_log.events e GROUP BY 1, 2 ORDER BY e.tableoid::regclass::text, e.action;

-- Reading, sealing and verifying work across partitions. (export() is
-- left out: a BEGIN ATOMIC body is bound to the table it was created on, the
-- one renamed above; the upgrade that partitions the log re-creates it.)
SELECT count(*) AS listed FROM audit_log.list(actor => 'alice', max_rows => 2000);
SELECT action, entity_id FROM audit_log.history('trainings', '{"id": 1}');
SELECT audit_log.seal() IS NOT NULL AS sealed;
SELECT count(*) AS problems FROM audit_log.verify();


-- Without a partition for the statement's time, the default one takes it.
ALTER TABLE audit_log.events DETACH PARTITION audit_log.events_current;
CREATE TABLE audit_log.events_default PARTITION OF audit_log.events DEFAULT;
DELETE FROM trainings WHERE id = 2;
SELECT e.tableoid::regclass AS partition, e.action, e.entity_id
  FROM audit_log.events e WHERE e.action = 'DELETE';

-- And with neither, the write fails, and so does the change: nothing is lost.
ALTER TABLE audit_log.events DETACH PARTITION audit_log.events_default;
SELECT regexp_replace(sqlstate_of($$DELETE FROM trainings WHERE id = 3$$), 'at .*', 'at <now>') AS no_partition;
SELECT count(*) AS still_there FROM trainings WHERE id = 3;
ALTER TABLE audit_log.events ATTACH PARTITION audit_log.events_default DEFAULT;

\c audit_log_regress
DROP DATABASE audit_log_partitioned;
