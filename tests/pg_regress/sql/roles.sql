\set SHOW_CONTEXT never
-- audit_log_reader and audit_log_admin are shared by the cluster's
-- databases. A CREATE EXTENSION that finds them already there warns the
-- installing superuser of what could undermine them: someone other than a
-- superuser able to grant them (on PostgreSQL 16 and later, a CREATEROLE
-- user keeps that right on the roles it creates), or attributes a NOLOGIN
-- group role should not have.
\set regress_db :DBNAME
CREATE ROLE role_keeper LOGIN;
GRANT audit_log_admin TO role_keeper WITH ADMIN OPTION;
ALTER ROLE audit_log_reader CREATEDB;
CREATE DATABASE audit_log_roles;
\c audit_log_roles
CREATE EXTENSION audit_log;
\c :regress_db
DROP DATABASE audit_log_roles;
ALTER ROLE audit_log_reader NOCREATEDB;
REVOKE audit_log_admin FROM role_keeper;
DROP ROLE role_keeper;
