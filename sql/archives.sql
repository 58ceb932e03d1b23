-- Archives (API section 8): a closed partition leaves the log only as a
-- verified archive. `audit-log archive` writes it (the month's export, its
-- complete proof, a manifest), reads it back and verifies it, detaches the
-- partition concurrently (the only DETACH the extension lets through, and only
-- for a partition it could archive), then calls drop_archived(), which checks
-- the manifest against the partition, records an ARCHIVE event holding the
-- manifest, and drops it. verify() accounts for the archived leaves through
-- that event.

-- Partitions on their way out: detached (or being detached) for archiving,
-- not dropped yet, with the period they took (a detached table has no bounds).
-- A crash between the detach and the drop leaves the row; `audit-log archive`
-- finishes the job on its next run.
CREATE TABLE audit_log.detached_partitions (
    relid        oid         NOT NULL,
    partition    text        NOT NULL,
    from_time    timestamptz NOT NULL,
    to_time      timestamptz NOT NULL,
    detached_at  timestamptz NOT NULL,
    CONSTRAINT detached_partitions_pkey PRIMARY KEY (relid)
);

-- The header fields (as export() writes them, in tag order: id, occurred_at,
-- tx_id, actor, db_user, entity, entity_id, action) and body hash of archived
-- events whose leaves lie after the last seal leaf before their period ended:
-- a complete proof of a later period reveals them (API 6.1). Kept so that
-- later periods can still be proven complete, and archived in turn.
CREATE TABLE audit_log.archived_headers (
    leaf_index  bigint NOT NULL,
    header      text[] NOT NULL,
    body_hash   bytea  NOT NULL,
    CONSTRAINT archived_headers_pkey PRIMARY KEY (leaf_index)
);
SELECT pg_catalog.pg_extension_config_dump('audit_log.archived_headers', '');

CREATE FUNCTION audit_log.refuse_archive_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only audit_log.drop_archived() writes it.';
END
$$;
CREATE TRIGGER archived_headers_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.archived_headers
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_archive_change();
ALTER TABLE audit_log.archived_headers ENABLE ALWAYS TRIGGER archived_headers_append_only;

CREATE FUNCTION audit_log.keep_archived_headers(partition regclass, after_leaf bigint)
RETURNS bigint
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'audit_log_keep_archived_headers_wrapper';

-- Why a partition cannot be archived now, or NULL when it can: closed (a
-- seal's horizon has reached the end of its period, so no event can still
-- arrive in it), every event in it sealed, and no legal hold on.
CREATE FUNCTION audit_log.archivable(partition regclass)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    period record;
    hold record;
BEGIN
    IF partition IS NULL THEN
        RAISE EXCEPTION 'audit_log.archivable(): partition must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT b.from_time, b.to_time INTO period
      FROM audit_log.partition_bounds() b WHERE b.partition = archivable.partition;
    IF NOT FOUND THEN
        SELECT d.from_time, d.to_time INTO period
          FROM audit_log.detached_partitions d WHERE d.relid = archivable.partition;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partition of audit_log.events', partition
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'audit_log.partitions lists the partitions of the log.';
    END IF;
    IF period.to_time IS NULL THEN
        RETURN 'it is the default partition, which is never archived';
    END IF;
    SELECT h.hold_id, h.reason INTO hold FROM audit_log.holds h WHERE h.active ORDER BY h.hold_id LIMIT 1;
    IF FOUND THEN
        RETURN format('legal hold %s is on (%s): nothing can be archived until it is released',
                      hold.hold_id, hold.reason);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_log.tree_seals s WHERE s.horizon >= period.to_time) THEN
        RETURN format('it is not closed yet: no seal''s horizon has reached %s, the end of its period',
                      audit_log.iso_utc(period.to_time));
    END IF;
    IF NOT audit_log.partition_sealed(partition) THEN
        RETURN 'some of its events are not sealed yet';
    END IF;
    RETURN NULL;
END
$$;

