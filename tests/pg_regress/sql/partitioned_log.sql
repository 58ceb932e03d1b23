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
-- What was written so far stays where it is, in a partition ending now;
-- then partitions made by the extension (indexes and guards of their own).
DO $$
DECLARE
    boundary timestamptz := clock_timestamp();
    next_month timestamptz := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
BEGIN
    ALTER TABLE audit_log.events RENAME TO events_until_now;
    CREATE TABLE audit_log.events (LIKE audit_log.events_until_now INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
        PARTITION BY RANGE (occurred_at);
    EXECUTE format('ALTER TABLE audit_log.events ATTACH PARTITION audit_log.events_until_now
                    FOR VALUES FROM (MINVALUE) TO (%L)', boundary);
    PERFORM audit_log.create_partition(boundary, next_month);
    PERFORM audit_log.create_partition(next_month, (next_month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
END
$$;
-- Names follow where a partition starts; what matters here is which is which.
CREATE FUNCTION part(partition regclass) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN partition::text = 'audit_log.events_until_now' THEN 'until now'
                WHEN partition::text ~ '^audit_log\.events_\d{4}_\d{2}_\d{2}_\d{6}$' THEN 'rest of this month'
                WHEN partition::text ~ '^audit_log\.events_\d{4}_\d{2}$' THEN 'next month'
                ELSE partition::text END
$$;
SELECT part(c.oid::regclass) AS partition,
       (SELECT string_agg(regexp_replace(i.relname, '^events_[0-9_]+', ''), ' ' ORDER BY i.relname)
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid) AS indexes,
       (SELECT string_agg(regexp_replace(t.tgname, '_[0-9]+$', '') || ':' || t.tgenabled::text, ' ' ORDER BY t.tgname)
          FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgisinternal) AS guards
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'audit_log.events'::regclass AND c.relname <> 'events_until_now'
 ORDER BY 1;

-- This statement's events go to the partition of its start time, however many rows.
SET audit_log.actor = 'alice';
INSERT INTO trainings SELECT g, 'row ' || g FROM generate_series(2, 1001) AS g;
UPDATE trainings SET title = 'renamed' WHERE id = 1;
SELECT part(e.tableoid) AS partition, e.action, count(*)
  FROM audit_log.events e GROUP BY 1, 2 ORDER BY 1, 2;

-- Reading, sealing and verifying work across partitions. (export() is
-- left out: a BEGIN ATOMIC body is bound to the table it was created on, the
-- one renamed above; the upgrade that partitions the log re-creates it.)
SELECT count(*) AS listed FROM audit_log.list(actor => 'alice', max_rows => 2000);
SELECT action, entity_id FROM audit_log.history('trainings', '{"id": 1}');
SELECT audit_log.seal() IS NOT NULL AS sealed;
SELECT count(*) AS problems FROM audit_log.verify();


-- Each partition refuses what the log refuses, even when named directly,
-- also under session_replication_role = replica.
SELECT e.tableoid::regclass AS current_partition
  FROM audit_log.events e WHERE part(e.tableoid) = 'rest of this month' LIMIT 1 \gset
SELECT sqlstate_of(format('UPDATE %s SET actor = %L', :'current_partition', 'mallory')) AS update_partition;
SELECT sqlstate_of(format('DELETE FROM %s', :'current_partition')) AS delete_partition;
SELECT sqlstate_of(format('TRUNCATE %s', :'current_partition')) AS truncate_partition;
SET session_replication_role = replica;
SELECT sqlstate_of(format('INSERT INTO %s SELECT * FROM %s LIMIT 1', :'current_partition', :'current_partition')) AS forge_in_partition;
RESET session_replication_role;
SELECT count(*) AS untouched FROM audit_log.events WHERE actor = 'alice';

-- Without a partition for the statement's time, the default one takes it.
DO $$
BEGIN
    EXECUTE (SELECT format('ALTER TABLE audit_log.events DETACH PARTITION %s', e.tableoid::regclass)
               FROM audit_log.events e WHERE part(e.tableoid) = 'rest of this month' LIMIT 1);
END
$$;
CREATE TABLE audit_log.events_default PARTITION OF audit_log.events DEFAULT;
DELETE FROM trainings WHERE id = 2;
SELECT part(e.tableoid) AS partition, e.action, e.entity_id
  FROM audit_log.events e WHERE e.action = 'DELETE';

-- And with neither, the write fails, and so does the change: nothing is lost.
ALTER TABLE audit_log.events DETACH PARTITION audit_log.events_default;
SELECT regexp_replace(sqlstate_of($$DELETE FROM trainings WHERE id = 3$$), 'at .*', 'at <now>') AS no_partition;
SELECT count(*) AS still_there FROM trainings WHERE id = 3;
ALTER TABLE audit_log.events ATTACH PARTITION audit_log.events_default DEFAULT;

\c audit_log_regress
DROP DATABASE audit_log_partitioned;
