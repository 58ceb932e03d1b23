-- Reading the trail: list(), history(), changes().
--
-- "Newest first" is (occurred_at DESC, id DESC): the time the change was made,
-- then the order of events within a statement. It lets one index per filter
-- serve both the filter and the order, so a first page never sorts more than
-- it returns, whatever the period. Keyset paging continues strictly below the
-- (occurred_at, id) of before_id: events arriving meanwhile are newer and never
-- shift, repeat or hide the next pages.
--
-- The indexes behind them are each partition's (sql/partitions.sql).

-- The action filter, upper-cased and checked.
CREATE FUNCTION audit_log.normalize_action(action text)
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

-- true, or an error when the period is backwards.
CREATE FUNCTION audit_log.check_period(since timestamptz, until timestamptz)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF since > until THEN
        RAISE EXCEPTION 'since (%) is after until (%)', since, until
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'since is inclusive, until exclusive: since <= occurred_at < until.';
    END IF;
    RETURN true;
END
$$;

-- The stored entities an entity filter names. schema.table names one; a bare
-- table name names that table in every schema the trail has seen, dropped
-- tables included. The distinct entities are read from the entity index by
-- skipping from one to the next, a probe per table, not per event.
CREATE FUNCTION audit_log.matching_entities(entity text)
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

-- One row's events, oldest first. A key change (an UPDATE whose entity_id
-- differs from the key in its old_values) links the row's new key to its old
-- one: the history follows it back to the row's first key.
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

-- One event in detail, a row per field: what an UPDATE changed, everything an
-- INSERT wrote or a DELETE removed. Fields come in the table's column order
-- while the table exists, else by name.
CREATE FUNCTION audit_log.changes(event_id bigint)
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
