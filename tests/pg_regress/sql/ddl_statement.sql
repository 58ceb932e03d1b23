\set SHOW_CONTEXT never
-- A DDL event's statement is the command's own text. The other statements
-- of the message it came in (psql's \; sends several as one) stay out of
-- the trail: an INSERT of a secret the trail's readers may not read, an
-- ALTER ROLE ... PASSWORD.
CREATE ROLE stmt_owner LOGIN;
CREATE SCHEMA stmt AUTHORIZATION stmt_owner;
SET ROLE stmt_owner;
CREATE TABLE stmt.accounts (id int PRIMARY KEY, name text);
CREATE TABLE stmt.secrets (id int PRIMARY KEY, ssn text);
RESET ROLE;
SELECT audit_log.track('stmt.accounts');
\set regress_db :DBNAME
SELECT max(id) AS mark FROM audit_log.events \gset

-- The session's first DDL: it runs before the library is loaded.
\set conn 'postgresql:///' :regress_db '?user=stmt_owner'
\c :conn
INSERT INTO stmt.secrets VALUES (1, 'SSN 987-65-4321') \; ALTER TABLE stmt.accounts ADD COLUMN note text;
-- Later ones, with the library loaded; one of them is not the first of its
-- message, and two are of the same kind.
ALTER ROLE stmt_owner PASSWORD 'hunter2' \; ALTER TABLE stmt.accounts ADD COLUMN email text \; INSERT INTO stmt.secrets VALUES (2, 'SSN 123-45-6789');
ALTER TABLE stmt.secrets ADD COLUMN extra text \; ALTER TABLE stmt.accounts RENAME COLUMN email TO mail;
-- Run by a function: the function's own statement.
CREATE FUNCTION stmt.migrate() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    ALTER TABLE stmt.accounts ADD COLUMN phone text;
END
$$;
SELECT stmt.migrate();
\set conn 'postgresql:///' :regress_db '?user=postgres'
\c :conn

SELECT new_values ->> 'command_tag' AS command_tag, new_values ->> 'statement' AS statement
  FROM audit_log.events WHERE id > :mark AND action = 'DDL' ORDER BY id;
SELECT count(*) AS events_with_a_secret FROM audit_log.events
 WHERE id > :mark AND (new_values::text LIKE '%SSN%' OR new_values::text LIKE '%hunter2%');

DROP SCHEMA stmt CASCADE;
DROP ROLE stmt_owner;
