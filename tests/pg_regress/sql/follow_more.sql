\set SHOW_CONTEXT never
-- follow_new_tables takes in every table that enters the schema: one moved
-- there with ALTER TABLE ... SET SCHEMA, one created by EXPLAIN ANALYZE
-- CREATE TABLE ... AS; and the setting goes with the schema when it is
-- renamed.
CREATE ROLE follow_owner LOGIN;
CREATE SCHEMA inbox AUTHORIZATION follow_owner;
CREATE SCHEMA scratch AUTHORIZATION follow_owner;
SELECT audit_log.track_schema('inbox');
\set regress_db :DBNAME
\set conn 'postgresql:///' :regress_db '?user=follow_owner'
\c :conn
CREATE TABLE scratch.drafts (id int PRIMARY KEY, body text);
ALTER TABLE scratch.drafts SET SCHEMA inbox;
\set conn 'postgresql:///' :regress_db '?user=postgres'
\c :conn
ALTER SCHEMA inbox RENAME TO mail;
\set conn 'postgresql:///' :regress_db '?user=follow_owner'
\c :conn
CREATE TABLE mail.letters (id int PRIMARY KEY);
DO $$
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE) CREATE TABLE mail.digest AS SELECT 1 AS id';
    -- Without ANALYZE nothing is created.
    EXECUTE 'EXPLAIN CREATE TABLE mail.never AS SELECT 1 AS id';
END
$$;
-- Elsewhere, nothing is taken in.
CREATE TABLE scratch.notes (id int PRIMARY KEY);
\set conn 'postgresql:///' :regress_db '?user=postgres'
\c :conn
SELECT entity FROM audit_log.tracked_tables WHERE entity ~ '^(mail|scratch|inbox)\.' ORDER BY 1;
SELECT schema_name, follow_new_tables FROM audit_log.tracked_schema_settings
 WHERE schema_name IN ('inbox', 'mail');
SELECT action, entity FROM audit_log.events WHERE action = 'TRACK' AND entity ~ '^mail\.' ORDER BY id;
-- Dropped, the schema takes its setting with it.

DROP SCHEMA mail, scratch CASCADE;
SELECT count(*) AS settings_left FROM audit_log.tracked_schema_settings WHERE schema_name = 'mail';
DROP ROLE follow_owner;
