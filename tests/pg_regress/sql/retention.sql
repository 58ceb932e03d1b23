\set SHOW_CONTEXT never
-- Legal holds (API section 8). While a hold is on, nothing leaves the trail:
-- a hold and its release are events of the trail, with the acting user.
CREATE ROLE retention_admin;
GRANT audit_log_admin TO retention_admin;
CREATE ROLE retention_reader;
GRANT audit_log_reader TO retention_reader;
SELECT count(*) AS holds_before FROM audit_log.holds;

SET ROLE retention_admin;
SET audit_log.actor = 'dpo@example.org';
SELECT audit_log.legal_hold('Labour court case 24/0117: keep everything') AS first_hold \gset
SELECT audit_log.legal_hold('Qualiopi surveillance audit, March') AS second_hold \gset
SELECT hold_id = :first_hold AS is_first, reason, held_by, active, released_at IS NULL AS not_released
  FROM audit_log.holds ORDER BY hold_id;

-- Each is an event about the log, carrying the hold's id and reason.
SELECT actor, entity, entity_id = jsonb_build_object('hold_id', :first_hold) AS names_the_hold,
       action, old_values IS NULL AS no_old, new_values->>'reason' AS reason
  FROM audit_log.events WHERE action IN ('HOLD', 'RELEASE') ORDER BY id;

-- Lifting one: recorded too, and the other stays on.
SELECT audit_log.release_hold(:second_hold);
SELECT hold_id = :first_hold AS is_first, active, released_by FROM audit_log.holds ORDER BY hold_id;
SELECT action, entity_id = jsonb_build_object('hold_id', :second_hold) AS names_the_hold,
       old_values->>'reason' AS reason, new_values
  FROM audit_log.events WHERE action = 'RELEASE';
-- list() and export() filter on the new actions like on any other.
SELECT action, actor FROM audit_log.list(action => 'hold') ORDER BY id;
SELECT count(*) AS released FROM audit_log.export(action => 'Release');

-- Bad input: clear errors, nothing written.
SELECT sqlstate_of($$SELECT audit_log.legal_hold(NULL)$$) AS null_reason;
SELECT sqlstate_of($$SELECT audit_log.legal_hold('   ')$$) AS blank_reason;
SELECT sqlstate_of($$SELECT audit_log.legal_hold(repeat('x', 1025))$$) AS long_reason;
SELECT sqlstate_of($$SELECT audit_log.release_hold(NULL)$$) AS null_hold;
SELECT sqlstate_of($$SELECT audit_log.release_hold(-1)$$) AS unknown_hold;
SELECT sqlstate_of(format('SELECT audit_log.release_hold(%s)', :second_hold)) AS released_twice;
SELECT count(*) AS holds, count(*) FILTER (WHERE active) AS active FROM audit_log.holds;
SELECT count(*) AS hold_events FROM audit_log.events WHERE action IN ('HOLD', 'RELEASE');

-- Under require_actor, a hold needs an actor like any write.
RESET ROLE;
SET audit_log.require_actor = on;
SET ROLE retention_admin;
RESET audit_log.actor;
SELECT sqlstate_of($$SELECT audit_log.legal_hold('nobody named')$$) AS anonymous_hold;
RESET ROLE;
RESET audit_log.require_actor;
SET ROLE retention_admin;
-- Without an actor, the database user is the one who held.
SELECT audit_log.legal_hold('held by the DBA') AS third_hold \gset
SELECT held_by FROM audit_log.holds WHERE hold_id = :third_hold;
SELECT audit_log.release_hold(:third_hold);
RESET ROLE;

-- A rolled-back hold leaves neither a hold nor an event.
BEGIN;
SELECT audit_log.legal_hold('changed my mind') IS NOT NULL AS held;
ROLLBACK;
SELECT count(*) AS holds, count(*) FILTER (WHERE reason = 'changed my mind') AS rolled_back FROM audit_log.holds;

-- Holds are not editable, not even by their owner; readers see them but
-- cannot place or lift them.
SELECT sqlstate_of($$UPDATE audit_log.legal_holds SET reason = 'nothing'$$) AS edit_hold;
SELECT sqlstate_of($$DELETE FROM audit_log.legal_hold_releases$$) AS forget_release;
SELECT sqlstate_of($$TRUNCATE audit_log.legal_holds CASCADE$$) AS truncate_holds;
SET ROLE retention_reader;
SELECT count(*) AS visible FROM audit_log.holds;
SELECT sqlstate_of($$SELECT audit_log.legal_hold('reader')$$) AS reader_holds;
SELECT sqlstate_of(format('SELECT audit_log.release_hold(%s)', :first_hold)) AS reader_releases;
SELECT sqlstate_of($$INSERT INTO audit_log.legal_hold_releases VALUES (1, now(), 'me')$$) AS reader_inserts;
RESET ROLE;
SET ROLE retention_admin;
SELECT sqlstate_of($$SELECT audit_log.record_retention('HOLD', NULL, NULL, NULL)$$) AS admin_records;
RESET ROLE;
SELECT sqlstate_of($$SELECT audit_log.record_retention('INSERT', NULL, NULL, NULL)$$) AS other_action;

-- Sealed and verified like every other event.
CALL seal_everything();
SELECT count(*) AS problems FROM audit_log.verify();
SELECT audit_log.release_hold(:first_hold);

-- Archives: a partition leaves the log only through audit-log archive
-- (tests/shell/archive.sh runs it end to end); archivable() says why one
-- cannot go yet, and drop_archived() refuses anything but a partition
-- detached for archiving with its exact manifest.
SELECT count(*) >= 0 AS months_ready FROM audit_log.prepare_partitions();
SELECT partition AS this_month FROM audit_log.partitions WHERE from_time <= now() AND to_time > now() \gset
SELECT regexp_replace(audit_log.archivable(:'this_month'), '[0-9]{4}-[0-9T:.-]+Z', '<next month>') AS this_month_archivable;
SET ROLE retention_admin;
SELECT audit_log.legal_hold('one more case') AS third_hold \gset
SELECT regexp_replace(audit_log.archivable(:'this_month'), 'hold [0-9]+', 'hold <id>') AS under_a_hold;
SELECT regexp_replace(sqlstate_of(format('SELECT audit_log.drop_archived(%L, %L)', :'this_month', '{}')),
                      'events_[0-9_]+', 'events_<month>') AS drop_attached;
SELECT audit_log.release_hold(:third_hold);
SELECT sqlstate_of($$SELECT audit_log.drop_archived('audit_log.tracked', '{}')$$) AS drop_not_a_partition;
SELECT sqlstate_of($$SELECT audit_log.drop_archived(NULL, '{}')$$) AS null_partition;
SELECT sqlstate_of($$SELECT audit_log.drop_archived('audit_log.tracked', '[]')$$) AS manifest_not_an_object;
SELECT sqlstate_of($$SELECT audit_log.archivable('audit_log.tracked')$$) AS archivable_not_a_partition;
RESET ROLE;
SET ROLE retention_reader;
SELECT sqlstate_of(format('SELECT audit_log.drop_archived(%L, %L)', :'this_month', '{}')) AS reader_drops;
SELECT count(*) AS detached FROM audit_log.detached_partitions;
RESET ROLE;
-- Nobody edits what archiving keeps.
SELECT sqlstate_of($$DELETE FROM audit_log.archived_headers$$) AS forget_headers;
DROP ROLE retention_admin;
DROP ROLE retention_reader;
