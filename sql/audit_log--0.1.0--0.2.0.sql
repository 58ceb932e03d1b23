-- audit_log 0.1.0 -> 0.2.0. Frozen: what 0.2.0 changed, as 0.2.0 defines it.
-- A fresh install of 0.2.0 and 0.1.0 updated with this script have the same
-- schema (tests/shell/upgrade_keeps_the_trail.sh compares them).
--
-- - INSERT/COPY into audit_log.events refused unless the log is empty (restore);
-- - history()'s index is a hash index; list() and history() follow renames;
-- - track()/untrack() leave audit_log.tracked before dropping triggers;
-- - DDL on tracked tables recorded (event triggers), DROP EXTENSION guarded;
-- - audit_log.tracked_schema_settings.

-- Events are written only by capture, below SQL, where no trigger fires. An
-- INSERT or COPY through SQL would be a forged event, with one exception: a
-- restore (pg_dump output, pg_restore) loads the trail into the freshly
-- created, still empty, log. Only the log's owner (a superuser) holds INSERT.
CREATE FUNCTION audit_log.refuse_forged_event() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_log.events) THEN
        RAISE EXCEPTION 'audit_log.events is written only by capture: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only a restore into an empty log may load events.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_no_forgery
    BEFORE INSERT ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_forged_event();
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_no_forgery;

-- Schemas tracked with track_schema(), and whether tables created there later
-- are tracked as they are created.
CREATE VIEW audit_log.tracked_schema_settings AS
SELECT s.schema_name, s.exclude_tables, s.follow_new_tables
  FROM audit_log.tracked_schemas s;

DROP INDEX audit_log.events_entity_id;
-- history() looks rows up by (entity, entity_id). Keys arrive in no order
-- (a hash of them even less), so a btree pays a descent and a binary search of
-- comparisons per captured row; a hash index pays one bucket. Inserting 1M
-- events into a 2M-row copy: 10.8 s extra on a btree (entity, entity_id), 5.5 s
-- on a btree (entity, jsonb_hash_extended(entity_id, 0)), 3.1 s on this.
-- history() computes the same hash and rechecks entity and entity_id itself.
CREATE INDEX events_entity_id ON audit_log.events
    USING hash ((pg_catalog.jsonb_hash_extended(entity_id, pg_catalog.hashtext(entity))));

-- The names a table was recorded under before it was renamed or moved to
-- another schema (DDL events with renamed_from, sql/ddl.sql), added to the
-- given ones: a table's events are found by its current name.
CREATE FUNCTION audit_log.with_former_names(entities text[])
RETURNS text[]
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    WITH RECURSIVE names(name) AS (
        SELECT unnest(entities)
        UNION
        SELECT e.new_values ->> 'renamed_from'
          FROM names
          JOIN audit_log.events e ON e.entity = names.name
         WHERE e.action = 'DDL' AND e.new_values ? 'renamed_from'
    )
    SELECT coalesce(array_agg(names.name ORDER BY names.name), '{}') FROM names;
END;

CREATE OR REPLACE FUNCTION audit_log.list(since timestamptz DEFAULT NULL,
                               until timestamptz DEFAULT NULL,
                               actor text DEFAULT NULL,
                               entity text DEFAULT NULL,
                               action text DEFAULT NULL,
                               max_rows integer DEFAULT 100,
                               before_id bigint DEFAULT NULL)
RETURNS SETOF audit_log.events
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted_action text := audit_log.normalize_action(action);
    entities text[];
    cursor_at timestamptz;
    filters text := '';
    query text;
