-- Capture's memory does not grow with the rows a statement changes, even when
-- another trigger runs a query between two captured rows (a foreign key's
-- check does, for every row): 20,000 rows in one transaction keep
-- TopTransactionContext under a megabyte (it grew by 4.4 kB a row, 88 MB
-- here, when the log was reopened after each of those queries).
CREATE SCHEMA mem;
CREATE TABLE mem.customers (id int PRIMARY KEY);
INSERT INTO mem.customers VALUES (1), (2);
CREATE TABLE mem.orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES mem.customers);
SELECT audit_log.track('mem.orders');
BEGIN;
INSERT INTO mem.orders SELECT g, 1 + g % 2 FROM generate_series(1, 20000) g;
UPDATE mem.orders SET customer_id = 3 - customer_id;
SELECT sum(total_bytes) < 1024 * 1024 AS top_transaction_context_under_1_mb
  FROM pg_backend_memory_contexts WHERE name = 'TopTransactionContext';
COMMIT;
SELECT action, count(*) FROM audit_log.events WHERE entity = 'mem.orders' GROUP BY action ORDER BY action;

-- The same with the rows written by a function, one statement per row: each
-- of those statements is nested in the caller's, and the log stays open
-- across them (and across a savepoint rolled back in the middle).
CREATE FUNCTION mem.add_orders(first int, last int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN first .. last LOOP
        INSERT INTO mem.orders VALUES (i, 1);
        IF i = first + 10 THEN
            BEGIN
                INSERT INTO mem.orders VALUES (-i, 99);  -- no such customer
            EXCEPTION WHEN foreign_key_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;
BEGIN;
SELECT mem.add_orders(30001, 40000);
SELECT sum(total_bytes) < 1024 * 1024 AS top_transaction_context_under_1_mb
  FROM pg_backend_memory_contexts WHERE name = 'TopTransactionContext';
COMMIT;
SELECT count(*) AS inserted_by_function FROM audit_log.events
 WHERE entity = 'mem.orders' AND action = 'INSERT' AND (entity_id ->> 'id')::int > 30000;

DROP SCHEMA mem CASCADE;
