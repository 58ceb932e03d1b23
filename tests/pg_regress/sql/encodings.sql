\set SHOW_CONTEXT never
-- In a database whose encoding is not UTF-8 (LATIN1 here), names and values
-- are bytes of that encoding. Column names with accents are matched for
-- exclusion and redaction, listed in changed_fields and followed through a
-- rename; actors and contexts keep their accents; reading and export work
-- with such names. (The client reads UTF-8: PostgreSQL converts.)
\set regress_db :DBNAME
CREATE DATABASE audit_log_latin1 TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C';
\c audit_log_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION audit_log;
CREATE SCHEMA "société";
CREATE TABLE "société"."élèves" (id int PRIMARY KEY, "prénom" text, "numéro_sécu" text,
                                 "diagnostic_médical" text, "âge" int);
SELECT audit_log.track('"société"."élèves"', exclude_columns => '{numéro_sécu}',
                       redact_columns => '{diagnostic_médical}');
SET audit_log.actor = 'José Müller';
INSERT INTO "société"."élèves" VALUES (1, 'Zoë', '1 85 05', 'grippe', 30);
UPDATE "société"."élèves" SET "prénom" = 'Chloé', "numéro_sécu" = '2 90', "diagnostic_médical" = 'aucune', "âge" = 31;
-- Only the excluded column: nothing to record.
UPDATE "société"."élèves" SET "numéro_sécu" = '3 00';
-- Renamed, the excluded column stays excluded.
ALTER TABLE "société"."élèves" RENAME COLUMN "numéro_sécu" TO "n°_sécu";
UPDATE "société"."élèves" SET "n°_sécu" = '4 00', "âge" = 32;
BEGIN;
SELECT audit_log.set_actor('Renée', '{"motif": "déménagement"}');
DELETE FROM "société"."élèves";
COMMIT;
SELECT action, actor, entity, entity_id, old_values, new_values, changed_fields, context
  FROM audit_log.events WHERE action <> 'DDL' ORDER BY id;
SELECT entity, new_values ->> 'command_tag' AS command_tag, new_values -> 'exclude_columns' AS exclude_columns
  FROM audit_log.events WHERE action = 'DDL';
SELECT entity, exclude_columns, redact_columns FROM audit_log.tracked_tables;
SELECT e.action, c.* FROM audit_log.events e, audit_log.changes(e.id) c
 WHERE e.action = 'UPDATE' ORDER BY e.id, c.field;

-- Reading and export, with the names as users type them.
SELECT action, entity FROM audit_log.list(entity => 'élèves') ORDER BY id;
SELECT action FROM audit_log.history('"société"."élèves"', '{"id": 1}');
SELECT entity, actor, changed_fields FROM audit_log.export(entity => 'société.élèves');
SELECT regexp_replace(line, '^[^,]*,[^,]*,[^,]*,', '') AS line_without_id_time_tx
  FROM audit_log.export_csv(entity => '"société"."élèves"', action => 'UPDATE') AS line;

\c :regress_db
DROP DATABASE audit_log_latin1;
