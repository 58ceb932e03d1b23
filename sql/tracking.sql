-- Turning capture on and off. These run as the extension's owner (SECURITY
-- DEFINER) because creating triggers on another role's table needs it; who may
-- call them is decided by EXECUTE grants (see privileges.sql). search_path is
-- pinned so that no object of the caller's can stand in for a catalog one.
-- Each looks tables up by key: enable_seqscan is off so that a plan made
-- while audit_log.tracked was small never scans it whole once track_schema()
-- or a migration has added thousands of rows to it in the same transaction
-- (which made tracking N tables cost N^2).

-- The capture triggers, in Rust (src/capture.rs).
CREATE FUNCTION audit_log.capture_row()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_capture_row';

CREATE FUNCTION audit_log.capture_truncate()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_capture_truncate';

CREATE FUNCTION audit_log.record_tracking(action text, target regclass, options jsonb)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'audit_log_record_tracking';

-- The columns entity_id is made of: the primary key, else the replica-identity index.
CREATE FUNCTION audit_log.identity_columns(target regclass)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(a.attname::text ORDER BY k.ord), '{}')
      FROM (SELECT i.indrelid, i.indkey, i.indnkeyatts
              FROM pg_index i
             WHERE i.indrelid = target AND (i.indisprimary OR i.indisreplident)
             ORDER BY i.indisprimary DESC
             LIMIT 1) AS i
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE k.ord <= i.indnkeyatts
$$;

-- Row triggers on a partitioned table are cloned to its partitions, present and
-- future; TRUNCATE triggers are not, so every partition gets its own. Names carry
-- the tracked table's OID so that a partition tracked on its own never collides
-- with the clone of its parent's trigger.
CREATE FUNCTION audit_log.create_capture_triggers(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    part regclass;
BEGIN
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION audit_log.capture_row()',
                   'audit_log_row_' || target::oid, target);
    -- Each relation looked up by key: a hash of all of pg_class per table
    -- made track_schema() quadratic in the number of tables.
    FOR part IN
        SELECT m.relid
          FROM (SELECT target AS relid UNION SELECT p.relid FROM pg_partition_tree(target) AS p) AS m
         WHERE (SELECT c.relkind FROM pg_class c WHERE c.oid = m.relid) IN ('r', 'p')
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit_log.capture_truncate()',
                       'audit_log_truncate_' || target::oid, part);
    END LOOP;
END
$$;

