"""DDL benchmark for audit_log (see bench/ddl.sh).

For each size N, two databases hold the same N tables in schema `app`: one
with the extension and `track_schema('app')` (so the tables are tracked and
tables created there later are tracked as they are created), one without the
extension. The same statements run in both, one by one in autocommit, timed in
the client; the table reports the mean per statement and what the extension
adds. Then one transaction creates 1,000 tables in a followed schema and adds
a foreign key to each, with and without the extension, and reports its time
and the backend's TopTransactionContext before COMMIT.
"""

import os
import platform
import statistics
import subprocess
import sys
import time

import psycopg

SIZES = [int(n) for n in sys.argv[1].split()]
REPEATS = int(sys.argv[2])
OUT = sys.argv[3]
FK_TABLES = 1000
FK_ROUNDS = 3


def connect(db):
    return psycopg.connect(dbname=db, autocommit=True)


def admin(sql):
    with connect("postgres") as conn:
        conn.execute(sql)


def fresh_database(name, extension):
    admin(f"DROP DATABASE IF EXISTS {name}")
    admin(f"CREATE DATABASE {name}")
    with connect(name) as conn:
        if extension:
            conn.execute("CREATE EXTENSION audit_log")
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE SCHEMA plain")


def create_tables(db, count):
    with connect(db) as conn:
        for start in range(1, count + 1, 500):
            with conn.transaction():
                for i in range(start, min(start + 500, count + 1)):
                    conn.execute(f"CREATE TABLE app.t{i} (id int PRIMARY KEY, name text, amount numeric)")


def track(db):
    with connect(db) as conn:
        started = time.perf_counter()
        tracked = conn.execute("SELECT audit_log.track_schema('app')").fetchone()[0]
        return tracked, time.perf_counter() - started


STATEMENTS = [
    ("CREATE TABLE, untracked schema", "CREATE TABLE plain.u{i} (id int PRIMARY KEY, v text)"),
    ("CREATE TABLE, followed schema", "CREATE TABLE app.n{i} (id int PRIMARY KEY, v text)"),
    ("ALTER TABLE ADD COLUMN, untracked", "ALTER TABLE plain.u{i} ADD COLUMN extra int"),
    ("ALTER TABLE ADD COLUMN, tracked", "ALTER TABLE app.n{i} ADD COLUMN extra int"),
    ("ALTER TABLE RENAME, tracked", "ALTER TABLE app.n{i} RENAME TO r{i}"),
    ("DROP TABLE, untracked", "DROP TABLE plain.u{i}"),
    ("DROP TABLE, tracked", "DROP TABLE app.r{i}"),
]


def run_statements(databases):
    """Mean milliseconds per statement in each database, each statement kind
    REPEATS times, alternating between the databases statement by statement
    so that both see the same machine."""
    means = {extension: {} for extension in databases}
    conns = {extension: connect(db) for extension, db in databases.items()}
    conns[True].execute("SET audit_log.actor = 'bench'")
    # A session's first DDL compiles the extension's PL/pgSQL functions.
    for conn in conns.values():
        for schema in ("plain", "app"):
            conn.execute(f"CREATE TABLE {schema}.warm_up (id int PRIMARY KEY)")
            conn.execute(f"ALTER TABLE {schema}.warm_up ADD COLUMN extra int")
            conn.execute(f"DROP TABLE {schema}.warm_up")
    for label, template in STATEMENTS:
        times = {extension: [] for extension in databases}
        for i in range(REPEATS):
            for extension, conn in conns.items():
                sql = template.format(i=i)
                started = time.perf_counter()
                conn.execute(sql)
                times[extension].append(time.perf_counter() - started)
        for extension in databases:
            means[extension][label] = statistics.mean(times[extension]) * 1000
    for conn in conns.values():
        conn.close()
    return means


def top_transaction_bytes(conn):
    return conn.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts "
                        "WHERE name = 'TopTransactionContext'").fetchone()[0]


def fk_transaction(extension):
    db = "fk_ext" if extension else "fk_none"
    fresh_database(db, extension)
    with connect(db) as conn:
        conn.execute("CREATE TABLE app.parent (id int PRIMARY KEY)")
        if extension:
            conn.execute("SELECT audit_log.track_schema('app')")
            conn.execute("SET audit_log.actor = 'migration'")
        started = time.perf_counter()
        conn.execute("BEGIN")
        for i in range(FK_TABLES):
            conn.execute(f"CREATE TABLE app.c{i} (id int PRIMARY KEY, parent_id int, note text)")
            conn.execute(f"ALTER TABLE app.c{i} ADD CONSTRAINT c{i}_parent "
                         f"FOREIGN KEY (parent_id) REFERENCES app.parent (id)")
        memory = top_transaction_bytes(conn)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        tracked = conn.execute("SELECT count(*) FROM audit_log.tracked").fetchone()[0] if extension else 0
    admin(f"DROP DATABASE {db}")
    return seconds, memory, tracked


