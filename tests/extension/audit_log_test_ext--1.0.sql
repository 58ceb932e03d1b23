-- Installed by CREATE EXTENSION: DDL on a table the extension does not own,
-- and a table of its own in a schema that audit_log follows.
ALTER TABLE reach.inventory ADD COLUMN ext_flag boolean;
CREATE TABLE reach.ext_settings (id int PRIMARY KEY, value text);
