\set SHOW_CONTEXT never
-- Capture: one event per changed row, in the same transaction as the change.
CREATE SCHEMA shop;
CREATE TABLE shop.products (
    id       int PRIMARY KEY,
    name     text NOT NULL,
    price    numeric(10, 2),
    stock    int,
    cost     numeric,          -- excluded
    supplier text              -- redacted
);
SELECT audit_log.track('shop.products', exclude_columns => '{cost}', redact_columns => '{supplier}');

SET audit_log.actor = 'alice@example.org';
SET audit_log.context = '{"request_id": "r-1"}';
SET application_name = 'regress-shop';

-- INSERT: new_values; UPDATE: old, new and changed_fields; DELETE: old_values.
INSERT INTO shop.products VALUES (1, 'Pen', 1.50, 10, 0.40, 'ACME'), (2, 'Ink', 7.00, 3, 2.00, 'ACME');
UPDATE shop.products SET price = 1.75, stock = 9 WHERE id = 1;
DELETE FROM shop.products WHERE id = 2;

SELECT actor, db_user, application_name, client_addr, context, entity, entity_id, action,
       old_values, new_values, changed_fields
  FROM audit_log.events WHERE entity = 'shop.products' AND action <> 'TRACK' ORDER BY id;

-- An UPDATE that changes nothing records nothing; nor does one that changes only
-- excluded columns. A change to a redacted column is listed, its values masked.
UPDATE shop.products SET price = price, name = name WHERE id = 1;
UPDATE shop.products SET cost = 0.45 WHERE id = 1;
UPDATE shop.products SET supplier = 'Globex' WHERE id = 1;
SELECT action, old_values->'supplier' AS old_supplier, new_values->'supplier' AS new_supplier, changed_fields
  FROM audit_log.events WHERE entity = 'shop.products' ORDER BY id DESC LIMIT 1;
SELECT count(*) AS updates FROM audit_log.events WHERE entity = 'shop.products' AND action = 'UPDATE';
-- Excluded columns never appear.
SELECT count(*) AS events_mentioning_cost FROM audit_log.events
 WHERE entity = 'shop.products' AND (old_values ? 'cost' OR new_values ? 'cost' OR 'cost' = ANY (changed_fields));

-- changed_fields follows the table's column order, not the SET clause's.
UPDATE shop.products SET stock = 8, name = 'Pen (blue)', price = 1.80 WHERE id = 1;
SELECT changed_fields FROM audit_log.events WHERE entity = 'shop.products' ORDER BY id DESC LIMIT 1;

-- An UPDATE of the primary key: entity_id is the new key, the old one is in old_values.
UPDATE shop.products SET id = 100 WHERE id = 1;
SELECT entity_id, old_values->'id' AS old_id, new_values->'id' AS new_id, changed_fields
  FROM audit_log.events WHERE entity = 'shop.products' ORDER BY id DESC LIMIT 1;

-- TRUNCATE: one event for the statement.
TRUNCATE shop.products;
SELECT action, entity_id, old_values, new_values FROM audit_log.events
 WHERE entity = 'shop.products' ORDER BY id DESC LIMIT 1;

-- When and in which transaction: occurred_at is the statement's start time,
-- tx_id the transaction's id, shared by every change made together.
BEGIN;
INSERT INTO shop.products (id, name) VALUES (3, 'Paper');
INSERT INTO shop.products (id, name) VALUES (4, 'Clip');
SELECT count(*) AS events, count(DISTINCT tx_id) AS transactions,
       bool_and(tx_id = pg_current_xact_id()) AS this_transaction,
       bool_and(occurred_at <= statement_timestamp() AND occurred_at >= transaction_timestamp()) AS within_transaction
  FROM audit_log.events WHERE entity = 'shop.products' AND new_values->>'id' IN ('3', '4');
COMMIT;
SELECT count(DISTINCT tx_id) AS transactions, count(DISTINCT occurred_at) AS statement_times
  FROM audit_log.events WHERE entity = 'shop.products' AND new_values->>'id' IN ('3', '4');
-- occurred_at is the start of the statement: every row of one statement shares it.
INSERT INTO shop.products (id, name) SELECT g, 'bulk ' || g FROM generate_series(10, 14) g;
SELECT count(*) AS events, count(DISTINCT occurred_at) AS statement_times
  FROM audit_log.events WHERE entity = 'shop.products' AND new_values->>'name' LIKE 'bulk %';

-- No actor, no context: NULL. An empty actor counts as unset.
RESET audit_log.context;
SET audit_log.actor = '';
INSERT INTO shop.products (id, name) VALUES (5, 'Stapler');
SELECT actor, context FROM audit_log.events WHERE entity = 'shop.products' ORDER BY id DESC LIMIT 1;

