\set SHOW_CONTEXT never
-- Export: export() as text columns for COPY / \copy, export_csv() as CSV lines.
CREATE SCHEMA ex;
CREATE TABLE ex.notes (id int PRIMARY KEY, body text, tags text[]);
SELECT audit_log.track('ex.notes');
SET audit_log.context = '{"request_id": "r-1"}';
SET audit_log.actor = 'writer, "the" one';
INSERT INTO ex.notes VALUES
    (1, E'commas, "quotes",\nnewlines\r\nand \\backslashes\\ 🎓', '{a,"b c"}'),
    (2, '', NULL);
UPDATE ex.notes SET body = 'plain', tags = '{}' WHERE id = 1;
RESET audit_log.actor;
RESET audit_log.context;
DELETE FROM ex.notes WHERE id = 2;

-- The columns, in order, all text.
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'audit_log.export_row'::regclass ORDER BY attnum;

-- Oldest first, JSON as jsonb::text prints it, changed_fields as a JSON array,
-- occurred_at in UTC ISO 8601 with microseconds (checked by pattern: it is a time).
SELECT x.actor, x.db_user, x.client_addr, x.entity, x.entity_id, x.action, x.changed_fields,
       x.old_values, x.new_values, x.context,
       x.occurred_at ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS iso_utc,
       x.id::bigint = e.id AS same_id, x.tx_id = e.tx_id::text AS same_tx
  FROM audit_log.export(entity => 'ex.notes') x JOIN audit_log.events e ON e.id = x.id::bigint
 ORDER BY x.id::bigint;

-- occurred_at is the stored instant, whatever TimeZone and DateStyle say.
SELECT x.occurred_at::timestamptz = e.occurred_at AS same_instant
  FROM audit_log.export(entity => 'ex.notes') x JOIN audit_log.events e ON e.id = x.id::bigint LIMIT 1;
CREATE TEMPORARY TABLE export_utc AS SELECT * FROM audit_log.export(entity => 'ex.notes');
SET TimeZone = 'Pacific/Chatham';
SET DateStyle = 'German, DMY';
SET IntervalStyle = 'sql_standard';
CREATE SCHEMA decoy;
CREATE FUNCTION decoy.to_char(timestamp, text) RETURNS text LANGUAGE sql AS $$ SELECT 'decoy' $$;
SET search_path = decoy, public;
SELECT count(*) AS rows_that_differ FROM (
    SELECT * FROM audit_log.export(entity => 'ex.notes')
    EXCEPT ALL SELECT * FROM export_utc) AS d;
RESET search_path;
RESET TimeZone;
RESET DateStyle;
RESET IntervalStyle;
DROP SCHEMA decoy CASCADE;

-- The formatting helpers agree with PostgreSQL's own, over a range of instants.
SELECT count(*) AS checked,
       count(*) FILTER (WHERE audit_log.iso_utc(t) <> to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) AS iso_differs
  FROM generate_series(timestamptz '1901-01-01 00:00:00.000001+00', '2299-12-31', interval '3 days 1 hour 1 minute 1.000001 second') AS t;
SELECT audit_log.iso_utc('infinity'), audit_log.iso_utc('-infinity');
SELECT a, audit_log.json_text_array(a) = to_jsonb(a)::text AS same_as_to_jsonb
  FROM (VALUES ('{}'::text[]), ('{a}'), ('{"with space","quote\"d",NULL}'), (ARRAY[E'tab\tnew\nline\u0001 é 🎓'])) AS v(a);

-- Filters are those of list(), oldest first.
SELECT x.action, x.actor FROM audit_log.export(entity => 'notes', action => 'insert') x;
SELECT x.action FROM audit_log.export(entity => 'notes', actor => 'writer, "the" one') x;
SELECT count(*) AS future FROM audit_log.export(since => now() + interval '1 day');
SELECT sqlstate_of($$SELECT * FROM audit_log.export(action => 'nope')$$) AS unknown_action;
SELECT sqlstate_of($$SELECT * FROM audit_log.export(action => 'no pe')$$) AS malformed_action;
SELECT sqlstate_of($$SELECT * FROM audit_log.export(since => '2026-02-01', until => '2026-01-01')$$) AS backwards;

-- export_csv(): the header, then a CSV record per event, quoted as COPY does.
SELECT line FROM audit_log.export_csv(entity => 'ex.notes') WITH ORDINALITY AS c(line, n)
 WHERE n = 1;
SELECT regexp_replace(line, '^(\d+),[^,]+,\d+,', '<id>,<occurred_at>,<tx_id>,') AS line
  FROM audit_log.export_csv(entity => 'ex.notes') WITH ORDINALITY AS c(line, n)
 WHERE n > 1 ORDER BY n;
SELECT audit_log.csv_line(ARRAY['plain', '', NULL, 'a,b', 'say "hi"', E'two\nlines']);
