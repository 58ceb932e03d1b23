\set SHOW_CONTEXT never
-- Who is acting: audit_log.actor, audit_log.context, audit_log.require_actor
-- and audit_log.set_actor().

-- A value set before the library is loaded in the session is checked when it
-- loads: an invalid context is reported with a WARNING and dropped.
SET audit_log.context = 'not json';
LOAD 'audit_log';
SHOW audit_log.context;

-- Once loaded, a context that is not a JSON object is refused at SET time.
SET audit_log.context = '[1, 2]';
SET audit_log.context = '"just a string"';
SET audit_log.context = '{"unterminated": ';
SELECT sqlstate_of($$SET audit_log.context = '42'$$);
SET audit_log.context = '{"request_id": "r-42", "ip": "203.0.113.7"}';
SHOW audit_log.context;
RESET audit_log.context;

-- Unknown settings under the audit_log prefix are typos, not placeholders.
SET audit_log.actr = 'alice';

-- set_actor() sets both for the current transaction only.
SELECT audit_log.set_actor('alice@example.org');
SELECT sqlstate_of($$SELECT audit_log.set_actor('alice@example.org')$$);
BEGIN;
SELECT audit_log.set_actor('alice@example.org', '{"request_id": "r-1", "amount": 10.50}');
SELECT current_setting('audit_log.actor') AS actor, current_setting('audit_log.context') AS context;
COMMIT;
SELECT current_setting('audit_log.actor') AS actor_after_commit,
       current_setting('audit_log.context') AS context_after_commit;

-- Inside a transaction, set_actor() without a context clears a session context,
-- so that nothing set earlier on a pooled connection leaks into this one.
SET audit_log.actor = 'session-user';
SET audit_log.context = '{"from": "session"}';
BEGIN;
SELECT audit_log.set_actor('bob');
SELECT current_setting('audit_log.actor') AS actor, current_setting('audit_log.context') AS context;
ROLLBACK;
SELECT current_setting('audit_log.actor') AS actor, current_setting('audit_log.context') AS context;
RESET audit_log.actor;
RESET audit_log.context;

-- A context that is not an object is refused by set_actor() too.
BEGIN;
SELECT audit_log.set_actor('bob', '[1]');
ROLLBACK;

-- require_actor can only be changed by a superuser (or ALTER DATABASE/ROLE ... SET).
CREATE ROLE settings_app;
SET ROLE settings_app;
SET audit_log.require_actor = on;
RESET ROLE;
DROP ROLE settings_app;
