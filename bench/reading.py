"""Reading and export benchmark for audit_log (see bench/reading.sh).

Loads a synthetic trail straight into audit_log.events (the capture path is
benchmarked elsewhere), then measures, in one run:
- list()/history()/changes(): median of 20 runs, timed inside the server, with
  the plan of the query each one runs;
- export(): COPY ... TO STDOUT (FORMAT csv) throughput against a plain COPY of
  the same rows, and the backend's peak private memory for 1 and 5 million events.
"""

import os
import platform
import statistics
import subprocess
import sys
import threading
import time

PSQL = os.path.join(os.environ["PG_BINDIR"], "psql")
EVENTS = int(sys.argv[1])
OUT = sys.argv[2]
TABLES, ACTORS, KEYS = 50, 1000, 20000
START = "2025-11-21 00:00:00+00"
DAYS = 365


def psql(sql, *extra):
    result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def load():
    psql("CREATE EXTENSION IF NOT EXISTS audit_log")
    # Two sessions load halves in parallel (the machine has two cores).
    half = EVENTS // 2
    spans = [(1, half), (half + 1, EVENTS)]
    fill = """
    INSERT INTO audit_log.events
    SELECT g,
           timestamptz '{start}' + g * ({days} * 86400.0 / {events}) * interval '1 second',
           (1000 + g / 3)::text::xid8,
           'user-' || ((g * 7919) % {actors}) || '@example.org',
           'app', 'web', ('10.0.' || (g % 200) || '.' || (g % 250))::inet,
           jsonb_build_object('request_id', 'r-' || g),
           'bench.table_' || lpad(((g * 31) % {tables})::text, 2, '0'),
           jsonb_build_object('id', k),
           a,
           CASE WHEN a IN ('UPDATE', 'DELETE') THEN jsonb_build_object('id', k, 'title', 'Course ' || k, 'price', g % 1000, 'seats', g % 30) END,
           CASE WHEN a IN ('INSERT', 'UPDATE') THEN jsonb_build_object('id', k, 'title', 'Course ' || k, 'price', (g + 1) % 1000, 'seats', g % 30) END,
           CASE WHEN a = 'UPDATE' THEN ARRAY['price'] END
      FROM generate_series({lo}::bigint, {hi}) AS g,
           LATERAL (SELECT (g * 7) % {keys} AS k,
                           CASE WHEN g % 100000 = 0 THEN 'TRUNCATE'
                                WHEN g % 10 < 3 THEN 'INSERT'
                                WHEN g % 10 < 9 THEN 'UPDATE'
                                ELSE 'DELETE' END AS a) AS x
    """
    started = time.monotonic()
    procs = [subprocess.Popen([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                               fill.format(start=START, days=DAYS, events=EVENTS, actors=ACTORS,
                                           tables=TABLES, keys=KEYS, lo=lo, hi=hi)])
             for lo, hi in spans]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("load failed")
    psql(f"SELECT setval('audit_log.events_id_seq', {EVENTS})")
    psql("VACUUM (ANALYZE) audit_log.events")
    return time.monotonic() - started


TIMER = """
CREATE OR REPLACE FUNCTION pg_temp.median_ms(query text, runs int) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
    took numeric[] := '{}';
BEGIN
    FOR i IN 1..runs LOOP
        started := clock_timestamp();
        EXECUTE 'SELECT count(*) FROM (' || query || ') q';
        took := took || (extract(epoch FROM clock_timestamp() - started) * 1000)::numeric;
    END LOOP;
    RETURN (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t)::numeric, 3) FROM unnest(took) t);
END $$;
"""


def latencies():
    mid = f"timestamptz '{START}' + interval '{DAYS // 2} days'"
    week_later = f"{mid} + interval '7 days'"
    event_id = EVENTS // 2 + 3  # an UPDATE
    # An actor and a row that do occur in the week and table queried, so that
    # the combined filter and history() return something.
    actor, key = psql(f"""SELECT actor, entity_id FROM audit_log.events
                          WHERE entity = 'bench.table_25' AND action = 'UPDATE'
                            AND occurred_at >= {mid} AND occurred_at < {week_later}
                          ORDER BY occurred_at, id LIMIT 1""").split("|")
    queries = [
        ("list() first page, no filter", "SELECT * FROM audit_log.list()"),
        ("list(since, until): one week, half a year ago",
         f"SELECT * FROM audit_log.list(since => {mid}, until => {week_later})"),
        ("list(actor)", "SELECT * FROM audit_log.list(actor => 'user-500@example.org')"),
        ("list(entity) schema.table", "SELECT * FROM audit_log.list(entity => 'bench.table_25')"),
        ("list(entity) bare name", "SELECT * FROM audit_log.list(entity => 'table_25')"),
        ("list(action => 'delete')", "SELECT * FROM audit_log.list(action => 'delete')"),
        ("list(action => 'truncate') (rare)", "SELECT * FROM audit_log.list(action => 'truncate')"),
        ("list(all filters combined)",
         f"SELECT * FROM audit_log.list(since => {mid}, until => {week_later}, "
         f"actor => '{actor}', entity => 'bench.table_25', action => 'update')"),
        ("list() next page (before_id)",
         "SELECT * FROM audit_log.list(before_id => (SELECT min(id) FROM audit_log.list()))"),
        ("history() of one row", f"SELECT * FROM audit_log.history('bench.table_25', '{key}')"),
        ("changes() of one event", f"SELECT * FROM audit_log.changes({event_id})"),
    ]
    rows = []
    for name, query in queries:
        quoted = query.replace("'", "''")
        median = psql(TIMER + f"SELECT pg_temp.median_ms('{quoted}', 20)")
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


