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
--
-- `facts` is what undoing needs to know of the event's table, as an earlier
-- call returned it for another event of that table in the same transaction
-- (or NULL): revert_transaction() hands it back, so the catalogs and the
-- trail's DDL are read once per table rather than once per event.
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
