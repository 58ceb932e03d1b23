"""Integrity benchmark (see bench/integrity.sh): what sealing costs.

1. seal() throughput: batches of 1k, 100k and 1M events, each sealed alone.
2. verify() of VERIFY_EVENTS events (10 million by default) next to a plain
   COPY (SELECT * FROM audit_log.export()) TO '/dev/null' of the same
   events, in the same server, one after the other (target: verify at no
   less than half the export's rate).
3. Capture with the background worker sealing every 10 s next to capture
   with no sealing, workloads W1-W6 of bench/capture.py, alternated in one
   run (target: no more than 5% slower).

Writes bench/results/integrity.md.
"""

import os
import platform
import subprocess
import sys
import time

BIN = os.environ["PG_BINDIR"]
PSQL = os.path.join(BIN, "psql")
PGBENCH = os.path.join(BIN, "pgbench")
VERIFY_EVENTS = int(os.environ.get("VERIFY_EVENTS", "10000000"))
CAPTURE_ROWS = int(os.environ.get("CAPTURE_ROWS", "500000"))
SECONDS = int(os.environ.get("PGBENCH_SECONDS", "30"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
OUT = sys.argv[1]
WORK = os.environ["BENCH_WORK"]


def psql(sql, db="bench"):
    result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def timed(sql, db="bench"):
    started = time.monotonic()
    psql(sql, db)
    return time.monotonic() - started


ROW = ("{i}, ({i} % 1000)::int, ({i} % 50)::int, ({i} % 100000) / 100.0, NULL, "
       "'account ' || {i}, 'user' || {i} || '@example.org', repeat('n', 40), "
       "'2026-01-01'::timestamptz + {i} * interval '1 second', NULL, "
       "jsonb_build_object('tier', {i} % 3, 'tags', jsonb_build_array('a', 'b')), true")
TABLE = """
CREATE TABLE public.accounts (
    id bigint PRIMARY KEY, owner_id integer NOT NULL, branch_id integer NOT NULL,
    balance numeric(14, 2) NOT NULL, credit numeric(14, 2), name text NOT NULL, email text,
    notes text, opened_at timestamptz NOT NULL, updated_at timestamptz, profile jsonb,
    active boolean NOT NULL);
"""


def fresh_database(name="bench"):
    psql(f"DROP DATABASE IF EXISTS {name}", "postgres")
    psql(f"CREATE DATABASE {name}", "postgres")
    psql("CREATE EXTENSION audit_log", name)
    psql(TABLE + "SELECT audit_log.track('public.accounts');", name)


def seal_throughput():
    fresh_database()
    results = []
    next_id = 1
    psql("SELECT audit_log.seal()")
    for n in [1_000, 100_000, 1_000_000]:
        psql(f"INSERT INTO public.accounts SELECT {ROW.format(i='g')} "
             f"FROM generate_series({next_id}, {next_id + n - 1}) g")
        next_id += n
        psql("CHECKPOINT", "postgres")
        seconds = timed("SELECT audit_log.seal()")
        added = int(psql("SELECT events_added FROM audit_log.seals ORDER BY tree_size DESC LIMIT 1"))
        results.append((n, added, seconds))
        print(f"seal of {added} events: {seconds:.3f} s", flush=True)
    return results


def verify_against_export():
    fresh_database()
    step = 1_000_000
    for start in range(1, VERIFY_EVENTS + 1, step):
        end = min(start + step - 1, VERIFY_EVENTS)
        psql(f"INSERT INTO public.accounts SELECT {ROW.format(i='g')} FROM generate_series({start}, {end}) g")
    # Sealed in steps, as a server sealing every few seconds would.
    for _ in range(3):
        psql("SELECT audit_log.seal()")
    events = int(psql("SELECT count(*) FROM audit_log.events"))
    psql("VACUUM ANALYZE audit_log.events")
    psql("VACUUM ANALYZE audit_log.tree_leaves")
    rounds = []
    for _ in range(ROUNDS):
        export = timed("COPY (SELECT * FROM audit_log.export()) TO '/dev/null'")
        verify = timed("SELECT count(*) FROM audit_log.verify(audit_log.checkpoint())")
        rounds.append((export, verify))
        print(f"{events} events: export {export:.1f} s, verify {verify:.1f} s", flush=True)
    size = psql("SELECT pg_size_pretty(pg_total_relation_size('audit_log.tree_leaves')) || ' / ' || "
                "pg_size_pretty(pg_total_relation_size('audit_log.events'))")
    return events, rounds, size


def sealing_worker(interval):
    """The background worker (shared_preload_libraries), as a server runs it."""
    psql("ALTER SYSTEM SET audit_log.seal_databases = 'bench'", "postgres")
    psql(f"ALTER SYSTEM SET audit_log.seal_interval = '{interval}'", "postgres")
    psql("SELECT pg_reload_conf()", "postgres")
    time.sleep(1)


def capture_with_and_without_sealing():
    copy_file = os.path.join(WORK, "accounts.copy")
    results = {"none": {}, "sealing": {}}
    for round_ in range(ROUNDS):
        for mode in (["none", "sealing"] if round_ % 2 == 0 else ["sealing", "none"]):
            fresh_database()
            psql(f"INSERT INTO public.accounts SELECT {ROW.format(i='g')} "
                 f"FROM generate_series(1, {CAPTURE_ROWS}) g")
            psql(f"COPY (SELECT {ROW.format(i='g')} FROM generate_series({2 * CAPTURE_ROWS} + 1, "
                 f"{3 * CAPTURE_ROWS}) g) TO '{copy_file}'")
            psql("SELECT audit_log.seal()")
            psql("VACUUM ANALYZE", "bench")
            psql("CHECKPOINT", "postgres")
            sealing_worker("10s" if mode == "sealing" else "0")
            seals_before = int(psql("SELECT count(*) FROM audit_log.seals"))
            times = {}
            for name, script in [
                ("W1", f"\\set id random(1, {CAPTURE_ROWS})\n"
                       "UPDATE public.accounts SET balance = balance + 1 WHERE id = :id;\n"),
                ("W2", f"INSERT INTO public.accounts SELECT {ROW.format(i='n.i')} FROM "
                       "(SELECT nextval('ids') AS i) n;\n"),
            ]:
                if name == "W2":
                    psql(f"CREATE SEQUENCE IF NOT EXISTS ids START {10 * CAPTURE_ROWS}")
                path = os.path.join(WORK, f"{name}.sql")
                open(path, "w").write(script)
                out = subprocess.run([PGBENCH, "-n", "-c", "2", "-j", "2", "-T", str(SECONDS), "-f", path,
                                      "bench"], check=True, capture_output=True, text=True).stdout
                tps = float([l for l in out.splitlines() if l.startswith("tps")][0].split()[2])
                times[name] = tps
            for name, sql in [
                ("W3", "UPDATE public.accounts SET balance = balance + 1, updated_at = statement_timestamp()"),
                ("W4", f"INSERT INTO public.accounts SELECT {ROW.format(i='g')} "
                       f"FROM generate_series({CAPTURE_ROWS} + 1, {2 * CAPTURE_ROWS}) g"),
                ("W5", f"DELETE FROM public.accounts WHERE id > {CAPTURE_ROWS} AND id <= {2 * CAPTURE_ROWS}"),
                ("W6", f"COPY public.accounts FROM '{copy_file}'"),
            ]:
                times[name] = timed(sql)
            if mode == "sealing":
                times["seals"] = int(psql("SELECT count(*) FROM audit_log.seals")) - seals_before
            sealing_worker("0")
            for k, v in times.items():
                results[mode].setdefault(k, []).append(v)
            print(mode, times, flush=True)
    return results


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    memory = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) // 1024 // 1024
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {memory} GiB"


def main():
    started = time.monotonic()
    version = psql("SHOW server_version", "postgres")
    seals = seal_throughput()
    events, rounds, size = verify_against_export()
    capture = capture_with_and_without_sealing()
    best = lambda xs: min(xs)  # noqa: E731
    lines = ["# Integrity benchmark (`make bench-integrity`)", "",
             f"- machine: {machine()}; PostgreSQL {version}, release build, one server, one run",
             f"- run took {(time.monotonic() - started) / 60:.0f} min", "",
             "## seal() throughput", "", "| events in the batch | seal() | events per second |", "|---|---|---|"]
    for n, added, seconds in seals:
        lines.append(f"| {added:,} | {seconds:.3f} s | {added / seconds:,.0f} |")
    export = best([r[0] for r in rounds])
    verify = best([r[1] for r in rounds])
    lines += ["", f"## verify() of {events:,} events", "",
              "| | best of " + str(len(rounds)) + " | events per second |", "|---|---|---|",
              f"| `COPY (SELECT * FROM audit_log.export()) TO '/dev/null'` | {export:.1f} s | {events / export:,.0f} |",
              f"| `audit_log.verify(checkpoint)` | {verify:.1f} s | {events / verify:,.0f} |", "",
              f"verify() runs at {export / verify:.0%} of the export's rate (target: at least 50%). "
              f"Tree storage / events storage: {size}.", "",
              "## Capture with the background worker sealing every 10 s", "",
              f"{CAPTURE_ROWS:,} rows; W1, W2: pgbench, 2 clients, {SECONDS} s (tps, higher is better); "
              "W3-W6: one statement (seconds, lower is better). Best of "
              f"{ROUNDS} alternated rounds each.", "",
              "| workload | no sealing | sealing every 10 s | cost |", "|---|---|---|---|"]
    for w in ["W1", "W2"]:
        a, b = max(capture["none"][w]), max(capture["sealing"][w])
        lines.append(f"| {w} | {a:,.0f} tps | {b:,.0f} tps | {(a - b) / a:+.1%} |")
    for w in ["W3", "W4", "W5", "W6"]:
        a, b = min(capture["none"][w]), min(capture["sealing"][w])
        lines.append(f"| {w} | {a:.2f} s | {b:.2f} s | {(b - a) / a:+.1%} |")
    lines += ["", f"Seals that appended leaves during the sealing rounds: {capture['sealing'].get('seals')} "
              "(the worker runs at nice 10).", "",
              "The index sealing needs (`events_tx_id`, on `(tx_id, id)`) is paid by every captured row; "
              "its cost is measured side by side with the version before it by "
              "`bash bench/capture_ab.sh 9fdf084` (bench/results/capture_ab.md).", ""]
    open(os.path.join(OUT, "integrity.md"), "w").write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
