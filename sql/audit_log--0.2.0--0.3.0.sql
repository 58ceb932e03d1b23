-- audit_log 0.2.0 -> 0.3.0. Frozen: what 0.3.0 changed, as 0.3.0 defines it.
-- A fresh install of 0.3.0 and 0.2.0 updated with this script have the same
-- schema (tests/shell/upgrade_keeps_the_trail.sh compares them).
--
-- - DDL costs what the command touches: the watch state is read for the
--   tracked tables a command invalidated or worked on, under a snapshot of
--   its start, instead of for every tracked table at every command;
-- - renames through ALTER VIEW, ALTER MATERIALIZED VIEW, ALTER INDEX and
--   ALTER FOREIGN TABLE are followed like ALTER TABLE's;
-- - tables created by an extension's script are not taken in by
--   follow_new_tables;
-- - track() and track_schema() cost the same per table however many tables
--   the database holds.
-- - capture triggers are the extension's: CREATE TRIGGER calling a capture
--   function only as track() makes it, no CREATE OR REPLACE of one, no
--   DEPENDS ON EXTENSION; track() repairs a table tampered with before.
-- - a DDL event's statement is the command's own text, not the message's;
-- - track() and track_schema() need the right to read what they track;
-- - drops by CASCADE and DETACH PARTITION ... CONCURRENTLY are recorded;
-- - a name stands for one table over a stretch of the trail (reading);
-- - follow_new_tables follows tables moved in, schema renames, EXPLAIN ANALYZE.

