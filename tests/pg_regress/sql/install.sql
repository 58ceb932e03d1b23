\set SHOW_CONTEXT never
-- CREATE EXTENSION builds the schema audit_log with the trail, its settings
-- and the tracking functions.
CREATE EXTENSION audit_log;

SELECT extname, extversion, extrelocatable, n.nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'audit_log';

-- The trail: exactly these columns, in this order.
SELECT attnum, attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute
 WHERE attrelid = 'audit_log.events'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

-- pg_dump keeps the trail, its sequence, the tracking configuration and the
-- sealed tree with the log's identity (sql/integrity.sql), even
-- though they belong to the extension.
SELECT c::regclass AS dumped_with_the_database
  FROM pg_extension, unnest(extconfig) AS c WHERE extname = 'audit_log'
 ORDER BY c::regclass::text;

-- The tracked_tables view.
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'audit_log.tracked_tables'::regclass AND attnum > 0
 ORDER BY attnum;

-- The settings exist once the library is loaded.
SELECT name, setting, context, vartype FROM pg_settings WHERE name LIKE 'audit\_log.%' ORDER BY name;

-- The roles are created when missing.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'audit\_log\_%' ORDER BY 1;
SELECT pg_has_role('audit_log_admin', 'audit_log_reader', 'MEMBER') AS admin_is_reader;

-- A helper for the tests that follow: run a statement, show its SQLSTATE and
-- message instead of failing.
CREATE FUNCTION public.sqlstate_of(statement text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
