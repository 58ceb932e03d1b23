-- ALTER EXTENSION ... UPDATE: renames an excluded column of a tracked table.
ALTER TABLE reach.inventory RENAME COLUMN cost TO unit_cost;