def fk_rounds():
    """FK_ROUNDS runs each way, alternating; the median of each."""
    runs = {False: [], True: []}
    for _ in range(FK_ROUNDS):
        for extension in (False, True):
            runs[extension].append(fk_transaction(extension))
            print("fk", extension, runs[extension][-1], flush=True)
    return {extension: sorted(r)[len(r) // 2] for extension, r in runs.items()}, runs


def main():
    rows = []
    setup_notes = []
    for size in SIZES:
        databases = {}
        for extension in (False, True):
            db = ("ext" if extension else "none") + f"_{size}"
            databases[extension] = db
            fresh_database(db, extension)
            started = time.perf_counter()
            create_tables(db, size)
            created = time.perf_counter() - started
            if extension:
                tracked, seconds = track(db)
                per_table = f" ({seconds / size * 1000:.2f} ms per table)" if size else ""
                setup_notes.append(f"{size:,} tables: created in {created:.1f} s, "
                                   f"`track_schema('app')` tracked {tracked:,} in {seconds:.2f} s"
                                   f"{per_table}")
            with connect(db) as conn:
                conn.execute("VACUUM ANALYZE")
        results = run_statements(databases)
        print(size, results, flush=True)
        for db in databases.values():
            admin(f"DROP DATABASE {db}")
        for label, _ in STATEMENTS:
            rows.append((size, label, results[False][label], results[True][label]))

    medians, fk_runs = fk_rounds()
    fk_none, fk_ext = medians[False], medians[True]

    version = subprocess.run([os.path.join(os.environ["PG_BINDIR"], "postgres"), "--version"],
                             capture_output=True, text=True).stdout.strip()
    with open(OUT, "w") as out:
        out.write("# DDL benchmark\n\n")
        out.write(f"`make bench-ddl` on {platform.machine()}, {os.cpu_count()} cores, {version}; "
                  f"throwaway cluster (fsync off, synchronous_commit off, shared_buffers 1GB, "
                  f"max_locks_per_transaction 256); release build. Each statement kind runs "
                  f"{REPEATS} times, one by one in autocommit, timed in the client (psycopg), "
                  f"in a database with N tables in schema `app` tracked with "
                  f"`track_schema('app')`, and in a database with the same N tables and no "
                  f"extension, alternating between the two statement by statement; the data "
                  f"directory is on tmpfs. Targets at 10,000 tracked tables: at most 1 ms added to a "
                  f"statement that touches no tracked table, at most 5 ms to one that does.\n\n")
        out.write("| tracked tables | statement | without extension (ms) | with audit_log (ms) | added (ms) |\n")
        out.write("|---:|---|---:|---:|---:|\n")
        for size, label, none, ext in rows:
            out.write(f"| {size:,} | {label} | {none:.2f} | {ext:.2f} | {ext - none:+.2f} |\n")
        out.write("\n`CREATE TABLE, followed schema` with the extension also tracks the new table "
                  "(TRACK event, two capture triggers); the tracked ALTER, RENAME and DROP each "
                  "write a DDL event.\n\n")
        out.write("## Setting up\n\n")
        for note in setup_notes:
            out.write(f"- {note}\n")
        out.write(f"\n## One transaction: {FK_TABLES:,} tables with a foreign key each\n\n")
        out.write(f"`CREATE TABLE app.cN (...)` then `ALTER TABLE app.cN ADD CONSTRAINT ... FOREIGN KEY "
                  f"... REFERENCES app.parent`, {FK_TABLES:,} times in one transaction, in a schema "
                  f"followed by `track_schema('app')` (every new table tracked as it is created). "
                  f"Target: at most twice the time without the extension, in flat memory. "
                  f"{FK_ROUNDS} runs each way, alternating; the median of each "
                  f"(all runs: without {', '.join(f'{r[0]:.2f}' for r in fk_runs[False])} s, "
                  f"with {', '.join(f'{r[0]:.2f}' for r in fk_runs[True])} s).\n\n")
        out.write("| | seconds | TopTransactionContext before COMMIT (MB) | tables tracked |\n|---|---:|---:|---:|\n")
        out.write(f"| without extension | {fk_none[0]:.2f} | {float(fk_none[1]) / 1e6:.2f} | - |\n")
        out.write(f"| with audit_log | {fk_ext[0]:.2f} | {float(fk_ext[1]) / 1e6:.2f} | {fk_ext[2]:,} |\n")
        out.write(f"| ratio | {fk_ext[0] / fk_none[0]:.2f} | | |\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