BEGIN
    PERFORM audit_log.check_period(since, until);
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be at least 1, not %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF before_id IS NOT NULL THEN
        SELECT e.occurred_at INTO cursor_at FROM audit_log.events e WHERE e.id = before_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no event has id %', before_id
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'before_id takes the id of the last event of the previous page.';
        END IF;
        filters := filters || ' AND (e.occurred_at, e.id) < ($7, $6)';
    END IF;
    IF since IS NOT NULL THEN filters := filters || ' AND e.occurred_at >= $1'; END IF;
    IF until IS NOT NULL THEN filters := filters || ' AND e.occurred_at < $2'; END IF;
    IF list.actor IS NOT NULL THEN filters := filters || ' AND e.actor = $3'; END IF;
    IF wanted_action IS NOT NULL THEN filters := filters || ' AND e.action = $5'; END IF;

    IF list.entity IS NULL THEN
        query := format('SELECT e.* FROM audit_log.events e WHERE true %s '
                        'ORDER BY e.occurred_at DESC, e.id DESC LIMIT $8', filters);
    ELSE
        entities := audit_log.with_former_names(audit_log.matching_entities(list.entity));
        IF cardinality(entities) = 0 THEN
            RETURN;
        END IF;
        -- One index range per entity, merged: no sort of a whole table's events.
        SELECT string_agg(format('(SELECT e.* FROM audit_log.events e WHERE e.entity = $4[%s] %s '
                                 'ORDER BY e.occurred_at DESC, e.id DESC LIMIT $8)', i, filters),
                          ' UNION ALL ')
          INTO query
          FROM generate_subscripts(entities, 1) AS i;
        query := format('SELECT u.* FROM (%s) AS u ORDER BY u.occurred_at DESC, u.id DESC LIMIT $8', query);
    END IF;
    RETURN QUERY EXECUTE query
        USING since, until, list.actor, entities, wanted_action, before_id, cursor_at, max_rows;
END
$$;

CREATE OR REPLACE FUNCTION audit_log.history(entity text, entity_id jsonb)
RETURNS SETOF audit_log.events
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entities text[];
    keys jsonb[];
    hashes bigint[];
    found_keys jsonb[];
BEGIN
    IF history.entity IS NULL OR history.entity_id IS NULL THEN
        RAISE EXCEPTION 'audit_log.history(): entity and entity_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    entities := audit_log.matching_entities(history.entity);
    -- Names one table had before a rename count as that table.
    entities := ARRAY(SELECT x FROM unnest(entities) AS x
                       WHERE NOT EXISTS (SELECT 1 FROM unnest(entities) AS y
                                          WHERE y <> x AND x = ANY (audit_log.with_former_names(ARRAY[y]))));
    IF cardinality(entities) > 1 THEN
        RAISE EXCEPTION 'table name "%" is ambiguous: the trail has %', history.entity,
                        array_to_string(entities, ', ')
            USING ERRCODE = 'ambiguous_alias',
                  HINT = 'Qualify the name with its schema.';
    END IF;
    IF cardinality(entities) = 0 THEN
        RETURN;
    END IF;
    entities := audit_log.with_former_names(entities);

    keys := ARRAY[history.entity_id];
    hashes := ARRAY(SELECT jsonb_hash_extended(history.entity_id, hashtext(n)) FROM unnest(entities) AS n);
    LOOP
        SELECT array_agg(DISTINCT previous.key) INTO found_keys
          FROM audit_log.events e
         CROSS JOIN LATERAL (
               SELECT jsonb_object_agg(k, e.old_values -> k) AS key
                 FROM jsonb_object_keys(e.entity_id) AS k) AS previous
         WHERE e.entity = ANY (entities)
           AND jsonb_hash_extended(e.entity_id, hashtext(e.entity)) = ANY (hashes)
           AND e.entity_id = ANY (keys)
           AND e.action = 'UPDATE'
           AND previous.key <> e.entity_id
           AND NOT previous.key = ANY (keys);
        EXIT WHEN found_keys IS NULL;
        keys := keys || found_keys;
        hashes := ARRAY(SELECT jsonb_hash_extended(k, hashtext(n)) FROM unnest(keys) AS k, unnest(entities) AS n);
    END LOOP;

    RETURN QUERY
        SELECT e.* FROM audit_log.events e
         WHERE e.entity = ANY (entities)
           AND jsonb_hash_extended(e.entity_id, hashtext(e.entity)) = ANY (hashes)
           AND e.entity_id = ANY (keys)
         ORDER BY e.occurred_at, e.id;
END
$$;

