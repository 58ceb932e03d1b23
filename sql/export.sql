-- Export for auditors: export() as text columns for COPY / \copy, and
-- export_csv() as ready CSV lines.
--
-- export() is a SQL function with a SQL-standard body: bound when created (the
-- caller's search_path plays no part), and inlined by the planner when used in
-- FROM, so `COPY (SELECT * FROM audit_log.export(...)) TO ...` streams straight
-- from an index scan: memory does not grow with the number of events.

-- Named columns of export(). A composite type rather than RETURNS TABLE,
-- whose output names (actor, entity, action) would clash with the arguments'.
CREATE TYPE audit_log.export_row AS (
    id               text,
    occurred_at      text,
    tx_id            text,
    actor            text,
    db_user          text,
    application_name text,
    client_addr      text,
    entity           text,
    entity_id        text,
    action           text,
    changed_fields   text,
    old_values       text,
    new_values       text,
    context          text
);

CREATE FUNCTION audit_log.export(since timestamptz DEFAULT NULL,
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

-- export_csv() reads export() through a cursor planned for the arguments
-- given and for its first rows (index order, no sort), and returns its rows as
-- CSV lines, one per call (src/reading.rs): called as documented, in the
-- SELECT list, its memory does not grow with the number of events. A SQL
-- function there is not inlined, and PostgreSQL 15 (as every version before
-- 18) plans it once for any argument: a sort of the whole selection.
-- Not SECURITY DEFINER: it reads with the caller's rights, as export() does.
CREATE FUNCTION audit_log.export_csv(since timestamptz DEFAULT NULL,
                                     until timestamptz DEFAULT NULL,
                                     actor text DEFAULT NULL,
                                     entity text DEFAULT NULL,
                                     action text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'audit_log_export_csv';
