\set SHOW_CONTEXT never
-- The trail is append-only: UPDATE, DELETE and TRUNCATE fail for every role,
-- the owner and superusers included, with SQLSTATE 42501, and change nothing.
CREATE TEMPORARY TABLE before_attempts AS SELECT count(*) AS n, max(id) AS last_id FROM audit_log.events;

SELECT current_user, usesuper FROM pg_user WHERE usename = current_user;
UPDATE audit_log.events SET actor = 'someone else';
DELETE FROM audit_log.events;
TRUNCATE audit_log.events;
SELECT sqlstate_of($$UPDATE audit_log.events SET actor = 'x' WHERE id = (SELECT max(id) FROM audit_log.events)$$) AS update_one;
SELECT sqlstate_of($$DELETE FROM audit_log.events WHERE false$$) AS delete_nothing;
SELECT sqlstate_of($$DELETE FROM audit_log.events WHERE id = (SELECT min(id) FROM audit_log.events) RETURNING id$$) AS delete_returning;
SELECT sqlstate_of($$TRUNCATE audit_log.events CASCADE$$) AS truncate_cascade;
SELECT sqlstate_of($$WITH gone AS (DELETE FROM audit_log.events RETURNING 1) SELECT count(*) FROM gone$$) AS delete_in_cte;
SELECT sqlstate_of($$MERGE INTO audit_log.events e USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE$$) AS merge_delete;

-- Even with triggers switched to replica mode.
SET session_replication_role = replica;
SELECT sqlstate_of($$DELETE FROM audit_log.events$$) AS delete_as_replica;
RESET session_replication_role;

-- As the owner of a tracked table: no privilege at all.
CREATE ROLE table_owner;
CREATE TABLE public.owned (id int PRIMARY KEY);
ALTER TABLE public.owned OWNER TO table_owner;
SELECT audit_log.track('public.owned');
SET ROLE table_owner;
INSERT INTO public.owned VALUES (1);
SELECT sqlstate_of($$UPDATE audit_log.events SET actor = 'x'$$) AS owner_update;
SELECT sqlstate_of($$DELETE FROM audit_log.events$$) AS owner_delete;
SELECT sqlstate_of($$TRUNCATE audit_log.events$$) AS owner_truncate;
RESET ROLE;

-- Nothing changed, and the row inserted by table_owner was recorded.
SELECT b.n + 2 = count(*) AS only_new_events_added,
       count(*) FILTER (WHERE e.id <= b.last_id) = b.n AS old_events_intact
  FROM audit_log.events e, before_attempts b GROUP BY b.n, b.last_id;
SELECT entity, action FROM audit_log.events ORDER BY id DESC LIMIT 2;

SELECT audit_log.untrack('public.owned');
DROP TABLE public.owned;
DROP ROLE table_owner;