CREATE OR REPLACE FUNCTION audit_log.track(target regclass,
                                exclude_columns text[] DEFAULT '{}',
                                redact_columns text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
    exclude_columns := coalesce(track.exclude_columns, '{}');
    redact_columns := coalesce(track.redact_columns, '{}');

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

    -- Serialize with concurrent track()/untrack() of the same table.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);

    SELECT a.relid INTO part
      FROM pg_partition_ancestors(target) AS a
      JOIN audit_log.tracked t ON t.relid = a.relid
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
          JOIN audit_log.tracked t ON t.relid = p.relid
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
    IF FOUND THEN
        PERFORM audit_log.drop_capture_triggers(target);
    END IF;
    INSERT INTO audit_log.tracked (relid, exclude_columns, redact_columns, tracked_since, tracked_by)
    VALUES (target, track.exclude_columns, track.redact_columns,
            coalesce(previous.tracked_since, statement_timestamp()),
            coalesce(previous.tracked_by, session_user));
    PERFORM audit_log.create_capture_triggers(target);

    PERFORM audit_log.record_tracking('TRACK', target,
        jsonb_build_object('exclude_columns', to_jsonb(track.exclude_columns),
                           'redact_columns', to_jsonb(track.redact_columns)));
END
$$;

CREATE OR REPLACE FUNCTION audit_log.untrack(target regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
          JOIN audit_log.tracked t ON t.relid = a.relid
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

-- What DDL does to tracked tables is part of the trail. Two event triggers
-- (src/ddl.rs) bracket every command that can change a tracked table or its
-- capture: at ddl_command_start the first notes ddl_watch_state(), at
-- ddl_command_end the second hands that state to record_ddl(), which records
-- one DDL event per tracked table the command touched, with the actor and
-- db_user of any event:
--   - a change of shape (ALTER TABLE: columns, constraints, types...);
--   - a rename or a move to another schema: later events carry the new name,
--     and the DDL event (renamed_from) lets list() and history() find the
--     events recorded under the old one;
--   - a DROP of the table (its tracking ends, its history stays) or of one of
--     its partitions;
--   - a capture trigger disabled, made replica-only, renamed or dropped by hand
--     (nobody silences capture quietly).
-- Exclusions and redactions follow column renames: they are noted by column
-- number and renamed with their column. Disabling, renaming or dropping the
-- triggers that keep audit_log.events append-only is refused.
--
-- track() and untrack() change capture triggers too, but record TRACK and
-- UNTRACK instead: they take the table out of audit_log.tracked before they
-- drop its triggers.
--
-- Both functions are called straight through fmgr: they are SECURITY DEFINER
-- (the caller may own the table but has no right on the trail) and executable
-- by nobody else.

-- Writes one event about a table that may no longer exist.
CREATE FUNCTION audit_log.record_ddl_event(entity text, details jsonb)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'audit_log_record_ddl_event';

-- Every capture trigger and guard of the log, by trigger OID; every tracked
-- table and partition, by OID, with its name and tracked table; the excluded
-- and redacted columns of each tracked table, by column number.
CREATE FUNCTION audit_log.ddl_watch_state()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'triggers',
        (SELECT coalesce(jsonb_object_agg(t.oid::text,
                                          jsonb_build_object('table', t.tgrelid::oid,
                                                             'name', t.tgname,
                                                             'enabled', t.tgenabled)),
                         '{}')
           FROM pg_trigger t
          WHERE t.tgfoid IN ('audit_log.capture_row()'::regprocedure,
                             'audit_log.capture_truncate()'::regprocedure)
             OR t.tgrelid = 'audit_log.events'::regclass),
        'tables',
        (SELECT coalesce(jsonb_object_agg(member.relid::oid::text,
                                          jsonb_build_object('name', member.relid::text,
                                                             'root', t.relid::oid)),
                         '{}')
           FROM audit_log.tracked t
          CROSS JOIN LATERAL (
                SELECT t.relid AS relid
                UNION SELECT p.relid FROM pg_partition_tree(t.relid) AS p) AS member
          -- Captured now: a restore recreates tracked tables and their
          -- constraints before their capture triggers, and records nothing.
          WHERE EXISTS (SELECT 1 FROM pg_trigger tg
                         WHERE tg.tgrelid = t.relid
                           AND tg.tgfoid IN ('audit_log.capture_row()'::regprocedure,
                                             'audit_log.capture_truncate()'::regprocedure))),
        'options',
        (SELECT coalesce(jsonb_object_agg(t.relid::oid::text,
                    jsonb_build_object(
                        'exclude', (SELECT coalesce(jsonb_agg(a.attnum ORDER BY u.ord), '[]')
                                      FROM unnest(t.exclude_columns) WITH ORDINALITY AS u(name, ord)
                                      JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = u.name),
                        'redact', (SELECT coalesce(jsonb_agg(a.attnum ORDER BY u.ord), '[]')
                                     FROM unnest(t.redact_columns) WITH ORDINALITY AS u(name, ord)
                                     JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = u.name))),
                         '{}')
           FROM audit_log.tracked t
          WHERE cardinality(t.exclude_columns) + cardinality(t.redact_columns) > 0
            AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.relid)));
