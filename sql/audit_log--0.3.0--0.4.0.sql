-- audit_log 0.3.0 -> 0.4.0: proofs for auditors away from the database
-- (API section 7).

-- The DDL watch guards the new tables' triggers too.
CREATE OR REPLACE FUNCTION audit_log.guarded_tables() RETURNS oid[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(c.oid)
      FROM pg_class c
     WHERE c.relnamespace = 'audit_log'::regnamespace
       AND c.relname IN ('events', 'log_identity', 'tree_leaves', 'tree_seals', 'tree_nodes',
                         'tree_signatures', 'restored_trails')
       AND c.relkind = 'r'
$$;

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

SELECT pg_catalog.pg_extension_config_dump('audit_log.tree_nodes', '');
SELECT pg_catalog.pg_extension_config_dump('audit_log.tree_signatures', '');

CREATE TRIGGER tree_nodes_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_tree_change();
CREATE TRIGGER tree_nodes_no_forgery
    BEFORE INSERT ON audit_log.tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_forged_leaf();
CREATE TRIGGER tree_signatures_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log.tree_signatures
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log.refuse_tree_change();
ALTER TABLE audit_log.tree_nodes ENABLE ALWAYS TRIGGER tree_nodes_append_only;
ALTER TABLE audit_log.tree_nodes ENABLE ALWAYS TRIGGER tree_nodes_no_forgery;
ALTER TABLE audit_log.tree_signatures ENABLE ALWAYS TRIGGER tree_signatures_append_only;

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

CREATE OR REPLACE VIEW audit_log.seals AS
SELECT s.tree_size,
       s.tree_size - s.seal_leaf_index - 1 AS events_added,
       s.watermark,
       s.sealed_at,
       s.horizon,
       s.root,
       audit_log.signed_checkpoint(s.tree_size, s.root) AS checkpoint
  FROM audit_log.tree_seals s
 ORDER BY s.tree_size;

CREATE OR REPLACE FUNCTION audit_log.checkpoint(tree_size bigint DEFAULT NULL) RETURNS text
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

-- STABLE: one snapshot for the whole proof, the same selection as an
-- export() run in the same REPEATABLE READ transaction.
CREATE FUNCTION audit_log.export_proof(since timestamptz DEFAULT NULL,
                                       until timestamptz DEFAULT NULL,
                                       actor text DEFAULT NULL,
                                       entity text DEFAULT NULL,
                                       action text DEFAULT NULL,
                                       complete boolean DEFAULT false,
                                       checkpoint text DEFAULT NULL)
RETURNS text
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'audit_log_export_proof_wrapper';

CREATE FUNCTION audit_log.consistency_proof(old_size bigint, new_size bigint DEFAULT NULL)
RETURNS text
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'audit_log_consistency_proof_wrapper';

-- SECURITY DEFINER: the signatures are append-only; admins add through this
-- function, which checks that the checkpoint is this log's.
CREATE FUNCTION audit_log.add_signature(checkpoint text) RETURNS void
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'audit_log_add_signature_wrapper';

REVOKE ALL ON audit_log.tree_nodes, audit_log.tree_signatures FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_log.signed_checkpoint(bigint, bytea),
    audit_log.export_proof(timestamptz, timestamptz, text, text, text, boolean, text),
    audit_log.consistency_proof(bigint, bigint),
    audit_log.add_signature(text)
FROM PUBLIC;
GRANT SELECT ON audit_log.tree_nodes, audit_log.tree_signatures TO audit_log_reader;
GRANT EXECUTE ON FUNCTION
    audit_log.signed_checkpoint(bigint, bytea),
    audit_log.export_proof(timestamptz, timestamptz, text, text, text, boolean, text),
    audit_log.consistency_proof(bigint, bigint)
TO audit_log_reader;
GRANT EXECUTE ON FUNCTION audit_log.add_signature(text) TO audit_log_admin;

-- export_csv: flat memory (begin)
-- export_csv() becomes a C function that reads export() through a cursor
-- planned for the arguments given and for its first rows, a line per call
-- (sql/export.sql, src/reading.rs): called in the SELECT list, its memory no
-- longer grows with the selection. Same arguments, result type, output and
-- rights: CREATE OR REPLACE changes the language in place and keeps the grant
-- to audit_log_reader (the schema is then a fresh install's, as
-- tests/shell/upgrade_keeps_the_trail.sh checks).
CREATE OR REPLACE FUNCTION audit_log.export_csv(since timestamptz DEFAULT NULL,
                                     until timestamptz DEFAULT NULL,
                                     actor text DEFAULT NULL,
                                     entity text DEFAULT NULL,
                                     action text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'audit_log_export_csv';
-- export_csv: flat memory (end)
