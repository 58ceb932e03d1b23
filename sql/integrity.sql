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

-- Interior nodes of the tree whose height is a multiple of 4 (node i of
-- height h holds leaves i * 2^h to (i + 1) * 2^h - 1), written by the seal
-- that completes them: a proof about a few leaves of a huge tree reads a
-- few of these instead of rehashing every other leaf (src/tree_store.rs).
CREATE TABLE audit_log.tree_nodes (
    height     smallint NOT NULL,
    node_index bigint   NOT NULL,
    hash       bytea    NOT NULL,
    CONSTRAINT tree_nodes_pkey PRIMARY KEY (height, node_index)
);

-- Signatures of checkpoints (a witness's, an auditor's), as C2SP signed-note
-- lines, kept by add_signature() and returned by checkpoint().
CREATE TABLE audit_log.tree_signatures (
    tree_size bigint      NOT NULL,
    signature text        NOT NULL,
    added_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    CONSTRAINT tree_signatures_pkey PRIMARY KEY (tree_size, signature)
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

-- A seal reads the events of ended transactions by transaction id: each
-- partition's index on (tx_id, id) (sql/partitions.sql).

SELECT pg_catalog.pg_extension_config_dump('audit_log.log_identity', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tree_leaves', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tree_seals', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tree_nodes', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tree_signatures', '');

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
CREATE TRIGGER tree_nodes_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_tree_change();
CREATE TRIGGER tree_nodes_no_forgery
    BEFORE INSERT ON audit_log.tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_forged_leaf();
CREATE TRIGGER tree_signatures_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.tree_signatures
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_tree_change();
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
ALTER TABLE audit_log.tree_nodes ENABLE ALWAYS TRIGGER tree_nodes_append_only;
ALTER TABLE audit_log.tree_nodes ENABLE ALWAYS TRIGGER tree_nodes_no_forgery;
ALTER TABLE audit_log.tree_signatures ENABLE ALWAYS TRIGGER tree_signatures_append_only;
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

-- A checkpoint with the signatures kept for it (a C2SP signed note: the
-- text, a blank line, one line per signature), or the text alone.
CREATE FUNCTION audit_log.signed_checkpoint(tree_size bigint, root bytea) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT audit_log.checkpoint_text(signed_checkpoint.tree_size, signed_checkpoint.root)
           || coalesce(E'\n' || (SELECT pg_catalog.string_agg(g.signature, '' ORDER BY g.added_at, g.signature)
                                   FROM audit_log.tree_signatures g
                                  WHERE g.tree_size = signed_checkpoint.tree_size), '');
END;

CREATE VIEW audit_log.seals AS
SELECT s.tree_size,
       s.tree_size - s.seal_leaf_index - 1 AS events_added,
       s.watermark,
       s.sealed_at,
       s.horizon,
       s.root,
       audit_log.signed_checkpoint(s.tree_size, s.root) AS checkpoint
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
        RETURN audit_log.signed_checkpoint(0, pg_catalog.sha256(''::bytea));
    END IF;
    RAISE EXCEPTION 'no seal produced a tree of % leaves', checkpoint.tree_size
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'SELECT tree_size FROM audit_log.seals lists the tree sizes seals produced.';
END
$$;

-- The events of a seal come in (tx_id, id) order straight from the
-- partitions' indexes on (tx_id, id), merged: sorting them instead would spill wide rows to disk, and the
-- planner, misled by statistics that lag behind the newest events, would.
CREATE FUNCTION audit_log.seal() RETURNS text
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_sort = off
SET jit = off
AS 'MODULE_PATHNAME', 'audit_log_seal_wrapper';

-- The events and their leaves are walked side by side in id order (a merge
-- join of two index scans), which streams: a hash join would hold every
-- event's text in memory, or spill it.
CREATE FUNCTION audit_log.verify(checkpoint text DEFAULT NULL)
RETURNS TABLE(problem text, event_id bigint, leaf_index bigint, detail text)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off
SET enable_sort = off
SET jit = off
AS 'MODULE_PATHNAME', 'audit_log_verify_wrapper';

-- SECURITY DEFINER: what holds sealing back is in pg_stat_activity, whose
-- other users' rows a reader could not see.
CREATE FUNCTION audit_log.seal_status()
RETURNS TABLE(tree_size bigint, last_sealed_at timestamptz, unsealed_events bigint,
              oldest_unsealed_at timestamptz, waiting_for text)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'audit_log_seal_status_wrapper';