CREATE FUNCTION audit_log.drop_capture_triggers(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    trg record;
BEGIN
    -- Every trigger of the tree that calls a capture function, and any that
    -- holds a capture trigger's name: track() repairs a table whose triggers
    -- were tampered with before the extension guarded them (a copy added by
    -- hand, one replaced in place). Clones go with their parent's.
    FOR trg IN
        SELECT t.tgname, t.tgrelid::regclass AS rel
          FROM (SELECT target AS relid UNION SELECT p.relid FROM pg_partition_tree(target) AS p) AS m
         CROSS JOIN LATERAL (SELECT t.tgname, t.tgrelid FROM pg_trigger t
                              WHERE t.tgrelid = m.relid
                                AND (t.tgfoid IN ('audit_log.capture_row()'::regprocedure,
                                                  'audit_log.capture_truncate()'::regprocedure)
                                     OR t.tgname IN (('audit_log_row_' || target::oid)::name,
                                                     ('audit_log_truncate_' || target::oid)::name))
                                AND t.tgparentid = 0
                             OFFSET 0) AS t
         ORDER BY t.tgrelid = target, t.tgname
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
    END LOOP;
END
$$;

-- track() itself checks, as its caller, the caller's right to read the
-- table (src/tracking.rs): tracking makes every value the table takes
-- readable in the trail. Then it calls this, which does the work as the
-- extension's owner and is granted to nobody.
CREATE FUNCTION audit_log.track_as_owner(target regclass,
                                         exclude_columns text[],
                                         redact_columns text[],
                                         baseline boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    rel record;
    previous record;
    keys text[];
    bad text;
    part regclass;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'audit_log.track(): target must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    exclude_columns := coalesce(track_as_owner.exclude_columns, '{}');
    redact_columns := coalesce(track_as_owner.redact_columns, '{}');

    SELECT c.relkind, c.relpersistence, n.nspname
      INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'cannot track %: it is %', target,
            CASE rel.relkind
                WHEN 'v' THEN 'a view'
                WHEN 'm' THEN 'a materialized view'
                WHEN 'f' THEN 'a foreign table'
                WHEN 'S' THEN 'a sequence'
                WHEN 'i' THEN 'an index'
                WHEN 'I' THEN 'a partitioned index'
                WHEN 'c' THEN 'a composite type'
                WHEN 't' THEN 'a TOAST table'
                ELSE 'not a table'
            END
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Only ordinary and partitioned tables can be tracked.';
    END IF;
    IF rel.relpersistence = 't' THEN
        RAISE EXCEPTION 'cannot track temporary table %', target
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'A temporary table disappears with its session; its changes cannot be part of a lasting trail.';
    END IF;
    IF rel.nspname IN ('pg_catalog', 'information_schema') OR rel.nspname LIKE 'pg\_toast%' THEN
        RAISE EXCEPTION 'cannot track system catalog %', target
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.nspname = 'audit_log' OR EXISTS (
        SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = target
           AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
           AND e.extname = 'audit_log')
    THEN
        RAISE EXCEPTION 'cannot track %: it belongs to the audit_log extension', target
            USING ERRCODE = 'wrong_object_type';
    END IF;

    SELECT i.inhrelid::regclass INTO part
      FROM pg_inherits i
     WHERE i.inhparent = target
       AND NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = i.inhrelid)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot track %: table % inherits from it', target, part
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Rows of inheritance children are read and changed through the parent, but their changes fire only their own triggers.',
                  HINT = 'Make the children partitions (PARTITION OF): partitions are captured as their tracked table.';
    END IF;

    -- Serialize with concurrent track()/untrack() of the same table.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);

    SELECT a.relid INTO part
      FROM pg_partition_ancestors(target) AS a
     CROSS JOIN LATERAL (SELECT t.relid FROM audit_log.tracked t WHERE t.relid = a.relid OFFSET 0) AS t
     WHERE a.relid <> target
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % is already tracked through partitioned table %', target, part
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Its changes are recorded as changes of %s; change options there.', part);
    END IF;

    IF array_position(exclude_columns || redact_columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'column names in exclude_columns and redact_columns must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c INTO bad
      FROM unnest(exclude_columns || redact_columns) AS c
     WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = target AND a.attname = c
                          AND a.attnum > 0 AND NOT a.attisdropped)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', bad, target
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT c INTO bad FROM unnest(exclude_columns) AS c WHERE c = ANY (redact_columns) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'column "%" cannot be both excluded and redacted', bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    keys := audit_log.identity_columns(target);
    SELECT c INTO bad FROM unnest(exclude_columns || redact_columns) AS c WHERE c = ANY (keys) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'column "%" identifies the rows of % and cannot be excluded or redacted', bad, target
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'entity_id records the primary key (or replica identity), so it would reveal the column anyway.';
    END IF;
    IF cardinality(keys) = 0 THEN
        RAISE WARNING 'table % has no primary key or replica identity index: entity_id will be NULL in its events', target
            USING HINT = 'Add a primary key so that each event names the row it changed.';
    END IF;

    -- Keep the order given, drop repeats.
    exclude_columns := ARRAY(SELECT c FROM unnest(exclude_columns) WITH ORDINALITY AS u(c, o)
                              GROUP BY c ORDER BY min(o));
    redact_columns := ARRAY(SELECT c FROM unnest(redact_columns) WITH ORDINALITY AS u(c, o)
                             GROUP BY c ORDER BY min(o));

    -- Partitions tracked on their own are now covered by this table.
    FOR part IN
        SELECT t.relid FROM pg_partition_tree(target) AS p
         CROSS JOIN LATERAL (SELECT t.relid FROM audit_log.tracked t WHERE t.relid = p.relid OFFSET 0) AS t
         WHERE p.relid <> target
    LOOP
        PERFORM audit_log.untrack(part);
    END LOOP;

    -- Triggers are recreated rather than kept: the DDL tells every session to
    -- drop what it cached about the table, and repairs a trigger that went
    -- missing. The table leaves audit_log.tracked while they are dropped, so
    -- that this is not recorded as silencing it (see ddl.sql).
    DELETE FROM audit_log.tracked t WHERE t.relid = target
    RETURNING t.tracked_since, t.tracked_by INTO previous;
    PERFORM audit_log.drop_capture_triggers(target);
    INSERT INTO audit_log.tracked (relid, exclude_columns, redact_columns, tracked_since, tracked_by)
    VALUES (target, track_as_owner.exclude_columns, track_as_owner.redact_columns,
            coalesce(previous.tracked_since, statement_timestamp()),
            coalesce(previous.tracked_by, session_user));
    PERFORM audit_log.create_capture_triggers(target);
    -- The log's months ahead, before the first event a tracked table writes.
    PERFORM audit_log.prepare_partitions();

    PERFORM audit_log.record_tracking('TRACK', target,
        jsonb_build_object('exclude_columns', to_jsonb(track_as_owner.exclude_columns),
                           'redact_columns', to_jsonb(track_as_owner.redact_columns)));
    -- Every row already there, as it is: the start of its story. Writes wait
    -- (the lock above) so that no row escapes both the baseline and capture.
    IF track_as_owner.baseline THEN
        PERFORM audit_log.record_baseline(target);
    END IF;
