"""Capture benchmark for audit_log (see bench/capture.sh).

Runs seven workloads three ways in one server and one run: no auditing,
audit_log, and a hand-written PL/pgSQL trigger (bench/plpgsql_trigger.sql).
For the bulk workloads it also measures the floor: the unaudited time plus a
plain INSERT ... SELECT of the same events into a copy of the log with the same
indexes. Writes a markdown table and a PNG chart to bench/results/.
"""

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from logins import section as logins_section

BIN = os.environ["PG_BINDIR"]
PSQL = os.path.join(BIN, "psql")
PGBENCH = os.path.join(BIN, "pgbench")
ROWS = int(sys.argv[1])
SECONDS = int(sys.argv[2])
OUT_DIR = sys.argv[3]
MODES = ["none", "audit_log", "plpgsql"]
BULK = ["W3", "W4", "W5", "W6", "W7"]


def psql(sql, db="bench"):
    result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def timed(sql, db="bench"):
    """Runs sql in a fresh session; returns the seconds it took, measured in the client."""
    started = time.monotonic()
    psql(sql, db)
    return time.monotonic() - started


TABLE = """
CREATE TABLE public.accounts (
    id         bigint PRIMARY KEY,
    owner_id   integer NOT NULL,
    branch_id  integer NOT NULL,
    balance    numeric(14, 2) NOT NULL,
    credit     numeric(14, 2),
    name       text NOT NULL,
    email      text,
    notes      text,
    opened_at  timestamptz NOT NULL,
    updated_at timestamptz,
    profile    jsonb,
    active     boolean NOT NULL
);
"""
# W7's table: each row references an account, checked by a foreign key
# trigger that runs a query between two captured rows.
TRANSFERS = """
CREATE TABLE public.transfers (
    id         bigint PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES public.accounts,
    amount     numeric(14, 2) NOT NULL
);
CREATE INDEX ON public.transfers (account_id);
"""
ROW = ("{i}, {i} % 10000, {i} % 100, ({i} % 100000) / 7.0, ({i} % 5000) * 1.5, 'account ' || {i}, "
       "'user' || {i} || '@example.org', repeat('n', (20 + {i} % 40)::int), "
       "timestamptz '2020-01-01' + {i} * interval '1 minute', NULL, "
       "jsonb_build_object('tier', {i} % 4, 'tags', jsonb_build_array('a', {i} % 9)), {i} % 2 = 0")


def prepare(mode):
    """A fresh database with 1M accounts, tracked the way `mode` says."""
    psql("DROP DATABASE IF EXISTS bench", "postgres")
    psql("CREATE DATABASE bench", "postgres")
    psql("CREATE EXTENSION audit_log")
    psql(TABLE)
    psql(f"INSERT INTO public.accounts SELECT {ROW.format(i='g')} FROM generate_series(1, {ROWS}) g")
    with open(os.path.join(os.path.dirname(__file__), "plpgsql_trigger.sql")) as f:
        psql(f.read())
    psql(TRANSFERS)
    for table in ["public.accounts", "public.transfers"]:
        if mode == "audit_log":
            psql(f"SELECT audit_log.track('{table}')")
        elif mode == "plpgsql":
            psql(f"CREATE TRIGGER handmade_capture AFTER INSERT OR UPDATE OR DELETE ON {table} "
                 "FOR EACH ROW EXECUTE FUNCTION handmade.capture()")
    psql("VACUUM (ANALYZE) public.accounts")
    psql("CHECKPOINT")


def log_table(mode):
    return "handmade.events" if mode == "plpgsql" else "audit_log.events"


def log_size(log):
    """The log's size with its indexes: a partitioned log's is its partitions'."""
    return (f"coalesce((SELECT sum(pg_total_relation_size(t.relid)) "
            f"FROM pg_partition_tree('{log}') AS t WHERE t.isleaf), pg_total_relation_size('{log}'))")


def measure(mode, name, sql):
    """Time, WAL bytes and log growth of one workload."""
    log = log_table(mode)
    before = psql(f"SELECT pg_current_wal_insert_lsn(), (SELECT coalesce(max(id), 0) FROM {log}), "
                  f"{log_size(log)}").split("|")
    seconds = timed(sql)
    after = psql(f"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '{before[0]}'), "
                 f"(SELECT count(*) FROM {log} WHERE id > {before[1]}), "
                 f"{log_size(log)} - {before[2]}").split("|")
    wal, events, log_bytes = int(float(after[0])), int(after[1]), int(after[2])
    return {"seconds": seconds, "wal": wal, "events": events, "log_bytes": log_bytes, "first_id": int(before[1])}


