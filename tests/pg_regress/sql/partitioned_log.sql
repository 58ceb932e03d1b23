\set SHOW_CONTEXT never
-- The log is partitioned by the time of its events: a month per partition,
-- made ahead of need, each with the log's indexes and guards of its own; an
-- event no partition takes gets one made for it. In a database of its own,
-- to see the months from the start.
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
-- Partition names follow their month (UTC); here, which month it is matters.
CREATE FUNCTION month_of(partition text) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN partition ~ 'events_default$' THEN 'default'
                ELSE coalesce((SELECT CASE m WHEN 0 THEN 'this month' WHEN 1 THEN 'next month'
                                             ELSE 'in ' || m || ' months' END
                                 FROM generate_series(-1, 5) AS m
                                WHERE partition ~ ('events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')
                                                                        + m * interval '1 month', 'YYYY_MM') || '$')),
                              partition) END
$$;
-- Which partitions a query reads, from its plan.
CREATE FUNCTION partitions_read(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    read text[] := '{}';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        read := read || ARRAY(SELECT month_of(m[1]) FROM regexp_matches(line, '(events_[0-9]{4}_[0-9]{2}|events_default)\M', 'g') AS m);
    END LOOP;
    RETURN (SELECT string_agg(DISTINCT r, ', ' ORDER BY r) FROM unnest(read) AS r);
END
$$;

-- A fresh log has only its default partition, for what a restore may load:
-- months are made by prepare_partitions(), which track() runs (and the seal
-- worker), never by CREATE EXTENSION (a restore brings its own months). Once
-- they are made, the default partition goes (PostgreSQL detaches no
-- partition concurrently, as archiving does, while there is one).
SELECT month_of(partition::text) AS partition, from_time, to_time FROM audit_log.partition_bounds();
CREATE TABLE trainings (id int PRIMARY KEY, title text);
SELECT audit_log.track('trainings');
SELECT month_of(b.partition::text) AS partition,
       b.to_time = (b.from_time AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC' AS one_month,
       (SELECT string_agg(regexp_replace(i.relname, '^events_([0-9_]+|default)_', ''), ' ' ORDER BY i.relname)
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = b.partition) AS indexes,
       (SELECT string_agg(regexp_replace(t.tgname, '_[0-9]+$', '') || ':' || t.tgenabled::text, ' ' ORDER BY t.tgname)
          FROM pg_trigger t WHERE t.tgrelid = b.partition AND t.tgisinternal) AS guards
  FROM audit_log.partition_bounds() AS b
 ORDER BY b.from_time NULLS FIRST;
SELECT to_regclass('audit_log.events_default') AS default_partition;
-- Made once: running it again makes nothing.
SELECT count(*) AS made_again FROM audit_log.prepare_partitions();
-- The log itself has no index: each partition has its own.
SELECT count(*) AS indexes_on_the_log FROM pg_index WHERE indrelid = 'audit_log.events'::regclass;

-- Capture writes into this month's partition, however many rows.
SET audit_log.actor = 'alice';
INSERT INTO trainings SELECT g, 'row ' || g FROM generate_series(1, 1000) AS g;
UPDATE trainings SET title = 'renamed' WHERE id = 1;
SELECT month_of(e.tableoid::regclass::text) AS partition, e.action, count(*)
  FROM audit_log.events e GROUP BY 1, 2 ORDER BY 1, 2;

-- A period reads only its months (partition pruning); no period, all.
SELECT partitions_read(format('SELECT * FROM audit_log.export(since => %L, until => %L)',
                              date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                              (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '10 days') AT TIME ZONE 'UTC'))
       AS ten_days;
SELECT partitions_read(format('SELECT * FROM audit_log.export(since => %L)',
                              (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'))
       AS from_next_month;
SELECT partitions_read('SELECT * FROM audit_log.export()') AS everything;

-- Reading, sealing and verifying work across partitions.
SELECT count(*) AS listed FROM audit_log.list(actor => 'alice', max_rows => 2000);
SELECT count(*) AS exported FROM audit_log.export(actor => 'alice');
SELECT action, entity_id FROM audit_log.history('trainings', '{"id": 1}');
SELECT audit_log.seal() IS NOT NULL AS sealed;
SELECT count(*) AS problems FROM audit_log.verify();

-- audit_log.partitions: a row per partition, its period, its events (an
-- estimate), whether all are sealed; readers may look.
ANALYZE audit_log.events;
CREATE ROLE partitions_reader;
GRANT audit_log_reader TO partitions_reader;
SET ROLE partitions_reader;
SELECT month_of(partition::text) AS partition, events, sealed, archived
  FROM audit_log.partitions ORDER BY from_time NULLS FIRST;
RESET ROLE;
INSERT INTO trainings VALUES (5000, 'not sealed yet');
SELECT month_of(partition::text) AS partition, sealed FROM audit_log.partitions
 WHERE from_time IS NULL OR from_time <= now() ORDER BY from_time NULLS FIRST;
DROP ROLE partitions_reader;

-- Each partition refuses what the log refuses, even when named directly,
-- also under session_replication_role = replica.
SELECT e.tableoid::regclass AS current_partition FROM audit_log.events e LIMIT 1 \gset
SELECT sqlstate_of(format('UPDATE %s SET actor = %L', :'current_partition', 'mallory')) AS update_partition;
SELECT sqlstate_of(format('DELETE FROM %s', :'current_partition')) AS delete_partition;
SELECT sqlstate_of(format('TRUNCATE %s', :'current_partition')) AS truncate_partition;
SET session_replication_role = replica;
SELECT sqlstate_of(format('INSERT INTO %s SELECT * FROM %s LIMIT 1', :'current_partition', :'current_partition')) AS forge_in_partition;
RESET session_replication_role;
-- ... and its guards can be neither disabled nor dropped.
SELECT regexp_replace(sqlstate_of(format('ALTER TABLE %s DISABLE TRIGGER ALL', :'current_partition')),
                      'events_[0-9_]+', 'events_<month>') AS disable_guards;
SELECT count(*) AS untouched FROM audit_log.events WHERE actor = 'alice';

-- Partitions are the extension's: attached, detached, dropped or created
-- in the log by hand, refused, even for a superuser.
SELECT sqlstate_of(format('ALTER TABLE audit_log.events DETACH PARTITION %s', :'current_partition')) AS detach;
SELECT regexp_replace(regexp_replace(sqlstate_of(format('ALTER TABLE audit_log.events DETACH PARTITION %s CONCURRENTLY', :'current_partition')),
                      'events_[0-9_]+', 'events_<month>'), '[0-9]{4}-[0-9T:.-]+Z', '<next month>') AS detach_concurrently;
SELECT sqlstate_of(format('DROP TABLE %s', :'current_partition')) AS drop_partition;
CREATE TABLE audit_log.forged (LIKE audit_log.events);
INSERT INTO audit_log.forged SELECT * FROM audit_log.events LIMIT 1;
SELECT sqlstate_of($$ALTER TABLE audit_log.events ATTACH PARTITION audit_log.forged
                     FOR VALUES FROM ('2001-01-01') TO ('2001-02-01')$$) AS attach_with_events;
SELECT sqlstate_of($$CREATE TABLE audit_log.made_by_hand PARTITION OF audit_log.events
                     FOR VALUES FROM ('2002-01-01') TO ('2002-02-01')$$) AS create_partition_of;
DROP TABLE audit_log.forged;
SELECT count(*) AS partitions FROM audit_log.partition_bounds();

-- DETACH ... CONCURRENTLY is the one detach let through: audit-log archive's,
-- for a partition it could archive (retention test); this month is not closed.

-- Without a partition for the statement's time (a superuser detaches this
-- month's on purpose), the writer makes one, with the extension's rights
-- whoever writes, and its indexes and guards.
SET audit_log.partition_maintenance = on;
DO $$
BEGIN
    EXECUTE (SELECT format('ALTER TABLE audit_log.events DETACH PARTITION %s', e.tableoid::regclass)
               FROM audit_log.events e LIMIT 1);
    EXECUTE (SELECT format('ALTER TABLE audit_log.%I RENAME TO events_detached',
                           'events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')));
END
$$;
RESET audit_log.partition_maintenance;
CREATE ROLE partitions_writer;
GRANT SELECT, DELETE ON trainings TO partitions_writer;
SET ROLE partitions_writer;
DELETE FROM trainings WHERE id = 2;
RESET ROLE;
SELECT month_of(e.tableoid::regclass::text) AS partition, e.action, e.entity_id
  FROM audit_log.events e WHERE e.action = 'DELETE';
SELECT month_of(b.partition::text) AS made_by_the_writer,
       b.to_time = (b.from_time AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC' AS one_month,
       (SELECT count(*) FROM pg_index x WHERE x.indrelid = b.partition) AS indexes,
       (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = b.partition AND t.tgisinternal) AS guards
  FROM audit_log.partition_bounds() b
 WHERE b.from_time <= now() AND b.to_time > now();
REVOKE ALL ON trainings FROM partitions_writer;
DROP ROLE partitions_writer;

\c audit_log_regress
DROP DATABASE audit_log_partitioned;

-- A restore (or anyone, into an empty log) may load events of any time
-- through the log itself: the default partition takes them, then
-- prepare_partitions() makes the months they need and moves them there,
-- unchanged, before dropping it.
CREATE DATABASE audit_log_loaded;
\c audit_log_loaded
SET client_min_messages = warning;
CREATE EXTENSION audit_log;
INSERT INTO audit_log.events (id, occurred_at, tx_id, db_user, entity, entity_id, action, new_values)
VALUES (1, '2024-03-15 10:00:00+00', '1000', 'loader', 'public.t', '{"id": 1}', 'INSERT', '{"id": 1}'),
       (2, '2024-03-31 23:59:59.999999+00', '1001', 'loader', 'public.t', '{"id": 2}', 'INSERT', '{"id": 2}'),
       (3, '2024-05-02 08:00:00+00', '1002', 'loader', 'public.t', '{"id": 3}', 'INSERT', '{"id": 3}');
SELECT md5(string_agg(e::text, ',' ORDER BY e.id)) AS loaded FROM audit_log.events e \gset
SELECT regexp_replace(made::text, '^audit_log\.', '') AS made
  FROM audit_log.prepare_partitions() AS made WHERE made::text ~ '2024';
SELECT e.id, e.tableoid::regclass AS partition FROM audit_log.events e ORDER BY e.id;
SELECT md5(string_agg(e::text, ',' ORDER BY e.id)) = :'loaded' AS unchanged FROM audit_log.events e;
SELECT to_regclass('audit_log.events_default') AS default_partition;
\c audit_log_regress
DROP DATABASE audit_log_loaded;

-- Other widths: audit_log.partition_width (month, week or day), for the
-- partitions made from then on; here a log of weeks, from Monday to Monday,
-- made for the rest of this month and the next three.
CREATE DATABASE audit_log_weekly;
ALTER DATABASE audit_log_weekly SET audit_log.partition_width = 'week';
\c audit_log_weekly
SET client_min_messages = warning;
CREATE EXTENSION audit_log;
SHOW audit_log.partition_width;
SELECT count(*) > 12 AS weeks_made FROM audit_log.prepare_partitions();
SELECT count(*) > 12 AS weeks_ahead,
       bool_and(b.to_time - b.from_time = interval '7 days') AS seven_days_each,
       bool_and(extract(isodow FROM b.from_time AT TIME ZONE 'UTC') = 1
                AND (b.from_time AT TIME ZONE 'UTC')::time = '00:00') AS from_monday_midnight,
       bool_and(b.partition::text ~ '^audit_log\.events_\d{4}_\d{2}_\d{2}$') AS named_by_day,
       min(b.from_time) <= now() AND max(b.to_time) > now() + interval '3 months' AS covers_now_and_ahead
  FROM audit_log.partition_bounds() AS b WHERE b.from_time IS NOT NULL;
SET audit_log.partition_width = 'fortnight';
\c audit_log_regress
DROP DATABASE audit_log_weekly;
