-- audit_log 0.4.0 -> 0.5.0: a trail that lives for years (API section 8).

-- The log's own events: legal holds, their release, archives.
ALTER TABLE audit_log.events DROP CONSTRAINT events_action_check;
ALTER TABLE audit_log.events ADD CONSTRAINT events_action_check CHECK (action IN
    ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRACK', 'UNTRACK', 'DDL', 'HOLD', 'RELEASE', 'ARCHIVE'));

CREATE OR REPLACE FUNCTION audit_log.normalize_action(action text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF upper(action) IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRACK', 'UNTRACK', 'DDL', 'HOLD', 'RELEASE', 'ARCHIVE') THEN
        RETURN upper(action);
    END IF;
    RAISE EXCEPTION 'unknown action "%"', action
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use INSERT, UPDATE, DELETE, TRUNCATE, TRACK, UNTRACK, DDL, HOLD, RELEASE or ARCHIVE (in any case).';
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
       AND c.relname IN ('events', 'log_identity', 'tree_leaves', 'tree_seals', 'tree_nodes',
                         'tree_signatures', 'restored_trails', 'legal_holds', 'legal_hold_releases')
       AND c.relkind = 'r'
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

-- Partitions of the log (section 8). Partitioned, the log keeps no index of
-- its own: each partition carries the log's indexes and guards itself, so
-- that pg_dump, which writes partitions as tables attached to the log,
-- restores them exactly once (an index on the log would be made twice).

-- A partition's guards, as internal statement triggers (src/partitions.rs).
CREATE FUNCTION audit_log.guard_partition(partition regclass) RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'audit_log_guard_partition_wrapper';

-- A partition's indexes: what list(), history(), export() and sealing read by.
CREATE FUNCTION audit_log.create_event_indexes(partition regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text := (SELECT c.relname FROM pg_class c WHERE c.oid = partition);
BEGIN
    EXECUTE format('CREATE UNIQUE INDEX %I ON %s (id)', name || '_id', partition);
    EXECUTE format('CREATE INDEX %I ON %s (occurred_at, id)', name || '_occurred_at', partition);
    EXECUTE format('CREATE INDEX %I ON %s (actor, occurred_at, id)', name || '_actor', partition);
    EXECUTE format('CREATE INDEX %I ON %s (entity, occurred_at, id)', name || '_entity', partition);
    EXECUTE format('CREATE INDEX %I ON %s USING hash '
                   '((pg_catalog.jsonb_hash_extended(entity_id, pg_catalog.hashtext(entity))))',
                   name || '_entity_id', partition);
    EXECUTE format('CREATE INDEX %I ON %s (action, occurred_at, id) '
                   'WHERE action NOT IN (''INSERT'', ''UPDATE'', ''DELETE'')', name || '_rare_actions', partition);
    EXECUTE format('CREATE INDEX %I ON %s (tx_id, id)', name || '_tx_id', partition);
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
    EXECUTE format('CREATE TABLE audit_log.%I (LIKE audit_log.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    made := format('audit_log.%I', name)::regclass;
    PERFORM audit_log.create_event_indexes(made);
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

REVOKE ALL ON FUNCTION audit_log.guard_partition(regclass), audit_log.create_event_indexes(regclass),
    audit_log.create_partition(timestamptz, timestamptz), audit_log.guard_new_partitions() FROM PUBLIC;

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
