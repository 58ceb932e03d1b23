-- audit_log 0.4.0 -> 0.5.0: a trail that lives for years (API section 8).

-- The log's own events: legal holds, their release, archives.
ALTER TABLE audit_log.events DROP CONSTRAINT events_action_check;
ALTER TABLE audit_log.events ADD CONSTRAINT events_action_check CHECK (action ~ '^[A-Z][A-Z0-9_]{0,62}$');

CREATE OR REPLACE FUNCTION audit_log.normalize_action(action text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Any well-formed word: the capture's actions, the extension's, and
    -- those applications record (log_event()).
    IF action ~ '^[A-Za-z][A-Za-z0-9_]{0,62}$' THEN
        RETURN upper(action);
    END IF;
    RAISE EXCEPTION 'malformed action "%"', action
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'An action is a word of letters, digits and underscores, starting with a letter, in any case: INSERT, update, delete, TRUNCATE, LOGIN...';
END
$$;

-- The DDL watch guards the hold tables' triggers too.
CREATE OR REPLACE FUNCTION audit_log.guarded_tables() RETURNS oid[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(c.oid)
      FROM pg_class c
     WHERE c.relnamespace = 'audit_log'::regnamespace
       AND c.relkind IN ('r', 'p')
       AND (c.relname IN ('events', 'log_identity', 'tree_leaves', 'tree_seals', 'tree_nodes',
                          'tree_signatures', 'restored_trails', 'legal_holds', 'legal_hold_releases')
            -- The log's partitions, whose guards are their own.
            OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i
                          WHERE i.inhparent = (SELECT e.oid FROM pg_class e
                                                WHERE e.relnamespace = 'audit_log'::regnamespace
                                                  AND e.relname = 'events')))
$$;

-- The DDL watch lets the extension make a new partition's guards fire always.
CREATE OR REPLACE FUNCTION audit_log.record_ddl(before jsonb, command_tag text, roots oid[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
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
      LEFT JOIN LATERAL (SELECT t.oid, t.tgname, t.tgenabled FROM pg_trigger t
                          WHERE t.oid = w.key::oid OFFSET 0) AS t ON true
     WHERE (t.oid IS NULL
            -- A trigger that went with its table is part of the table's drop.
            AND (SELECT true FROM pg_class c WHERE c.oid = (w.value ->> 'table')::oid LIMIT 1))
        OR t.tgname <> w.value ->> 'name'
        OR t.tgenabled::text <> w.value ->> 'enabled';

    -- A guard made to fire always is what the extension makes of every new
    -- partition's guards (src/partitions.rs); any other change is refused.
    SELECT (c ->> 'relid')::oid::regclass AS guarded INTO target
      FROM jsonb_array_elements(trigger_changes) AS c
     WHERE (c ->> 'relid')::oid = ANY (audit_log.guarded_tables())
       AND c ->> 'change' <> 'fires always, also under session_replication_role = replica'
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the triggers that keep % append-only cannot be disabled, renamed or dropped', target.guarded
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    -- An inheritance child (CREATE TABLE ... INHERITS, ALTER TABLE ...
    -- INHERIT) holds rows that the tracked table's queries reach but its
    -- capture triggers never see: refused.
    SELECT i.inhrelid::regclass AS child, t.relid AS parent INTO part
      FROM unnest(roots) AS r
     CROSS JOIN LATERAL (SELECT t.relid FROM audit_log.tracked t WHERE t.relid = r::regclass OFFSET 0) AS t
     CROSS JOIN LATERAL (SELECT i.inhrelid FROM pg_inherits i
                          WHERE i.inhparent = t.relid
                            AND NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = i.inhrelid)
                         OFFSET 0) AS i
     WHERE NOT (before -> 'children') ? i.inhrelid::oid::text
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % cannot inherit from tracked table %', part.child, part.parent
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Its rows would be read and changed through the tracked table without being captured.',
                  HINT = 'Use a partition (PARTITION OF) instead: partitions are captured as their tracked table.';
    END IF;

    -- Tables the command worked on (none for DROP: those are found missing).
    IF command_tag NOT LIKE 'DROP %' THEN
        SELECT array_agg(DISTINCT c.objid) INTO touched
          FROM pg_event_trigger_ddl_commands() AS c
         WHERE c.classid = 'pg_class'::regclass;
    END IF;

    -- Partitions that joined a tracked table (CREATE TABLE ... PARTITION OF,
    -- ATTACH PARTITION) get its TRUNCATE trigger (row triggers are cloned by
    -- PostgreSQL); one that was tracked on its own is untracked first. Not
    -- while the table has no capture trigger: a restore attaches partitions
    -- before it creates the triggers it dumped, the partitions' included.
    FOR part IN
        SELECT t.relid AS root, p.relid AS partition
          FROM unnest(roots) AS r
         CROSS JOIN LATERAL (SELECT t.relid FROM audit_log.tracked t WHERE t.relid = r::regclass OFFSET 0) AS t
         CROSS JOIN LATERAL pg_partition_tree(t.relid) AS p
         WHERE (SELECT true FROM pg_trigger tg
                 WHERE tg.tgrelid = t.relid
                   AND tg.tgfoid = 'audit_log.capture_row()'::regprocedure
                 LIMIT 1)
           AND (SELECT c.relkind FROM pg_class c WHERE c.oid = p.relid) IN ('r', 'p')
           AND p.relid <> t.relid
           AND (t.relid::oid = ANY (touched) OR p.relid::oid = ANY (touched))
           -- New to this table's tree (a trigger dropped by hand stays dropped).
           AND (before #>> ARRAY['tables', p.relid::oid::text, 'root'])::oid IS DISTINCT FROM t.relid::oid
           AND (SELECT true FROM pg_trigger tg
                 WHERE tg.tgrelid = p.relid
                   AND tg.tgname = 'audit_log_truncate_' || t.relid::oid
                 LIMIT 1) IS NULL
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
              LEFT JOIN LATERAL (SELECT c.oid FROM pg_class c WHERE c.oid = w.key::oid OFFSET 0) AS c ON true),
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
                'statement', audit_log.ddl_statement()));
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
             CROSS JOIN LATERAL (SELECT tg.tgname FROM pg_trigger tg
                                  WHERE tg.tgrelid = d.relid
                                    AND tg.tgname = 'audit_log_truncate_' || target.root OFFSET 0) AS tg
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
                'statement', audit_log.ddl_statement())));
        END IF;
    END LOOP;
END
$$;

