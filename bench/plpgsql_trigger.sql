-- The hand-written PL/pgSQL audit trigger audit_log is measured against: the
-- same facts (actor and context from the settings, to_jsonb of OLD and NEW,
-- the changed fields, no event for an UPDATE that changes nothing) written to
-- a table shaped like audit_log.events, with the same indexes (those of a
-- partition: the partitioned log itself holds none).
CREATE SCHEMA handmade;
CREATE SEQUENCE handmade.events_id_seq;
CREATE TABLE handmade.events (LIKE audit_log.events_default INCLUDING CONSTRAINTS INCLUDING INDEXES);
ALTER TABLE handmade.events ALTER COLUMN id SET DEFAULT nextval('handmade.events_id_seq');

CREATE FUNCTION handmade.capture() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
    changed text[];
    keyed jsonb;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN old_row := to_jsonb(OLD); END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN new_row := to_jsonb(NEW); END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(n.key ORDER BY a.attnum) INTO changed
          FROM jsonb_each(new_row) n
          JOIN jsonb_each(old_row) o USING (key)
          JOIN pg_attribute a ON a.attrelid = TG_RELID AND a.attname = n.key
         WHERE n.value IS DISTINCT FROM o.value;
        IF changed IS NULL THEN RETURN NULL; END IF;
    END IF;
    keyed := coalesce(new_row, old_row);
    INSERT INTO handmade.events (occurred_at, tx_id, actor, db_user, application_name, client_addr,
                                 context, entity, entity_id, action, old_values, new_values, changed_fields)
    VALUES (statement_timestamp(), pg_current_xact_id(),
            nullif(current_setting('audit_log.actor', true), ''),
            session_user, current_setting('application_name'), inet_client_addr(),
            nullif(current_setting('audit_log.context', true), '')::jsonb,
            quote_ident(TG_TABLE_SCHEMA) || '.' || quote_ident(TG_TABLE_NAME),
            jsonb_build_object('id', keyed -> 'id'),
            TG_OP, old_row, new_row, changed);
    RETURN NULL;
END
$$;