def run_copy(sql):
    """Runs a COPY ... TO STDOUT, returning (seconds, bytes, peak private KiB of the backend)."""
    proc = subprocess.Popen([PSQL, "-X", "-q", "-At", "-c", "SELECT pg_backend_pid()", "-c", sql],
                            stdout=subprocess.PIPE)
    pid = int(proc.stdout.readline())
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            try:
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("RssAnon:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except FileNotFoundError:
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    size = 0
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
    proc.wait()
    elapsed = time.monotonic() - started
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed: {sql}")
    return elapsed, size, peak[0]


def period_for(count):
    """since/until holding `count` events (they are spread evenly over the year)."""
    seconds = count * DAYS * 86400.0 / EVENTS
    since = f"{START}"
    until = psql(f"SELECT (timestamptz '{START}' + {seconds + 0.5 * DAYS * 86400.0 / EVENTS} * interval '1 second')::text")
    return since, until


def exports():
    rows = []
    for count in sorted({min(1_000_000, EVENTS), min(5_000_000, EVENTS)}):
        since, until = period_for(count)
        n = int(psql(f"SELECT count(*) FROM audit_log.events WHERE occurred_at >= '{since}' AND occurred_at < '{until}'"))
        ours = (f"COPY (SELECT * FROM audit_log.export(since => '{since}', until => '{until}')) "
                "TO STDOUT WITH (FORMAT csv)")
        plain = (f"COPY (SELECT * FROM audit_log.events WHERE occurred_at >= '{since}' AND occurred_at < '{until}') "
                 "TO STDOUT WITH (FORMAT csv)")
        csv_lines = (f"SELECT audit_log.export_csv(since => '{since}', until => '{until}')")
        runs = 3 if count <= 1_000_000 else 1
        timings = {"export": [], "plain": [], "export_csv": []}
        peaks = {"export": 0, "plain": 0, "export_csv": 0}
        for _ in range(runs):
            for name, sql in (("plain", plain), ("export", ours), ("export_csv", csv_lines)):
                elapsed, size, peak = run_copy(sql)
                timings[name].append(elapsed)
                peaks[name] = max(peaks[name], peak)
        medians = {k: statistics.median(v) for k, v in timings.items()}
        rows.append((n, medians, peaks))
        print(f"export {n}: {medians} peaks {peaks}", flush=True)
    return rows


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return (f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, {platform.system()} "
            f"{platform.release()}; {psql('SELECT version()')}")


def main():
    load_seconds = load()
    size = psql("SELECT pg_size_pretty(pg_total_relation_size('audit_log.events'))")
    index_sizes = psql("SELECT string_agg(format('%s %s', indexrelid::regclass, pg_size_pretty(pg_relation_size(indexrelid))), ', ' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 'audit_log.events'::regclass")
    lat = latencies()
    exp = exports()
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
        out.write("\n## Export (COPY ... TO STDOUT WITH (FORMAT csv), client on the same machine)\n\n")
        out.write("| events | plain COPY of events | export() | ratio export/plain | export_csv() | "
                  "peak backend private memory: plain / export() / export_csv() |\n|---:|---:|---:|---:|---:|---|\n")
        for n, med, peaks in exp:
            out.write(f"| {n:,} | {n / med['plain']:,.0f} rows/s | {n / med['export']:,.0f} rows/s | "
                      f"{med['plain'] / med['export']:.2f} | {n / med['export_csv']:,.0f} rows/s | "
                      f"{peaks['plain'] / 1024:.1f} / {peaks['export'] / 1024:.1f} / {peaks['export_csv'] / 1024:.1f} MiB |\n")
        out.write("\nPeak private memory is the backend's largest RssAnon (anonymous, non-shared pages: "
                  "not shared_buffers) sampled every 20 ms during the export.\n")
        out.write("\n## Plans\n\n")
        for name, query, median, count, plan in lat:
            out.write(f"### {name}\n\n`{query}`\n\n```\n{plan.strip()}\n```\n\n")
    print(f"wrote {OUT}")


main()
