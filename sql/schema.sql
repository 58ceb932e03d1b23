-- The trail itself and the list of tracked tables.
--
-- Plain sequence rather than an identity column: pg_extension_config_dump and
-- pg_dump's setval() handling are well-trodden for owned sequences.
--
-- The log is partitioned by the time of its events (sql/partitions.sql): a
-- month is written, then frozen, and can leave the database whole. Each
-- partition has its own unique index on id (ids come from one sequence).
CREATE SEQUENCE audit_log.events_id_seq;

CREATE TABLE audit_log.events (
    id               bigint      NOT NULL DEFAULT pg_catalog.nextval('audit_log.events_id_seq'),
    occurred_at      timestamptz NOT NULL,
    tx_id            xid8        NOT NULL,
    actor            text,
    db_user          text        NOT NULL,
    application_name text,
    client_addr      inet,
    context          jsonb,
    -- NULL only for an application's event about nothing in particular, or a
    -- sign-in (sql/application_events.sql).
    entity           text,
    entity_id        jsonb,
    action           text        NOT NULL,
    old_values       jsonb,
    new_values       jsonb,
    changed_fields   text[],
    -- The capture's and the extension's own actions, and applications' words
    -- (log_event()): an upper-case word.
    CONSTRAINT events_action_check CHECK (action ~ '^[A-Z][A-Z0-9_]{0,62}$')
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE audit_log.events_id_seq OWNED BY audit_log.events.id;

COMMENT ON TABLE audit_log.events IS
    'Append-only audit trail: one row per changed row, written in the same transaction as the change';

-- Which tables are tracked, with their options. regclass keeps the link through
-- renames, dumps as a name, and is one of the reg* types pg_upgrade accepts.
CREATE TABLE audit_log.tracked (
    relid            regclass    NOT NULL,
    exclude_columns  text[]      NOT NULL DEFAULT '{}',
    redact_columns   text[]      NOT NULL DEFAULT '{}',
    tracked_since    timestamptz NOT NULL,
    tracked_by       text        NOT NULL,
    CONSTRAINT tracked_pkey PRIMARY KEY (relid)
);

-- Schemas tracked with track_schema(), kept so that follow_new_tables can act on them.
CREATE TABLE audit_log.tracked_schemas (
    schema_name       name    NOT NULL,
    exclude_tables    text[]  NOT NULL DEFAULT '{}',
    follow_new_tables boolean NOT NULL,
    CONSTRAINT tracked_schemas_pkey PRIMARY KEY (schema_name)
);

-- pg_dump skips extension members unless told otherwise: the trail and the
-- tracking configuration are data, and must travel with the database.
SELECT pg_catalog.pg_extension_config_dump('audit_log.events', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tracked', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tracked_schemas', '');

-- Append-only. Statement-level BEFORE triggers fire even when no row matches, so
-- every attempt fails the same way; ENABLE ALWAYS keeps them active under
-- session_replication_role = replica.
CREATE FUNCTION audit_log.refuse_event_change() RETURNS trigger
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

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_event_change();

-- Events are written only by capture, below SQL, where no trigger fires. An
-- INSERT or COPY through SQL would be a forged event, with one exception: a
-- restore (pg_dump output, pg_restore) loads the trail into the freshly
-- created, still empty, log, or each of its partitions into the freshly
-- attached, still empty, partition. Only the log's owner (a superuser) holds
-- INSERT.
CREATE FUNCTION audit_log.refuse_forged_event() RETURNS trigger
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
CREATE TRIGGER events_no_forgery
    BEFORE INSERT ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_forged_event();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON audit_log.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_event_change();
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_append_only;
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_no_truncate;
ALTER TABLE audit_log.events ENABLE ALWAYS TRIGGER events_no_forgery;

CREATE VIEW audit_log.tracked_tables AS
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS entity,
       t.exclude_columns,
       t.redact_columns,
       t.tracked_since,
       t.tracked_by
  FROM audit_log.tracked t
  JOIN pg_class c ON c.oid = t.relid
  JOIN pg_namespace n ON n.oid = c.relnamespace;

-- Schemas tracked with track_schema(), and whether tables created there later
-- are tracked as they are created.
CREATE VIEW audit_log.tracked_schema_settings AS
SELECT s.schema_name, s.exclude_tables, s.follow_new_tables
  FROM audit_log.tracked_schemas s;
