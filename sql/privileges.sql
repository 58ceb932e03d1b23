-- Who may do what. PUBLIC keeps only what writers of tracked tables need:
-- USAGE on the schema, set_actor(), and EXECUTE on the capture trigger functions
-- (checked when a table owner creates or attaches a partition of a tracked table;
-- they cannot be called except as triggers).
REVOKE ALL ON SCHEMA audit_log FROM PUBLIC;
GRANT USAGE ON SCHEMA audit_log TO PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA audit_log FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA audit_log FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit_log FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_log.set_actor(text, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION audit_log.capture_row(), audit_log.capture_truncate() TO PUBLIC;

-- Roles are shared by every database of the cluster: create them once, then
-- leave them (and their members) alone. A role found already there may have
-- been made by someone else, with rights of its own, or with someone able to
-- grant it (on PostgreSQL 16 and later, a CREATEROLE user keeps ADMIN on the
-- roles it creates): the installing superuser is warned of what it finds.
DO $$
DECLARE
    found record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'audit_log_reader') THEN
        CREATE ROLE audit_log_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'audit_log_admin') THEN
        CREATE ROLE audit_log_admin NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('audit_log_admin', 'audit_log_reader', 'MEMBER') THEN
        GRANT audit_log_reader TO audit_log_admin;
    END IF;
    FOR found IN
        SELECT r.rolname,
               pg_catalog.array_to_string(ARRAY[
                   CASE WHEN r.rolcanlogin THEN 'LOGIN' END,
                   CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
                   CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
                   CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
                   CASE WHEN r.rolreplication THEN 'REPLICATION' END,
                   CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END], ', ') AS attributes,
               (SELECT pg_catalog.string_agg(m.rolname, ', ' ORDER BY m.rolname)
                  FROM pg_catalog.pg_auth_members a
                  JOIN pg_catalog.pg_roles m ON m.oid = a.member
                 WHERE a.roleid = r.oid AND a.admin_option AND NOT m.rolsuper) AS admins
          FROM pg_catalog.pg_roles r
         WHERE r.rolname IN ('audit_log_reader', 'audit_log_admin')
         ORDER BY r.rolname
    LOOP
        IF found.attributes <> '' THEN
            RAISE WARNING 'role % has %: it is meant to be NOLOGIN with no attribute', found.rolname, found.attributes
                USING HINT = pg_catalog.format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS', found.rolname);
        END IF;
        IF found.admins IS NOT NULL THEN
            RAISE WARNING 'role % can be granted by roles that are not superusers: %', found.rolname, found.admins
                USING DETAIL = 'Whoever may grant this role decides who reads the trail or tracks tables.',
                      HINT = pg_catalog.format('REVOKE ADMIN OPTION FOR %I FROM ...', found.rolname);
        END IF;
    END LOOP;
END
$$;

GRANT SELECT ON audit_log.events, audit_log.tracked_tables, audit_log.tracked_schema_settings TO audit_log_reader;
-- Reading runs with the reader's own rights (export() is inlined into the
-- caller's query), so the helpers it calls are granted too.
GRANT EXECUTE ON FUNCTION
    audit_log.list(timestamptz, timestamptz, text, text, text, integer, bigint),
    audit_log.history(text, jsonb),
    audit_log.changes(bigint),
    audit_log.export(timestamptz, timestamptz, text, text, text),
    audit_log.export_csv(timestamptz, timestamptz, text, text, text),
    audit_log.matching_entities(text),
    audit_log.entity_segments(text[]),
    audit_log.entity_parts(text),
    audit_log.normalize_action(text),
    audit_log.check_period(timestamptz, timestamptz),
    audit_log.csv_line(text[]),
    audit_log.iso_utc(timestamptz),
    audit_log.json_text_array(text[])
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION
    audit_log.track(regclass, text[], text[], boolean),
    audit_log.untrack(regclass),
    audit_log.track_schema(name, text[], boolean, boolean)
TO audit_log_admin;

-- Integrity (section 6): admins seal, readers verify and read checkpoints.
GRANT SELECT ON audit_log.seals, audit_log.tree_seals, audit_log.tree_leaves,
                audit_log.tree_nodes, audit_log.tree_signatures,
                audit_log.log_identity, audit_log.restored_trails
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION
    audit_log.checkpoint(bigint),
    audit_log.checkpoint_text(bigint, bytea),
    audit_log.signed_checkpoint(bigint, bytea),
    audit_log.verify(text),
    audit_log.seal_status()
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.seal() TO audit_log_admin;

-- Proofs (section 7): readers prove exports, admins keep signatures.
GRANT EXECUTE ON FUNCTION
    audit_log.export_proof(timestamptz, timestamptz, text, text, text, boolean, text),
    audit_log.consistency_proof(bigint, bigint)
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.add_signature(text) TO audit_log_admin;

-- Retention (section 8): admins place and lift legal holds, readers see them.
GRANT SELECT ON audit_log.holds TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.legal_hold(text), audit_log.release_hold(bigint) TO audit_log_admin;

-- Partitions (section 8): admins make the months ahead (the seal worker and
-- track() do it too).
GRANT EXECUTE ON FUNCTION audit_log.prepare_partitions() TO audit_log_admin;
GRANT SELECT ON audit_log.partitions TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.partition_bounds(), audit_log.partition_sealed(regclass) TO audit_log_reader;

-- Archives (section 8): admins drop what audit-log archive archived, and ask
-- why a partition cannot be archived yet; readers see what is being detached.
GRANT EXECUTE ON FUNCTION audit_log.drop_archived(regclass, jsonb), audit_log.archivable(regclass) TO audit_log_admin;
GRANT SELECT ON audit_log.detached_partitions TO audit_log_reader;

-- Time travel (section 9): readers rebuild past states; a reader reverts
-- with the rights the undoing writes need on the live tables (the functions
-- run with the caller's rights).
GRANT EXECUTE ON FUNCTION
    audit_log.as_of(text, timestamptz, jsonb),
    audit_log.entity_stretches(text),
    audit_log.revert(bigint),
    audit_log.revert_transaction(xid8),
    audit_log.undo_event(audit_log.events, jsonb),
    audit_log.table_of_event(text, bigint)
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.values_differ(regclass, text) TO audit_log_reader;

-- Application events (section 10): applications write them as members of
-- audit_log_writer (created where missing, granted nothing else), admins too.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'audit_log_writer') THEN
        CREATE ROLE audit_log_writer NOLOGIN;
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION audit_log.log_event(text, text, jsonb, jsonb) TO audit_log_writer, audit_log_admin;
GRANT EXECUTE ON FUNCTION audit_log.key_hashes(jsonb, text[]) TO audit_log_reader;