def floor_of(result, mode):
    """Time of a plain INSERT ... SELECT of the events the workload produced into a
    copy of the log with the same indexes. The copy holds what the log held
    before the workload, so that its indexes are as deep and as full as the
    ones capture wrote into (an empty copy would only ever append to the
    rightmost index pages)."""
    log = log_table(mode)
    # A partitioned log keeps its indexes on its partitions: the copy takes
    # those of the partition capture writes into now.
    shape = log if mode == "plpgsql" else psql(
        "SELECT partition FROM audit_log.partition_bounds() "
        "WHERE from_time <= now() AND to_time > now()")
    psql("DROP TABLE IF EXISTS public.log_copy")
    psql(f"CREATE TABLE public.log_copy (LIKE {shape} INCLUDING INDEXES)")
    psql(f"INSERT INTO public.log_copy SELECT * FROM {log} WHERE id <= {result['first_id']} ORDER BY id")
    psql("VACUUM (ANALYZE) public.log_copy")
    psql("CHECKPOINT")
    return timed(f"INSERT INTO public.log_copy SELECT * FROM {log} WHERE id > {result['first_id']}")


def bulk(mode):
    results = {}
    workloads = [
        ("W3", "UPDATE public.accounts SET balance = balance + 1, updated_at = statement_timestamp()"),
        ("W4", f"INSERT INTO public.accounts SELECT {ROW.format(i='g')} FROM generate_series({ROWS} + 1, {2 * ROWS}) g"),
        ("W5", f"DELETE FROM public.accounts WHERE id > {ROWS}"),
        ("W6", f"COPY public.accounts FROM '{COPY_FILE}'"),
        ("W7", f"INSERT INTO public.transfers SELECT g, g % {ROWS} + 1, g % 1000 "
               f"FROM generate_series(1, {ROWS // 5}) g"),
    ]
    for name, sql in workloads:
        psql("VACUUM public.accounts")
        psql("CHECKPOINT")
        results[name] = measure(mode, name, sql)
        if mode == "audit_log":
            results[name]["floor_insert"] = floor_of(results[name], mode)
        print(mode, name, json.dumps(results[name]), flush=True)
    # Put the table back to ROWS rows for pgbench.
    psql(f"DELETE FROM public.accounts WHERE id > {ROWS}")
    psql("VACUUM (ANALYZE) public.accounts")
    return results


