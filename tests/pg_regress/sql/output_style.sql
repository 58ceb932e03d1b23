-- Values are recorded as to_jsonb renders them under the server's defaults
-- (shortest exact floats, hex bytea, `postgres` intervals), whatever the
-- writing session set for its own output: a session with
-- extra_float_digits = -15 sees 150000 for 149999.999, the trail must not.
CREATE SCHEMA style;
CREATE TABLE style.measures (
    id int PRIMARY KEY, f8 float8, f4 float4, b bytea, span interval,
    spans interval[], f8s float8[], pair_span interval
);
SELECT audit_log.track('style.measures');

-- A session that asks for its own output style...
SET extra_float_digits = -15;
SET bytea_output = escape;
SET IntervalStyle = sql_standard;
INSERT INTO style.measures VALUES
    (1, 149999.999, 1.1, '\x00ff41', '1 day 2 hours 3.5 seconds',
     ARRAY[make_interval(years => -1, months => 2)], ARRAY[0.1::float8, 1e-7], '3 days');
UPDATE style.measures SET f8 = 150000.001 WHERE id = 1;
-- ...keeps it for its own queries (capture sets it back after each row)...
SHOW extra_float_digits;
SHOW bytea_output;
SHOW IntervalStyle;
SELECT f8, b, span FROM style.measures;
RESET extra_float_digits;
RESET bytea_output;
RESET IntervalStyle;

-- ...but the trail holds the values as the server's defaults write them.
SELECT action, old_values ->> 'f8' AS old_f8, new_values ->> 'f8' AS new_f8, changed_fields
  FROM audit_log.events WHERE entity = 'style.measures' ORDER BY id;
SELECT new_values FROM audit_log.events
 WHERE entity = 'style.measures' AND action = 'INSERT';
-- The same row written with this database's settings records the same values.
INSERT INTO style.measures VALUES
    (2, 149999.999, 1.1, '\x00ff41', '1 day 2 hours 3.5 seconds',
     ARRAY[make_interval(years => -1, months => 2)], ARRAY[0.1::float8, 1e-7], '3 days');
SELECT (SELECT new_values - 'id' FROM audit_log.events
         WHERE entity = 'style.measures' AND action = 'INSERT' AND entity_id = '{"id": 1}')
     = (SELECT new_values - 'id' FROM audit_log.events
         WHERE entity = 'style.measures' AND action = 'INSERT' AND entity_id = '{"id": 2}')
       AS same_values_whatever_the_session;

DROP SCHEMA style CASCADE;
