-- Partitions of the log (section 8). Partitioned, the log keeps no index of
-- its own: each partition carries the log's indexes and guards itself, so
-- that pg_dump, which writes partitions as tables attached to the log,
-- restores them exactly once (an index on the log would be made twice).

-- A partition's guards, as internal statement triggers (src/partitions.rs).
CREATE FUNCTION audit_log.guard_partition(partition regclass) RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'audit_log_guard_partition_wrapper';

-- A partition's indexes: what list(), history(), export() and sealing read by.
CREATE FUNCTION audit_log.create_event_indexes(partition regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text := (SELECT c.relname FROM pg_class c WHERE c.oid = partition);
BEGIN
    EXECUTE format('CREATE UNIQUE INDEX %I ON %s (id)', name || '_id', partition);
    EXECUTE format('CREATE INDEX %I ON %s (occurred_at, id)', name || '_occurred_at', partition);
    EXECUTE format('CREATE INDEX %I ON %s (actor, occurred_at, id)', name || '_actor', partition);
    EXECUTE format('CREATE INDEX %I ON %s (entity, occurred_at, id)', name || '_entity', partition);
    EXECUTE format('CREATE INDEX %I ON %s USING hash '
                   '((pg_catalog.jsonb_hash_extended(entity_id, pg_catalog.hashtext(entity))))',
                   name || '_entity_id', partition);
    EXECUTE format('CREATE INDEX %I ON %s (action, occurred_at, id) '
                   'WHERE action NOT IN (''INSERT'', ''UPDATE'', ''DELETE'')', name || '_rare_actions', partition);
    EXECUTE format('CREATE INDEX %I ON %s (tx_id, id)', name || '_tx_id', partition);
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
    EXECUTE format('CREATE TABLE audit_log.%I (LIKE audit_log.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    made := format('audit_log.%I', name)::regclass;
    PERFORM audit_log.create_event_indexes(made);
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
