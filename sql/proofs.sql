-- Proofs for auditors (API section 7): an export proven against a
-- checkpoint, consistency between two tree sizes, and signatures kept for
-- checkpoints. The proofs are built in Rust (src/proofs.rs) from the stored
-- tree; the format they use is crates/tree's, shared with the audit-log
-- command that checks them.

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
