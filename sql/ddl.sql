-- What DDL does to tracked tables is part of the trail. Two event triggers
-- (src/ddl.rs) bracket every command that can change a tracked table or its
-- capture. At ddl_command_start the first notes where the command begins (its
-- command id); while it runs, the relations whose catalog entries it changes
-- are collected from PostgreSQL's relcache invalidations. At ddl_command_end
-- the second finds the tracked tables among them (ddl_watch_roots()), reads
-- their state as it was when the command began (ddl_watch_state() under a
-- snapshot of that command id) and hands it to record_ddl(), which compares
-- it with the catalogs and records one DDL event per tracked table the
-- command touched, with the actor and db_user of any event. A command costs
-- what it touches, not what the database tracks:
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
-- The tables whose triggers keep them append-only: the log and the sealed
-- tree (sql/integrity.sql), whichever of them this version has.
CREATE FUNCTION audit_log.guarded_tables() RETURNS oid[]
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

-- Called by ddl_command_end with the tables the command created or moved
-- (not those of an extension's script, which belong to it).
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

-- The text of the command being recorded, never the other statements of
-- the message it came in (src/ddl.rs).
CREATE FUNCTION audit_log.ddl_statement()
RETURNS text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'audit_log_ddl_statement';

-- The tracked table whose changes relid's are: relid itself or its topmost
-- tracked partition ancestor; NULL when none is tracked (or relid is gone).
CREATE FUNCTION audit_log.tracked_root(relid oid)
RETURNS oid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
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
SET jit = off
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

CREATE FUNCTION audit_log.note_ddl_watch_state()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_note_ddl_watch_state';
CREATE FUNCTION audit_log.record_ddl()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_record_ddl';

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

-- Dropping the extension would drop the trail: refused while it holds events
-- (src/ddl.rs), unless a superuser sets audit_log.drop_with_events.
-- Drops by CASCADE from commands the watch does not follow (src/ddl.rs).
CREATE FUNCTION audit_log.record_drops()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_record_drops';
CREATE EVENT TRIGGER audit_log_drops ON sql_drop
    EXECUTE FUNCTION audit_log.record_drops();

CREATE FUNCTION audit_log.guard_drop()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_log_guard_drop';
CREATE EVENT TRIGGER audit_log_guard_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION audit_log.guard_drop();

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
