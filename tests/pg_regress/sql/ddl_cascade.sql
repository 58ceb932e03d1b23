\set SHOW_CONTEXT never
-- Commands the DDL watch does not follow by name can still change a tracked
-- table: a DROP ... CASCADE of a type, a domain, a function used by a
-- default or an extension takes columns, defaults and whole tables with it;
-- DETACH PARTITION ... CONCURRENTLY commits half-way through. Each is a DDL
-- event of the tracked table, in the same transaction as the change.
CREATE ROLE cascade_owner LOGIN;
CREATE SCHEMA cshop AUTHORIZATION cascade_owner;
CREATE EXTENSION seg;
SET ROLE cascade_owner;
CREATE TYPE cshop.mood AS ENUM ('happy', 'sad');
CREATE DOMAIN cshop.positive AS int CHECK (VALUE > 0);
CREATE FUNCTION cshop.default_label() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'new' $$;
CREATE TABLE cshop.reviews (id int PRIMARY KEY, mood cshop.mood, stars cshop.positive,
                           label text DEFAULT cshop.default_label(), secret cshop.mood,
                           span public.seg, note text);
CREATE TYPE cshop.address AS (street text, city text);
CREATE TABLE cshop.addresses OF cshop.address (PRIMARY KEY (street));
CREATE TABLE cshop.orders (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE cshop.orders_eu PARTITION OF cshop.orders FOR VALUES IN ('eu');
CREATE TABLE cshop.orders_us PARTITION OF cshop.orders FOR VALUES IN ('us');
RESET ROLE;
SELECT audit_log.track('cshop.reviews', exclude_columns => '{secret}', redact_columns => '{note}');
SELECT audit_log.track('cshop.addresses');
SELECT audit_log.track('cshop.orders');
SELECT max(id) AS mark FROM audit_log.events \gset

\set regress_db :DBNAME
\set conn 'postgresql:///' :regress_db '?user=cascade_owner'
\c :conn
SET audit_log.actor = 'cascade-owner';
DROP TYPE cshop.mood CASCADE;
DROP DOMAIN cshop.positive CASCADE;
DROP FUNCTION cshop.default_label() CASCADE;
DROP TYPE cshop.address CASCADE;
ALTER TABLE cshop.orders DETACH PARTITION cshop.orders_us CONCURRENTLY;
-- Rolled back, the drop and its event both vanish.
BEGIN;
CREATE TYPE cshop.size AS ENUM ('s', 'm', 'l');
ALTER TABLE cshop.reviews ADD COLUMN size cshop.size;
DROP TYPE cshop.size CASCADE;
ROLLBACK;
\set conn 'postgresql:///' :regress_db '?user=postgres'
\c :conn
DROP EXTENSION seg CASCADE;

SELECT actor, db_user, entity, new_values - 'statement' AS details, new_values ->> 'statement' AS statement
  FROM audit_log.events WHERE id > :mark ORDER BY id;
-- The excluded column that went left the options; the typed table's
-- tracking ended; the detached partition keeps no capture trigger.
SELECT entity, exclude_columns, redact_columns FROM audit_log.tracked_tables WHERE entity LIKE 'cshop.%' ORDER BY 1;
SELECT count(*) AS capture_triggers_left_on_orders_us FROM pg_trigger
 WHERE tgrelid = 'cshop.orders_us'::regclass AND tgname LIKE 'audit\_log\_%';

DROP SCHEMA cshop CASCADE;
DROP ROLE cascade_owner;
