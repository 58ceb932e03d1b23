-- Written in Rust as a plain fmgr function: pgrx's jsonb mapping would go
-- through serde and could alter numbers; this one keeps the caller's jsonb as is.
CREATE FUNCTION audit_log.set_actor(actor text, context jsonb DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'audit_log_set_actor';

COMMENT ON FUNCTION audit_log.set_actor(text, jsonb) IS
    'Set audit_log.actor and audit_log.context for the current transaction only';