-- The tables whose triggers keep them append-only: the log and the sealed
-- tree (sql/integrity.sql), whichever of them this version has.
CREATE FUNCTION audit_log.guarded_tables() RETURNS oid[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(c.oid)
      FROM pg_class c
     WHERE c.relnamespace = 'audit_log'::regnamespace
       AND c.relname IN ('events', 'log_identity', 'tree_leaves', 'tree_seals', 'restored_trails')
       AND c.relkind = 'r'
$$;

DROP EVENT TRIGGER audit_log_ddl_start;
DROP EVENT TRIGGER audit_log_ddl_end;
DROP FUNCTION audit_log.ddl_watch_state();
DROP FUNCTION audit_log.record_ddl(jsonb, text);

-- Every relation looked up by key: a hash of all of pg_class per table
-- made track_schema() quadratic in the number of tables.
CREATE OR REPLACE FUNCTION audit_log.create_capture_triggers(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
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

CREATE OR REPLACE FUNCTION audit_log.drop_capture_triggers(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
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

CREATE OR REPLACE FUNCTION audit_log.track(target regclass,
                                exclude_columns text[] DEFAULT '{}',
                                redact_columns text[] DEFAULT '{}')
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'audit_log_track';

CREATE OR REPLACE FUNCTION audit_log.untrack(target regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
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

CREATE OR REPLACE FUNCTION audit_log.track_schema(schema_name name,
                                       exclude_tables text[] DEFAULT '{}',
                                       follow_new_tables boolean DEFAULT true)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'audit_log_track_schema';

-- The tracked tables a command may have changed: those among the relations
-- it invalidated (src/ddl.rs collects them) or worked on (an ALTER TABLE that
-- changes nothing invalidates nothing, but is still recorded), the tables of
-- the schemas it renamed, and the tracked ancestors of any of them; every
-- tracked table after a cache reset, which says nothing of what changed.
-- Run twice by ddl_command_end, under the snapshot of the command's start and
-- under the current one: plain catalog scans only, no syscache lookups, so
-- that it reads the catalogs as of the snapshot it runs under.
--
-- Here and in ddl_watch_state() and record_ddl(), a command touches a
-- handful of tables among thousands: every catalog row is reached by key,
-- through LATERAL subqueries fenced with OFFSET 0 and scalar subqueries with
-- LIMIT 1, which the planner cannot turn into a hash of a whole catalog (it
-- cannot know how few rows come out of an array or a jsonb value); and the
-- functions are PL/pgSQL with generic plans, made once per session rather
-- than once per command, never compiled by JIT (a generic plan's cost
-- estimate can pass jit_above_cost: 20 ms of compilation for a lookup), and
-- never scanning a table whole: a plan made while audit_log.tracked or
-- pg_inherits were small must not scan them whole once a migration has
-- added thousands of rows to them in the same transaction.
CREATE FUNCTION audit_log.ddl_watch_roots(relids oid[], schemas oid[], everything boolean)
RETURNS oid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
AS $$
BEGIN
    IF everything THEN
        RETURN ARRAY(SELECT t.relid::oid FROM audit_log.tracked t ORDER BY 1);
    END IF;
    relids := relids || ARRAY(SELECT c.objid FROM pg_event_trigger_ddl_commands() AS c
                               WHERE c.classid = 'pg_class'::regclass);
    IF cardinality(schemas) > 0 THEN
        relids := relids || ARRAY(SELECT c.oid FROM pg_class c
                                   WHERE c.relnamespace = ANY (schemas) AND c.relkind IN ('r', 'p'));
    END IF;
    RETURN ARRAY(
        WITH RECURSIVE up(relid) AS (
            SELECT r FROM unnest(relids) AS r
            UNION
            SELECT i.inhparent
              FROM up CROSS JOIN LATERAL (SELECT i.inhparent FROM pg_inherits i
                                           WHERE i.inhrelid = up.relid OFFSET 0) AS i)
        SELECT t.relid
          FROM up CROSS JOIN LATERAL (SELECT t.relid::oid FROM audit_log.tracked t
                                       WHERE t.relid = up.relid::regclass OFFSET 0) AS t
         ORDER BY 1);
END
$$;

-- The capture triggers of the given tracked tables and their partitions, and
-- the log's own guards when asked, by trigger OID; the tables and partitions,
-- by OID, with their name and tracked table; the excluded and redacted
-- columns of each, by column number. Read under the snapshot of the
-- command's start (so, like ddl_watch_roots(), with plain catalog scans).
CREATE FUNCTION audit_log.ddl_watch_state(roots oid[], with_guards boolean)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
AS $$
BEGIN
    RETURN (
    WITH RECURSIVE
    -- Captured now: a restore recreates tracked tables and their constraints
    -- before their capture triggers, and records nothing.
    watched AS (
        SELECT t.relid AS root, t.exclude_columns, t.redact_columns
          FROM unnest(roots) AS r
         CROSS JOIN LATERAL (SELECT t.relid::oid, t.exclude_columns, t.redact_columns
                               FROM audit_log.tracked t
                              WHERE t.relid = r::regclass OFFSET 0) AS t
         WHERE (SELECT true FROM pg_trigger tg
                 WHERE tg.tgrelid = t.relid
                   AND tg.tgname = ('audit_log_row_' || t.relid)::name
                   AND tg.tgfoid = 'audit_log.capture_row()'::regprocedure)
            OR (SELECT true FROM pg_trigger tg
                 WHERE tg.tgrelid = t.relid
                   AND tg.tgfoid IN ('audit_log.capture_row()'::regprocedure,
                                     'audit_log.capture_truncate()'::regprocedure)
                 LIMIT 1)),
    member(root, relid) AS (
        SELECT w.root, w.root FROM watched w
        UNION ALL
        SELECT m.root, i.inhrelid
          FROM member m
         CROSS JOIN LATERAL (SELECT i.inhrelid FROM pg_inherits i
                              WHERE i.inhparent = m.relid
                                AND (SELECT c.relispartition FROM pg_class c WHERE c.oid = i.inhrelid) OFFSET 0) AS i),
    -- A table referenced by many foreign keys has thousands of triggers:
    -- its two capture triggers are looked up by name. Only a table where they
    -- are not both there under their names (one was renamed or dropped by
    -- hand, which was recorded) has all its triggers looked at.
    canonical AS (
        SELECT m.root, m.relid, t.oid, t.tgrelid, t.tgname, t.tgenabled
          FROM member m
         CROSS JOIN LATERAL (VALUES (('audit_log_row_' || m.root)::name),
                                    (('audit_log_truncate_' || m.root)::name)) AS n(tgname)
         -- One equality per name: a list of names would let the planner
         -- look at every trigger of the table and filter.
         CROSS JOIN LATERAL (SELECT t.oid, t.tgrelid, t.tgname, t.tgenabled FROM pg_trigger t
                              WHERE t.tgrelid = m.relid
                                AND t.tgname = n.tgname
                                AND t.tgfoid IN ('audit_log.capture_row()'::regprocedure,
                                                 'audit_log.capture_truncate()'::regprocedure)
                             OFFSET 0) AS t),
    irregular AS (
        SELECT m.relid FROM member m
         WHERE (SELECT count(*) FROM canonical c WHERE c.relid = m.relid) < 2),
    watched_triggers AS (
        SELECT c.oid, c.tgrelid, c.tgname, c.tgenabled
          FROM canonical c
         WHERE c.relid NOT IN (SELECT i.relid FROM irregular i)
        UNION ALL
        SELECT t.oid, t.tgrelid, t.tgname, t.tgenabled
          FROM irregular i
         CROSS JOIN LATERAL (SELECT t.oid, t.tgrelid, t.tgname, t.tgenabled FROM pg_trigger t
                              WHERE t.tgrelid = i.relid
                                AND t.tgfoid IN ('audit_log.capture_row()'::regprocedure,
                                                 'audit_log.capture_truncate()'::regprocedure) OFFSET 0) AS t
        UNION ALL
        SELECT t.oid, t.tgrelid, t.tgname, t.tgenabled FROM pg_trigger t
         WHERE with_guards AND t.tgrelid = ANY (audit_log.guarded_tables()))
    SELECT jsonb_build_object(
        'triggers',
        (SELECT coalesce(jsonb_object_agg(t.oid::text,
                                          jsonb_build_object('table', t.tgrelid::oid,
                                                             'name', t.tgname,
                                                             'enabled', t.tgenabled)),
                         '{}')
           FROM watched_triggers t),
        'tables',
        (SELECT coalesce(jsonb_object_agg(m.relid::text,
                                          jsonb_build_object('name', c.name, 'root', m.root)),
                         '{}')
           FROM member m
          CROSS JOIN LATERAL (
                SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
                  FROM pg_class c
                 CROSS JOIN LATERAL (SELECT n.nspname FROM pg_namespace n WHERE n.oid = c.relnamespace OFFSET 0) AS n
                 WHERE c.oid = m.relid OFFSET 0) AS c),
        -- Inheritance children (not partitions), by OID.
        'children',
        (SELECT coalesce(jsonb_object_agg(i.inhrelid::text, w.root), '{}')
           FROM watched w
          CROSS JOIN LATERAL (SELECT i.inhrelid FROM pg_inherits i
                               WHERE i.inhparent = w.root
                                 AND NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = i.inhrelid)
                              OFFSET 0) AS i),
        'options',
        (SELECT coalesce(jsonb_object_agg(w.root::text,
                    jsonb_build_object(
                        'exclude', (SELECT coalesce(jsonb_agg(a.attnum ORDER BY u.ord), '[]')
                                      FROM unnest(w.exclude_columns) WITH ORDINALITY AS u(name, ord)
                                     CROSS JOIN LATERAL (SELECT a.attnum FROM pg_attribute a
                                                          WHERE a.attrelid = w.root AND a.attname = u.name OFFSET 0) AS a),
                        'redact', (SELECT coalesce(jsonb_agg(a.attnum ORDER BY u.ord), '[]')
                                     FROM unnest(w.redact_columns) WITH ORDINALITY AS u(name, ord)
                                    CROSS JOIN LATERAL (SELECT a.attnum FROM pg_attribute a
                                                         WHERE a.attrelid = w.root AND a.attname = u.name OFFSET 0) AS a))),
                         '{}')
           FROM watched w
          WHERE cardinality(w.exclude_columns) + cardinality(w.redact_columns) > 0)));
END
$$;

-- Compares the catalogs with what ddl_watch_state() saw before the command
-- and records what changed, per tracked table. roots: the tracked tables the
-- command may have changed (ddl_watch_roots(), before and after it).
CREATE FUNCTION audit_log.record_ddl(before jsonb, command_tag text, roots oid[])
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

    SELECT (c ->> 'relid')::oid::regclass AS guarded INTO target
      FROM jsonb_array_elements(trigger_changes) AS c
     WHERE (c ->> 'relid')::oid = ANY (audit_log.guarded_tables())
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

-- Tables created in a schema tracked with follow_new_tables are tracked at
-- once (partitions follow their parent instead; an extension's tables belong
-- to it, as in track_schema()). Called by ddl_command_end after CREATE TABLE,
-- CREATE TABLE AS and SELECT INTO.
CREATE FUNCTION audit_log.follow_new_tables()
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
AS $$
BEGIN
    PERFORM audit_log.follow_tables(ARRAY(SELECT d.objid FROM pg_event_trigger_ddl_commands() AS d
                                           WHERE d.classid = 'pg_class'::regclass
                                             AND NOT d.in_extension));
END
$$;

-- The commands that can change a tracked table, its name, or its capture,
-- or create a table that a tracked schema or table takes in. PostgreSQL lets
-- ALTER VIEW, ALTER MATERIALIZED VIEW, ALTER INDEX and ALTER FOREIGN TABLE
-- rename a table or its columns. A command costs what it touches: the start
-- trigger notes where the command begins, the end trigger looks only at the
-- tracked tables whose catalog entries the command invalidated (src/ddl.rs).
CREATE EVENT TRIGGER audit_log_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER TRIGGER', 'DROP TRIGGER', 'DROP TABLE',
                 'ALTER SCHEMA', 'DROP SCHEMA', 'DROP OWNED',
                 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO',
                 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER INDEX', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION audit_log.note_ddl_watch_state();
CREATE EVENT TRIGGER audit_log_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'ALTER TRIGGER', 'DROP TRIGGER', 'DROP TABLE',
                 'ALTER SCHEMA', 'DROP SCHEMA', 'DROP OWNED',
                 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO',
                 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER INDEX', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION audit_log.record_ddl();

REVOKE ALL ON FUNCTION audit_log.ddl_watch_roots(oid[], oid[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.ddl_watch_state(oid[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.record_ddl(jsonb, text, oid[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.follow_new_tables() FROM PUBLIC;

-- Capture triggers are the extension's (src/capture_triggers.rs): a CREATE
-- TRIGGER calling a capture function is refused unless it is what track()
-- creates, on a tracked table that has none yet (it then gets its canonical
-- name, which a restore needs); CREATE OR REPLACE of a capture trigger and
-- ALTER TRIGGER ... DEPENDS ON EXTENSION on one are refused.
CREATE FUNCTION audit_log.guard_capture_triggers()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_guard_capture_triggers';
CREATE EVENT TRIGGER audit_log_guard_capture_triggers ON ddl_command_start
    WHEN TAG IN ('CREATE TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION audit_log.guard_capture_triggers();
REVOKE ALL ON FUNCTION audit_log.guard_capture_triggers() FROM PUBLIC;

-- A restore under 0.2.0 left each partition of a tracked table with two
-- TRUNCATE capture triggers: the one the DDL watch gave it when the restore
-- attached it, and the dumped one, named after the source database's OIDs.
-- Only one capture trigger of a kind may fire per table now: the copy goes.
DO $$
DECLARE
    trg record;
BEGIN
    FOR trg IN
        SELECT t.tgname, t.tgrelid::regclass AS rel
          FROM pg_trigger t
         WHERE t.tgfoid = 'audit_log.capture_truncate()'::regprocedure
           AND t.tgparentid = 0
           AND t.tgname NOT IN (SELECT 'audit_log_truncate_' || a.relid::oid
                                  FROM pg_partition_ancestors(t.tgrelid) AS a)
           AND EXISTS (SELECT 1 FROM pg_trigger c
                        WHERE c.tgrelid = t.tgrelid AND c.oid <> t.oid AND c.tgfoid = t.tgfoid
                          AND c.tgname IN (SELECT 'audit_log_truncate_' || a.relid::oid
                                             FROM pg_partition_ancestors(t.tgrelid) AS a))
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
    END LOOP;
END
$$;

-- The text of the command being recorded, never the other statements of
-- the message it came in (src/ddl.rs).
CREATE FUNCTION audit_log.ddl_statement()
RETURNS text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'audit_log_ddl_statement';
REVOKE ALL ON FUNCTION audit_log.ddl_statement() FROM PUBLIC;

-- track() itself checks, as its caller, the caller's right to read the
-- table (src/tracking.rs): tracking makes every value the table takes
-- readable in the trail. Then it calls this, which does the work as the
-- extension's owner and is granted to nobody.
CREATE FUNCTION audit_log.track_as_owner(target regclass,
                                         exclude_columns text[],
                                         redact_columns text[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
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

    PERFORM audit_log.record_tracking('TRACK', target,
        jsonb_build_object('exclude_columns', to_jsonb(track_as_owner.exclude_columns),
                           'redact_columns', to_jsonb(track_as_owner.redact_columns)));
END
$$;
REVOKE ALL ON FUNCTION audit_log.track_as_owner(regclass, text[], text[]) FROM PUBLIC;

-- track_schema() passes its caller (src/tracking.rs), whose right to read
-- each table it takes in is checked here.
CREATE FUNCTION audit_log.track_schema_as_owner(caller oid,
                                                schema_name name,
                                                exclude_tables text[],
                                                follow_new_tables boolean)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
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
            PERFORM audit_log.track(rel);
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
REVOKE ALL ON FUNCTION audit_log.track_schema_as_owner(oid, name, text[], boolean) FROM PUBLIC;

-- The tracked table whose changes relid's are: relid itself or its topmost
-- tracked partition ancestor; NULL when none is tracked (or relid is gone).
CREATE FUNCTION audit_log.tracked_root(relid oid)
RETURNS oid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
BEGIN ATOMIC
    SELECT t.relid::oid
      FROM (SELECT tracked_root.relid, 0::bigint AS depth
            UNION ALL
            SELECT a.relid, a.depth
              FROM pg_partition_ancestors(tracked_root.relid) WITH ORDINALITY AS a(relid, depth)) AS m
     CROSS JOIN LATERAL (SELECT t.relid FROM audit_log.tracked t WHERE t.relid = m.relid OFFSET 0) AS t
     ORDER BY m.depth DESC
     LIMIT 1;
END;

-- ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY commits half-way, so
-- the watch's notes from its start are gone at its end: the detached table
-- leaves its tracked table here, losing its capture triggers, and the DDL
-- event says so.
CREATE FUNCTION audit_log.record_concurrent_detach(parent oid, detached oid, command_tag text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    root oid;
    part record;
BEGIN
    root := audit_log.tracked_root(parent);
    IF root IS NULL THEN
        RETURN;
    END IF;
    FOR part IN
        SELECT tg.tgname, p.relid
          FROM (SELECT detached AS relid UNION SELECT t.relid FROM pg_partition_tree(detached) AS t) AS p
         CROSS JOIN LATERAL (SELECT tg.tgname FROM pg_trigger tg
                              WHERE tg.tgrelid = p.relid AND tg.tgname = 'audit_log_truncate_' || root
                             OFFSET 0) AS tg
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', part.tgname, part.relid::regclass);
    END LOOP;
    PERFORM audit_log.record_ddl_event(root::regclass::text, jsonb_build_object(
        'command_tag', command_tag,
        'object', root::regclass::text,
        'detached_partitions', jsonb_build_array(detached::regclass::text),
        'statement', audit_log.ddl_statement()));
END
$$;

-- Called at sql_drop for every command that drops something. A dropped
-- schema takes its follow_new_tables setting with it (a new schema of the
-- same name is another one). What a command the watch does not follow
-- (watched false: DROP TYPE, DOMAIN, FUNCTION, EXTENSION, COLLATION...
-- CASCADE) dropped of tracked tables is recorded here: one DDL event per
-- tracked table, naming the columns and other parts that went. A tracked
-- table dropped that way ends its tracking, as with DROP TABLE; an excluded
-- or redacted column that went leaves the options.
CREATE FUNCTION audit_log.record_cascaded_drops(command_tag text, watched boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target record;
BEGIN
    DELETE FROM audit_log.tracked_schemas s
     WHERE s.schema_name IN (SELECT d.object_name FROM pg_event_trigger_dropped_objects() AS d
                              WHERE d.object_type = 'schema');
    IF watched THEN
        RETURN;
    END IF;
    FOR target IN
        WITH dropped AS (
            SELECT d.object_type, d.object_identity, d.address_names,
                   CASE WHEN d.object_type IN ('table', 'table column') THEN d.objid
                        WHEN cardinality(d.address_names) >= 3
                        THEN to_regclass(quote_ident(d.address_names[1]) || '.'
                                         || quote_ident(d.address_names[2]))::oid
                   END AS relid
              FROM pg_event_trigger_dropped_objects() AS d
             WHERE NOT d.is_temporary),
        rooted AS (
            SELECT d.*, r.root
              FROM dropped d
             CROSS JOIN LATERAL (SELECT audit_log.tracked_root(d.relid) AS root) AS r
             WHERE r.root IS NOT NULL)
        SELECT r.root,
               max(r.object_identity) FILTER (WHERE r.object_type = 'table' AND r.relid = r.root) AS dropped_as,
               array_agg(r.address_names[3] ORDER BY r.object_identity)
                   FILTER (WHERE r.object_type = 'table column' AND r.relid = r.root) AS columns,
               jsonb_agg(r.object_identity ORDER BY r.object_identity)
                   FILTER (WHERE r.object_type = 'table column') AS dropped_columns,
               jsonb_agg(r.object_type || ' ' || r.object_identity ORDER BY r.object_type, r.object_identity)
                   FILTER (WHERE r.object_type NOT IN ('table', 'table column')) AS dropped_objects,
               jsonb_agg(r.object_identity ORDER BY r.object_identity)
                   FILTER (WHERE r.object_type = 'table' AND r.relid <> r.root) AS dropped_partitions
          FROM rooted r
         GROUP BY r.root
         ORDER BY r.root
    LOOP
        IF target.dropped_as IS NOT NULL THEN
            DELETE FROM audit_log.tracked t WHERE t.relid::oid = target.root;
            PERFORM audit_log.record_ddl_event(target.dropped_as, jsonb_build_object(
                'command_tag', command_tag,
                'object', target.dropped_as,
                'dropped', true,
                'statement', audit_log.ddl_statement()));
            CONTINUE;
        END IF;
        UPDATE audit_log.tracked t
           SET exclude_columns = ARRAY(SELECT c FROM unnest(t.exclude_columns) AS c
                                        WHERE c <> ALL (coalesce(target.columns, '{}'))),
               redact_columns = ARRAY(SELECT c FROM unnest(t.redact_columns) AS c
                                       WHERE c <> ALL (coalesce(target.columns, '{}')))
         WHERE t.relid::oid = target.root
           AND (t.exclude_columns || t.redact_columns) && coalesce(target.columns, '{}');
        PERFORM audit_log.record_ddl_event(target.root::regclass::text, jsonb_strip_nulls(jsonb_build_object(
            'command_tag', command_tag,
            'object', target.root::regclass::text,
            'dropped_columns', target.dropped_columns,
            'dropped_partitions', target.dropped_partitions,
            'dropped_objects', target.dropped_objects,
            'statement', audit_log.ddl_statement())));
    END LOOP;
END
$$;

-- Dropping the extension would drop the trail: refused while it holds events
-- (src/ddl.rs), unless a superuser sets audit_log.drop_with_events.
-- Drops by CASCADE from commands the watch does not follow (src/ddl.rs).
CREATE FUNCTION audit_log.record_drops()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_record_drops';
CREATE EVENT TRIGGER audit_log_drops ON sql_drop
    EXECUTE FUNCTION audit_log.record_drops();
REVOKE ALL ON FUNCTION audit_log.tracked_root(oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.record_concurrent_detach(oid, oid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.record_cascaded_drops(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.record_drops() FROM PUBLIC;

-- Which events a name stands for. A name means one table over a stretch of
-- the trail: from when it was last vacated (the table holding it renamed
-- away or dropped) and taken again, to now; and before a rename that gave
-- the table its name, the stretch of its former name ending at that rename,
-- and so on back. So the events of a table are found by its current name
-- across renames and schema moves, a table renamed away leaves its events
-- behind under its new name, a new table that takes an old name does not
-- inherit the old table's events, and two tables swapping names keep their
-- own. A name no table took again after a drop stands for the dropped table.
-- Stretches are (after_id, before_id), both exclusive. DDL events are found
-- through the index of rare actions.
CREATE FUNCTION audit_log.entity_segments(entities text[])
RETURNS TABLE (name text, after_id bigint, before_id bigint)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    WITH RECURSIVE seg(name, after_id, before_id) AS (
        SELECT n.name,
               coalesce((SELECT max(v.id) FROM audit_log.events v
                          WHERE v.action = 'DDL'
                            AND ((v.entity = n.name AND v.new_values ? 'dropped')
                                 OR v.new_values ->> 'renamed_from' = n.name)
                            AND EXISTS (SELECT 1 FROM audit_log.events u
                                         WHERE u.entity = n.name AND u.id > v.id)), 0),
               9223372036854775807
          FROM unnest(entities) AS n(name)
        UNION
        SELECT r.new_values ->> 'renamed_from',
               coalesce((SELECT max(v.id) FROM audit_log.events v
                          WHERE v.action = 'DDL' AND v.id < r.id
                            AND ((v.entity = r.new_values ->> 'renamed_from' AND v.new_values ? 'dropped')
                                 OR v.new_values ->> 'renamed_from' = r.new_values ->> 'renamed_from')), 0),
               r.id
          FROM seg
         CROSS JOIN LATERAL (SELECT e.id, e.new_values FROM audit_log.events e
                              WHERE e.entity = seg.name AND e.action = 'DDL'
                                AND e.new_values ? 'renamed_from'
                                AND e.id > seg.after_id AND e.id < seg.before_id
                              ORDER BY e.id DESC LIMIT 1) AS r
    )
    SELECT seg.name, seg.after_id, seg.before_id FROM seg;
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

-- One row's events, oldest first. A key change (an UPDATE whose entity_id
-- differs from the key in its old_values) links the row's new key to its old
-- one: the history follows it back to the row's first key.
CREATE OR REPLACE FUNCTION audit_log.history(entity text, entity_id jsonb)
RETURNS SETOF audit_log.events
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
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

-- One event in detail, a row per field: what an UPDATE changed, everything an
-- INSERT wrote or a DELETE removed. Fields come in the table's column order
-- while the table exists, else by name.
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

DROP FUNCTION audit_log.with_former_names(text[]);
REVOKE ALL ON FUNCTION audit_log.entity_segments(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_log.entity_segments(text[]) TO audit_log_reader;

-- Tables that enter a schema tracked with follow_new_tables are tracked at
-- once: created there (CREATE TABLE, CREATE TABLE AS, SELECT INTO, also
-- under EXPLAIN ANALYZE) or moved there (ALTER TABLE ... SET SCHEMA).
-- Partitions follow their parent instead; an extension's tables belong to
-- it, as in track_schema(); tables already tracked keep their options.
CREATE FUNCTION audit_log.follow_tables(relids oid[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
AS $$
DECLARE
    created regclass;
BEGIN
    FOR created IN
        SELECT c.oid::regclass
          FROM unnest(relids) AS r(relid)
         CROSS JOIN LATERAL (SELECT c.oid, c.relname, c.relnamespace FROM pg_class c
                              WHERE c.oid = r.relid
                                AND c.relkind IN ('r', 'p')
                                AND c.relpersistence <> 't'
                                AND NOT c.relispartition
                             OFFSET 0) AS c
         CROSS JOIN LATERAL (SELECT s.exclude_tables FROM pg_namespace n
                               JOIN audit_log.tracked_schemas s ON s.schema_name = n.nspname
                              WHERE n.oid = c.relnamespace AND s.follow_new_tables
                             OFFSET 0) AS s
         WHERE c.relname <> ALL (s.exclude_tables)
           AND (SELECT true FROM audit_log.tracked t WHERE t.relid = c.oid LIMIT 1) IS NULL
           AND (SELECT true FROM pg_depend d
                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                   AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' LIMIT 1) IS NULL
         ORDER BY c.oid
    LOOP
        PERFORM audit_log.track(created);
    END LOOP;
END
$$;

-- The follow_new_tables setting of a schema goes with it when it is renamed.
CREATE FUNCTION audit_log.follow_schema_rename(old_name text, new_name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE audit_log.tracked_schemas s SET schema_name = new_name WHERE s.schema_name = old_name;
END
$$;
REVOKE ALL ON FUNCTION audit_log.follow_tables(oid[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.follow_schema_rename(text, text) FROM PUBLIC;

-- Integrity (sql/integrity.sql): the sealed tree, new in 0.3.0.
-- Integrity (API section 6): sealed events are the leaves of an append-only
-- Merkle tree whose checkpoints an auditor keeps outside the database.
-- The hashing and the order of leaves live in Rust (src/sealing.rs,
-- src/verification.rs, and crates/tree for the format itself); the tables,
-- their guards and the reading side live here.

-- The log's identity, the first line of every checkpoint. Chosen once, at
-- CREATE EXTENSION, and carried by pg_dump: a restore loads the dumped row,
-- which takes the place of the one the restore's CREATE EXTENSION chose.
CREATE TABLE audit_log.log_identity (
    log_id   uuid    NOT NULL,
    only_row boolean NOT NULL DEFAULT true,
    CONSTRAINT log_identity_pkey PRIMARY KEY (only_row),
    CONSTRAINT log_identity_only_row CHECK (only_row)
);
INSERT INTO audit_log.log_identity (log_id) VALUES (pg_catalog.gen_random_uuid());

-- Every leaf of the tree, in order: its hash and, for an event, the event's
-- id, so that verify() can name what changed. A seal leaf has no event.
CREATE TABLE audit_log.tree_leaves (
    leaf_index bigint NOT NULL,
    leaf_hash  bytea  NOT NULL,
    event_id   bigint,
    CONSTRAINT tree_leaves_pkey PRIMARY KEY (leaf_index)
);
-- verify() walks the events and their leaves side by side, in id order.
CREATE INDEX tree_leaves_event_id ON audit_log.tree_leaves (event_id);

-- One row per seal that appended leaves. watermark, sealed_at, horizon and
-- cluster are what its seal leaf hashes; restored_through is the last event
-- id a restore brought into this cluster's generation (0 when none), and
-- frontier the roots of the tree's perfect subtrees (32 bytes each, largest
-- first), from which the next seal goes on without reading earlier leaves.
CREATE TABLE audit_log.tree_seals (
    tree_size        bigint      NOT NULL,
    seal_leaf_index  bigint      NOT NULL,
    watermark        xid8        NOT NULL,
    sealed_at        timestamptz NOT NULL,
    horizon          timestamptz NOT NULL,
    cluster          bigint      NOT NULL,
    restored_through bigint      NOT NULL,
    root             bytea       NOT NULL,
    frontier         bytea       NOT NULL,
    CONSTRAINT tree_seals_pkey PRIMARY KEY (tree_size)
);

-- Restores of the trail into this cluster: the last event id each brought.
-- Transaction ids mean something only in the cluster that assigned them, so
-- the first seal in a new cluster tells restored events from new ones by id.
-- Not dumped: it describes this cluster, and a restore writes its own.
CREATE TABLE audit_log.restored_trails (
    cluster       bigint      NOT NULL,
    last_event_id bigint      NOT NULL,
    restored_at   timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

-- A seal reads the events of ended transactions by transaction id.
CREATE INDEX events_tx_id ON audit_log.events (tx_id, id);

SELECT pg_catalog.pg_extension_config_dump('audit_log.log_identity', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tree_leaves', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tree_seals', '');

-- Whether this backend is inside seal(): only seal() appends to the tree.
CREATE FUNCTION audit_log.sealing() RETURNS boolean
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'audit_log_sealing_wrapper';

-- The tree and the identity are append-only like the events: changing them
-- through SQL fails; a restore into an empty tree, and seal(), append.
CREATE FUNCTION audit_log.refuse_tree_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A restored identity replaces the one CREATE EXTENSION chose (below).
    IF TG_TABLE_NAME = 'log_identity' AND TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_log.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'The sealed tree is written only by audit_log.seal() and can never be changed.';
END
$$;

CREATE FUNCTION audit_log.refuse_forged_leaf() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    empty boolean;
BEGIN
    IF audit_log.sealing() THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format('SELECT NOT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME)
       INTO empty;
    IF NOT empty THEN
        RAISE EXCEPTION 'audit_log.% is written only by audit_log.seal(): % is not allowed', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only a restore into an empty tree may load it.';
    END IF;
    RETURN NULL;
END
$$;

-- The restore's row takes the place of CREATE EXTENSION's.
CREATE FUNCTION audit_log.replace_log_identity() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM audit_log.log_identity;
    RETURN NEW;
END
$$;

-- A restore has loaded events: note the last one, for the next seal.
CREATE FUNCTION audit_log.note_restored_events() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO audit_log.restored_trails (cluster, last_event_id)
    SELECT (pg_catalog.pg_control_system()).system_identifier, max(e.id)
      FROM audit_log.events e
    HAVING max(e.id) IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER log_identity_replaced_by_restore
    BEFORE INSERT ON audit_log.log_identity
    FOR EACH ROW EXECUTE FUNCTION audit_log.replace_log_identity();
CREATE TRIGGER log_identity_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.log_identity
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_tree_change();
CREATE TRIGGER tree_leaves_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.tree_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_tree_change();
CREATE TRIGGER tree_leaves_no_forgery
    BEFORE INSERT ON audit_log.tree_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_forged_leaf();
CREATE TRIGGER tree_seals_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.tree_seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_tree_change();
CREATE TRIGGER tree_seals_no_forgery
    BEFORE INSERT ON audit_log.tree_seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_forged_leaf();
CREATE TRIGGER restored_trails_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.restored_trails
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_tree_change();
CREATE TRIGGER events_restored
    AFTER INSERT ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.note_restored_events();
ALTER TABLE audit_log.log_identity ENABLE ALWAYS TRIGGER log_identity_replaced_by_restore;
ALTER TABLE audit_log.log_identity ENABLE ALWAYS TRIGGER log_identity_append_only;
ALTER TABLE audit_log.tree_leaves ENABLE ALWAYS TRIGGER tree_leaves_append_only;
ALTER TABLE audit_log.tree_leaves ENABLE ALWAYS TRIGGER tree_leaves_no_forgery;
ALTER TABLE audit_log.tree_seals ENABLE ALWAYS TRIGGER tree_seals_append_only;
ALTER TABLE audit_log.tree_seals ENABLE ALWAYS TRIGGER tree_seals_no_forgery;
ALTER TABLE audit_log.restored_trails ENABLE ALWAYS TRIGGER restored_trails_append_only;
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_restored;

-- A checkpoint's text (API section 6.2).
CREATE FUNCTION audit_log.checkpoint_text(tree_size bigint, root bytea) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT 'audit_log/' || i.log_id::text || E'\n'
           || checkpoint_text.tree_size::text || E'\n'
           || pg_catalog.encode(checkpoint_text.root, 'base64') || E'\n'
      FROM audit_log.log_identity i;
END;

CREATE VIEW audit_log.seals AS
SELECT s.tree_size,
       s.tree_size - s.seal_leaf_index - 1 AS events_added,
       s.watermark,
       s.sealed_at,
       s.horizon,
       s.root,
       audit_log.checkpoint_text(s.tree_size, s.root) AS checkpoint
  FROM audit_log.tree_seals s
 ORDER BY s.tree_size;

CREATE FUNCTION audit_log.checkpoint(tree_size bigint DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found text;
BEGIN
    IF checkpoint.tree_size < 0 THEN
        RAISE EXCEPTION 'tree_size must be 0 or more, not %', checkpoint.tree_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.checkpoint INTO found
      FROM audit_log.seals s
     WHERE s.tree_size = coalesce(checkpoint.tree_size, s.tree_size)
     ORDER BY s.tree_size DESC
     LIMIT 1;
    IF found IS NOT NULL THEN
        RETURN found;
    END IF;
    -- The empty tree, before any seal: its root is SHA-256 of nothing.
    IF coalesce(checkpoint.tree_size, 0) = 0 THEN
        RETURN audit_log.checkpoint_text(0, pg_catalog.sha256(''::bytea));
    END IF;
    RAISE EXCEPTION 'no seal produced a tree of % leaves', checkpoint.tree_size
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'SELECT tree_size FROM audit_log.seals lists the tree sizes seals produced.';
END
$$;

CREATE FUNCTION audit_log.seal() RETURNS text
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_sort = off
AS 'MODULE_PATHNAME', 'audit_log_seal_wrapper';

CREATE FUNCTION audit_log.verify(checkpoint text DEFAULT NULL)
RETURNS TABLE(problem text, event_id bigint, leaf_index bigint, detail text)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off
SET enable_sort = off
AS 'MODULE_PATHNAME', 'audit_log_verify_wrapper';

-- SECURITY DEFINER: what holds sealing back is in pg_stat_activity, whose
-- other users' rows a reader could not see.
CREATE FUNCTION audit_log.seal_status()
RETURNS TABLE(tree_size bigint, last_sealed_at timestamptz, unsealed_events bigint,
              oldest_unsealed_at timestamptz, waiting_for text)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'audit_log_seal_status_wrapper';

REVOKE ALL ON FUNCTION
    audit_log.guarded_tables(),
    audit_log.sealing(),
    audit_log.refuse_tree_change(),
    audit_log.refuse_forged_leaf(),
    audit_log.replace_log_identity(),
    audit_log.note_restored_events(),
    audit_log.checkpoint_text(bigint, bytea),
    audit_log.checkpoint(bigint),
    audit_log.seal(),
    audit_log.verify(text),
    audit_log.seal_status()
FROM PUBLIC;
REVOKE ALL ON audit_log.log_identity, audit_log.tree_leaves, audit_log.tree_seals,
              audit_log.restored_trails, audit_log.seals
FROM PUBLIC;
-- Integrity (section 6): admins seal, readers verify and read checkpoints.
GRANT SELECT ON audit_log.seals, audit_log.tree_seals, audit_log.tree_leaves,
                audit_log.log_identity, audit_log.restored_trails
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION
    audit_log.checkpoint(bigint),
    audit_log.checkpoint_text(bigint, bytea),
    audit_log.verify(text),
    audit_log.seal_status()
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.seal() TO audit_log_admin;