END
$$;

-- A BASELINE event for every row of a tracked table (src/capture.rs).
-- Not granted to anyone.
CREATE FUNCTION audit_log.record_baseline(target regclass)
RETURNS bigint
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'audit_log_record_baseline';

CREATE FUNCTION audit_log.track(target regclass,
                                exclude_columns text[] DEFAULT '{}',
                                redact_columns text[] DEFAULT '{}',
                                baseline boolean DEFAULT false)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'audit_log_track';

CREATE FUNCTION audit_log.untrack(target regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    parent regclass;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'audit_log.untrack(): target must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_log.tracked t WHERE t.relid = target) THEN
        SELECT a.relid INTO parent
          FROM pg_partition_ancestors(target) AS a
         CROSS JOIN LATERAL (SELECT t.relid FROM audit_log.tracked t WHERE t.relid = a.relid OFFSET 0) AS t
         LIMIT 1;
        RAISE EXCEPTION 'table % is not tracked', target
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN parent IS NULL THEN ''
                              ELSE format('Its changes are recorded through partitioned table %s.', parent) END;
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);
    -- Out of audit_log.tracked first: dropping the triggers of a table still
    -- tracked would be recorded as silencing it (see ddl.sql).
    DELETE FROM audit_log.tracked t WHERE t.relid = target;
    PERFORM audit_log.drop_capture_triggers(target);
    PERFORM audit_log.record_tracking('UNTRACK', target, NULL);
END
$$;

-- track_schema() passes its caller (src/tracking.rs), whose right to read
-- each table it takes in is checked here.
CREATE FUNCTION audit_log.track_schema_as_owner(caller oid,
                                                schema_name name,
                                                exclude_tables text[],
                                                follow_new_tables boolean,
                                                baseline boolean)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    nsp oid;
    missing text;
    rel regclass;
    counted integer := 0;
BEGIN
    IF track_schema_as_owner.schema_name IS NULL OR track_schema_as_owner.follow_new_tables IS NULL THEN
        RAISE EXCEPTION 'audit_log.track_schema(): schema_name and follow_new_tables must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    exclude_tables := coalesce(track_schema_as_owner.exclude_tables, '{}');
    IF array_position(exclude_tables, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'table names in exclude_tables must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT n.oid INTO nsp FROM pg_namespace n WHERE n.nspname = track_schema_as_owner.schema_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schema "%" does not exist', track_schema_as_owner.schema_name
            USING ERRCODE = 'invalid_schema_name';
    END IF;
    SELECT x INTO missing
      FROM unnest(exclude_tables) AS x
     WHERE NOT EXISTS (SELECT 1 FROM pg_class c
                        WHERE c.relnamespace = nsp AND c.relname = x AND c.relkind IN ('r', 'p'))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table "%" does not exist in schema "%"', missing, track_schema_as_owner.schema_name
            USING ERRCODE = 'undefined_table';
    END IF;

    -- Partitions follow their parent; tables of extensions belong to them.
    FOR rel IN
        SELECT c.oid::regclass
          FROM pg_class c
         WHERE c.relnamespace = nsp
           AND c.relkind IN ('r', 'p')
           AND NOT c.relispartition
           AND c.relpersistence <> 't'
           AND c.relname <> ALL (exclude_tables)
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
         ORDER BY c.relname
    LOOP
        IF NOT EXISTS (SELECT 1 FROM audit_log.tracked t WHERE t.relid = rel) THEN
            IF NOT has_table_privilege(caller, rel, 'SELECT') THEN
                RAISE EXCEPTION 'permission denied to track table %', rel
                    USING ERRCODE = 'insufficient_privilege',
                          DETAIL = 'Tracking a table makes every value it takes readable in the trail: it needs the right to read the table.',
                          HINT = 'Leave it out with exclude_tables, or ask its owner for SELECT on it.';
            END IF;
            PERFORM audit_log.track(rel, baseline => coalesce(track_schema_as_owner.baseline, false));
        END IF;
        counted := counted + 1;
    END LOOP;

    INSERT INTO audit_log.tracked_schemas AS s (schema_name, exclude_tables, follow_new_tables)
    VALUES (track_schema_as_owner.schema_name, exclude_tables, track_schema_as_owner.follow_new_tables)
    ON CONFLICT ON CONSTRAINT tracked_schemas_pkey DO UPDATE
       SET exclude_tables = EXCLUDED.exclude_tables,
           follow_new_tables = EXCLUDED.follow_new_tables;
    RETURN counted;
END
$$;

CREATE FUNCTION audit_log.track_schema(schema_name name,
                                       exclude_tables text[] DEFAULT '{}',
                                       follow_new_tables boolean DEFAULT true,
                                       baseline boolean DEFAULT false)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'audit_log_track_schema';