def pgbench(mode, name, script):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    psql("CHECKPOINT")
    run = subprocess.run([PGBENCH, "-n", "-c", "2", "-j", "2", "-T", str(SECONDS), "-f", f.name, "bench"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"pgbench {name} failed:\n{run.stdout}\n{run.stderr}")
    out = run.stdout
    os.unlink(f.name)
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    print(mode, name, tps, flush=True)
    return tps


def oltp(mode):
    psql(f"CREATE SEQUENCE IF NOT EXISTS public.new_ids START {10 * ROWS}")
    results = {
        "W1": pgbench(mode, "W1", f"\\set id random(1, {ROWS})\n"
                                  "UPDATE public.accounts SET balance = balance + 1 WHERE id = :id;\n"),
        "W2": pgbench(mode, "W2", f"INSERT INTO public.accounts SELECT {ROW.format(i='n.i')} "
                                  "FROM (SELECT nextval('public.new_ids') AS i) n;\n"),
    }
    if mode == "audit_log":
        # An application's event (a sign-in with its context), one call per
        # transaction, next to W2's single-row INSERT into a tracked table.
        results["W8"] = pgbench(mode, "W8", "SELECT audit_log.log_event('SIGN_IN', NULL, NULL, "
                                            "'{\"ip\": \"203.0.113.7\", \"browser\": \"Firefox 133\"}');\n")
    return results


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, {platform.system()} {platform.release()}"


def main():
    global COPY_FILE
    # Every session acts for a named user, set at connection as a pooler-less app would.
    os.environ["PGOPTIONS"] = "-c audit_log.actor=bench-user"
    started = time.monotonic()
    COPY_FILE = os.path.join(os.environ["BENCH_WORK"], "accounts.copy")
    psql("DROP DATABASE IF EXISTS bench", "postgres")
    psql("CREATE DATABASE bench", "postgres")
    psql(TABLE)
    psql(f"COPY (SELECT {ROW.format(i='g')} FROM generate_series({2 * ROWS} + 1, {3 * ROWS}) g) TO '{COPY_FILE}'")

    results = {}
    for mode in MODES:
        prepare(mode)
        results[mode] = bulk(mode)
        results[mode].update({k: {"tps": v} for k, v in oltp(mode).items()})
    version = psql("SELECT version()", "postgres")
    settings = psql("SELECT string_agg(name || ' = ' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings "
                    "WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size', "
                    "'checkpoint_timeout', 'work_mem', 'jit', 'full_page_writes')", "postgres")
    write_report(results, version, settings, time.monotonic() - started)


def write_report(results, version, settings, elapsed):
    none, ours, plpg = results["none"], results["audit_log"], results["plpgsql"]
    lines = ["# Capture benchmark", "",
             f"Generated by `bash bench/capture.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
             f"in {elapsed / 60:.0f} minutes.", "",
             f"- Machine: {machine()}; {version}",
             f"- Server: {settings}",
             f"- Table: 12 columns (bigint, int, numeric, text, timestamptz, jsonb, boolean), {ROWS:,} rows, primary key",
             f"- W1, W2: pgbench, 2 clients, {SECONDS} s; W3-W6: one statement over {ROWS:,} rows; "
             f"W7: one INSERT of {ROWS // 5:,} rows into a table with a foreign key to the first", "",
             "## OLTP (throughput, transactions per second)", "",
             "| workload | no auditing | audit_log | PL/pgSQL | audit_log / none | audit_log / PL/pgSQL |",
             "|---|---:|---:|---:|---:|---:|"]
    names = {"W1": "W1 single-row UPDATE by key", "W2": "W2 single-row INSERT",
             "W3": "W3 UPDATE of all rows", "W4": "W4 INSERT ... SELECT", "W5": "W5 DELETE", "W6": "W6 COPY FROM",
             "W7": "W7 INSERT with a foreign key"}
    for w in ["W1", "W2"]:
        a, b, c = none[w]["tps"], ours[w]["tps"], plpg[w]["tps"]
        lines.append(f"| {names[w]} | {a:,.0f} | {b:,.0f} | {c:,.0f} | {b / a:.2f} | {b / c:.2f} |")
    lines += ["", "## Application events (transactions per second)", "",
              "| workload | audit_log | W2 single-row INSERT into a tracked table | ratio |", "|---|---:|---:|---:|",
              f"| W8 `log_event()` (one call per transaction) | {ours['W8']['tps']:,.0f} | {ours['W2']['tps']:,.0f} | "
              f"{ours['W8']['tps'] / ours['W2']['tps']:.2f} |"]
    logins = os.path.join(OUT_DIR, "logins.json")
    if os.path.exists(logins):
        lines += logins_section(logins)
    lines += ["", "## Bulk statements (seconds)", "",
              "| workload | no auditing | audit_log | PL/pgSQL | floor | audit_log / none | audit_log / floor | "
              "PL/pgSQL / audit_log | WAL bytes per event: audit_log / PL/pgSQL | log bytes per event: audit_log / PL/pgSQL |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in BULK:
        n, o, p = none[w], ours[w], plpg[w]
        floor = n["seconds"] + o["floor_insert"]
        per = lambda r, k: r[k] / r["events"] if r["events"] else float("nan")
        lines.append(
            f"| {names[w]} | {n['seconds']:.2f} | {o['seconds']:.2f} | {p['seconds']:.2f} | {floor:.2f} | "
            f"{o['seconds'] / n['seconds']:.2f} | {o['seconds'] / floor:.2f} | {p['seconds'] / o['seconds']:.2f} | "
            f"{per(o, 'wal'):.0f} / {per(p, 'wal'):.0f} | {per(o, 'log_bytes'):.0f} / {per(p, 'log_bytes'):.0f} |")
    total = lambda r, k: sum(r[w][k] for w in BULK) / sum(r[w]["events"] for w in BULK)
    lines.append(f"| W3-W7 together | | | | | | | | {total(ours, 'wal'):.0f} / {total(plpg, 'wal'):.0f} | "
                 f"{total(ours, 'log_bytes'):.0f} / {total(plpg, 'log_bytes'):.0f} |")
    lines += ["", "floor = unaudited time + `INSERT INTO copy SELECT * FROM <log> WHERE <the workload's events>` "
              "into a copy of the log with the same indexes, holding the events the log held before the workload: "
              "the least any trigger storing these events can take.",
              "WAL bytes per event count the whole statement's WAL (the row change and the event) divided by the events.",
              "Log bytes per event are the growth of the log with its indexes; the hash index grows by whole "
              "split phases, so one workload may pay for growth the next one uses: compare the W3-W7 line.",
              "", "![chart](capture.png)", "", "Raw figures:", "", "```json", json.dumps(results, indent=1), "```", ""]
    with open(os.path.join(OUT_DIR, "capture.md"), "w") as f:
        f.write("\n".join(lines))
    chart(results, names)
    print("\n".join(lines[:40]))


def chart(results, names):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {"none": "#9e9e9e", "audit_log": "#1f77b4", "plpgsql": "#d62728"}
    width = 0.27
    for i, mode in enumerate(MODES):
        left.bar([x + (i - 1) * width for x in range(2)], [results[mode][w]["tps"] for w in ["W1", "W2"]],
                 width, label=mode, color=colors[mode])
        right.bar([x + (i - 1) * width for x in range(len(BULK))], [results[mode][w]["seconds"] for w in BULK],
                  width, label=mode, color=colors[mode])
    floors = [results["none"][w]["seconds"] + results["audit_log"][w]["floor_insert"] for w in BULK]
    right.scatter(range(len(BULK)), floors, marker="_", s=900, color="black", label="floor", zorder=3)
    left.set_xticks(range(2), [names[w] for w in ["W1", "W2"]], fontsize=8)
    right.set_xticks(range(len(BULK)), [names[w] for w in BULK], fontsize=7)
    left.set_ylabel("transactions per second (higher is better)")
    right.set_ylabel("seconds (lower is better)")
    left.legend()
    right.legend()
    fig.suptitle("audit_log capture cost against no auditing and a PL/pgSQL trigger")
    fig.tight_layout()
    fig.savefig(os.path.join(OUT_DIR, "capture.png"), dpi=110)


COPY_FILE = ""
if __name__ == "__main__":
    main()
