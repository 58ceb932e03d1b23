\set SHOW_CONTEXT never
-- The bounds of the session settings, with a role that logs in. A blank
-- actor counts as unset; an actor holds at most 1,024 bytes and a context
-- at most 8,192 bytes of JSON text, refused where they are given (SQLSTATE
-- 22023), never at write time; and a writer cannot turn require_actor off,
-- not even in its connection options, when ALTER ROLE turned it on.
CREATE ROLE bounds_writer LOGIN;
CREATE TABLE public.bounds_notes (id int PRIMARY KEY, body text);
GRANT SELECT, INSERT ON public.bounds_notes TO bounds_writer;
SELECT audit_log.track('public.bounds_notes');
ALTER ROLE bounds_writer SET audit_log.require_actor = on;
\set regress_db :DBNAME

-- The writer connects with require_actor off in its connection options (what
-- PGOPTIONS sends). PostgreSQL keeps the value until the library loads, then
-- refuses it: the role's setting holds.
\set conn 'postgresql:///' :regress_db '?user=bounds_writer&options=-c%20audit_log.require_actor%3Doff'
\c :conn
INSERT INTO public.bounds_notes VALUES (1, 'no actor');
-- A blank actor is no actor.
SET audit_log.actor = '   ';
INSERT INTO public.bounds_notes VALUES (2, 'blank actor');
BEGIN;
SELECT audit_log.set_actor(E'\t ');
INSERT INTO public.bounds_notes VALUES (3, 'blank actor');
ROLLBACK;

-- Too long: refused where given, by SET, set_config() and set_actor().
SELECT left(sqlstate_of($$SELECT set_config('audit_log.actor', repeat('a', 1025), false)$$), 60) AS refused;
SELECT left(sqlstate_of($$SELECT set_config('audit_log.context', '{"note": "' || repeat('c', 8190) || '"}', false)$$), 60) AS refused;
BEGIN;
SELECT left(sqlstate_of($$SELECT audit_log.set_actor(repeat('a', 1025))$$), 60) AS refused;
SELECT left(sqlstate_of($$SELECT audit_log.set_actor('writer', jsonb_build_object('note', repeat('c', 8190)))$$), 60) AS refused;
ROLLBACK;
-- At the bounds: accepted and recorded.
SELECT set_config('audit_log.actor', repeat('a', 1024), false) IS NOT NULL AS set;
SELECT set_config('audit_log.context', '{"note": "' || repeat('c', 8180) || '"}', false) IS NOT NULL AS set;
INSERT INTO public.bounds_notes VALUES (4, 'longest actor and context');
RESET audit_log.context;
SET audit_log.actor = 'writer-1';
INSERT INTO public.bounds_notes VALUES (5, 'named actor');

-- Too long in the connection options: a WARNING when the library loads, and
-- the value is dropped.
\set conn 'postgresql:///' :regress_db '?user=bounds_writer&options=-c%20audit_log.actor%3Daaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
\c :conn
INSERT INTO public.bounds_notes VALUES (6, 'actor from the connection');
SELECT current_setting('audit_log.actor') = '' AS actor_dropped;

\set conn 'postgresql:///' :regress_db '?user=postgres&options='
\c :conn
SELECT length(actor) AS actor_bytes, length(context::text) AS context_bytes, entity_id
  FROM audit_log.events WHERE entity = 'public.bounds_notes' AND action = 'INSERT' ORDER BY id;
-- A superuser may still turn it off for a session of its own.
SET audit_log.require_actor = off;
SET ROLE bounds_writer;
INSERT INTO public.bounds_notes VALUES (7, 'superuser turned it off');
RESET ROLE;
RESET audit_log.require_actor;
SELECT count(*) AS events_of_7 FROM audit_log.events
 WHERE entity = 'public.bounds_notes' AND entity_id = '{"id": 7}';

DROP TABLE public.bounds_notes;
ALTER ROLE bounds_writer RESET ALL;
DROP ROLE bounds_writer;

-- set_actor() inside an EXCEPTION block, the BEGIN sent in the same message
-- (psql's \; joins them): the transaction is a block, the actor lasts until
-- its COMMIT. Without BEGIN, the statement is its own transaction: refused.
BEGIN \; DO $$ BEGIN BEGIN PERFORM audit_log.set_actor('in-block'); EXCEPTION WHEN division_by_zero THEN NULL; END; END $$ \; SELECT current_setting('audit_log.actor') AS actor_in_block \; COMMIT;
DO $$ BEGIN BEGIN PERFORM audit_log.set_actor('alone'); EXCEPTION WHEN division_by_zero THEN NULL; END; END $$;