-- Called by the partition guard (src/partitions.rs) when someone runs
-- ALTER TABLE audit_log.events DETACH PARTITION ... CONCURRENTLY: refuses a
-- partition that could not be archived, else records its period. Runs in the
-- detach's first transaction, so the row stays when the detach goes through.
CREATE FUNCTION audit_log.note_detaching(partition regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    period record;
    refusal text;
BEGIN
    SELECT b.from_time, b.to_time INTO period
      FROM audit_log.partition_bounds() b WHERE b.partition = note_detaching.partition;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partition of audit_log.events', partition
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A hold placed now waits for the detach, which then sees it next time.
    LOCK TABLE audit_log.legal_holds IN SHARE MODE;
    refusal := audit_log.archivable(partition);
    IF refusal IS NOT NULL THEN
        RAISE EXCEPTION 'partition % cannot be detached: %', partition, refusal
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only audit-log archive detaches partitions, once their archive is written and verified.';
    END IF;
    INSERT INTO audit_log.detached_partitions (relid, partition, from_time, to_time, detached_at)
    VALUES (partition, partition::text, period.from_time, period.to_time, statement_timestamp())
    ON CONFLICT (relid) DO NOTHING;
END
$$;

-- SHA-256 (hex) of the CSV that `\copy (SELECT * FROM audit_log.export(...))
-- TO ... WITH (FORMAT csv, HEADER)` writes for every event of a partition, as
-- its archive holds it uncompressed (src/archives.rs). Not granted to anyone.
CREATE FUNCTION audit_log.partition_csv_sha256(partition regclass)
RETURNS text
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'audit_log_partition_csv_sha256_wrapper';

-- What a manifest must say of a partition: its event count, its events'
-- leaf indexes as runs [first, last], and the SHA-256 of their leaf hashes in
-- leaf order and of its CSV.
CREATE FUNCTION audit_log.archive_digest(partition regclass)
RETURNS TABLE (events bigint, leaf_ranges jsonb, leaf_hashes_sha256 text, csv_sha256 text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', partition) INTO events;
    EXECUTE format($q$
        SELECT coalesce(jsonb_agg(jsonb_build_array(r.first, r.last) ORDER BY r.first), '[]'),
               encode(sha256(coalesce((SELECT string_agg(l.leaf_hash, ''::bytea ORDER BY l.leaf_index)
                                         FROM audit_log.tree_leaves l
                                        WHERE l.event_id IN (SELECT p.id FROM %1$s p)), ''::bytea)), 'hex')
          FROM (SELECT min(s.leaf_index) AS first, max(s.leaf_index) AS last
                  FROM (SELECT l.leaf_index, l.leaf_index - row_number() OVER (ORDER BY l.leaf_index) AS run
                          FROM audit_log.tree_leaves l
                         WHERE l.event_id IN (SELECT p.id FROM %1$s p)) AS s
                 GROUP BY s.run) AS r
    $q$, partition) INTO leaf_ranges, leaf_hashes_sha256;
    csv_sha256 := audit_log.partition_csv_sha256(partition);
    RETURN NEXT;
END
$$;

-- Drops a partition `audit-log archive` detached, once the manifest of its
-- archive matches it exactly; records the ARCHIVE event, holding the manifest.
CREATE FUNCTION audit_log.drop_archived(partition regclass, manifest jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.partition_maintenance = on
AS $$
DECLARE
    detached audit_log.detached_partitions;
    refusal text;
    digest record;
    mismatch text;
BEGIN
    IF partition IS NULL OR manifest IS NULL THEN
        RAISE EXCEPTION 'audit_log.drop_archived(): partition and manifest must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(manifest) <> 'object' THEN
        RAISE EXCEPTION 'audit_log.drop_archived(): the manifest must be a JSON object, as audit-log archive writes it'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- No hold can be placed until this transaction ends, and none is on.
    LOCK TABLE audit_log.legal_holds IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM audit_log.partition_bounds() b WHERE b.partition = drop_archived.partition) THEN
        refusal := audit_log.archivable(partition);
        RAISE EXCEPTION 'partition % is still attached to audit_log.events', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = coalesce('It cannot be archived: ' || refusal || '.',
                                    'Only a partition detached for archiving can be dropped.'),
                  HINT = CASE WHEN refusal IS NULL
                              THEN format('audit-log archive detaches it first: ALTER TABLE audit_log.events DETACH PARTITION %s CONCURRENTLY (or FINALIZE, to finish an interrupted detach).', partition)
                              ELSE 'audit_log.archivable() says when it can be.'
                         END;
    END IF;
    SELECT * INTO detached FROM audit_log.detached_partitions d WHERE d.relid = drop_archived.partition;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partition of audit_log.events detached for archiving', partition
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'audit_log.detached_partitions lists the partitions audit-log archive detached.';
    END IF;
    refusal := audit_log.archivable(partition);
    IF refusal IS NOT NULL THEN
        RAISE EXCEPTION 'partition % cannot be dropped: %', partition, refusal
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- The manifest must describe this partition exactly.
    SELECT * INTO digest FROM audit_log.archive_digest(partition);
    mismatch := CASE
        WHEN manifest->>'partition' IS DISTINCT FROM detached.partition
            THEN format('it is the manifest of %s, not of %s', coalesce(manifest->>'partition', 'no partition'), detached.partition)
        WHEN coalesce(manifest->'from', 'null') IS DISTINCT FROM
             CASE WHEN detached.from_time = '-infinity' THEN 'null'::jsonb
                  ELSE to_jsonb(audit_log.iso_utc(detached.from_time)) END
          OR manifest->>'to' IS DISTINCT FROM audit_log.iso_utc(detached.to_time)
            THEN format('its period (%s to %s) is not the partition''s (%s to %s)',
                        coalesce(manifest->>'from', '-infinity'), coalesce(manifest->>'to', 'nothing'),
                        audit_log.iso_utc(detached.from_time), audit_log.iso_utc(detached.to_time))
        WHEN manifest->'events' IS DISTINCT FROM to_jsonb(digest.events)
            THEN format('it counts %s events, the partition holds %s', coalesce(manifest->>'events', 'no'), digest.events)
        WHEN manifest->'leaf_ranges' IS DISTINCT FROM digest.leaf_ranges
            THEN format('its leaf_ranges are not the leaf indexes of the partition''s events (%s)', left(digest.leaf_ranges::text, 200))
        WHEN manifest->>'leaf_hashes_sha256' IS DISTINCT FROM digest.leaf_hashes_sha256
            THEN 'its leaf_hashes_sha256 is not the SHA-256 of the partition''s leaf hashes'
        WHEN manifest->>'csv_sha256' IS DISTINCT FROM digest.csv_sha256
            THEN 'its csv_sha256 is not the SHA-256 of the partition''s export'
    END;
    IF mismatch IS NOT NULL THEN
        RAISE EXCEPTION 'the manifest does not match partition %: %', partition, mismatch
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the .manifest.json that audit-log archive wrote for this partition.';
    END IF;
    PERFORM audit_log.keep_archived_headers(partition,
        coalesce((SELECT max(s.seal_leaf_index) FROM audit_log.tree_seals s
                   WHERE s.sealed_at <= detached.to_time), -1));
    PERFORM audit_log.record_retention('ARCHIVE', jsonb_build_object('partition', detached.partition), NULL, manifest);
    DELETE FROM audit_log.detached_partitions d WHERE d.relid = drop_archived.partition;
    EXECUTE format('DROP TABLE %s', partition);
END
$$;
