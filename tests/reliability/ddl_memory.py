"""DDL at scale (tests/shell/ddl_memory.sh).

    ddl_memory.py TABLES STATEMENTS

Two databases hold the same TABLES tables: one tracks them all
(track_schema), the other has no extension. In each, one transaction runs
STATEMENTS DDL statements on (the first thousand of) those tables (columns
added, renamed, given a default, dropped); TopTransactionContext is read after the first tenth of
them and before COMMIT. Nothing noted for one statement may outlive it: the
tracked database's TopTransactionContext must grow no more than the one
without the extension (PostgreSQL's own invalidation messages grow in both),
and every statement must have its DDL event. Prints the figures as JSON.
"""

import json
import sys
import time

import psycopg

TABLES = int(sys.argv[1])
STATEMENTS = int(sys.argv[2])


def connect(db):
    return psycopg.connect(dbname=db, autocommit=True)


def prepare(db, extension):
    with connect("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    with connect(db) as conn:
        conn.execute("CREATE SCHEMA app")
        for start in range(0, TABLES, 500):
            with conn.transaction():
                for i in range(start, min(start + 500, TABLES)):
                    conn.execute(f"CREATE TABLE app.t{i} (id int PRIMARY KEY, name text)")
        if extension:
            conn.execute("CREATE EXTENSION audit_log")
            started = time.monotonic()
            tracked = conn.execute("SELECT audit_log.track_schema('app')").fetchone()[0]
            assert tracked == TABLES, tracked
            return time.monotonic() - started
    return None


# The statements go round the first thousand tables (every table they alter
# stays locked until COMMIT, and the lock table of a default server holds a
# few thousand locks in all).
ALTERED = min(TABLES, 1000)


def statement(n):
    """The n-th statement: rounds over the altered tables, each round one kind."""
    table = f"app.t{n % ALTERED}"
    round_ = n // ALTERED
    column = f"c{round_ // 4}"
    kind = round_ % 4
    return [
        f"ALTER TABLE {table} ADD COLUMN {column} int",
        f"ALTER TABLE {table} RENAME COLUMN {column} TO {column}_r",
        f"ALTER TABLE {table} ALTER COLUMN {column}_r SET DEFAULT 1",
        f"ALTER TABLE {table} DROP COLUMN {column}_r",
    ][kind]


def top_transaction_bytes(conn):
    return int(conn.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts "
                            "WHERE name = 'TopTransactionContext'").fetchone()[0])


def migrate(db, extension):
    with connect(db) as conn:
        if extension:
            conn.execute("SET audit_log.actor = 'migration'")
            first_event = conn.execute("SELECT coalesce(max(id), 0) FROM audit_log.events").fetchone()[0]
        started = time.monotonic()
        conn.execute("BEGIN")
        early = None
        for n in range(STATEMENTS):
            conn.execute(statement(n))
            if n + 1 == STATEMENTS // 10:
                early = top_transaction_bytes(conn)
        late = top_transaction_bytes(conn)
        conn.execute("COMMIT")
        seconds = time.monotonic() - started
        events = None
        if extension:
            events = conn.execute("SELECT count(*) FROM audit_log.events WHERE id > %s AND action = 'DDL'",
                                  (first_event,)).fetchone()[0]
    return {"seconds": round(seconds, 1), "early_kb": early // 1024, "late_kb": late // 1024,
            "growth_kb": (late - early) // 1024, "ddl_events": events}


track_seconds = prepare("ddl_memory_ext", True)
prepare("ddl_memory_none", False)
none = migrate("ddl_memory_none", False)
ext = migrate("ddl_memory_ext", True)
report = {"tables": TABLES, "statements": STATEMENTS, "track_schema_seconds": round(track_seconds, 1),
          "without_extension": none, "with_audit_log": ext}
print(json.dumps(report))
with connect("postgres") as admin:
    admin.execute("DROP DATABASE ddl_memory_ext")
    admin.execute("DROP DATABASE ddl_memory_none")

assert ext["ddl_events"] == STATEMENTS, f"{ext['ddl_events']} DDL events for {STATEMENTS} statements"
# PostgreSQL's own per-statement state (invalidation messages) grows in both;
# a quarter of a MB of slack for allocation-block rounding.
assert ext["growth_kb"] <= none["growth_kb"] + 256, \
    f"TopTransactionContext grew by {ext['growth_kb']} kB with audit_log, {none['growth_kb']} kB without"