-- The default partition's events move into the month made for them.
CREATE OR REPLACE FUNCTION audit_log.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Events the default partition took move, unchanged, into the month
    -- made for them (create_partition(), with the setting only superusers
    -- and the extension's own functions can turn on).
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'events_default'
       AND current_setting('audit_log.partition_maintenance', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_log.events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Events are written only by capture and can never be changed or removed.';
END
$$;

-- A forged-event check per partition: a restore loads each partition into
-- its freshly attached, empty table.
CREATE OR REPLACE FUNCTION audit_log.refuse_forged_event() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    holds_events boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', TG_RELID::regclass) INTO holds_events;
    IF holds_events THEN
        RAISE EXCEPTION 'audit_log.events is written only by capture: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only a restore into an empty log may load events.';
    END IF;
    RETURN NULL;
END
$$;

-- The log becomes partitioned by the time of its events (sql/partitions.sql).
-- Its events stay where they are, never rewritten: the existing table becomes
-- the first partition, up to the end of this month (or of its latest event's
-- month), attached on a CHECK constraint that spares ATTACH its scan (the
-- constraint itself reads the table once). It keeps its indexes; it leaves
-- the extension, so that pg_dump writes it like any later month, and its
-- named guards give way to the partition guards every partition carries.
DO $$
DECLARE
    first_end timestamptz := greatest(
        (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC',
        (SELECT (date_trunc('month', max(e.occurred_at) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
           FROM audit_log.events e));
    first_name text := 'events_before_' || to_char(first_end AT TIME ZONE 'UTC', 'YYYY_MM');
    not_null name;
BEGIN
    EXECUTE format('ALTER TABLE audit_log.events RENAME TO %I', first_name);
    -- PostgreSQL 18 names NOT NULL constraints after the table (events_id_not_null):
    -- the old table's give the new log its names back.
    FOR not_null IN
        SELECT c.conname FROM pg_catalog.pg_constraint c
         WHERE c.conrelid = format('audit_log.%I', first_name)::regclass AND c.contype = 'n'
    LOOP
        EXECUTE format('ALTER TABLE audit_log.%I RENAME CONSTRAINT %I TO %I', first_name, not_null,
                       regexp_replace(not_null, '^events_', first_name || '_'));
    END LOOP;
    EXECUTE format('ALTER TABLE audit_log.%I ADD CONSTRAINT events_first_partition CHECK (occurred_at < %L)',
                   first_name, first_end);
    EXECUTE format('DROP TRIGGER events_append_only ON audit_log.%1$I;
                    DROP TRIGGER events_no_forgery ON audit_log.%1$I;
                    DROP TRIGGER events_no_truncate ON audit_log.%1$I;
                    DROP TRIGGER events_restored ON audit_log.%1$I', first_name);
    EXECUTE format('ALTER EXTENSION audit_log DROP TABLE audit_log.%I', first_name);

    CREATE TABLE audit_log.events (
        id               bigint      NOT NULL DEFAULT pg_catalog.nextval('audit_log.events_id_seq'),
        occurred_at      timestamptz NOT NULL,
        tx_id            xid8        NOT NULL,
        actor            text,
        db_user          text        NOT NULL,
        application_name text,
        client_addr      inet,
        context          jsonb,
        entity           text,
        entity_id        jsonb,
        action           text        NOT NULL,
        old_values       jsonb,
        new_values       jsonb,
        changed_fields   text[],
        CONSTRAINT events_action_check CHECK (action ~ '^[A-Z][A-Z0-9_]{0,62}$')
    ) PARTITION BY RANGE (occurred_at);
    ALTER SEQUENCE audit_log.events_id_seq OWNED BY audit_log.events.id;
    EXECUTE format('ALTER TABLE audit_log.events ATTACH PARTITION audit_log.%I FOR VALUES FROM (MINVALUE) TO (%L)',
                   first_name, first_end);
    EXECUTE format('ALTER TABLE audit_log.%I DROP CONSTRAINT events_first_partition', first_name);
    -- Application events and sign-ins may be about no entity (section 10).
    EXECUTE format('ALTER TABLE audit_log.%I ALTER COLUMN entity DROP NOT NULL', first_name);
END
$$;
COMMENT ON TABLE audit_log.events IS
    'Append-only audit trail: one row per changed row, written in the same transaction as the change';
SELECT pg_catalog.pg_extension_config_dump('audit_log.events', '');

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_event_change();
CREATE TRIGGER events_no_forgery
    BEFORE INSERT ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_forged_event();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_event_change();
CREATE TRIGGER events_restored
    AFTER INSERT ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.note_restored_events();
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_append_only;
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_no_truncate;
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_no_forgery;
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_restored;
REVOKE ALL ON audit_log.events FROM PUBLIC;
GRANT SELECT ON audit_log.events TO audit_log_reader;


-- Functions bound to the log's old table (SQL bodies) or to its row type
-- (SETOF audit_log.events) follow the new one.
CREATE OR REPLACE FUNCTION audit_log.matching_entities(entity text)
RETURNS text[]
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL keeps its plans for the session: planning this query over every
-- partition of the log, as a SQL function would at each call, costs more
-- than running it.
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    parts text[] := audit_log.entity_parts(entity);
BEGIN
    IF cardinality(parts) = 2 THEN
        RETURN ARRAY[quote_ident(parts[1]) || '.' || quote_ident(parts[2])];
    END IF;
    RETURN ARRAY(
        WITH RECURSIVE known(entity) AS (
            SELECT min(e.entity) FROM audit_log.events e
            UNION ALL
            SELECT (SELECT min(e.entity) FROM audit_log.events e
                     WHERE e.entity > known.entity)
              FROM known WHERE known.entity IS NOT NULL
        )
        SELECT known.entity FROM known
         WHERE known.entity IS NOT NULL
           AND (audit_log.entity_parts(known.entity))[2] = parts[1]
         ORDER BY 1);
END
$$;

CREATE OR REPLACE FUNCTION audit_log.entity_segments(entities text[])
RETURNS TABLE (name text, after_id bigint, before_id bigint)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- Its recursive query is estimated far above what it reads (a few DDL
-- events): JIT would compile it for every call, 100 ms for a 1 ms query.
-- And PL/pgSQL keeps its plan for the session, where a SQL function plans it
-- over every partition of the log at each call.
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    WITH RECURSIVE seg(name, after_id, before_id) AS (
        SELECT n.name,
               coalesce((SELECT max(v.id) FROM audit_log.events v
                          WHERE v.action = 'DDL'
                            AND ((v.entity = n.name AND v.new_values ? 'dropped')
                                 OR v.new_values ->> 'renamed_from' = n.name)
                            AND EXISTS (SELECT 1 FROM audit_log.events u
                                         WHERE u.entity = n.name AND u.id > v.id)), 0),
               9223372036854775807
          FROM unnest(entity_segments.entities) AS n(name)
        UNION
        SELECT r.new_values ->> 'renamed_from',
               coalesce((SELECT max(v.id) FROM audit_log.events v
                          WHERE v.action = 'DDL' AND v.id < r.id
                            AND ((v.entity = r.new_values ->> 'renamed_from' AND v.new_values ? 'dropped')
                                 OR v.new_values ->> 'renamed_from' = r.new_values ->> 'renamed_from')), 0),
               r.id
          FROM seg
         -- OFFSET 0 keeps the planner from walking the id index backwards
         -- through every event for the latest one: DDL events are few, and
         -- found through the rare actions' index.
         CROSS JOIN LATERAL (SELECT d.id, d.new_values
                               FROM (SELECT e.id, e.new_values FROM audit_log.events e
                                      WHERE e.entity = seg.name AND e.action = 'DDL'
                                        AND e.new_values ? 'renamed_from'
                                        AND e.id > seg.after_id AND e.id < seg.before_id
                                     OFFSET 0) AS d
                              ORDER BY d.id DESC LIMIT 1) AS r
    )
    SELECT seg.name, seg.after_id, seg.before_id FROM seg;
END
$$;

CREATE OR REPLACE FUNCTION audit_log.changes(event_id bigint)
RETURNS TABLE (field text, old_value jsonb, new_value jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT f.field, e.old_values -> f.field, e.new_values -> f.field
      FROM audit_log.events e
     CROSS JOIN LATERAL (
           SELECT c.field, c.position
             FROM unnest(e.changed_fields) WITH ORDINALITY AS c(field, position)
            WHERE e.action = 'UPDATE'
           UNION ALL
           SELECT k.field, a.attnum
             FROM jsonb_object_keys(coalesce(e.new_values, e.old_values)) AS k(field)
             -- Looked up in the catalogs, which need no right on the
             -- table's schema (to_regclass() does).
             LEFT JOIN pg_attribute a
                    ON a.attrelid = (SELECT c.oid FROM pg_class c
                                       JOIN pg_namespace n ON n.oid = c.relnamespace
                                      WHERE n.nspname = (audit_log.entity_parts(e.entity))[1]
                                        AND c.relname = (audit_log.entity_parts(e.entity))[2])
                   AND a.attname = k.field
            WHERE e.action = ANY (ARRAY['INSERT', 'DELETE'])
         ) AS f(field, position)
     WHERE e.id = event_id
     ORDER BY f.position NULLS LAST, f.field;
END;

CREATE OR REPLACE FUNCTION audit_log.export(since timestamptz DEFAULT NULL,
                                 until timestamptz DEFAULT NULL,
                                 actor text DEFAULT NULL,
                                 entity text DEFAULT NULL,
                                 action text DEFAULT NULL)
RETURNS SETOF audit_log.export_row
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT e.id::text,
           audit_log.iso_utc(e.occurred_at),
           e.tx_id::text,
           e.actor,
           e.db_user,
           e.application_name,
           e.client_addr::text,
           e.entity,
           e.entity_id::text,
           e.action,
           audit_log.json_text_array(e.changed_fields),
           e.old_values::text,
           e.new_values::text,
           e.context::text
      FROM audit_log.events e
     WHERE audit_log.check_period(export.since, export.until)
       -- coalesce rather than "IS NULL OR": the bounds stay usable by the
       -- index even when they are expressions such as now() - interval '1 day'.
       AND e.occurred_at >= coalesce(export.since, '-infinity')
       AND e.occurred_at < coalesce(export.until, 'infinity')
       AND (export.actor IS NULL OR e.actor = export.actor)
       -- The names and stretches of the trail the entity stands for, as in
       -- list() and history() (entity_segments), computed once.
       AND (export.entity IS NULL
            OR e.entity = ANY ((SELECT array_agg(s.name) FROM audit_log.entity_segments(
                                    audit_log.matching_entities(export.entity)) AS s)::text[]))
       AND (export.entity IS NULL
            OR EXISTS (SELECT 1
                         FROM unnest((SELECT array_agg(s.name) FROM audit_log.entity_segments(
                                          audit_log.matching_entities(export.entity)) AS s),
                                     (SELECT array_agg(s.after_id) FROM audit_log.entity_segments(
                                          audit_log.matching_entities(export.entity)) AS s),
                                     (SELECT array_agg(s.before_id) FROM audit_log.entity_segments(
                                          audit_log.matching_entities(export.entity)) AS s))
                              AS s(name, after_id, before_id)
                        WHERE s.name = e.entity AND e.id > s.after_id AND e.id < s.before_id))
       AND (export.action IS NULL
            OR e.action = audit_log.normalize_action(export.action))
     ORDER BY e.occurred_at, e.id;
END;

DROP FUNCTION audit_log.list(timestamptz, timestamptz, text, text, text, integer, bigint);
DROP FUNCTION audit_log.history(text, jsonb);
CREATE FUNCTION audit_log.list(since timestamptz DEFAULT NULL,
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
    afters bigint[];
    befores bigint[];
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
        SELECT array_agg(s.name ORDER BY s.name, s.after_id), array_agg(s.after_id ORDER BY s.name, s.after_id),
               array_agg(s.before_id ORDER BY s.name, s.after_id)
          INTO entities, afters, befores
          FROM audit_log.entity_segments(audit_log.matching_entities(list.entity)) AS s;
        IF entities IS NULL THEN
            RETURN;
        END IF;
        -- One index range per name and stretch, merged: no sort of a whole
        -- table's events.
        SELECT string_agg(format('(SELECT e.* FROM audit_log.events e WHERE e.entity = $4[%s] '
                                 'AND e.id > $9[%s] AND e.id < $10[%s] %s '
                                 'ORDER BY e.occurred_at DESC, e.id DESC LIMIT $8)', i, i, i, filters),
                          ' UNION ALL ')
          INTO query
          FROM generate_subscripts(entities, 1) AS i;
        query := format('SELECT u.* FROM (%s) AS u ORDER BY u.occurred_at DESC, u.id DESC LIMIT $8', query);
    END IF;
    RETURN QUERY EXECUTE query
        USING since, until, list.actor, entities, wanted_action, before_id, cursor_at, max_rows,
              afters, befores;
END
$$;

CREATE FUNCTION audit_log.history(entity text, entity_id jsonb)
RETURNS SETOF audit_log.events
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    entities text[];
    afters bigint[];
    befores bigint[];
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
                                          WHERE y <> x
                                            AND x IN (SELECT s.name FROM audit_log.entity_segments(ARRAY[y]) AS s)));
    IF cardinality(entities) > 1 THEN
        RAISE EXCEPTION 'table name "%" is ambiguous: the trail has %', history.entity,
                        array_to_string(entities, ', ')
            USING ERRCODE = 'ambiguous_alias',
                  HINT = 'Qualify the name with its schema.';
    END IF;
    IF cardinality(entities) = 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(s.name), array_agg(s.after_id), array_agg(s.before_id)
      INTO entities, afters, befores
      FROM audit_log.entity_segments(entities) AS s;

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
           AND EXISTS (SELECT 1 FROM unnest(entities, afters, befores) AS s(name, after_id, before_id)
                        WHERE s.name = e.entity AND e.id > s.after_id AND e.id < s.before_id)
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
           AND EXISTS (SELECT 1 FROM unnest(entities, afters, befores) AS s(name, after_id, before_id)
                        WHERE s.name = e.entity AND e.id > s.after_id AND e.id < s.before_id)
         ORDER BY e.occurred_at, e.id;
END
$$;
REVOKE ALL ON FUNCTION audit_log.list(timestamptz, timestamptz, text, text, text, integer, bigint),
    audit_log.history(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_log.list(timestamptz, timestamptz, text, text, text, integer, bigint),
    audit_log.history(text, jsonb) TO audit_log_reader;

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

-- The first partition's guards (the default one has them already).
SELECT audit_log.guard_partition(p.partition) FROM audit_log.partition_bounds() AS p
 WHERE p.partition <> 'audit_log.events_default'::regclass;

-- The months after the first partition, made now so that no event waits in
-- the default partition for the seal worker or track(); like every month,
-- not part of the extension (pg_dump writes them as tables).
-- (Not through prepare_partitions(), which would also drop the default
-- partition that a fresh install keeps until its first months are made.)
DO $$
DECLARE
    period record;
    made regclass;
BEGIN
    FOR period IN SELECT a.* FROM audit_log.periods_ahead() a
                   WHERE NOT EXISTS (SELECT 1 FROM audit_log.partition_bounds() b
                                      WHERE b.from_time < a.to_time AND b.to_time > a.from_time)
                   ORDER BY a.from_time LOOP
        made := audit_log.create_partition(period.from_time, period.to_time);
        EXECUTE format('ALTER EXTENSION audit_log DROP TABLE %s', made);
    END LOOP;
END
$$;

REVOKE ALL ON audit_log.events_default FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.guard_partition(regclass), audit_log.create_event_indexes(regclass),
    audit_log.create_partition(timestamptz, timestamptz), audit_log.guard_new_partitions(),
    audit_log.partition_bounds(), audit_log.prepare_partitions(), audit_log.guard_log_partitions(),
    audit_log.partition_sealed(regclass), audit_log.periods_ahead() FROM PUBLIC;
REVOKE ALL ON audit_log.partitions FROM PUBLIC;
GRANT SELECT ON audit_log.partitions TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.partition_bounds(), audit_log.partition_sealed(regclass) TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.prepare_partitions() TO audit_log_admin;

-- Retention (API section 8): legal holds. While any hold is on, nothing can
-- be archived or dropped. A hold and its release are rows of their own
-- append-only tables and events of the trail (HOLD, RELEASE), written in the
-- same transaction.

CREATE SEQUENCE audit_log.legal_holds_hold_id_seq;
CREATE TABLE audit_log.legal_holds (
    hold_id  bigint      NOT NULL DEFAULT pg_catalog.nextval('audit_log.legal_holds_hold_id_seq'),
    reason   text        NOT NULL,
    held_at  timestamptz NOT NULL,
    held_by  text        NOT NULL,
    CONSTRAINT legal_holds_pkey PRIMARY KEY (hold_id)
);
ALTER SEQUENCE audit_log.legal_holds_hold_id_seq OWNED BY audit_log.legal_holds.hold_id;

-- A release is a row of its own rather than an UPDATE: both tables stay append-only.
CREATE TABLE audit_log.legal_hold_releases (
    hold_id      bigint      NOT NULL,
    released_at  timestamptz NOT NULL,
    released_by  text        NOT NULL,
    CONSTRAINT legal_hold_releases_pkey PRIMARY KEY (hold_id),
    CONSTRAINT legal_hold_releases_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES audit_log.legal_holds
);

SELECT pg_catalog.pg_extension_config_dump('audit_log.legal_holds', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.legal_holds_hold_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.legal_hold_releases', '');

CREATE FUNCTION audit_log.refuse_hold_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Holds are placed with audit_log.legal_hold() and lifted with audit_log.release_hold().';
END
$$;
CREATE TRIGGER legal_holds_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.legal_holds
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_hold_change();
CREATE TRIGGER legal_hold_releases_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.legal_hold_releases
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_hold_change();
ALTER TABLE audit_log.legal_holds ENABLE ALWAYS TRIGGER legal_holds_append_only;
ALTER TABLE audit_log.legal_hold_releases ENABLE ALWAYS TRIGGER legal_hold_releases_append_only;

-- Every hold, lifted or not; a hold is on while released_at is NULL.
CREATE VIEW audit_log.holds AS
SELECT h.hold_id, h.reason, h.held_at, h.held_by, r.released_at, r.released_by,
       r.hold_id IS NULL AS active
  FROM audit_log.legal_holds h
  LEFT JOIN audit_log.legal_hold_releases r ON r.hold_id = h.hold_id;

-- The HOLD, RELEASE and ARCHIVE events. Not granted to anyone.
CREATE FUNCTION audit_log.record_retention(action text, entity_id jsonb, old_values jsonb, new_values jsonb)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'audit_log_record_retention';

-- Who acts, as a hold records it: the application's actor when one is set,
-- else the database user.
CREATE FUNCTION audit_log.acting_user()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('audit_log.actor', true), ''), session_user::text)
$$;

CREATE FUNCTION audit_log.legal_hold(reason text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_hold bigint;
BEGIN
    IF reason IS NULL THEN
        RAISE EXCEPTION 'audit_log.legal_hold(): reason must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Say why the trail must be kept: a case, a request, an inspection.';
    END IF;
    IF btrim(reason) = '' THEN
        RAISE EXCEPTION 'audit_log.legal_hold(): reason must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Say why the trail must be kept: a case, a request, an inspection.';
    END IF;
    IF octet_length(reason) > 1024 THEN
        RAISE EXCEPTION 'audit_log.legal_hold(): reason is % bytes long, more than 1024', octet_length(reason)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    INSERT INTO audit_log.legal_holds (reason, held_at, held_by)
    VALUES (reason, statement_timestamp(), audit_log.acting_user())
    RETURNING hold_id INTO new_hold;
    PERFORM audit_log.record_retention('HOLD', jsonb_build_object('hold_id', new_hold), NULL,
                                       jsonb_build_object('hold_id', new_hold, 'reason', reason));
    RETURN new_hold;
END
$$;

CREATE FUNCTION audit_log.release_hold(hold_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    held audit_log.legal_holds;
BEGIN
    IF release_hold.hold_id IS NULL THEN
        RAISE EXCEPTION 'audit_log.release_hold(): hold_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO held FROM audit_log.legal_holds h WHERE h.hold_id = release_hold.hold_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_log.release_hold(): there is no legal hold %', release_hold.hold_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'audit_log.holds lists the holds and their ids.';
    END IF;
    BEGIN
        INSERT INTO audit_log.legal_hold_releases (hold_id, released_at, released_by)
        VALUES (held.hold_id, statement_timestamp(), audit_log.acting_user());
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'audit_log.release_hold(): legal hold % is already released', held.hold_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END;
    PERFORM audit_log.record_retention('RELEASE', jsonb_build_object('hold_id', held.hold_id),
                                       jsonb_build_object('hold_id', held.hold_id, 'reason', held.reason),
                                       jsonb_build_object('hold_id', held.hold_id));
END
$$;

REVOKE ALL ON audit_log.legal_holds, audit_log.legal_hold_releases, audit_log.holds FROM PUBLIC;
REVOKE ALL ON SEQUENCE audit_log.legal_holds_hold_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.refuse_hold_change(), audit_log.record_retention(text, jsonb, jsonb, jsonb),
    audit_log.acting_user(), audit_log.legal_hold(text), audit_log.release_hold(bigint) FROM PUBLIC;
GRANT SELECT ON audit_log.holds TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.legal_hold(text), audit_log.release_hold(bigint) TO audit_log_admin;

-- Archives (API section 8): a closed partition leaves the log only as a
-- verified archive. `audit-log archive` writes it (the month's export, its
-- complete proof, a manifest), reads it back and verifies it, detaches the
-- partition concurrently (the only DETACH the extension lets through, and only
-- for a partition it could archive), then calls drop_archived(), which checks
-- the manifest against the partition, records an ARCHIVE event holding the
-- manifest, and drops it. verify() accounts for the archived leaves through
-- that event.

-- Partitions on their way out: detached (or being detached) for archiving,
-- not dropped yet, with the period they took (a detached table has no bounds).
-- A crash between the detach and the drop leaves the row; `audit-log archive`
-- finishes the job on its next run.
CREATE TABLE audit_log.detached_partitions (
    relid        oid         NOT NULL,
    partition    text        NOT NULL,
    from_time    timestamptz NOT NULL,
    to_time      timestamptz NOT NULL,
    detached_at  timestamptz NOT NULL,
    CONSTRAINT detached_partitions_pkey PRIMARY KEY (relid)
);

-- The header fields (as export() writes them, in tag order: id, occurred_at,
-- tx_id, actor, db_user, entity, entity_id, action) and body hash of archived
-- events whose leaves lie after the last seal leaf before their period ended:
-- a complete proof of a later period reveals them (API 6.1). Kept so that
-- later periods can still be proven complete, and archived in turn.
CREATE TABLE audit_log.archived_headers (
    leaf_index  bigint NOT NULL,
    header      text[] NOT NULL,
    body_hash   bytea  NOT NULL,
    CONSTRAINT archived_headers_pkey PRIMARY KEY (leaf_index)
);
SELECT pg_catalog.pg_extension_config_dump('audit_log.archived_headers', '');

CREATE FUNCTION audit_log.refuse_archive_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only audit_log.drop_archived() writes it.';
END
$$;
CREATE TRIGGER archived_headers_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.archived_headers
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_archive_change();
ALTER TABLE audit_log.archived_headers ENABLE ALWAYS TRIGGER archived_headers_append_only;

CREATE FUNCTION audit_log.keep_archived_headers(partition regclass, after_leaf bigint)
RETURNS bigint
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'audit_log_keep_archived_headers_wrapper';

-- Why a partition cannot be archived now, or NULL when it can: closed (a
-- seal's horizon has reached the end of its period, so no event can still
-- arrive in it), every event in it sealed, and no legal hold on.
CREATE FUNCTION audit_log.archivable(partition regclass)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    period record;
    hold record;
BEGIN
    IF partition IS NULL THEN
        RAISE EXCEPTION 'audit_log.archivable(): partition must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT b.from_time, b.to_time INTO period
      FROM audit_log.partition_bounds() b WHERE b.partition = archivable.partition;
    IF NOT FOUND THEN
        SELECT d.from_time, d.to_time INTO period
          FROM audit_log.detached_partitions d WHERE d.relid = archivable.partition;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partition of audit_log.events', partition
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'audit_log.partitions lists the partitions of the log.';
    END IF;
    IF period.to_time IS NULL THEN
        RETURN 'it is the default partition, which is never archived';
    END IF;
    SELECT h.hold_id, h.reason INTO hold FROM audit_log.holds h WHERE h.active ORDER BY h.hold_id LIMIT 1;
    IF FOUND THEN
        RETURN format('legal hold %s is on (%s): nothing can be archived until it is released',
                      hold.hold_id, hold.reason);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_log.tree_seals s WHERE s.horizon >= period.to_time) THEN
        RETURN format('it is not closed yet: no seal''s horizon has reached %s, the end of its period',
                      audit_log.iso_utc(period.to_time));
    END IF;
    IF NOT audit_log.partition_sealed(partition) THEN
        RETURN 'some of its events are not sealed yet';
    END IF;
    RETURN NULL;
END
$$;

-- Called by the partition guard (src/partitions.rs) when someone runs
-- ALTER TABLE audit_log.events DETACH PARTITION ... CONCURRENTLY: refuses a
-- partition that could not be archived, else records its period. Runs in the
-- detach's first transaction, so the row stays when the detach goes through.
CREATE FUNCTION audit_log.note_detaching(partition regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    period record;
    refusal text;
BEGIN
    SELECT b.from_time, b.to_time INTO period
      FROM audit_log.partition_bounds() b WHERE b.partition = note_detaching.partition;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partition of audit_log.events', partition
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A hold placed now waits for the detach, which then sees it next time.
    LOCK TABLE audit_log.legal_holds IN SHARE MODE;
    refusal := audit_log.archivable(partition);
    IF refusal IS NOT NULL THEN
        RAISE EXCEPTION 'partition % cannot be detached: %', partition, refusal
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only audit-log archive detaches partitions, once their archive is written and verified.';
    END IF;
    INSERT INTO audit_log.detached_partitions (relid, partition, from_time, to_time, detached_at)
    VALUES (partition, partition::text, period.from_time, period.to_time, statement_timestamp())
    ON CONFLICT (relid) DO NOTHING;
END
$$;

-- SHA-256 (hex) of the CSV that `\copy (SELECT * FROM audit_log.export(...))
-- TO ... WITH (FORMAT csv, HEADER)` writes for every event of a partition, as
-- its archive holds it uncompressed (src/archives.rs). Not granted to anyone.
CREATE FUNCTION audit_log.partition_csv_sha256(partition regclass)
RETURNS text
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'audit_log_partition_csv_sha256_wrapper';

-- What a manifest must say of a partition: its event count, its events'
-- leaf indexes as runs [first, last], and the SHA-256 of their leaf hashes in
-- leaf order and of its CSV.
CREATE FUNCTION audit_log.archive_digest(partition regclass)
RETURNS TABLE (events bigint, leaf_ranges jsonb, leaf_hashes_sha256 text, csv_sha256 text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', partition) INTO events;
    EXECUTE format($q$
        SELECT coalesce(jsonb_agg(jsonb_build_array(r.first, r.last) ORDER BY r.first), '[]'),
               encode(sha256(coalesce((SELECT string_agg(l.leaf_hash, ''::bytea ORDER BY l.leaf_index)
                                         FROM audit_log.tree_leaves l
                                        WHERE l.event_id IN (SELECT p.id FROM %1$s p)), ''::bytea)), 'hex')
          FROM (SELECT min(s.leaf_index) AS first, max(s.leaf_index) AS last
                  FROM (SELECT l.leaf_index, l.leaf_index - row_number() OVER (ORDER BY l.leaf_index) AS run
                          FROM audit_log.tree_leaves l
                         WHERE l.event_id IN (SELECT p.id FROM %1$s p)) AS s
                 GROUP BY s.run) AS r
    $q$, partition) INTO leaf_ranges, leaf_hashes_sha256;
    csv_sha256 := audit_log.partition_csv_sha256(partition);
    RETURN NEXT;
END
$$;

-- Drops a partition `audit-log archive` detached, once the manifest of its
-- archive matches it exactly; records the ARCHIVE event, holding the manifest.
CREATE FUNCTION audit_log.drop_archived(partition regclass, manifest jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.partition_maintenance = on
AS $$
DECLARE
    detached audit_log.detached_partitions;
    refusal text;
    digest record;
    mismatch text;
BEGIN
    IF partition IS NULL OR manifest IS NULL THEN
        RAISE EXCEPTION 'audit_log.drop_archived(): partition and manifest must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(manifest) <> 'object' THEN
        RAISE EXCEPTION 'audit_log.drop_archived(): the manifest must be a JSON object, as audit-log archive writes it'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- No hold can be placed until this transaction ends, and none is on.
    LOCK TABLE audit_log.legal_holds IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM audit_log.partition_bounds() b WHERE b.partition = drop_archived.partition) THEN
        refusal := audit_log.archivable(partition);
        RAISE EXCEPTION 'partition % is still attached to audit_log.events', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = coalesce('It cannot be archived: ' || refusal || '.',
                                    'Only a partition detached for archiving can be dropped.'),
                  HINT = CASE WHEN refusal IS NULL
                              THEN format('audit-log archive detaches it first: ALTER TABLE audit_log.events DETACH PARTITION %s CONCURRENTLY (or FINALIZE, to finish an interrupted detach).', partition)
                              ELSE 'audit_log.archivable() says when it can be.'
                         END;
    END IF;
    SELECT * INTO detached FROM audit_log.detached_partitions d WHERE d.relid = drop_archived.partition;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partition of audit_log.events detached for archiving', partition
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'audit_log.detached_partitions lists the partitions audit-log archive detached.';
    END IF;
    refusal := audit_log.archivable(partition);
    IF refusal IS NOT NULL THEN
        RAISE EXCEPTION 'partition % cannot be dropped: %', partition, refusal
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- The manifest must describe this partition exactly.
    SELECT * INTO digest FROM audit_log.archive_digest(partition);
    mismatch := CASE
        WHEN manifest->>'partition' IS DISTINCT FROM detached.partition
            THEN format('it is the manifest of %s, not of %s', coalesce(manifest->>'partition', 'no partition'), detached.partition)
        WHEN coalesce(manifest->'from', 'null') IS DISTINCT FROM
             CASE WHEN detached.from_time = '-infinity' THEN 'null'::jsonb
                  ELSE to_jsonb(audit_log.iso_utc(detached.from_time)) END
          OR manifest->>'to' IS DISTINCT FROM audit_log.iso_utc(detached.to_time)
            THEN format('its period (%s to %s) is not the partition''s (%s to %s)',
                        coalesce(manifest->>'from', '-infinity'), coalesce(manifest->>'to', 'nothing'),
                        audit_log.iso_utc(detached.from_time), audit_log.iso_utc(detached.to_time))
        WHEN manifest->'events' IS DISTINCT FROM to_jsonb(digest.events)
            THEN format('it counts %s events, the partition holds %s', coalesce(manifest->>'events', 'no'), digest.events)
        WHEN manifest->'leaf_ranges' IS DISTINCT FROM digest.leaf_ranges
            THEN format('its leaf_ranges are not the leaf indexes of the partition''s events (%s)', left(digest.leaf_ranges::text, 200))
        WHEN manifest->>'leaf_hashes_sha256' IS DISTINCT FROM digest.leaf_hashes_sha256
            THEN 'its leaf_hashes_sha256 is not the SHA-256 of the partition''s leaf hashes'
        WHEN manifest->>'csv_sha256' IS DISTINCT FROM digest.csv_sha256
            THEN 'its csv_sha256 is not the SHA-256 of the partition''s export'
    END;
    IF mismatch IS NOT NULL THEN
        RAISE EXCEPTION 'the manifest does not match partition %: %', partition, mismatch
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the .manifest.json that audit-log archive wrote for this partition.';
    END IF;
    PERFORM audit_log.keep_archived_headers(partition,
        coalesce((SELECT max(s.seal_leaf_index) FROM audit_log.tree_seals s
                   WHERE s.sealed_at <= detached.to_time), -1));
    PERFORM audit_log.record_retention('ARCHIVE', jsonb_build_object('partition', detached.partition), NULL, manifest);
    DELETE FROM audit_log.detached_partitions d WHERE d.relid = drop_archived.partition;
    EXECUTE format('DROP TABLE %s', partition);
END
$$;

REVOKE ALL ON audit_log.detached_partitions, audit_log.archived_headers FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.archivable(regclass), audit_log.note_detaching(regclass),
    audit_log.partition_csv_sha256(regclass), audit_log.archive_digest(regclass),
    audit_log.keep_archived_headers(regclass, bigint), audit_log.drop_archived(regclass, jsonb),
    audit_log.refuse_archive_change(), audit_log.partition_unit(), audit_log.period_for(timestamptz),
    audit_log.make_partition_for(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_log.drop_archived(regclass, jsonb), audit_log.archivable(regclass) TO audit_log_admin;
GRANT SELECT ON audit_log.detached_partitions TO audit_log_reader;

-- Time travel (section 9): track() and track_schema() take a baseline; as_of(),
-- revert(), revert_transaction().
DROP FUNCTION audit_log.track(regclass, text[], text[]);
DROP FUNCTION audit_log.track_as_owner(regclass, text[], text[]);
DROP FUNCTION audit_log.track_schema(name, text[], boolean);
DROP FUNCTION audit_log.track_schema_as_owner(oid, name, text[], boolean);

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

-- Time travel (API section 9): a tracked table, or one row, as it was at a
-- given time, rebuilt from the trail; and undoing an event or a whole
-- transaction with ordinary writes.

-- The names one table had in the trail and the stretch of event ids under
-- each, as history() resolves them: NULL arrays when the trail knows no such
-- table, an error when a bare name is ambiguous.
CREATE FUNCTION audit_log.entity_stretches(entity text,
                                           OUT names text[], OUT afters bigint[], OUT befores bigint[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    entities text[];
BEGIN
    entities := audit_log.matching_entities(entity_stretches.entity);
    -- Names one table had before a rename count as that table.
    entities := ARRAY(SELECT x FROM unnest(entities) AS x
                       WHERE NOT EXISTS (SELECT 1 FROM unnest(entities) AS y
                                          WHERE y <> x
                                            AND x IN (SELECT s.name FROM audit_log.entity_segments(ARRAY[y]) AS s)));
    IF cardinality(entities) > 1 THEN
        RAISE EXCEPTION 'table name "%" is ambiguous: the trail has %', entity_stretches.entity,
                        array_to_string(entities, ', ')
            USING ERRCODE = 'ambiguous_alias',
                  HINT = 'Qualify the name with its schema.';
    END IF;
    IF cardinality(entities) = 1 THEN
        SELECT array_agg(s.name), array_agg(s.after_id), array_agg(s.before_id)
          INTO names, afters, befores
          FROM audit_log.entity_segments(entities) AS s;
    END IF;
END
$$;

-- The hash index key of a row's key under each name its table had (the
-- events' hash index is on jsonb_hash_extended(entity_id, hashtext(entity))).
CREATE FUNCTION audit_log.key_hashes(key jsonb, names text[])
RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ARRAY(SELECT pg_catalog.jsonb_hash_extended(key, pg_catalog.hashtext(n)) FROM pg_catalog.unnest(names) AS n)
$$;

-- What as_of() returns: the row's key and the row as the trail recorded it.
-- A composite type rather than RETURNS TABLE, whose entity_id would clash
-- with the argument.
CREATE TYPE audit_log.as_of_row AS (entity_id jsonb, "row" jsonb);

-- The rows of a tracked table (or the one row) at `at`. Each row's state is
-- its last event at or before `at`: INSERT, UPDATE and BASELINE leave the
-- row as new_values says, DELETE and a change of key away from it remove it,
-- a TRUNCATE after it removes it. A row the trail knows nothing of by `at`
-- is not invented: a NOTICE counts the rows the trail cannot account for.
--
-- Table-wide, the table's events up to `at` are read once, through each
-- partition's (entity, occurred_at, id) index, and the last one per key is
-- picked by a sort, which spills to disk beyond work_mem: memory does not
-- grow with the number of rows.
CREATE FUNCTION audit_log.as_of(entity text, at timestamptz, entity_id jsonb DEFAULT NULL)
RETURNS SETOF audit_log.as_of_row
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    stretch record;
    last audit_log.events;
    cut record;
    unknown bigint := 0;
    live regclass;
    keys text[];
    untouched bigint;
    key jsonb;
    bound bigint;
    arrival audit_log.events;
    started record;
    baselined boolean := false;
    ev audit_log.events;
    seen boolean;
BEGIN
    IF as_of.entity IS NULL OR as_of.at IS NULL THEN
        RAISE EXCEPTION 'audit_log.as_of(): entity and at must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF as_of.entity_id IS NOT NULL AND jsonb_typeof(as_of.entity_id) <> 'object' THEN
        RAISE EXCEPTION 'audit_log.as_of(): entity_id must be a JSON object, like {"id": 42}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO stretch FROM audit_log.entity_stretches(as_of.entity);
    IF stretch.names IS NULL THEN
        RETURN;
    END IF;
    -- The last TRUNCATE at or before `at`: rows last written before it are gone.
    SELECT t.occurred_at, t.id INTO cut
      FROM audit_log.events t
     WHERE t.entity = ANY (stretch.names) AND t.action = 'TRUNCATE' AND t.occurred_at <= as_of.at
       AND EXISTS (SELECT 1 FROM unnest(stretch.names, stretch.afters, stretch.befores) AS s(name, after_id, before_id)
                    WHERE s.name = t.entity AND t.id > s.after_id AND t.id < s.before_id)
     ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1;

    IF as_of.entity_id IS NOT NULL THEN
        -- One row: the one that has this key now (or last had it), followed
        -- back through its changes of key to the key it had at `at`.
        key := as_of.entity_id;
        bound := 9223372036854775807;
        LOOP
            -- The key's events, newest first, read once (found by key
            -- through the hash index, then sorted; never by walking the time
            -- index backwards through every event): how the row came to this
            -- key (inserted, baselined, or moved here), and its last event at
            -- or before `at` since then.
            arrival := NULL;
            last := NULL;
            seen := false;
            FOR ev IN
                SELECT e.* FROM (SELECT e.* FROM audit_log.events e
                 WHERE e.entity = ANY (stretch.names)
                   AND jsonb_hash_extended(e.entity_id, hashtext(e.entity)) = ANY (audit_log.key_hashes(key, stretch.names))
                   AND e.entity_id = key AND e.id < bound
                   AND EXISTS (SELECT 1 FROM unnest(stretch.names, stretch.afters, stretch.befores) AS s(name, after_id, before_id)
                                WHERE s.name = e.entity AND e.id > s.after_id AND e.id < s.before_id)
                 OFFSET 0) AS e
                 ORDER BY e.occurred_at DESC, e.id DESC
            LOOP
                seen := true;
                IF last.id IS NULL AND ev.occurred_at <= as_of.at
                   AND ev.action IN ('INSERT', 'UPDATE', 'DELETE', 'BASELINE') THEN
                    last := ev;
                END IF;
                IF ev.action IN ('INSERT', 'BASELINE') OR (ev.action = 'UPDATE' AND NOT ev.old_values @> ev.entity_id) THEN
                    arrival := ev;
                    EXIT;
                END IF;
            END LOOP;
            EXIT WHEN arrival.id IS NULL OR arrival.occurred_at <= as_of.at OR arrival.action <> 'UPDATE';
            -- Moved here after `at`: at `at` it had its previous key.
            key := (SELECT jsonb_object_agg(k, arrival.old_values -> k) FROM jsonb_object_keys(arrival.entity_id) AS k);
            bound := arrival.id;
        END LOOP;
        IF arrival.id IS NOT NULL AND arrival.occurred_at > as_of.at THEN
            -- Inserted after `at`; baselined after it, it was there untold.
            IF arrival.action = 'BASELINE' THEN
                RAISE NOTICE 'the trail cannot account for this row of % at that time: it was there before tracking began, and no baseline was taken then',
                    stretch.names[1];
            END IF;
            RETURN;
        END IF;
        IF last.id IS NULL THEN
            IF seen THEN
                -- Changed after `at` without ever being seen written: untold.
                RAISE NOTICE 'the trail cannot account for this row of % at that time: it was there before tracking began, and no baseline was taken',
                    stretch.names[1];
            END IF;
            RETURN;
        END IF;
        IF last.action <> 'DELETE' AND (cut IS NULL OR (last.occurred_at, last.id) > (cut.occurred_at, cut.id)) THEN
            RETURN NEXT ROW(last.entity_id, last.new_values)::audit_log.as_of_row;
        END IF;
        RETURN;
    END IF;

    RETURN QUERY
    WITH span AS MATERIALIZED (
        SELECT e.id, e.occurred_at, e.action, e.entity_id, e.old_values, e.new_values
          FROM audit_log.events e
         WHERE e.entity = ANY (stretch.names)
           AND e.occurred_at <= as_of.at
           AND e.action IN ('INSERT', 'UPDATE', 'DELETE', 'BASELINE')
           AND e.entity_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM unnest(stretch.names, stretch.afters, stretch.befores) AS s(name, after_id, before_id)
                        WHERE s.name = e.entity AND e.id > s.after_id AND e.id < s.before_id)
    ), appearances AS (
        SELECT s.entity_id AS key, s.occurred_at, s.id,
               CASE WHEN s.action <> 'DELETE' THEN s.new_values END AS state
          FROM span s
        UNION ALL
        -- An UPDATE that changed the key takes the row away from its old key.
        -- (A row whose old values hold its key did not change key: a cheap
        -- test, before building the old key of the few that did.)
        SELECT previous.key, s.occurred_at, s.id, NULL
          FROM span s
         CROSS JOIN LATERAL (SELECT jsonb_object_agg(k, s.old_values -> k) AS key
                               FROM jsonb_object_keys(s.entity_id) AS k) AS previous
         WHERE s.action = 'UPDATE' AND NOT s.old_values @> s.entity_id
    )
    -- Grouped by the key's hash first: a bigint sorts many times faster than
    -- a jsonb.
    SELECT l.key, l.state
      FROM (SELECT DISTINCT ON (jsonb_hash_extended(a.key, 0), a.key) a.key, a.state, a.occurred_at, a.id
              FROM appearances a
             ORDER BY jsonb_hash_extended(a.key, 0), a.key, a.occurred_at DESC, a.id DESC) AS l
     WHERE l.state IS NOT NULL
       AND (cut IS NULL OR (l.occurred_at, l.id) > (cut.occurred_at, cut.id))
     ORDER BY l.key;

    -- Rows the trail cannot account for at `at`. First, keys whose story
    -- starts after `at` with a row it never saw written there: changed,
    -- deleted, or baselined (there when tracking began) with no event of
    -- that key at or before `at`. Only the events after `at` are sorted:
    -- usually the last few.
    SELECT count(*) INTO unknown
      FROM (SELECT DISTINCT ON (jsonb_hash_extended(a.key, 0), a.key) a.key, a.written
              FROM (SELECT e.entity_id AS key, e.occurred_at, e.id,
                           -- written: inserted, or arrived by a change of key
                           e.action = 'INSERT' OR (e.action = 'UPDATE' AND NOT e.old_values @> e.entity_id) AS written
                      FROM audit_log.events e
                     WHERE e.entity = ANY (stretch.names) AND e.occurred_at > as_of.at
                       AND e.action IN ('INSERT', 'UPDATE', 'DELETE', 'BASELINE')
                       AND e.entity_id IS NOT NULL
                       AND EXISTS (SELECT 1 FROM unnest(stretch.names, stretch.afters, stretch.befores) AS s(name, after_id, before_id)
                                    WHERE s.name = e.entity AND e.id > s.after_id AND e.id < s.before_id)
                    UNION ALL
                    SELECT previous.key, e.occurred_at, e.id, false
                      FROM audit_log.events e
                     CROSS JOIN LATERAL (SELECT jsonb_object_agg(k, e.old_values -> k) AS key
                                           FROM jsonb_object_keys(e.entity_id) AS k) AS previous
                     WHERE e.entity = ANY (stretch.names) AND e.occurred_at > as_of.at AND e.action = 'UPDATE'
                       AND NOT e.old_values @> e.entity_id
                       AND EXISTS (SELECT 1 FROM unnest(stretch.names, stretch.afters, stretch.befores) AS s(name, after_id, before_id)
                                    WHERE s.name = e.entity AND e.id > s.after_id AND e.id < s.before_id)) AS a
             ORDER BY jsonb_hash_extended(a.key, 0), a.key, a.occurred_at, a.id) AS first_after
     WHERE NOT first_after.written
       AND NOT EXISTS (SELECT 1 FROM audit_log.events e
                        WHERE e.entity = ANY (stretch.names)
                          AND jsonb_hash_extended(e.entity_id, hashtext(e.entity))
                              = ANY (audit_log.key_hashes(first_after.key, stretch.names))
                          AND e.entity_id = first_after.key AND e.occurred_at <= as_of.at
                          AND EXISTS (SELECT 1 FROM unnest(stretch.names, stretch.afters, stretch.befores) AS s(name, after_id, before_id)
                                       WHERE s.name = e.entity AND e.id > s.after_id AND e.id < s.before_id));

    -- Then the rows of the live table that no event names at all: there
    -- before tracking, no baseline, never changed since. None when every row
    -- was baselined since tracking last began, and none was let in uncaptured
    -- since (an attached partition, a capture trigger disabled): then the
    -- table is not read.
    FOR started IN
        SELECT t.id, t.tx_id, t.action, t.entity
          FROM audit_log.events t
         WHERE t.action IN ('TRACK', 'UNTRACK') AND t.entity = ANY (stretch.names)
           AND EXISTS (SELECT 1 FROM unnest(stretch.names, stretch.afters, stretch.befores) AS s(name, after_id, before_id)
                        WHERE s.name = t.entity AND t.id > s.after_id AND t.id < s.before_id)
         ORDER BY t.id DESC
    LOOP
        EXIT WHEN started.action = 'UNTRACK';
        IF EXISTS (SELECT 1 FROM audit_log.events b
                    WHERE b.tx_id = started.tx_id AND b.id > started.id
                      AND b.action = 'BASELINE' AND b.entity = started.entity) THEN
            baselined := NOT EXISTS (
                SELECT 1 FROM audit_log.events d
                 WHERE d.action = 'DDL' AND d.entity = ANY (stretch.names) AND d.id > started.id
                   AND (d.new_values ? 'attached_partitions' OR d.new_values ? 'capture_triggers'));
            EXIT;
        END IF;
    END LOOP;
    live := to_regclass(stretch.names[1]);
    IF live IS NOT NULL AND NOT baselined THEN
        keys := audit_log.identity_columns(live);
    END IF;
    IF cardinality(keys) > 0 AND has_table_privilege(live, 'SELECT') THEN
        -- Each live row's key looked up through the hash index on (key,
        -- entity), under each name the table had.
        EXECUTE format('SELECT count(*) FROM %s AS t WHERE NOT EXISTS (
                            SELECT 1 FROM audit_log.events e
                             WHERE e.entity = ANY ($1)
                               AND jsonb_hash_extended(e.entity_id, hashtext(e.entity))
                                   = ANY (audit_log.key_hashes(jsonb_build_object(%s), $1))
                               AND e.entity_id = jsonb_build_object(%s))',
                       live,
                       (SELECT string_agg(format('%L, t.%I', k, k), ', ') FROM unnest(keys) AS k),
                       (SELECT string_agg(format('%L, t.%I', k, k), ', ') FROM unnest(keys) AS k))
            INTO untouched USING stretch.names;
        unknown := unknown + untouched;
    END IF;
    IF unknown > 0 THEN
        RAISE NOTICE 'the trail cannot account for % row(s) of % at that time: they were there before tracking began, and no baseline was taken by then',
            unknown, stretch.names[1]
            USING HINT = 'audit_log.track(..., baseline => true) records every row a table holds when tracking begins.';
    END IF;
END
$$;

-- The live table an event is about: the table that had the event's name
-- when it was written, followed through its renames since (DDL events);
-- NULL when it was dropped, or is no longer tracked.
CREATE FUNCTION audit_log.table_of_event(entity text, event_id bigint)
RETURNS regclass
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text := table_of_event.entity;
    since bigint := table_of_event.event_id;
    next record;
BEGIN
    LOOP
        SELECT v.id, v.entity, v.new_values ? 'dropped' AS dropped INTO next
          FROM audit_log.events v
         WHERE v.action = 'DDL' AND v.id > since
           AND ((v.entity = name AND v.new_values ? 'dropped') OR v.new_values ->> 'renamed_from' = name)
         ORDER BY v.id LIMIT 1;
        EXIT WHEN NOT FOUND;
        IF next.dropped THEN
            RETURN NULL;
        END IF;
        name := next.entity;
        since := next.id;
    END LOOP;
    RETURN (SELECT t.relid FROM audit_log.tracked t WHERE t.relid = to_regclass(name));
END
$$;

-- An expression telling whether column `col` of the live row (t) and of
-- the row rebuilt from the event (ev) hold different values, compared as
-- values of the column's type: with its equality where it has one (so that
-- 1.0 and 1.00, or -0 and 0, are one value, as are two spellings of a time),
-- json as jsonb, anything else by its text.
CREATE FUNCTION audit_log.values_differ(target regclass, col text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN base.oid = 'json'::regtype THEN format('t.%1$I::jsonb IS DISTINCT FROM ev.%1$I::jsonb', col)
        WHEN EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
                      WHERE am.amname = 'btree' AND oc.opcdefault
                        AND oc.opcintype = CASE WHEN base.typcategory = 'A' THEN base.typelem ELSE base.oid END)
            THEN format('t.%1$I IS DISTINCT FROM ev.%1$I', col)
        ELSE format('t.%1$I::text IS DISTINCT FROM ev.%1$I::text', col)
    END
      FROM pg_attribute a
      JOIN pg_type ty ON ty.oid = a.atttypid
      JOIN pg_type base ON base.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
     WHERE a.attrelid = target AND a.attname = col
$$;

-- Undoes one INSERT, UPDATE or DELETE event on the live table, with the
-- caller's rights, after checking that the row is still as the event left it
-- (compared as typed values). The write is captured like any other, with
-- context.reverts naming the event.
CREATE FUNCTION audit_log.undo_event(ev audit_log.events, facts jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target regclass;
    keys text[];
    redacted text[];
    columns text[];
    writable text[];
    known text[];
    needed text[];
    lacking text[];
    differing text[];
    key_match text;
    found_rows bigint;
    row_name text := ev.entity || ' ' || coalesce(ev.entity_id::text, '');
    previous_context text;
BEGIN
    IF ev.action NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
        RAISE EXCEPTION 'event % is a % event: only INSERT, UPDATE and DELETE events can be reverted', ev.id, ev.action
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF facts IS NULL THEN
        target := audit_log.table_of_event(ev.entity, ev.id);
        IF target IS NULL THEN
            RAISE EXCEPTION 'event % cannot be reverted: table % is no longer there (or no longer tracked)', ev.id, ev.entity
                USING ERRCODE = 'undefined_table';
        END IF;
        SELECT v.redact_columns INTO redacted FROM audit_log.tracked_tables v WHERE v.entity = target::text;
        SELECT array_agg(a.attname::text ORDER BY a.attnum),
               array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = '')
          INTO columns, writable
          FROM pg_attribute a
         WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped;
        facts := jsonb_build_object(
            'target', target::oid,
            'redacted', to_jsonb(coalesce(redacted, '{}')),
            'columns', to_jsonb(columns),
            'writable', to_jsonb(coalesce(writable, '{}')),
            'differ', (SELECT jsonb_object_agg(c, audit_log.values_differ(target, c)) FROM unnest(columns) AS c));
    ELSE
        target := (facts ->> 'target')::oid::regclass;
        redacted := ARRAY(SELECT jsonb_array_elements_text(facts -> 'redacted'));
        columns := ARRAY(SELECT jsonb_array_elements_text(facts -> 'columns'));
        writable := ARRAY(SELECT jsonb_array_elements_text(facts -> 'writable'));
    END IF;
    IF ev.entity_id IS NULL THEN
        RAISE EXCEPTION 'event % cannot be reverted: it names no row (% had no primary key)', ev.id, ev.entity
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    keys := ARRAY(SELECT jsonb_object_keys(ev.entity_id));
    -- The columns whose value the event holds: not excluded (absent), not redacted.
    known := ARRAY(SELECT c FROM unnest(columns) AS c
                    WHERE coalesce(ev.new_values, ev.old_values) ? c
                      AND NOT (c = ANY (coalesce(redacted, '{}'))
                               AND coalesce(ev.new_values, ev.old_values) -> c = '"[REDACTED]"'));
    key_match := (SELECT string_agg(format('t.%1$I = (SELECT k.%1$I FROM jsonb_populate_record(NULL::%2$s, $2) AS k)', c, target), ' AND ')
                    FROM unnest(keys) AS c);

    -- What undoing needs from the trail.
    needed := CASE ev.action
        WHEN 'INSERT' THEN keys
        WHEN 'UPDATE' THEN ARRAY(SELECT DISTINCT c FROM unnest(coalesce(ev.changed_fields, '{}') || keys) AS c
                                  WHERE c = ANY (writable))
        ELSE writable END;
    lacking := ARRAY(SELECT c FROM unnest(needed) AS c WHERE NOT c = ANY (known));
    IF cardinality(lacking) > 0 THEN
        RAISE EXCEPTION 'event % cannot be reverted: the trail does not hold field(s) % of row %', ev.id,
                        array_to_string(lacking, ', '), row_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Excluded columns are not recorded, and redacted ones are recorded as [REDACTED].';
    END IF;

    IF ev.action IN ('INSERT', 'UPDATE') THEN
        -- The row must be as the event left it, field by field, as typed values.
        EXECUTE format('SELECT array_remove(ARRAY[%s]::text[], NULL) FROM %s AS t, jsonb_populate_record(NULL::%s, $1) AS ev
                         WHERE %s FOR UPDATE OF t',
                       coalesce((SELECT string_agg(format('CASE WHEN %s THEN %L END',
                                                          facts -> 'differ' ->> c, c), ', ')
                                   FROM unnest(known) AS c), ''),
                       target, target, key_match)
            INTO differing USING ev.new_values, ev.entity_id;
        GET DIAGNOSTICS found_rows = ROW_COUNT;
        IF found_rows = 0 THEN
            RAISE EXCEPTION 'event % cannot be reverted: row % is no longer there', ev.id, row_name
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        IF cardinality(differing) > 0 THEN
            RAISE EXCEPTION 'event % cannot be reverted: row % is no longer as the event left it (field(s) % changed since)',
                            ev.id, row_name, array_to_string(differing, ', ')
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Revert the later events first (audit_log.history() lists them), or the whole transaction with revert_transaction().';
        END IF;
    ELSE
        EXECUTE format('SELECT 1 FROM %s AS t WHERE %s', target,
                       replace(key_match, '$2', '$1'))
            USING ev.entity_id;
        GET DIAGNOSTICS found_rows = ROW_COUNT;
        IF found_rows > 0 THEN
            RAISE EXCEPTION 'event % cannot be reverted: a row % is there again', ev.id, row_name
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;

    previous_context := current_setting('audit_log.context', true);
    PERFORM set_config('audit_log.context',
                       (coalesce(nullif(previous_context, '')::jsonb, '{}') || jsonb_build_object('reverts', ev.id))::text,
                       true);
    IF ev.action = 'INSERT' THEN
        EXECUTE format('DELETE FROM %s AS t WHERE %s', target, key_match) USING NULL::jsonb, ev.entity_id;
    ELSIF ev.action = 'UPDATE' THEN
        EXECUTE format('UPDATE %s AS t SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::%s, $1) AS o) WHERE %s',
                       target,
                       (SELECT string_agg(format('%I', c), ', ') FROM unnest(needed) AS c),
                       (SELECT string_agg(format('o.%I', c), ', ') FROM unnest(needed) AS c),
                       target, key_match)
            USING ev.old_values, ev.entity_id;
    ELSE
        EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM jsonb_populate_record(NULL::%s, $1) AS o',
                       target,
                       (SELECT string_agg(format('%I', c), ', ') FROM unnest(writable) AS c),
                       (SELECT string_agg(format('o.%I', c), ', ') FROM unnest(writable) AS c),
                       target)
            USING ev.old_values;
    END IF;
    PERFORM set_config('audit_log.context', coalesce(previous_context, ''), true);
    RETURN facts;
END
$$;

CREATE FUNCTION audit_log.revert(event_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ev audit_log.events;
BEGIN
    IF revert.event_id IS NULL THEN
        RAISE EXCEPTION 'audit_log.revert(): event_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.* INTO ev FROM audit_log.events e WHERE e.id = revert.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no event %', revert.event_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audit_log.undo_event(ev);
END
$$;

-- Undoes a transaction's row changes, newest first, and returns how many.
CREATE FUNCTION audit_log.revert_transaction(tx_id xid8)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ev audit_log.events;
    undone integer := 0;
    generations bigint;
    blocking audit_log.events;
    facts jsonb := '{}';
BEGIN
    IF revert_transaction.tx_id IS NULL THEN
        RAISE EXCEPTION 'audit_log.revert_transaction(): tx_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- A transaction id means one transaction only within one cluster's
    -- generation of the trail (a restore starts another).
    SELECT count(DISTINCT (SELECT count(*) FROM audit_log.restored_trails r WHERE r.last_event_id < e.id))
      INTO generations
      FROM audit_log.events e WHERE e.tx_id = revert_transaction.tx_id;
    IF generations = 0 THEN
        RAISE EXCEPTION 'the trail has no event of transaction %', revert_transaction.tx_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF generations > 1 THEN
        RAISE EXCEPTION 'transaction id % is ambiguous: the trail holds events of % transactions with it, from clusters the trail was restored from',
                        revert_transaction.tx_id, generations
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Revert its events one by one with audit_log.revert(event_id).';
    END IF;
    SELECT e.* INTO blocking FROM audit_log.events e
     WHERE e.tx_id = revert_transaction.tx_id AND e.action IN ('TRUNCATE', 'DDL')
     ORDER BY e.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % cannot be reverted: its event % is a %, which cannot be undone', revert_transaction.tx_id,
                        blocking.id, blocking.action
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR ev IN SELECT e.* FROM audit_log.events e
               WHERE e.tx_id = revert_transaction.tx_id AND e.action IN ('INSERT', 'UPDATE', 'DELETE')
               ORDER BY e.id DESC LOOP
        -- No DDL in the transaction (refused above): one name, one table.
        facts := jsonb_set(facts, ARRAY[ev.entity], audit_log.undo_event(ev, facts -> ev.entity));
        undone := undone + 1;
    END LOOP;
    RETURN undone;
END
$$;

REVOKE ALL ON FUNCTION audit_log.track_as_owner(regclass, text[], text[], boolean),
    audit_log.record_baseline(regclass), audit_log.track(regclass, text[], text[], boolean),
    audit_log.track_schema_as_owner(oid, name, text[], boolean, boolean),
    audit_log.track_schema(name, text[], boolean, boolean),
    audit_log.entity_stretches(text), audit_log.as_of(text, timestamptz, jsonb),
    audit_log.table_of_event(text, bigint), audit_log.undo_event(audit_log.events, jsonb),
    audit_log.revert(bigint), audit_log.revert_transaction(xid8),
    audit_log.values_differ(regclass, text), audit_log.key_hashes(jsonb, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    audit_log.track(regclass, text[], text[], boolean),
    audit_log.track_schema(name, text[], boolean, boolean)
TO audit_log_admin;
GRANT EXECUTE ON FUNCTION
    audit_log.as_of(text, timestamptz, jsonb),
    audit_log.entity_stretches(text),
    audit_log.revert(bigint),
    audit_log.revert_transaction(xid8),
    audit_log.undo_event(audit_log.events, jsonb),
    audit_log.table_of_event(text, bigint)
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.values_differ(regclass, text) TO audit_log_reader;

-- Application events and sign-ins (API section 10), in the same trail as
-- captured changes (src/application_events.rs).

CREATE FUNCTION audit_log.log_event(action text,
                                    entity text DEFAULT NULL,
                                    entity_id jsonb DEFAULT NULL,
                                    details jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'audit_log_log_event';

-- The LOGIN event of this connection. Granted to no one: only on_login()
-- below, as the extension's owner, calls it.
CREATE FUNCTION audit_log.record_login()
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'audit_log_record_login';

-- The login event trigger's function (PostgreSQL 17 and later). It must never
-- stop a login: whatever goes wrong (a standby, a read-only session, a lock
-- held too long, a full disk), the connection goes on with a WARNING instead
-- of an event. PL/pgSQL reads the setting, so that the extension's library is
-- loaded into a new connection only when logins are tracked.
CREATE FUNCTION audit_log.on_login()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '200ms'
SET statement_timeout = '2s'
AS $$
BEGIN
    IF lower(coalesce(current_setting('audit_log.track_logins', true), 'off'))
           NOT IN ('on', 'true', 'yes', '1', 't', 'y') THEN
        RETURN;
    END IF;
    IF pg_is_in_recovery() THEN
        RAISE WARNING 'audit_log: the login of % is not recorded: this server is a standby', session_user;
        RETURN;
    END IF;
    BEGIN
        PERFORM audit_log.record_login();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'audit_log: the login of % is not recorded: %', session_user, SQLERRM
            USING DETAIL = 'The connection goes on; the trail misses this sign-in.';
    END;
END
$$;

-- Login event triggers exist from PostgreSQL 17 on.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'CREATE EVENT TRIGGER audit_log_logins ON login EXECUTE FUNCTION audit_log.on_login()';
    END IF;
END
$$;

REVOKE ALL ON FUNCTION audit_log.log_event(text, text, jsonb, jsonb), audit_log.record_login(),
    audit_log.on_login() FROM PUBLIC;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'audit_log_writer') THEN
        CREATE ROLE audit_log_writer NOLOGIN;
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION audit_log.log_event(text, text, jsonb, jsonb) TO audit_log_writer, audit_log_admin;
GRANT EXECUTE ON FUNCTION audit_log.key_hashes(jsonb, text[]) TO audit_log_reader;

-- Functions that switch a plan type off (enable_sort, enable_hashjoin,
-- enable_seqscan) also switch JIT off: the switch makes every other plan cost
-- 10^10 or more, far above jit_above_cost, and compiling with LLVM then costs
-- time and ~30 MB of backend memory for a plan that needs none.
ALTER FUNCTION audit_log.tracked_root(oid) SET jit = off;
ALTER FUNCTION audit_log.record_concurrent_detach(oid, oid, text) SET jit = off;
ALTER FUNCTION audit_log.seal() SET jit = off;
ALTER FUNCTION audit_log.verify(text) SET jit = off;
ALTER FUNCTION audit_log.create_capture_triggers(regclass) SET jit = off;
ALTER FUNCTION audit_log.drop_capture_triggers(regclass) SET jit = off;
ALTER FUNCTION audit_log.untrack(regclass) SET jit = off;
