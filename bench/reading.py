"""Reading and export benchmark for audit_log (see bench/reading.sh).

Loads a synthetic trail straight into audit_log.events (the capture path is
benchmarked elsewhere), then measures, in one run:
- list()/history()/changes(): median of 20 runs, timed inside the server, with
  the plan of the query each one runs;
- export(): COPY ... TO STDOUT (FORMAT csv) throughput against a plain COPY of
  the same rows, and export_csv() called in the SELECT list (as documented) and
  in FROM, with the backend's peak private memory, for 1 and 5 million events.

READING_PARTS=export runs only the export part (READING_PARTS=latency only the
latencies) and prints its table instead of writing the report; EXPORT_SIZES
(comma-separated, default 1000000,5000000) chooses the selections exported.
"""

import os
import platform
import statistics
import subprocess
import sys
import time

import trail
from backend import run_statement
from trail import ACTORS, KEYS, TABLES

PSQL = os.path.join(os.environ["PG_BINDIR"], "psql")
EVENTS = int(sys.argv[1])
OUT = sys.argv[2]
START = "2025-11-21 00:00:00+00"
DAYS = 365
PARTS = set(os.environ.get("READING_PARTS", "latency,export").split(","))
EXPORT_SIZES = sorted({min(int(n), EVENTS) for n in os.environ.get("EXPORT_SIZES", "1000000,5000000").split(",")})


def psql(sql, *extra):
    result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def load():
    psql("CREATE EXTENSION IF NOT EXISTS audit_log")
    # Two sessions load halves in parallel (the machine has two cores).
    half = EVENTS // 2
    spans = [(1, half), (half + 1, EVENTS)]
    started = time.monotonic()
    procs = [subprocess.Popen([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                               trail.fill_over_days(lo, hi, START, DAYS, EVENTS)])
             for lo, hi in spans]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("load failed")
    psql(f"SELECT setval('audit_log.events_id_seq', {EVENTS})")
    psql("VACUUM (ANALYZE) audit_log.events")
    return time.monotonic() - started


def latencies():
    mid = f"timestamptz '{START}' + interval '{DAYS // 2} days'"
    queries = trail.reading_queries(psql, mid, EVENTS, "half a year ago")
    rows = []
    for name, query in queries:
        quoted = query.replace("'", "''")
        median = psql(trail.TIMER + f"SELECT pg_temp.median_ms('{quoted}', 20)").splitlines()[-1].split("|")[0]
        count = psql(f"SELECT count(*) FROM ({query}) q")
        # auto_explain shows the plan of the statement list()/history() run inside.
        plan = subprocess.run(
            [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-c", "LOAD 'auto_explain'",
             "-c", "SET auto_explain.log_min_duration = 0",
             "-c", "SET auto_explain.log_analyze = on",
             "-c", "SET auto_explain.log_buffers = on",
             "-c", "SET auto_explain.log_nested_statements = on",
             "-c", "SET auto_explain.log_level = notice",
             "-c", "SET client_min_messages = notice",
             "-c", f"SELECT count(*) FROM ({query}) q"],
            check=True, capture_output=True, text=True).stderr
        rows.append((name, query, float(median.splitlines()[-1]), int(count), plan))
        print(f"{name}: {median.splitlines()[-1]} ms ({count} rows)", flush=True)
    return rows


def temp_bytes():
    return int(psql("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"))


def run_copy(sql):
    """Runs a COPY ... TO STDOUT (or a SELECT), returning (seconds, bytes, peak
    private KiB of the backend, bytes it wrote to temporary files)."""
    temp_before = temp_bytes()
    elapsed, size, peak, pid = run_statement([PSQL], sql)
    # The backend reports its temporary files as it exits.
    for _ in range(50):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.02)
    return elapsed, size, peak, temp_bytes() - temp_before


def period_for(count):
    """since/until holding `count` events (they are spread evenly over the year)."""
    seconds = count * DAYS * 86400.0 / EVENTS
    since = f"{START}"
    until = psql(f"SELECT (timestamptz '{START}' + {seconds + 0.5 * DAYS * 86400.0 / EVENTS} * interval '1 second')::text")
    return since, until


# What the export part runs: a plain COPY of the rows, COPY of export(), and
# export_csv() in the SELECT list (as documented: psql -XAtc "SELECT
# audit_log.export_csv()" > audit.csv) and in FROM.
EXPORT_RUNS = ("plain", "export", "export_csv", "export_csv_from")


