\set SHOW_CONTEXT never
-- Values are recorded exactly as to_jsonb() renders the row.
CREATE SCHEMA vals;
CREATE TYPE vals.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN vals.percent AS numeric CHECK (VALUE BETWEEN 0 AND 100);
CREATE TYPE vals.address AS (street text, zip text);
CREATE TABLE vals.everything (
    id        bigint PRIMARY KEY,
    i         int,
    n         numeric,
    t         text,
    b         bytea,
    flag      boolean,
    d         date,
    ts        timestamptz,
    span      interval,
    u         uuid,
    ip        inet,
    tags      text[],
    matrix    int[],
    doc       jsonb,
    js        json,
    m         vals.mood,
    pct       vals.percent,
    addr      vals.address,
    f8        float8,
    f_inf     float8,
    ch        char(3),
    doubled   bigint GENERATED ALWAYS AS (i * 2) STORED,
    nothing   text
);
SELECT audit_log.track('vals.everything');
SET TIME ZONE 'UTC';
-- Capture renders under the server's default output settings, whatever the
-- session says (output_style.sql): compare with to_jsonb() under them too
-- (pg_regress gives its databases IntervalStyle = postgres_verbose).
SET IntervalStyle = postgres;
INSERT INTO vals.everything (id, i, n, t, b, flag, d, ts, span, u, ip, tags, matrix, doc, js, m, pct, addr, f8, f_inf, ch)
VALUES (1, 42, 12345678901234567890.123456789,
        E'quotes " and \' , new\nline, tab\t, backslash \\ and emoji 🎓',
        '\xdeadbeef', true, '2026-11-21', '2026-11-21 09:30:00.123456+01', '1 day 02:03:04',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '{"a","b,c",NULL}', '{{1,2},{3,4}}',
        '{"nested": {"k": [1, 2.50, null]}}', '{"kept":  "as text"}', 'happy', 99.5, ROW('1 Main St', '75001'),
        '-0', 'Infinity', 'ab');

-- Every column, compared with to_jsonb() of the stored row.
SELECT e.new_values = to_jsonb(v) AS same_as_to_jsonb
  FROM audit_log.events e, vals.everything v
 WHERE e.entity = 'vals.everything' AND e.action = 'INSERT' AND v.id = 1;
SELECT key, value FROM audit_log.events e, jsonb_each(e.new_values)
 WHERE e.entity = 'vals.everything' AND e.action = 'INSERT' ORDER BY key;

-- UPDATE: old and new both match to_jsonb of the rows before and after.
CREATE TABLE vals.before AS SELECT * FROM vals.everything;
UPDATE vals.everything SET i = 43, nothing = 'something', tags = tags || '{d}'::text[], addr.zip = '75002';
SELECT e.old_values = (SELECT to_jsonb(prior) FROM vals.before prior) AS old_matches,
       e.new_values = (SELECT to_jsonb(v) FROM vals.everything v) AS new_matches,
       e.changed_fields
  FROM audit_log.events e WHERE e.entity = 'vals.everything' AND e.action = 'UPDATE';

-- Edge values of the types capture converts itself (integers, numeric,
-- booleans, text, dates and times, jsonb), against to_jsonb again.
CREATE DOMAIN vals.small AS int2;
CREATE TABLE vals.edges (
    id int PRIMARY KEY,
    i2 int2, i8 int8, sm vals.small, n numeric, n2 numeric(10, 3), b boolean,
    t text, vc varchar(10), ch char(5), d date, ts timestamp, tz timestamptz,
    jb jsonb, nm name, f4 real
);
SELECT audit_log.track('vals.edges');
INSERT INTO vals.edges VALUES
    (1, -32768, -9223372036854775808, 7, 'NaN', 1.5, false, '', '', '', '-infinity', 'infinity', '2000-01-01 00:00:00+14', 'null', 'n', 'NaN'),
    (2, 32767, 9223372036854775807, NULL, 'Infinity', -0.001, true, repeat('é', 3), 'ten chars!', 'x', '4713-01-01 BC', '294276-12-31 23:59:59.999999', 'infinity', '"scalar"', 'a', '-Infinity'),
    (3, 0, 0, -1, '-Infinity', 0, NULL, E'\\x00 \\u0000?', 'a"b', 'a b', '2026-11-21', '2026-11-21 09:30:00.5', '-infinity', '[]', '', 1e-40),
    (4, NULL, NULL, NULL, 0.000000000000000000001, 12345.678, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{}', NULL, 3.4e38);
SELECT v.id, e.new_values = to_jsonb(v) AS same_as_to_jsonb
  FROM audit_log.events e JOIN vals.edges v ON v.id = (e.new_values->>'id')::int
 WHERE e.entity = 'vals.edges' AND e.action = 'INSERT' ORDER BY v.id;
SELECT e.new_values FROM audit_log.events e WHERE e.entity = 'vals.edges' AND e.action = 'INSERT' ORDER BY e.id;

-- A 1 MB value, stored out of line (TOAST), is recorded whole.
CREATE TABLE vals.documents (id int PRIMARY KEY, body text, title text);
ALTER TABLE vals.documents ALTER COLUMN body SET STORAGE EXTERNAL;
SELECT audit_log.track('vals.documents');
-- latest_document_event: the last event of vals.documents, against the row as it is now.
CREATE VIEW vals.latest_document_event AS
SELECT e.action, length(e.new_values->>'body') AS body_length, e.changed_fields,
       e.new_values = (SELECT to_jsonb(d) FROM vals.documents d) AS same_as_to_jsonb
  FROM audit_log.events e WHERE e.entity = 'vals.documents' ORDER BY e.id DESC LIMIT 1;
INSERT INTO vals.documents VALUES (1, repeat('0123456789abcdef', 65536), 'big');
SELECT pg_column_size(body) AS stored_bytes, length(body) FROM vals.documents;
SELECT * FROM vals.latest_document_event;
-- An UPDATE of another column: the TOASTed value is unchanged and not listed.
UPDATE vals.documents SET title = 'still big';
SELECT * FROM vals.latest_document_event;
UPDATE vals.documents SET body = body || '!';
SELECT * FROM vals.latest_document_event;
DELETE FROM vals.documents;
SELECT length(old_values->>'body') AS deleted_body_length FROM audit_log.events
 WHERE entity = 'vals.documents' AND action = 'DELETE';
RESET TIME ZONE;
