-- Partitions of the log (section 8). Partitioned, the log keeps no index of
-- its own: each partition carries the log's indexes and guards itself, so
-- that pg_dump, which writes partitions as tables attached to the log,
-- restores them exactly once (an index on the log would be made twice).

-- A partition's guards, as internal statement triggers (src/partitions.rs).
CREATE FUNCTION audit_log.guard_partition(partition regclass) RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'audit_log_guard_partition_wrapper';

-- A partition's indexes: what list(), history(), export() and sealing read by.
--
-- Each costs every captured row a few microseconds (inserting 1M
-- events into an empty copy of the log, this machine: 0.9 s with no index,
-- 1.4 s with the primary key alone, 15.4 s with all of these when entity_id
-- was indexed as jsonb; each one alone adds 0.6 s (occurred_at) to 5.8 s
-- (entity, entity_id as jsonb)), so there is one per
-- filter that needs it, and no more. Without them, on 3M events: list(actor)
-- takes 67 ms instead of 0.1 ms, history() 230 ms instead of 2 ms, and a bare
-- table name (matching_entities) scans the whole log. Each list() index ends
-- in (occurred_at, id), so the newest events of the filter come first and a
-- page never sorts more than it returns. Rare actions (TRUNCATE, TRACK,
-- UNTRACK, DDL) get a small partial index; INSERT, UPDATE and DELETE, each a
-- large share of any trail, are found quickly by walking the time index.
-- Figures at 10M events: bench/results/reading.md.
--
-- history() looks rows up by (entity, entity_id). Keys arrive in no order
-- (a hash of them even less), so a btree pays a descent and a binary search of
-- comparisons per captured row; a hash index pays one bucket. Inserting 1M
-- events into a 2M-row copy: 10.8 s extra on a btree (entity, entity_id), 5.5 s
-- on a btree (entity, jsonb_hash_extended(entity_id, 0)), 3.1 s on this.
-- history() computes the same hash and rechecks entity and entity_id itself.
--
-- Sealing reads the events of ended transactions by (tx_id, id).
CREATE FUNCTION audit_log.create_event_indexes(partition regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Named by PostgreSQL after the partition (events_2027_01_occurred_at_id_idx),
    -- never colliding with a renamed partition's.
    EXECUTE format('CREATE UNIQUE INDEX ON %s (id)', partition);
    EXECUTE format('CREATE INDEX ON %s (occurred_at, id)', partition);
    EXECUTE format('CREATE INDEX ON %s (actor, occurred_at, id)', partition);
    EXECUTE format('CREATE INDEX ON %s (entity, occurred_at, id)', partition);
    EXECUTE format('CREATE INDEX ON %s USING hash '
                   '((pg_catalog.jsonb_hash_extended(entity_id, pg_catalog.hashtext(entity))))', partition);
    EXECUTE format('CREATE INDEX ON %s (action, occurred_at, id) '
                   'WHERE action NOT IN (''INSERT'', ''UPDATE'', ''DELETE'')', partition);
    EXECUTE format('CREATE INDEX ON %s (tx_id, id)', partition);
END
$$;

-- A new partition for [from_time, to_time): made apart, with its indexes and
-- guards, then attached (SHARE UPDATE EXCLUSIVE on the log: writers go on).
-- Named after where it starts, in UTC: its month when it is one whole month
-- (events_2027_01), its day when it starts at midnight (events_2027_01_15),
-- else its second (events_2027_01_15_093000).
CREATE FUNCTION audit_log.create_partition(from_time timestamptz, to_time timestamptz)
RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.partition_maintenance = on
AS $$
DECLARE
    utc_from timestamp := from_time AT TIME ZONE 'UTC';
    name text := 'events_' || to_char(utc_from,
        CASE WHEN utc_from = date_trunc('month', utc_from)
                  AND to_time AT TIME ZONE 'UTC' = utc_from + interval '1 month' THEN 'YYYY_MM'
             WHEN utc_from = date_trunc('day', utc_from) THEN 'YYYY_MM_DD'
             ELSE 'YYYY_MM_DD_HH24MISS' END);
    made regclass;
BEGIN
    IF from_time IS NULL OR to_time IS NULL OR from_time >= to_time THEN
        RAISE EXCEPTION 'audit_log.create_partition(): % to % is not a period', from_time, to_time
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- In the log's tablespace, where a DBA put it (ALTER TABLE audit_log.events SET TABLESPACE).
    EXECUTE format('CREATE TABLE audit_log.%I (LIKE audit_log.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)%s', name,
                   (SELECT ' TABLESPACE ' || quote_ident(t.spcname)
                      FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace
                     WHERE c.oid = 'audit_log.events'::regclass));
    made := format('audit_log.%I', name)::regclass;
    PERFORM audit_log.create_event_indexes(made);
    -- Events the default partition took for this period (nobody made it in
    -- time) move into it, unchanged, before it is attached: ATTACH refuses a
    -- period the default partition holds events of.
    IF to_regclass('audit_log.events_default') IS NULL THEN
        NULL;  -- gone once the first months are made (prepare_partitions())
    ELSIF EXISTS (SELECT 1 FROM audit_log.events_default d
                   WHERE d.occurred_at >= from_time AND d.occurred_at < to_time) THEN
        LOCK TABLE audit_log.events_default IN ACCESS EXCLUSIVE MODE;
        EXECUTE format('INSERT INTO %s SELECT * FROM audit_log.events_default d
                         WHERE d.occurred_at >= $1 AND d.occurred_at < $2', made)
            USING from_time, to_time;
        DELETE FROM audit_log.events_default d WHERE d.occurred_at >= from_time AND d.occurred_at < to_time;
    END IF;
    EXECUTE format('ALTER TABLE audit_log.events ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   made, from_time, to_time);
    PERFORM audit_log.guard_partition(made);
    RETURN made;
END
$$;

-- Whatever attaches a partition to the log (the extension, or a restore
-- before it loads the partition's rows), the partition gets its guards at
-- the end of the command.
CREATE FUNCTION audit_log.guard_new_partitions() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unguarded regclass;
BEGIN
    FOR unguarded IN
        SELECT i.inhrelid::regclass
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhparent
         WHERE c.relnamespace = 'audit_log'::regnamespace AND c.relname = 'events'
           AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                            WHERE t.tgrelid = i.inhrelid AND t.tgisinternal
                              AND t.tgfoid = 'audit_log.refuse_forged_event()'::regprocedure)
    LOOP
        PERFORM audit_log.guard_partition(unguarded);
    END LOOP;
END
$$;
CREATE EVENT TRIGGER audit_log_guard_new_partitions ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE')
    EXECUTE FUNCTION audit_log.guard_new_partitions();

-- Partitions are the extension's: attached, detached, dropped or created in
-- the log by hand, refused (src/partitions.rs); a restore attaches the empty
-- tables it is about to load.
CREATE FUNCTION audit_log.guard_log_partitions() RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_guard_log_partitions';
CREATE EVENT TRIGGER audit_log_guard_log_partitions ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'DROP TABLE', 'CREATE TABLE')
    EXECUTE FUNCTION audit_log.guard_log_partitions();

-- Each partition of the log and the period it takes, [from_time, to_time),
-- -infinity or infinity where it is unbounded; NULL for the default one.
-- Read from the bounds as PostgreSQL prints them, in this session's own
-- settings, so that they read back the same.
CREATE FUNCTION audit_log.partition_bounds()
RETURNS TABLE (partition regclass, from_time timestamptz, to_time timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass,
           CASE b[1] WHEN 'MINVALUE' THEN '-infinity' ELSE btrim(b[1], '''')::timestamptz END,
           CASE b[2] WHEN 'MAXVALUE' THEN 'infinity' ELSE btrim(b[2], '''')::timestamptz END
      FROM pg_inherits i
      JOIN pg_class p ON p.oid = i.inhparent
      JOIN pg_class c ON c.oid = i.inhrelid
      LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                     '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS b ON true
     WHERE p.relnamespace = 'audit_log'::regnamespace AND p.relname = 'events'
$$;

-- The width of the partitions made from now on: month, week or day
-- (audit_log.partition_width, checked when set).
CREATE FUNCTION audit_log.partition_unit()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT lower(coalesce(nullif(current_setting('audit_log.partition_width', true), ''), 'month'))
$$;

-- The periods a partition should exist for by now: this one (UTC) and those
-- that start before the end of the third month after this one, each as long
-- as audit_log.partition_width says (a month unless set: 4 months, about 17
-- weeks, or about 120 days ahead).
CREATE FUNCTION audit_log.periods_ahead()
RETURNS TABLE (from_time timestamptz, to_time timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p AT TIME ZONE 'UTC', (p + w.step) AT TIME ZONE 'UTC'
      FROM (SELECT audit_log.partition_unit() AS unit) AS u
     CROSS JOIN LATERAL (SELECT ('1 ' || u.unit)::interval AS step,
                                date_trunc(u.unit, now() AT TIME ZONE 'UTC') AS first,
                                date_trunc('month', now() AT TIME ZONE 'UTC') + interval '4 months' AS horizon) AS w
     CROSS JOIN LATERAL generate_series(w.first, w.horizon - interval '1 microsecond', w.step) AS p
$$;

-- The period a new partition for an event at `at` takes: its month (week,
-- day) in UTC, shortened where a partition already takes part of it.
CREATE FUNCTION audit_log.period_for(at timestamptz)
RETURNS TABLE (from_time timestamptz, to_time timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(w.first AT TIME ZONE 'UTC',
                    (SELECT max(b.to_time) FROM audit_log.partition_bounds() b WHERE b.to_time <= period_for.at)),
           least((w.first + ('1 ' || w.unit)::interval) AT TIME ZONE 'UTC',
                 (SELECT min(b.from_time) FROM audit_log.partition_bounds() b WHERE b.from_time > period_for.at))
      FROM (SELECT u.unit, date_trunc(u.unit, period_for.at AT TIME ZONE 'UTC') AS first
              FROM (SELECT audit_log.partition_unit() AS unit) AS u) AS w
$$;

-- The partition for an event at `at`, made now if there is none: what the
-- writer calls when no partition takes an event (src/storage.rs). Holds the
-- log in SHARE UPDATE EXCLUSIVE mode until the writing transaction ends
-- (writers and readers go on; another writer needing a new partition waits).
CREATE FUNCTION audit_log.make_partition_for(at timestamptz)
RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.partition_maintenance = on
AS $$
DECLARE
    found regclass;
    period record;
BEGIN
    LOCK TABLE audit_log.events IN SHARE UPDATE EXCLUSIVE MODE;
    SELECT b.partition INTO found FROM audit_log.partition_bounds() b
     WHERE b.from_time <= make_partition_for.at AND b.to_time > make_partition_for.at;
    IF found IS NOT NULL THEN
        RETURN found;
    END IF;
    SELECT * INTO period FROM audit_log.period_for(make_partition_for.at);
    RETURN audit_log.create_partition(period.from_time, period.to_time);
END
$$;

-- Partitions ahead of need: one for each period of periods_ahead() that no
-- partition takes part of yet. Run by track() and by the seal worker; a DBA
-- without the worker runs it from cron (docs/operations.md). Returns the
-- partitions it made.
--
-- One session at a time makes partitions: it holds the log in SHARE UPDATE
-- EXCLUSIVE mode (as ATTACH does; writers and readers go on), so that two
-- sessions never make the same period, nor wait on each other's default
-- partition. Attaching locks the default partition, which every read of the
-- whole log also locks: rather than queue behind a long export (and make
-- every read after it queue too), a period waits at most 2 s and is made next
-- time; so does one whose lock would deadlock with another session's.
CREATE FUNCTION audit_log.prepare_partitions()
RETURNS SETOF regclass
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
SET audit_log.partition_maintenance = on
AS $$
DECLARE
    period record;
    loaded timestamptz;
BEGIN
    -- Nothing to make, nothing to lock (the usual case).
    IF NOT EXISTS (SELECT 1 FROM audit_log.periods_ahead() a
                    WHERE NOT EXISTS (SELECT 1 FROM audit_log.partition_bounds() b
                                       WHERE b.from_time < a.to_time AND b.to_time > a.from_time))
       AND to_regclass('audit_log.events_default') IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        LOCK TABLE audit_log.events IN SHARE UPDATE EXCLUSIVE MODE;
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        RAISE NOTICE 'audit_log: another session is making partitions of the log';
        RETURN;
    END;
    FOR period IN SELECT * FROM audit_log.periods_ahead() ORDER BY 1 LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM audit_log.partition_bounds() b
                               WHERE b.from_time < period.to_time AND b.to_time > period.from_time);
        BEGIN
            RETURN NEXT audit_log.create_partition(period.from_time, period.to_time);
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            RAISE NOTICE 'audit_log: the log is busy, the partition for % to % is left for next time',
                period.from_time, period.to_time;
        END;
    END LOOP;
    -- The default partition is there only for what a fresh log may be loaded
    -- with (a restore): its events move into partitions made for them, then
    -- it goes, since PostgreSQL detaches no partition concurrently (as
    -- archiving does) while a default one exists. Dropping it locks the log
    -- out briefly, once, at most 2 s (else it goes next time); from then on a
    -- write that no partition takes makes its own (make_partition_for()).
    IF to_regclass('audit_log.events_default') IS NOT NULL
       AND EXISTS (SELECT 1 FROM audit_log.partition_bounds() b
                    WHERE b.partition = to_regclass('audit_log.events_default')) THEN
        BEGIN
            LOOP
                SELECT d.occurred_at INTO loaded FROM audit_log.events_default d ORDER BY d.occurred_at LIMIT 1;
                EXIT WHEN NOT FOUND;
                SELECT * INTO period FROM audit_log.period_for(loaded);
                RETURN NEXT audit_log.create_partition(period.from_time, period.to_time);
            END LOOP;
            LOCK TABLE audit_log.events IN ACCESS EXCLUSIVE MODE;
            ALTER EXTENSION audit_log DROP TABLE audit_log.events_default;
            DROP TABLE audit_log.events_default;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            RAISE NOTICE 'audit_log: the log is busy, its default partition is left for next time';
        END;
    END IF;
END
$$;

-- What no other partition takes: a write never fails for want of a
-- partition. prepare_partitions() keeps the months ahead made, so that it
-- stays empty, and moves what it took into the month made for it. An
-- extension table (dumped as data), unlike the months.
CREATE TABLE audit_log.events_default PARTITION OF audit_log.events DEFAULT;
SELECT audit_log.create_event_indexes('audit_log.events_default');
SELECT audit_log.guard_partition('audit_log.events_default');
SELECT pg_catalog.pg_extension_config_dump('audit_log.events_default', '');

-- Whether every event of a partition is sealed (src/sealing.rs); with the
-- extension's rights, since readers read the log, not its partitions.
CREATE FUNCTION audit_log.partition_sealed(partition regclass) RETURNS boolean
LANGUAGE c STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'audit_log_partition_sealed_wrapper';

-- One row per partition of the log: the period it takes (NULL for the
-- default one), how many events it holds (PostgreSQL's estimate), whether
-- they are all sealed, and whether it was archived (an ARCHIVE event names it).
CREATE VIEW audit_log.partitions AS
SELECT b.partition, b.from_time, b.to_time,
       greatest(c.reltuples::bigint, pg_catalog.pg_stat_get_live_tuples(c.oid), 0) AS events,
       audit_log.partition_sealed(b.partition) AS sealed,
       EXISTS (SELECT 1 FROM audit_log.events a
                WHERE a.action = 'ARCHIVE' AND a.entity_id ->> 'partition' = b.partition::text) AS archived
  FROM audit_log.partition_bounds() AS b
  JOIN pg_catalog.pg_class c ON c.oid = b.partition;