def exports():
    rows = []
    for count in EXPORT_SIZES:
        since, until = period_for(count)
        n = int(psql(f"SELECT count(*) FROM audit_log.events WHERE occurred_at >= '{since}' AND occurred_at < '{until}'"))
        ours = (f"COPY (SELECT * FROM audit_log.export(since => '{since}', until => '{until}')) "
                "TO STDOUT WITH (FORMAT csv)")
        plain = (f"COPY (SELECT * FROM audit_log.events WHERE occurred_at >= '{since}' AND occurred_at < '{until}') "
                 "TO STDOUT WITH (FORMAT csv)")
        csv_lines = (f"SELECT audit_log.export_csv(since => '{since}', until => '{until}')")
        csv_from = (f"SELECT * FROM audit_log.export_csv(since => '{since}', until => '{until}')")
        sqls = dict(zip(EXPORT_RUNS, (plain, ours, csv_lines, csv_from)))
        runs = 3 if count <= 1_000_000 else 1
        timings = {name: [] for name in EXPORT_RUNS}
        peaks = {name: 0 for name in EXPORT_RUNS}
        temps = {name: 0 for name in EXPORT_RUNS}
        for _ in range(runs):
            for name in EXPORT_RUNS:
                elapsed, size, peak, temp = run_copy(sqls[name])
                timings[name].append(elapsed)
                peaks[name] = max(peaks[name], peak)
                temps[name] = max(temps[name], temp)
        medians = {k: statistics.median(v) for k, v in timings.items()}
        rows.append((n, medians, peaks, temps))
        print(f"export {n}: {medians} peaks {peaks} temporary files {temps}", flush=True)
    return rows


def export_table(exp):
    """The export results as Markdown."""
    lines = ["| events | plain COPY of events | export() | ratio export/plain | export_csv() | export_csv() in FROM | "
             "peak backend private memory: plain / export() / export_csv() / export_csv() in FROM | "
             "temporary files: export_csv() / in FROM |",
             "|---:|---:|---:|---:|---:|---:|---|---:|"]
    for n, med, peaks, temps in exp:
        lines.append(f"| {n:,} | {n / med['plain']:,.0f} rows/s | {n / med['export']:,.0f} rows/s | "
                     f"{med['plain'] / med['export']:.2f} | {n / med['export_csv']:,.0f} rows/s | "
                     f"{n / med['export_csv_from']:,.0f} rows/s | "
                     + " / ".join(f"{peaks[name] / 1024:.1f}" for name in EXPORT_RUNS)
                     + f" MiB | {temps['export_csv'] / 2**20:,.0f} / {temps['export_csv_from'] / 2**20:,.0f} MiB |")
    lines.append("")
    lines.append("Peak private memory is the backend's largest RssAnon (anonymous, non-shared pages: "
                 "not shared_buffers) sampled every 20 ms during the export. export_csv() is called as "
                 "documented, `SELECT audit_log.export_csv(...)` (the SELECT list), and in FROM, "
                 "`SELECT * FROM audit_log.export_csv(...)`, where PostgreSQL stores the rows of a C "
                 "function in a tuplestore before reading them (export_csv() keeps 1 MB of them in "
                 "memory, the rest in temporary files). Temporary files are the bytes the backend "
                 "wrote to them (pg_stat_database.temp_bytes), the largest of the runs.")
    return "\n".join(lines) + "\n"


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return (f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, {platform.system()} "
            f"{platform.release()}; {psql('SELECT version()')}")


def main():
    load_seconds = load()
    if PARTS == {"export"}:
        exp = exports()
        print(f"\n## Export ({EVENTS:,} events loaded in {load_seconds:.0f} s; {machine()})\n")
        print(export_table(exp))
        return
    size = psql("SELECT pg_size_pretty(pg_total_relation_size('audit_log.events'))")
    index_sizes = psql("SELECT string_agg(format('%s %s', indexrelid::regclass, pg_size_pretty(pg_relation_size(indexrelid))), ', ' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 'audit_log.events'::regclass")
    lat = latencies()
    exp = exports() if "export" in PARTS else []
    with open(OUT, "w") as out:
        out.write("# Reading and export benchmark\n\n")
        out.write(f"Generated by `bash bench/reading.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n")
        out.write(f"- Machine: {machine()}\n")
        out.write("- Server: throwaway cluster, shared_buffers 4GB, work_mem 16MB, jit off (bench/reading.sh)\n")
        out.write(f"- Trail: {EVENTS:,} events over {TABLES} tables, {ACTORS:,} actors, {KEYS:,} rows per table, "
                  f"one year; 30% INSERT, 60% UPDATE, 10% DELETE, a TRUNCATE every 100,000 events; "
                  f"loaded in {load_seconds:.0f} s; table with indexes {size}\n")
        out.write(f"- Indexes: {index_sizes}\n\n")
        out.write("## Latency (median of 20 runs, timed in the server, warm cache)\n\n")
        out.write("| query | median ms | rows | under 10 ms |\n|---|---:|---:|---|\n")
        for name, query, median, count, _ in lat:
            out.write(f"| {name} | {median:.3f} | {count} | {'yes' if median < 10 else '**no**'} |\n")
        if exp:
            out.write("\n## Export (COPY ... TO STDOUT WITH (FORMAT csv), client on the same machine)\n\n")
            out.write(export_table(exp))
        out.write("\n## Plans\n\n")
        for name, query, median, count, plan in lat:
            out.write(f"### {name}\n\n`{query}`\n\n```\n{plan.strip()}\n```\n\n")
    print(f"wrote {OUT}")


main()