$$;

-- Compares the catalogs with what ddl_watch_state() saw before the command
-- and records what changed, per tracked table.
CREATE FUNCTION audit_log.record_ddl(before jsonb, command_tag text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trigger_changes jsonb;
    touched oid[];
    target record;
    kept_excluded text[];
    kept_redacted text[];
    options_followed boolean;
    attached jsonb := '{}';
    part record;
    created regclass;
BEGIN
    SELECT jsonb_agg(jsonb_build_object(
               'relid', (w.value ->> 'table')::oid,
               'trigger', w.value ->> 'name',
               'change', CASE
                   WHEN t.oid IS NULL THEN 'dropped'
                   WHEN t.tgname <> w.value ->> 'name' THEN 'renamed'
                   WHEN t.tgenabled = 'D' THEN 'disabled'
                   WHEN t.tgenabled = 'R' THEN 'fires only under session_replication_role = replica'
                   WHEN t.tgenabled = 'A' THEN 'fires always, also under session_replication_role = replica'
                   ELSE 'enabled'
               END,
               'new_name', CASE WHEN t.tgname <> w.value ->> 'name' THEN t.tgname END))
      INTO trigger_changes
      FROM jsonb_each(before -> 'triggers') AS w
      LEFT JOIN pg_trigger t ON t.oid = w.key::oid
     WHERE (t.oid IS NULL
            -- A trigger that went with its table is part of the table's drop.
            AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = (w.value ->> 'table')::oid))
        OR t.tgname <> w.value ->> 'name'
        OR t.tgenabled::text <> w.value ->> 'enabled';

    IF EXISTS (SELECT 1 FROM jsonb_array_elements(trigger_changes) AS c
                WHERE (c ->> 'relid')::oid = 'audit_log.events'::regclass) THEN
        RAISE EXCEPTION 'the triggers that keep audit_log.events append-only cannot be disabled, renamed or dropped'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    -- Tables the command worked on (none for DROP: those are found missing).
    IF command_tag NOT LIKE 'DROP %' THEN
        SELECT array_agg(DISTINCT c.objid) INTO touched
          FROM pg_event_trigger_ddl_commands() AS c
         WHERE c.classid = 'pg_class'::regclass;
    END IF;

    -- Partitions that joined a tracked table (CREATE TABLE ... PARTITION OF,
    -- ATTACH PARTITION) get its TRUNCATE trigger (row triggers are cloned by
    -- PostgreSQL); one that was tracked on its own is untracked first.
    FOR part IN
        SELECT t.relid AS root, p.relid AS partition
          FROM audit_log.tracked t
         CROSS JOIN LATERAL pg_partition_tree(t.relid) AS p
          JOIN pg_class c ON c.oid = p.relid AND c.relkind IN ('r', 'p')
         WHERE p.relid <> t.relid
           AND (t.relid::oid = ANY (touched) OR p.relid::oid = ANY (touched))
           -- New to this table's tree (a trigger dropped by hand stays dropped).
           AND (before #>> ARRAY['tables', p.relid::oid::text, 'root'])::oid IS DISTINCT FROM t.relid::oid
           AND NOT EXISTS (SELECT 1 FROM pg_trigger tg
                            WHERE tg.tgrelid = p.relid
                              AND tg.tgname = 'audit_log_truncate_' || t.relid::oid)
         ORDER BY p.relid::text
    LOOP
        IF EXISTS (SELECT 1 FROM audit_log.tracked t WHERE t.relid = part.partition) THEN
            PERFORM audit_log.untrack(part.partition);
        END IF;
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit_log.capture_truncate()',
                       'audit_log_truncate_' || part.root::oid, part.partition);
        attached := jsonb_set(attached, ARRAY[part.root::oid::text],
                              coalesce(attached -> part.root::oid::text, '[]') || to_jsonb(part.partition::text));
    END LOOP;

    FOR target IN
        WITH member AS (
            SELECT w.key::oid AS relid,
                   (w.value ->> 'root')::oid AS root,
                   w.value ->> 'name' AS old_name,
                   c.oid::regclass::text AS new_name
              FROM jsonb_each(before -> 'tables') AS w
              LEFT JOIN pg_class c ON c.oid = w.key::oid),
        triggers AS (
            SELECT m.root,
                   jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                       'trigger', c.trigger,
                       'table', m.new_name,
                       'change', c.change,
                       'new_name', c.new_name))
                       ORDER BY m.new_name, c.trigger) AS changes
              FROM jsonb_to_recordset(trigger_changes) AS c(relid oid, trigger text, change text, new_name text)
              JOIN member m ON m.relid = c.relid
             -- Capture triggers are named after the table they capture for: a
             -- partition's own, dropped when its parent's tracking takes over,
             -- are not the parent's.
             WHERE NOT (c.trigger ~ '^audit_log_(row|truncate)_[0-9]+$'
                        AND substring(c.trigger FROM '[0-9]+$')::oid <> m.root)
               -- Detaching drops the clones on its own: that is the detach.
               AND (m.relid = m.root
                    OR EXISTS (SELECT 1 FROM pg_partition_tree(m.root) AS p WHERE p.relid = m.relid))
             GROUP BY m.root)
        SELECT m.root,
               max(m.old_name) FILTER (WHERE m.relid = m.root) AS old_name,
               max(m.new_name) FILTER (WHERE m.relid = m.root) AS new_name,
               jsonb_agg(m.old_name ORDER BY m.old_name)
                   FILTER (WHERE m.relid <> m.root AND m.new_name IS NULL) AS dropped_partitions,
               jsonb_agg(jsonb_build_object('from', m.old_name, 'to', m.new_name) ORDER BY m.new_name)
                   FILTER (WHERE m.relid <> m.root AND m.new_name <> m.old_name) AS renamed_partitions,
               array_agg(m.relid ORDER BY m.new_name)
                   FILTER (WHERE m.relid <> m.root AND m.new_name IS NOT NULL
                             AND NOT EXISTS (SELECT 1 FROM pg_partition_tree(m.root) AS p
                                              WHERE p.relid = m.relid)) AS detached,
               bool_or(m.relid = ANY (touched)) AS touched,
               (SELECT t.changes FROM triggers t WHERE t.root = m.root) AS capture_triggers
          FROM member m
         GROUP BY m.root
    LOOP
        IF target.new_name IS NULL THEN
            -- Dropped: tracking ends, the history stays under the old name.
            DELETE FROM audit_log.tracked t WHERE t.relid::oid = target.root;
            PERFORM audit_log.record_ddl_event(target.old_name, jsonb_build_object(
                'command_tag', command_tag,
                'object', target.old_name,
                'dropped', true,
                'statement', current_query()));
            CONTINUE;
        END IF;

        -- Exclusions and redactions follow their columns through renames; a
        -- dropped column leaves them.
        SELECT array(SELECT a.attname::text
                       FROM jsonb_array_elements_text(before #> ARRAY['options', target.root::text, 'exclude'])
                            WITH ORDINALITY AS n(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = target.root AND a.attnum = n.attnum::int2
                      WHERE NOT a.attisdropped ORDER BY n.ord),
               array(SELECT a.attname::text
                       FROM jsonb_array_elements_text(before #> ARRAY['options', target.root::text, 'redact'])
                            WITH ORDINALITY AS n(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = target.root AND a.attnum = n.attnum::int2
                      WHERE NOT a.attisdropped ORDER BY n.ord)
          INTO kept_excluded, kept_redacted;
        UPDATE audit_log.tracked t
           SET exclude_columns = kept_excluded,
               redact_columns = kept_redacted
         WHERE t.relid::oid = target.root
           AND before -> 'options' ? target.root::text
           AND (t.exclude_columns, t.redact_columns)
               IS DISTINCT FROM (kept_excluded, kept_redacted);
        options_followed := FOUND;

        -- A detached partition keeps no trigger of its former parent.
        FOR part IN
            SELECT d.relid, tg.tgname
              FROM unnest(target.detached) AS d(relid)
              JOIN pg_trigger tg ON tg.tgrelid = d.relid
             WHERE tg.tgname = 'audit_log_truncate_' || target.root
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', part.tgname, part.relid::regclass);
        END LOOP;

        IF target.touched OR target.old_name <> target.new_name OR options_followed
           OR target.detached IS NOT NULL OR attached ? target.root::text
           OR target.dropped_partitions IS NOT NULL OR target.renamed_partitions IS NOT NULL
           OR target.capture_triggers IS NOT NULL THEN
            PERFORM audit_log.record_ddl_event(target.new_name, jsonb_strip_nulls(jsonb_build_object(
                'command_tag', command_tag,
                'object', target.new_name,
                'renamed_from', CASE WHEN target.old_name <> target.new_name THEN target.old_name END,
                'dropped_partitions', target.dropped_partitions,
                'renamed_partitions', target.renamed_partitions,
                'attached_partitions', attached -> target.root::text,
                'detached_partitions', (SELECT jsonb_agg(d::regclass::text) FROM unnest(target.detached) AS d),
                'capture_triggers', target.capture_triggers,
                'exclude_columns', CASE WHEN options_followed THEN to_jsonb(kept_excluded) END,
                'redact_columns', CASE WHEN options_followed THEN to_jsonb(kept_redacted) END,
                'statement', current_query())));
        END IF;
    END LOOP;

    -- Tables created in a schema tracked with follow_new_tables are tracked
    -- at once (partitions follow their parent instead).
    IF command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO') THEN
        FOR created IN
            SELECT c.oid::regclass
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN audit_log.tracked_schemas s ON s.schema_name = n.nspname
             WHERE c.oid = ANY (touched)
               AND s.follow_new_tables
               AND c.relkind IN ('r', 'p')
               AND c.relpersistence <> 't'
               AND NOT c.relispartition
               AND c.relname <> ALL (s.exclude_tables)
               AND NOT EXISTS (SELECT 1 FROM audit_log.tracked t WHERE t.relid = c.oid)
             ORDER BY c.oid
        LOOP
            PERFORM audit_log.track(created);
        END LOOP;
    END IF;
END
$$;

CREATE FUNCTION audit_log.note_ddl_watch_state()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_note_ddl_watch_state';
CREATE FUNCTION audit_log.record_ddl()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_record_ddl';

-- The commands that can change a tracked table, its name, or its capture,
-- or create a table that a tracked schema or table takes in.
CREATE EVENT TRIGGER audit_log_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER TRIGGER', 'DROP TRIGGER', 'DROP TABLE',
                 'ALTER SCHEMA', 'DROP SCHEMA', 'DROP OWNED',
                 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    EXECUTE FUNCTION audit_log.note_ddl_watch_state();
CREATE EVENT TRIGGER audit_log_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'ALTER TRIGGER', 'DROP TRIGGER', 'DROP TABLE',
                 'ALTER SCHEMA', 'DROP SCHEMA', 'DROP OWNED',
                 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    EXECUTE FUNCTION audit_log.record_ddl();

-- Dropping the extension would drop the trail: refused while it holds events
-- (src/ddl.rs), unless a superuser sets audit_log.drop_with_events.
CREATE FUNCTION audit_log.guard_drop()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_guard_drop';
CREATE EVENT TRIGGER audit_log_guard_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION audit_log.guard_drop();

-- Privileges, as privileges.sql leaves them.
REVOKE ALL ON FUNCTION
    audit_log.refuse_forged_event(),
    audit_log.with_former_names(text[]),
    audit_log.record_ddl_event(text, jsonb),
    audit_log.ddl_watch_state(),
    audit_log.record_ddl(jsonb, text),
    audit_log.note_ddl_watch_state(),
    audit_log.record_ddl(),
    audit_log.guard_drop()
FROM PUBLIC;
REVOKE ALL ON audit_log.tracked_schema_settings FROM PUBLIC;
GRANT SELECT ON audit_log.tracked_schema_settings TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.with_former_names(text[]) TO audit_log_reader;
