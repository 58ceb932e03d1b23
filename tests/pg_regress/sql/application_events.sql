\set SHOW_CONTEXT never
-- Application events (API section 10): what no row change shows, written by
-- the application into the same trail, with the same actor, context and
-- transaction as a captured change.
CREATE FUNCTION pg_temp.refusal(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'done';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE ROLE app_backend;
GRANT audit_log_writer TO app_backend;
SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'audit_log_writer';

SET ROLE app_backend;
BEGIN;
SELECT audit_log.set_actor('bob.app@example.org',
    '{"ip": "203.0.113.7", "browser": "Firefox 133", "os": "Ubuntu 24.04", "location": "Lyon, France"}');
SELECT audit_log.log_event('SIGN_IN') > 0 AS signed_in;
SELECT audit_log.log_event('EXPORT', 'public.trainings', NULL, '{"rows": 120, "format": "csv"}') > 0 AS exported;
SELECT audit_log.log_event('ROLE_GRANTED', 'user', '{"id": 7}', '{"role": "trainer"}') > 0 AS granted;
COMMIT;
-- A rolled-back event leaves nothing, as a rolled-back change.
BEGIN;
SELECT audit_log.log_event('SIGN_OUT') > 0 AS signed_out;
ROLLBACK;
RESET ROLE;
SELECT actor, entity, entity_id, action, new_values, context ->> 'browser' AS browser,
       count(*) OVER (PARTITION BY tx_id) AS in_one_transaction
  FROM audit_log.events WHERE actor = 'bob.app@example.org' ORDER BY id;
-- Read like any other event; list() and export() take the words.
SELECT action FROM audit_log.list(actor => 'bob.app@example.org', action => 'sign_in');
SELECT count(*) AS exported_events FROM audit_log.export(actor => 'bob.app@example.org');
SELECT count(*) AS no_such_events FROM audit_log.list(action => 'never_written');

-- Refused: a malformed or reserved action, details or a key that is not an
-- object, a blank entity; and require_actor applies.
SELECT pg_temp.refusal($$SELECT audit_log.log_event('sign in')$$) AS malformed;
SELECT pg_temp.refusal($$SELECT audit_log.log_event('sign_in')$$) AS lower_case;
SELECT pg_temp.refusal($$SELECT audit_log.log_event('UPDATE')$$) AS capture_action;
SELECT pg_temp.refusal($$SELECT audit_log.log_event('LOGIN')$$) AS login_is_reserved;
SELECT pg_temp.refusal($$SELECT audit_log.log_event(NULL)$$) AS null_action;
SELECT pg_temp.refusal($$SELECT audit_log.log_event('EXPORT', NULL, NULL, '[1, 2]')$$) AS details_array;
SELECT pg_temp.refusal($$SELECT audit_log.log_event('EXPORT', NULL, '42', NULL)$$) AS key_scalar;
SELECT pg_temp.refusal($$SELECT audit_log.log_event('EXPORT', '  ', NULL, NULL)$$) AS blank_entity;
BEGIN;
SET LOCAL audit_log.require_actor = on;
SELECT pg_temp.refusal($$SELECT audit_log.log_event('SIGN_IN')$$) AS without_actor;
ROLLBACK;
\set VERBOSITY default
SELECT audit_log.log_event('sign in');
\set VERBOSITY terse

-- Only writers and admins may call it.
CREATE ROLE app_reader;
GRANT audit_log_reader TO app_reader;
SET ROLE app_reader;
SELECT pg_temp.refusal($$SELECT audit_log.log_event('SIGN_IN')$$) AS reader_writes;
RESET ROLE;

-- Sealed and verified like the rest.
CALL seal_everything();
SELECT count(*) AS problems FROM audit_log.verify();
DROP ROLE app_backend;
DROP ROLE app_reader;
