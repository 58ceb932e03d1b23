"""Sizing (issue 16, docs/operations.md): what one event costs on disk and in
WAL, for the 12-column `accounts` table of the integrity benchmark, with an
actor and a context set as an application behind a pooler sets them.

WAL is measured side by side: the same statements on an untracked twin table
and on the tracked one; the difference is the trail's. Disk is the log with
its indexes and TOAST, then the integrity tree once sealed.

    PGHOST=... PGPORT=... PGUSER=postgres PG_BINDIR=... python3 bench/sizing.py OUT_DIR
"""
import os
import platform
import subprocess
import sys

BIN = os.environ["PG_BINDIR"]
PSQL = os.path.join(BIN, "psql")
ROWS = int(os.environ.get("SIZING_ROWS", "100000"))
SINGLE = int(os.environ.get("SIZING_SINGLE", "20000"))
OUT = sys.argv[1]

COLUMNS = """(
    id bigint PRIMARY KEY, owner_id integer NOT NULL, branch_id integer NOT NULL,
    balance numeric(14, 2) NOT NULL, credit numeric(14, 2), name text NOT NULL, email text,
    notes text, opened_at timestamptz NOT NULL, updated_at timestamptz, profile jsonb,
    active boolean NOT NULL)"""
ROW = ("{i}, ({i} % 1000)::int, ({i} % 50)::int, ({i} % 100000) / 100.0, NULL, "
       "'account ' || {i}, 'user' || {i} || '@example.org', repeat('n', 40), "
       "'2026-01-01'::timestamptz + {i} * interval '1 second', NULL, "
       "jsonb_build_object('tier', {i} % 3, 'tags', jsonb_build_array('a', 'b')), true")
SESSION = ("SET audit_log.actor = 'trainer-42@example.org';"
           "SET audit_log.context = '{\"request_id\": \"0f8e4a52-3b7c-4d21-9a66-51c0de2f7b11\", "
           "\"ip\": \"203.0.113.7\", \"user_agent\": \"Mozilla/5.0 (X11; Linux x86_64)\"}';")


def psql(sql, db="sizing"):
    # Through standard input: statements run one by one, each in its own
    # transaction (-c would run them as one, where a DO block cannot COMMIT).
    result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"],
                            input=sql, check=True, capture_output=True, text=True)
    return result.stdout.strip()


def wal_of(sql):
    """WAL bytes written by sql, after a checkpoint (so that both twins start
    with the same full-page-image state)."""
    psql("CHECKPOINT")
    before = psql("SELECT pg_current_wal_insert_lsn()")
    psql(SESSION + sql)
    return int(psql(f"SELECT pg_current_wal_insert_lsn() - '{before}'::pg_lsn"))


def side_by_side(make_sql):
    plain = wal_of(make_sql("plain_accounts"))
    tracked = wal_of(make_sql("accounts"))
    return plain, tracked


def main():
    psql("DROP DATABASE IF EXISTS sizing", "postgres")
    psql("CREATE DATABASE sizing", "postgres")
    psql("CREATE EXTENSION audit_log")
    psql(f"CREATE TABLE accounts {COLUMNS}; CREATE TABLE plain_accounts {COLUMNS};"
         "SELECT audit_log.track('accounts')")
    events = lambda: int(psql("SELECT count(*) FROM audit_log.events"))
    rows = []

    workloads = [
        # One row per transaction, as a web application writes.
        (f"INSERT, one row per transaction ({SINGLE:,})",
         lambda t: f"DO $$ BEGIN FOR i IN 1..{SINGLE} LOOP "
                   f"INSERT INTO {t} VALUES ({ROW.format(i='i')}); COMMIT; END LOOP; END $$"),
        (f"INSERT ... SELECT of {ROWS:,} rows",
         lambda t: f"INSERT INTO {t} SELECT {ROW.format(i='i')} "
                   f"FROM generate_series({SINGLE + 1}, {SINGLE + ROWS}) AS i"),
        (f"UPDATE of {ROWS:,} rows (two columns)",
         lambda t: f"UPDATE {t} SET balance = balance + 1, updated_at = now() WHERE id > {SINGLE}"),
        (f"DELETE of {ROWS:,} rows", lambda t: f"DELETE FROM {t} WHERE id > {SINGLE}"),
    ]
    for label, statement in workloads:
        start = events()
        plain, tracked = side_by_side(statement)
        rows.append((label, events() - start, plain, tracked))

    psql("VACUUM ANALYZE audit_log.events")
    total = events()
    heap = int(psql("SELECT pg_table_size('audit_log.events')"))
    indexes = int(psql("SELECT pg_indexes_size('audit_log.events')"))
    for _ in range(200):
        psql("SELECT audit_log.seal()")
        if int(psql("SELECT unsealed_events FROM audit_log.seal_status()")) == 0:
            break
    tree = int(psql("SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['audit_log.tree_leaves', "
                    "'audit_log.tree_nodes', 'audit_log.tree_seals']::regclass[]) AS c"))
    version = psql("SHOW server_version")
    row_bytes = float(psql("SELECT avg(pg_column_size(a.*)) FROM plain_accounts a"))
    context_bytes = int(psql(SESSION + "SELECT octet_length(current_setting('audit_log.context'))"))

    lines = ["# Sizing (`make bench-sizing`, bench/sizing.py)", "",
             f"- machine: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs; PostgreSQL {version}; one run",
             f"- table: the 12-column `accounts` of bench/integrity.py ({row_bytes:,.0f} bytes per row on average); "
             f"actor and a {context_bytes}-byte context set; `full_page_writes = on`, a checkpoint before each statement",
             "- WAL: the same statements on an untracked twin table and on the tracked one; "
             "the difference is what the trail adds", "",
             "| workload | events | WAL, untracked | WAL, tracked | WAL added per event |",
             "|---|---|---|---|---|"]
    for label, n, plain, tracked in rows:
        lines.append(f"| {label} | {n:,} | {plain / 1e6:,.1f} MB | {tracked / 1e6:,.1f} MB "
                     f"| {(tracked - plain) / n:,.0f} B |")
    lines += ["", f"On disk, after these {total:,} events (VACUUM ANALYZE, then sealed):", "",
              "| part | bytes | per event |", "|---|---|---|",
              f"| audit_log.events, heap and TOAST | {heap / 1e6:,.1f} MB | {heap / total:,.0f} B |",
              f"| its six indexes | {indexes / 1e6:,.1f} MB | {indexes / total:,.0f} B |",
              f"| the integrity tree (leaves, stored nodes, seals) | {tree / 1e6:,.1f} MB | {tree / total:,.0f} B |",
              f"| total | {(heap + indexes + tree) / 1e6:,.1f} MB | {(heap + indexes + tree) / total:,.0f} B |",
              ""]
    with open(os.path.join(OUT, "sizing.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
