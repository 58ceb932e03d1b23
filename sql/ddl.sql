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
