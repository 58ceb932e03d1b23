\set SHOW_CONTEXT never
-- Tracking a table makes every value it takes readable in the trail, by
-- every reader of it: an audit_log_admin may track only what it may read.
-- (Superusers read everything.)
CREATE ROLE rights_admin LOGIN IN ROLE audit_log_admin;
CREATE SCHEMA hr;
CREATE TABLE hr.salaries (id int PRIMARY KEY, amount numeric);
CREATE TABLE hr.teams (id int PRIMARY KEY, name text);
GRANT USAGE ON SCHEMA hr TO rights_admin;
GRANT SELECT ON hr.teams TO rights_admin;
\set regress_db :DBNAME
\set conn 'postgresql:///' :regress_db '?user=rights_admin'
\c :conn
SELECT audit_log.track('hr.salaries');
SELECT audit_log.track('hr.salaries', redact_columns => '{amount}');
SELECT audit_log.track_schema('hr');
SELECT audit_log.track_schema('hr', exclude_tables => '{salaries}');
SELECT audit_log.track('hr.teams', redact_columns => '{name}');
SELECT entity, redact_columns FROM audit_log.tracked_tables WHERE entity LIKE 'hr.%' ORDER BY 1;
\set conn 'postgresql:///' :regress_db '?user=postgres'
\c :conn
-- Given the right to read it, the admin may track it.
GRANT SELECT ON hr.salaries TO rights_admin;
SET ROLE rights_admin;
SELECT audit_log.track('hr.salaries', redact_columns => '{amount}');
RESET ROLE;
SELECT entity, redact_columns FROM audit_log.tracked_tables WHERE entity LIKE 'hr.%' ORDER BY 1;
-- The functions doing the work as the extension's owner are granted to no one.
SET ROLE rights_admin;
SELECT audit_log.track_as_owner('hr.salaries', '{}', '{}', false);
SELECT audit_log.track_schema_as_owner('rights_admin'::regrole, 'hr', '{}', true, false);
RESET ROLE;

DROP SCHEMA hr CASCADE;
DROP OWNED BY rights_admin;
DROP ROLE rights_admin;