-- set_actor() inside the transaction is what gets recorded.
BEGIN;
SELECT audit_log.set_actor('carol@example.org', '{"reason": "inventory"}');
UPDATE shop.products SET stock = 1 WHERE id = 5;
COMMIT;
SELECT actor, context FROM audit_log.events WHERE entity = 'shop.products' ORDER BY id DESC LIMIT 1;

-- Over TCP the client's address is recorded (NULL over the Unix socket above).
\c "host=127.0.0.1 dbname=audit_log_regress user=postgres"
UPDATE shop.products SET stock = 2 WHERE id = 5;
SELECT client_addr, application_name FROM audit_log.events WHERE entity = 'shop.products' ORDER BY id DESC LIMIT 1;
\c audit_log_regress

-- db_user is session_user, whatever the role in use.
CREATE ROLE shop_clerk;
GRANT USAGE ON SCHEMA shop TO shop_clerk;
GRANT UPDATE, SELECT ON shop.products TO shop_clerk;
SET ROLE shop_clerk;
UPDATE shop.products SET stock = 3 WHERE id = 5;
RESET ROLE;
SELECT db_user FROM audit_log.events WHERE entity = 'shop.products' ORDER BY id DESC LIMIT 1;
DROP OWNED BY shop_clerk;
DROP ROLE shop_clerk;

-- Composite keys, names that need quoting.
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Learners" ("Org" int, code text, "Full name" text, PRIMARY KEY ("Org", code));
SELECT audit_log.track('"Sales Dept"."Learners"');
INSERT INTO "Sales Dept"."Learners" VALUES (1, 'X', 'Ada Lovelace');
UPDATE "Sales Dept"."Learners" SET "Full name" = 'Ada King' WHERE "Org" = 1;
SELECT entity, entity_id, action, changed_fields FROM audit_log.events
 WHERE entity = '"Sales Dept"."Learners"' ORDER BY id;

-- Falls back to the replica-identity index; NULL entity_id without either.
CREATE TABLE shop.coupons (code text NOT NULL, pct int);
CREATE UNIQUE INDEX coupons_code ON shop.coupons (code);
ALTER TABLE shop.coupons REPLICA IDENTITY USING INDEX coupons_code;
CREATE TABLE shop.log_lines (line text);
SELECT audit_log.track('shop.coupons');
SELECT audit_log.track('shop.log_lines');
INSERT INTO shop.coupons VALUES ('WELCOME', 10);
INSERT INTO shop.log_lines VALUES ('hello');
SELECT entity, entity_id, new_values FROM audit_log.events
 WHERE entity IN ('shop.coupons', 'shop.log_lines') AND action = 'INSERT' ORDER BY id;

-- Columns added, dropped or renamed are followed at once.
ALTER TABLE shop.coupons ADD COLUMN expires date;
UPDATE shop.coupons SET expires = '2027-01-31';
ALTER TABLE shop.coupons DROP COLUMN pct;
UPDATE shop.coupons SET expires = '2027-02-28';
ALTER TABLE shop.coupons RENAME COLUMN expires TO valid_until;
UPDATE shop.coupons SET valid_until = '2027-03-31';
SELECT old_values, new_values, changed_fields FROM audit_log.events
 WHERE entity = 'shop.coupons' AND action = 'UPDATE' ORDER BY id;

-- Strict mode: with require_actor on, a write without an actor fails and does not happen.
SET audit_log.require_actor = on;
RESET audit_log.actor;
INSERT INTO shop.coupons VALUES ('SPRING', '2027-03-01');
SELECT sqlstate_of($$DELETE FROM shop.coupons$$) AS delete_without_actor;
SELECT sqlstate_of($$TRUNCATE shop.coupons$$) AS truncate_without_actor;
SET audit_log.actor = '';
SELECT sqlstate_of($$INSERT INTO shop.coupons VALUES ('SPRING', '2027-03-01')$$) AS empty_actor;
SELECT count(*) AS coupons FROM shop.coupons;
-- Tables that are not tracked are not concerned.
CREATE TABLE shop.untracked (id int);
INSERT INTO shop.untracked VALUES (1);
-- An actor set for the transaction satisfies it.
BEGIN;
SELECT audit_log.set_actor('dave@example.org');
INSERT INTO shop.coupons VALUES ('SPRING', '2027-03-01');
COMMIT;
SELECT actor, new_values->>'code' AS code FROM audit_log.events WHERE entity = 'shop.coupons' ORDER BY id DESC LIMIT 1;
RESET audit_log.require_actor;
RESET audit_log.actor;
RESET application_name;
