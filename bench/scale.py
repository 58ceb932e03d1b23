"""Scale benchmark for audit_log (issue 16; see bench/scale.sh).

A trail of SCALE_EVENTS events (30 million by default) spread evenly over the
SCALE_MONTHS months (24) before this one, loaded as a restore would (data
first, indexes after) into two databases:
- scale_partitioned: this version, the log partitioned by month; each month
  made as a table of the log's shape, loaded, indexed with
  create_event_indexes(), then attached (the partition guard lets a superuser
  do so with audit_log.partition_maintenance on); then sealed a month at a
  time, as a trail sealed while it grew;
- scale_single: version 0.4.0, the log as one table, loaded with its
  secondary indexes dropped and made again after.
Two empty logs of each kind are the capture baseline. Then:
1. load time, size on disk, seal() time, every month closed and sealed;
2. capture (W2 single-row INSERT tps, W4 INSERT ... SELECT seconds, of
   bench/capture.py) against the full and the empty logs, interleaved rounds;
3. list()/history()/changes() latencies of bench/reading.py on the full logs;
4. `audit-log archive` of the oldest month, with a pgbench writer running,
   then verify-export of the archive and verify() of the log; and the oldest
   month of a smaller trail sealed in one seal (SCALE_ONE_SEAL_EVENTS,
   4.8 million; 0 leaves it out);
5. bytes per event on disk and in WAL;
6. ALTER EXTENSION audit_log UPDATE of the full single-table log.
SCALE_READING_ONLY=1 loads the partitioned trail alone (not sealed: reading
does not look at the tree) and measures part 3 on it: a quicker check of
reading at full size after a change to the reading functions.
Writes OUT (bench/results/scale.md); progress on standard error.

    PGHOST=... PGPORT=... PGUSER=postgres PG_BINDIR=... BENCH_WORK=... AUDIT_LOG_BIN=... python3 bench/scale.py OUT
"""

import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

import trail
from trail import ACTORS, KEYS, TABLES

BIN = os.environ["PG_BINDIR"]
PSQL = os.path.join(BIN, "psql")
PGBENCH = os.path.join(BIN, "pgbench")
AUDIT_LOG = os.environ["AUDIT_LOG_BIN"]
WORK = os.environ["BENCH_WORK"]
OUT = sys.argv[1]
EVENTS = int(os.environ.get("SCALE_EVENTS", "30000000"))
MONTHS = int(os.environ.get("SCALE_MONTHS", "24"))
SECONDS = int(os.environ.get("SCALE_PGBENCH_SECONDS", "60"))
ROUNDS = int(os.environ.get("SCALE_ROUNDS", "3"))
W4_ROWS = int(os.environ.get("SCALE_W4_ROWS", "200000"))
ONE_SEAL_EVENTS = int(os.environ.get("SCALE_ONE_SEAL_EVENTS", "4800000"))
# Transaction ids per month: a month's events are sealed when the server's
# transaction counter has passed them (see seal_partitioned()).
TX_PER_MONTH = 1000
PER_MONTH = EVENTS // MONTHS
for _n in (EVENTS, ONE_SEAL_EVENTS):
    if _n % MONTHS:
        raise SystemExit(f"SCALE_EVENTS and SCALE_ONE_SEAL_EVENTS ({_n}) must be multiples of SCALE_MONTHS ({MONTHS})")

PART, SINGLE, ONE_SEAL = "scale_partitioned", "scale_single", "scale_one_seal"
EMPTY_PART, EMPTY_SINGLE = "scale_empty_partitioned", "scale_empty_single"
READING_ONLY = os.environ.get("SCALE_READING_ONLY") == "1"
DATABASES = [PART] if READING_ONLY else [EMPTY_PART, PART, EMPTY_SINGLE, SINGLE]
STARTED = time.monotonic()
RESULTS = {"events": EVENTS, "months": MONTHS, "errors": []}

# Month boundaries are UTC, as the log's partitions are.
os.environ["PGTZ"] = "UTC"
# Every session acts for a named user, as an application sets it.
os.environ["PGOPTIONS"] = "-c audit_log.actor=bench-user"


def add_months(year, month, k):
    t = year * 12 + month - 1 + k
    return t // 12, t % 12 + 1


_now = datetime.datetime.now(datetime.timezone.utc)
THIS_MONTH = (_now.year, _now.month)
MONTH_LIST = [add_months(*THIS_MONTH, k - MONTHS) for k in range(MONTHS)]


def bound(ym):
    return f"{ym[0]:04d}-{ym[1]:02d}-01 00:00:00+00"


START = bound(MONTH_LIST[0])


def log(message):
    print(f"[{(time.monotonic() - STARTED) / 60:5.1f} min] {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise Failed(f"{' '.join(args[:1] + [a[:200] for a in args[1:]])} failed (exit {result.returncode}):\n"
                     f"{result.stdout[-2000:]}{result.stderr[-4000:]}")
    return result


def psql(sql, db=PART, *extra):
    return run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, *extra, "-c", sql]).stdout.strip()


def psql_script(sql, db=PART):
    """Statements through standard input, one by one, each in its own transaction."""
    return run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"], input=sql).stdout.strip()


def timed(sql, db=PART):
    started = time.monotonic()
    psql(sql, db)
    return time.monotonic() - started


def in_parallel(tasks, workers=2):
    """Runs the callables in `workers` sessions' threads, in order; raises the first error."""
    queue, lock, errors = list(tasks), threading.Lock(), []

    def worker():
        while True:
            with lock:
                if not queue or errors:
                    return
                task = queue.pop(0)
            try:
                task()
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def free_disk():
    return shutil.disk_usage(WORK).free / 2**30


def save():
    with open(os.path.join(WORK, "scale.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)


def fill(target, lo, hi, per_month, t0):
    """The trail of bench/trail.py, with occurred_at spread evenly over each
    month (per_month events a month, ids in time order), and TX_PER_MONTH
    transaction ids a month from t0 on, in time order too: ids the server has
    not handed out yet when the trail is loaded, so that sealing can take the
    trail a month at a time, as a trail sealed while it grew was."""
    return trail.fill(
        target, lo, hi,
        f"m.start + (((g - 1) % {per_month}) + 0.5)::float8 / {per_month} * ((m.start + interval '1 month') - m.start)",
        f"{t0} + ((g - 1) / {per_month}) * {TX_PER_MONTH} + ((g - 1) % {per_month}) * {TX_PER_MONTH} / {per_month}",
        months_from=f"\n       LATERAL (SELECT timestamptz '{START}' + make_interval(months => ((g - 1) / {per_month})::int) AS start) AS m,")


def months(per_month=PER_MONTH):
    """(name, first id, last id, from, to) of each loaded month."""
    return [(f"events_{y:04d}_{m:02d}", i * per_month + 1, (i + 1) * per_month,
             bound((y, m)), bound(add_months(y, m, 1)))
            for i, (y, m) in enumerate(MONTH_LIST)]


def next_xid(db):
    return int(psql("SELECT pg_snapshot_xmax(pg_current_snapshot())", db))


def advance_xids(target, db):
    """Hands out transaction ids until the next one is `target`."""
    n = target - next_xid(db)
    if n > 0:
        psql_script("SET synchronous_commit = off;\n"
                    f"DO $$ BEGIN FOR i IN 1..{n} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$;\n", db)


# ---------------------------------------------------------------- part 1


def load_partitioned(db=PART, events=EVENTS):
    """Loads the trail into db's partitioned log, as a restore would."""
    per_month = events // MONTHS
    psql("CREATE EXTENSION audit_log", db)
    loaded = months(per_month)
    # Transaction ids the server hands out after the load (which takes a few
    # hundred): the months are sealed one by one by moving the counter past them.
    t0 = next_xid(db) + 10000
    log(f"{db}: loading {events:,} events into {MONTHS} monthly tables, two sessions")
    started = time.monotonic()

    def rows(name, lo, hi):
        def task():
            psql(f"CREATE TABLE audit_log.{name} (LIKE audit_log.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)", db)
            psql(fill(f"audit_log.{name}", lo, hi, per_month, t0), db)
            log(f"  {name}: {hi - lo + 1:,} rows")
        return task

    in_parallel(rows(name, lo, hi) for name, lo, hi, _, _ in loaded)
    rows_s = time.monotonic() - started
    log(f"{db}: rows in {rows_s:.0f} s; indexes")

    def indexes(name, since, until):
        def task():
            psql(f"SELECT audit_log.create_event_indexes('audit_log.{name}')", db)
            # So that ATTACH need not scan the month.
            psql(f"ALTER TABLE audit_log.{name} ADD CONSTRAINT scale_bounds CHECK "
                 f"(occurred_at IS NOT NULL AND occurred_at >= '{since}' AND occurred_at < '{until}')", db)
            log(f"  {name}: indexed")
        return task

    started = time.monotonic()
    in_parallel(indexes(name, since, until) for name, _, _, since, until in loaded)
    indexes_s = time.monotonic() - started

    started = time.monotonic()
    script = "SET audit_log.partition_maintenance = on;\n" + "".join(
        f"ALTER TABLE audit_log.events ATTACH PARTITION audit_log.{name} FOR VALUES FROM ('{since}') TO ('{until}');\n"
        f"ALTER TABLE audit_log.{name} DROP CONSTRAINT scale_bounds;\n"
        for name, _, _, since, until in loaded)
    psql_script(script, db)
    prepared = psql("SELECT coalesce(string_agg(p::text, ', '), '') FROM audit_log.prepare_partitions() AS p", db)
    psql(f"SELECT setval('audit_log.events_id_seq', {events})", db)
    attach_s = time.monotonic() - started

    log(f"{db}: VACUUM (ANALYZE), CHECKPOINT")
    started = time.monotonic()
    psql("VACUUM (ANALYZE) audit_log.events", db)
    psql("CHECKPOINT", db)
    vacuum_s = time.monotonic() - started
    names = ", ".join(f"'audit_log.{name}'" for name, *_ in loaded)
    heap, idx = psql(f"SELECT sum(pg_table_size(c)), sum(pg_indexes_size(c)) FROM unnest(ARRAY[{names}]::regclass[]) c",
                     db).split("|")
    count = int(psql("SELECT count(*) FROM audit_log.events", db))
    result = {
        "rows_s": rows_s, "indexes_s": indexes_s, "attach_prepare_s": attach_s, "vacuum_checkpoint_s": vacuum_s,
        "heap_bytes": int(heap), "index_bytes": int(idx), "events": count, "prepared": prepared, "t0": t0,
        "free_disk_gib": free_disk()}
    log(f"{db}: {json.dumps(result)}")
    if count != events:
        raise Failed(f"{db} holds {count} events, not {events}")
    return result


def seal(db, t0, monthly=True):
    """Seals the loaded trail: a month at a time (each seal once the counter
    has passed the month's transaction ids, as a trail sealed while it grew),
    or all of it in one seal. Then checks every month is closed and sealed."""
    steps = range(1, MONTHS + 1) if monthly else [MONTHS]
    seals = []
    for k in steps:
        advance_xids(t0 + k * TX_PER_MONTH, db)
        seconds = timed("SELECT audit_log.seal()", db)
        added = int(psql("SELECT events_added FROM audit_log.seals ORDER BY tree_size DESC LIMIT 1", db))
        seals.append((seconds, added))
        log(f"{db}: seal() of {added:,} events in {seconds:.1f} s")
    unsealed = psql("SELECT unsealed_events FROM audit_log.seal_status()", db)
    started = time.monotonic()
    psql("VACUUM (ANALYZE) audit_log.tree_leaves", db)
    psql("VACUUM (ANALYZE) audit_log.tree_nodes", db)
    psql("CHECKPOINT", db)
    vacuum_s = time.monotonic() - started
    tree = int(psql("SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['audit_log.tree_leaves', "
                    "'audit_log.tree_nodes', 'audit_log.tree_seals']::regclass[]) AS c", db))
    started = time.monotonic()
    names = ", ".join(f"'audit_log.{name}'" for name, *_ in months())
    checks = psql(f"""
        SELECT count(*) FILTER (WHERE p.sealed),
               count(*) FILTER (WHERE audit_log.archivable(p.partition) IS NULL),
               coalesce(string_agg(p.partition || ': ' || audit_log.archivable(p.partition), '; ')
                        FILTER (WHERE audit_log.archivable(p.partition) IS NOT NULL), '')
          FROM audit_log.partitions p
         WHERE p.partition = ANY (ARRAY[{names}]::regclass[])""", db).split("|", 2)
    checks_s = time.monotonic() - started
    result = {"seconds": sum(s for s, _ in seals), "seals": seals,
              "events_added": sum(a for _, a in seals), "unsealed_after": int(unsealed),
              "tree_vacuum_s": vacuum_s, "tree_bytes": tree, "months_sealed": int(checks[0]),
              "months_archivable": int(checks[1]), "not_archivable": checks[2], "checks_s": checks_s}
    log(f"{db}: {json.dumps(result)}")
    return result


def load_and_seal_partitioned():
    RESULTS["load_partitioned"] = load_partitioned()
    save()
    RESULTS["seal"] = seal(PART, RESULTS["load_partitioned"]["t0"])


def load_single():
    db = SINGLE
    psql("CREATE EXTENSION audit_log VERSION '0.4.0'", db)
    defs = [line.split("|", 1) for line in psql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'audit_log' AND tablename = 'events' "
        "AND indexname <> 'events_pkey' ORDER BY indexname", db).splitlines()]
    # As a restore would: the table and its primary key, the rows, then the
    # other indexes.
    psql_script("".join(f"DROP INDEX audit_log.{name};\n" for name, _ in defs), db)
    log(f"{db}: loading {EVENTS:,} events into one table, two sessions")
    # The same events as the partitioned log's, transaction ids included.
    t0 = RESULTS.get("load_partitioned", {}).get("t0", 1000)
    started = time.monotonic()
    half = (MONTHS // 2) * PER_MONTH
    in_parallel([lambda: psql(fill("audit_log.events", 1, half, PER_MONTH, t0), db),
                 lambda: psql(fill("audit_log.events", half + 1, EVENTS, PER_MONTH, t0), db)])
    rows_s = time.monotonic() - started
    log(f"{db}: rows in {rows_s:.0f} s; {len(defs)} indexes")
    started = time.monotonic()
    in_parallel((lambda d=d: psql(d, db)) for _, d in defs)
    indexes_s = time.monotonic() - started
    psql(f"SELECT setval('audit_log.events_id_seq', {EVENTS})", db)
    log(f"{db}: VACUUM (ANALYZE), CHECKPOINT")
    started = time.monotonic()
    psql("VACUUM (ANALYZE) audit_log.events", db)
    psql("CHECKPOINT", db)
    vacuum_s = time.monotonic() - started
    heap, idx = psql("SELECT pg_table_size('audit_log.events'), pg_indexes_size('audit_log.events')", db).split("|")
    count = int(psql("SELECT count(*) FROM audit_log.events", db))
    RESULTS["load_single"] = {
        "rows_s": rows_s, "indexes_s": indexes_s, "vacuum_checkpoint_s": vacuum_s,
        "heap_bytes": int(heap), "index_bytes": int(idx), "events": count,
        "indexes": [d for _, d in defs], "free_disk_gib": free_disk()}
    log(f"{db}: {json.dumps(RESULTS['load_single'])}")
    if count != EVENTS:
        raise Failed(f"{db} holds {count} events, not {EVENTS}")

# ---------------------------------------------------------------- part 2

ACCOUNTS = """
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
CREATE SEQUENCE public.new_ids START 1000000000;
SELECT audit_log.track('public.accounts');
"""
# bench/capture.py's row.
ROW = ("{i}, {i} % 10000, {i} % 100, ({i} % 100000) / 7.0, ({i} % 5000) * 1.5, 'account ' || {i}, "
       "'user' || {i} || '@example.org', repeat('n', (20 + {i} % 40)::int), "
       "timestamptz '2020-01-01' + {i} * interval '1 minute', NULL, "
       "jsonb_build_object('tier', {i} % 4, 'tags', jsonb_build_array('a', {i} % 9)), {i} % 2 = 0")
W2_SCRIPT = f"INSERT INTO public.accounts SELECT {ROW.format(i='n.i')} FROM (SELECT nextval('public.new_ids') AS i) n;\n"


def w2_file():
    path = os.path.join(WORK, "w2.sql")
    with open(path, "w") as f:
        f.write(W2_SCRIPT)
    return path


def prepare_capture():
    psql("CREATE EXTENSION audit_log", EMPTY_PART)
    psql("CREATE EXTENSION audit_log VERSION '0.4.0'", EMPTY_SINGLE)
    for db in DATABASES:
        psql_script(ACCOUNTS, db)
    psql("CHECKPOINT", "postgres")


def w2(db):
    psql("CHECKPOINT", db)
    out = run([PGBENCH, "-n", "-c", "1", "-j", "1", "-T", str(SECONDS), "-f", w2_file(), db]).stdout
    return float(re.search(r"tps = ([0-9.]+)", out).group(1))


def w4(db, round_no):
    psql("CHECKPOINT", db)
    before = psql("SELECT pg_current_wal_insert_lsn()", db)
    base = round_no * W4_ROWS
    seconds = timed(f"INSERT INTO public.accounts SELECT {ROW.format(i='g')} "
                    f"FROM generate_series({base + 1}, {base + W4_ROWS}) g", db)
    wal = int(float(psql(f"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '{before}')", db)))
    return seconds, wal


def capture():
    prepare_capture()
    rounds = []
    for r in range(ROUNDS):
        # Each round in another order, so that no log always runs first.
        order = DATABASES[r % len(DATABASES):] + DATABASES[:r % len(DATABASES)]
        result = {}
        for db in order:
            tps = w2(db)
            seconds, wal = w4(db, r)
            result[db] = {"w2_tps": tps, "w4_s": seconds, "w4_wal": wal}
            log(f"capture round {r + 1}/{ROUNDS} {db}: W2 {tps:,.0f} tps, W4 {seconds:.2f} s, {wal / W4_ROWS:,.0f} WAL B/event")
        rounds.append(result)
    median = {db: {k: statistics.median(r[db][k] for r in rounds) for k in ("w2_tps", "w4_s", "w4_wal")}
              for db in DATABASES}
    RESULTS["capture"] = {"rounds": rounds, "median": median, "seconds": SECONDS, "w4_rows": W4_ROWS}
    save()


# ---------------------------------------------------------------- part 3


def queries(db):
    """bench/reading.py's queries, on a week in the middle of the trail."""
    mid = f"timestamptz '{START}' + interval '{MONTHS // 2} months'"
    return trail.reading_queries(lambda sql: psql(sql, db), mid, EVENTS, "a year ago")


def plan_of(db, query):
    # auto_explain shows the plan of the statement list()/history() runs inside.
    return run([PSQL, "-X", "-q", "-d", db, "-v", "ON_ERROR_STOP=1",
                "-c", "LOAD 'auto_explain'",
                "-c", "SET auto_explain.log_min_duration = 0",
                "-c", "SET auto_explain.log_analyze = on",
                "-c", "SET auto_explain.log_buffers = on",
                "-c", "SET auto_explain.log_nested_statements = on",
                "-c", "SET auto_explain.log_level = notice",
                "-c", "SET client_min_messages = notice",
                "-c", f"SELECT count(*) FROM ({query}) q"]).stderr


def condensed(plan, min_ms=1.0):
    """The statements of an auto_explain output that took min_ms or more,
    with their plan nodes that did (and each node's conditions)."""
    out = []
    for block in re.split(r"(?m)^NOTICE:  ", plan):
        took = re.match(r"duration: ([0-9.]+) ms", block)
        if not took or float(took.group(1)) < min_ms:
            continue
        lines = block.splitlines()
        first_node = next((i for i, line in enumerate(lines) if "(cost=" in line), len(lines))
        out.append(f"-- {lines[0].strip()}")
        out += [line[:160] for line in lines[1:min(first_node, 3)]]
        # Each kept node with its conditions; a run of nodes alike but for the
        # partition they read is shown by its first two.
        groups, keeping = [], False
        for line in lines[first_node:]:
            if "(cost=" in line:
                node = re.search(r"actual time=[0-9.]+\.\.([0-9.]+) rows=\d+ loops=(\d+)", line)
                keeping = bool(node) and float(node.group(1)) * int(node.group(2)) >= min_ms
                if keeping:
                    groups.append([line.rstrip()])
            elif keeping and re.match(r"\s*(Index Cond|Filter|Rows Removed|Sort Key|Recheck Cond|Join Filter|Hash Cond)",
                                      line):
                groups[-1].append(line.rstrip())
        alike = lambda g: re.sub(r"events_\d{4}_\d{2}\w*|\b[a-z]_\d+\b|[0-9.]+", "#", "\n".join(g))
        i = 0
        while i < len(groups):
            j = i
            while j + 1 < len(groups) and alike(groups[j + 1]) == alike(groups[i]):
                j += 1
            for g in groups[i:min(j + 1, i + 2)]:
                out += g
            if j - i >= 2:
                indent = len(groups[i][0]) - len(groups[i][0].lstrip())
                out.append(" " * indent + f"... and {j - i - 1} more like it (other partitions)")
            i = j + 1
    return "\n".join(out)


def latencies():
    out = {}
    for db in (PART,) if READING_ONLY else (PART, SINGLE):
        rows = []
        for name, query in queries(db):
            quoted = query.replace("'", "''")
            median, runs = psql(trail.TIMER + f"SELECT pg_temp.median_ms('{quoted}', 20, 30000)", db).splitlines()[-1].split("|")
            median, runs = float(median), int(runs)
            count = int(psql(f"SELECT count(*) FROM ({query}) q", db))
            # The plans of the partitioned log's queries over the target are kept.
            plan = condensed(plan_of(db, query)) if median >= 10 else ""
            rows.append({"name": name, "query": query, "median_ms": median, "runs": runs, "rows": count, "plan": plan})
            log(f"{db}: {name}: {median} ms ({count} rows, {runs} runs)")
        out[db] = rows
    # The reading functions' SQL bodies are not shown by auto_explain: the
    # statement of entity_segments() (list(entity), history()) explained alone.
    # (Only while it is an SQL function with a standard body.)
    body = psql("SELECT coalesce(pg_get_function_sqlbody('audit_log.entity_segments(text[])'::regprocedure), '')", PART)
    if body and any(x["median_ms"] >= 10 for x in out[PART]):
        body = re.sub(r"^\s*BEGIN ATOMIC\s*|;\s*END\s*$", "", body.strip())
        body = body.replace("entity_segments.entities", "ARRAY['bench.table_25']")
        plan = psql("EXPLAIN (ANALYZE, BUFFERS) " + body, PART)
        took = re.search(r"Execution Time: ([0-9.]+) ms", plan)
        out["entity_segments_plan"] = condensed(f"NOTICE:  duration: {took.group(1) if took else '?'} ms  plan:\n"
                                                f"Query Text: entity_segments(ARRAY['bench.table_25'])'s statement\n"
                                                + plan)
    RESULTS["latencies"] = out
    save()


# ---------------------------------------------------------------- part 4


def writer(stop, prefix):
    """pgbench single-row INSERTs, 1 client, in 5-second runs (each writes its
    per-transaction log when it ends) until stopped."""
    k = 0
    while not stop.is_set():
        run([PGBENCH, "-n", "-c", "1", "-j", "1", "-T", "5", "-l", "--log-prefix", f"{prefix}{k}",
             "-f", w2_file(), PART])
        k += 1


def watch(stop, samples):
    """What the archive's session is doing, and any writer waiting for a
    lock, every 0.2 s."""
    while not stop.is_set():
        try:
            line = psql("""
                SELECT coalesce((SELECT string_agg(a.state || coalesce(' (waiting: ' || a.wait_event_type || ' '
                                                   || a.wait_event || ')', '') || ': '
                                                   || left(regexp_replace(a.query, '\\s+', ' ', 'g'), 90), ' / ')
                                   FROM pg_stat_activity a WHERE a.application_name = 'scale-archive'), ''),
                       coalesce((SELECT string_agg(a.wait_event_type || ' ' || a.wait_event, ', ')
                                   FROM pg_stat_activity a WHERE a.application_name = 'pgbench'
                                    AND a.wait_event_type = 'Lock'), '')""", "postgres")
            samples.append((time.time(), *line.split("|", 1)))
        except Failed:
            pass
        time.sleep(0.2)


def writer_latencies(prefix_dir, since, until):
    """(latency ms, end time) of the writer's transactions that overlap [since, until]."""
    found = []
    for name in os.listdir(prefix_dir):
        if not name.startswith("writer"):
            continue
        with open(os.path.join(prefix_dir, name)) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6:
                    continue
                latency_us = int(parts[2])
                end = int(parts[4]) + int(parts[5]) / 1e6
                if end >= since and end - latency_us / 1e6 <= until:
                    found.append((latency_us / 1000.0, end))
    return found


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))] if values else float("nan")


def run_archive(db, before, out_dir):
    dsn = (f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} dbname={db} user=postgres "
           f"application_name=scale-archive")
    log(f"{db}: audit-log archive --before {before}")
    started = time.time()
    result = subprocess.run([AUDIT_LOG, "archive", "--dsn", dsn, "--before", before, "--out", out_dir],
                            capture_output=True, text=True)
    ended = time.time()
    log(f"{db}: archive ended with status {result.returncode} in {ended - started:.1f} s: "
        f"{result.stdout.strip()} {result.stderr.strip()[-500:]}")
    files = {name: os.path.getsize(os.path.join(out_dir, name))
             for name in sorted(os.listdir(out_dir))} if os.path.isdir(out_dir) else {}
    return result, started, ended, files


def archive():
    db = PART
    oldest, _, _, since, until = months()[0]
    before = bound(MONTH_LIST[1])[:10]
    # The events capture wrote since the first seal are sealed first, so that
    # the archive's own seal() is the short one a daily run does.
    pre_seal_s = timed("SELECT audit_log.seal()", db)
    psql("CHECKPOINT", db)
    month_bytes, month_heap, month_events = psql(
        f"SELECT pg_total_relation_size('audit_log.{oldest}'), pg_table_size('audit_log.{oldest}'), "
        f"count(*) FROM audit_log.{oldest}", db).split("|")
    out_dir = os.path.join(WORK, "archives")
    logs_dir = os.path.join(WORK, "writer_logs")
    os.makedirs(logs_dir, exist_ok=True)
    stop_writer, stop_watch = threading.Event(), threading.Event()
    samples = []
    writer_errors = []

    def writer_thread():
        try:
            writer(stop_writer, os.path.join(logs_dir, "writer"))
        except Failed as e:
            writer_errors.append(str(e))

    w = threading.Thread(target=writer_thread)
    watcher = threading.Thread(target=watch, args=(stop_watch, samples))
    writer_started = time.time()
    w.start()
    time.sleep(6)
    watcher.start()
    result, archive_started, archive_ended, files = run_archive(db, before, out_dir)
    archive_s = archive_ended - archive_started
    time.sleep(6)
    stop_watch.set()
    watcher.join()
    stop_writer.set()
    w.join()

    during = writer_latencies(logs_dir, archive_started, archive_ended)
    before_archive = writer_latencies(logs_dir, writer_started, archive_started)
    lat = [ms for ms, _ in during]
    # The archive session's statements, as they changed, each with the wait
    # events it was seen in (samples).
    phases = []
    for at, state, waits in samples:
        if not archive_started <= at <= archive_ended + 1:
            continue
        waiting = re.search(r" \(waiting: ([^)]*)\)", state)
        what = re.sub(r" \(waiting: [^)]*\)", "", state)
        if not phases or phases[-1]["what"] != what:
            phases.append({"from": round(at - archive_started, 1), "what": what, "samples": 0, "waits": {}})
        phases[-1]["samples"] += 1
        if waiting:
            phases[-1]["waits"][waiting.group(1)] = phases[-1]["waits"].get(waiting.group(1), 0) + 1
    lock_waits = [(round(at - archive_started, 1), waits) for at, _, waits in samples if waits]
    res = {"partition": oldest, "period": [since, until], "before": before, "pre_seal_s": pre_seal_s,
           "month_bytes": int(month_bytes), "month_heap_bytes": int(month_heap), "month_events": int(month_events),
           "status": result.returncode, "stdout": result.stdout.strip(), "stderr": result.stderr.strip()[-3000:],
           "seconds": archive_s, "files": files, "phases": phases[:60], "writer_lock_waits": lock_waits[:60],
           "writer_errors": writer_errors,
           "writer": {"transactions": len(lat), "tps": len(lat) / archive_s if archive_s else 0,
                      "max_ms": max(lat) if lat else None, "p99_ms": percentile(lat, 99),
                      "median_ms": percentile(lat, 50),
                      "over_1s": sum(1 for ms in lat if ms > 1000),
                      "tps_before": len(before_archive) / (archive_started - writer_started - 1),
                      "max_ms_before": max((ms for ms, _ in before_archive), default=None)}}
    RESULTS["archive"] = res
    save()
    log(f"{db}: {json.dumps({k: v for k, v in res.items() if k not in ('phases', 'writer_lock_waits')})}")
    if result.returncode != 0:
        raise Failed(f"audit-log archive failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")

    label = oldest[len("events_"):].replace("_", "-")
    with open(os.path.join(out_dir, f"{label}.manifest.json")) as f:
        manifest = json.load(f)
    checkpoint = os.path.join(WORK, "checkpoint.txt")
    with open(checkpoint, "w") as f:
        f.write(manifest["checkpoint"])
    started = time.monotonic()
    check = subprocess.run([AUDIT_LOG, "verify-export", "--csv", os.path.join(out_dir, f"{label}.csv.zst"),
                            "--proof", os.path.join(out_dir, f"{label}.proof"), "--checkpoint", checkpoint],
                           capture_output=True, text=True)
    res["verify_export"] = {"seconds": time.monotonic() - started, "status": check.returncode,
                            "output": (check.stdout.strip() + " " + check.stderr.strip()[-1000:]).strip()}
    res["manifest_events"] = manifest.get("events")
    gone = psql(f"SELECT to_regclass('audit_log.{oldest}') IS NULL", db)
    res["partition_dropped"] = gone == "t"
    res["archive_events"] = int(psql("SELECT count(*) FROM audit_log.events WHERE action = 'ARCHIVE'", db))
    log(f"{db}: verify-export: {json.dumps(res['verify_export'])}")
    save()
    if check.returncode != 0 or not check.stdout.startswith("OK:"):
        raise Failed(f"audit-log verify-export failed: {check.stdout}{check.stderr}")


def verify_all():
    db = PART
    log(f"{db}: SELECT count(*) FROM audit_log.verify()")
    started = time.monotonic()
    problems = int(psql("SELECT count(*) FROM audit_log.verify()", db))
    seconds = time.monotonic() - started
    events = int(psql("SELECT count(*) FROM audit_log.events", db))
    shown = psql("SELECT string_agg(concat_ws(' ', problem, event_id, leaf_index, detail), E'\\n') "
                 "FROM (SELECT * FROM audit_log.verify() LIMIT 10) v", db) if problems else ""
    RESULTS["verify"] = {"seconds": seconds, "problems": problems, "events": events, "shown": shown}
    save()
    log(f"{db}: verify(): {problems} rows in {seconds:.0f} s")
    if problems:
        raise Failed(f"audit_log.verify() returned {problems} rows after the archive:\n{shown}")


def one_seal():
    """The oldest month archived from a trail sealed in one seal (a trail
    restored, or upgraded from 0.2.0, then sealed): its complete proof takes
    the stretch of the tree up to the end of that seal."""
    db = ONE_SEAL
    psql(f"DROP DATABASE IF EXISTS {db}", "postgres")
    psql(f"CREATE DATABASE {db}", "postgres")
    load = load_partitioned(db, ONE_SEAL_EVENTS)
    sealed = seal(db, load["t0"], monthly=False)
    oldest = months(ONE_SEAL_EVENTS // MONTHS)[0][0]
    month_bytes, month_events = psql(f"SELECT pg_total_relation_size('audit_log.{oldest}'), "
                                     f"count(*) FROM audit_log.{oldest}", db).split("|")
    result, started, ended, files = run_archive(db, bound(MONTH_LIST[1])[:10], os.path.join(WORK, "archives_one_seal"))
    RESULTS["one_seal"] = {"events": ONE_SEAL_EVENTS, "load": load, "seal": sealed, "partition": oldest,
                           "month_bytes": int(month_bytes), "month_events": int(month_events),
                           "status": result.returncode, "seconds": ended - started, "files": files,
                           "stdout": result.stdout.strip(), "stderr": result.stderr.strip()[-3000:]}
    save()
    psql(f"DROP DATABASE {db}", "postgres")
    # A failure here is what this part measures: the report says it.


# ---------------------------------------------------------------- part 6


def upgrade():
    db = SINGLE
    filenode = psql("SELECT pg_relation_filenode('audit_log.events')", db)
    count = int(psql("SELECT count(*) FROM audit_log.events", db))
    psql("CHECKPOINT", db)
    log(f"{db}: ALTER EXTENSION audit_log UPDATE ({count:,} events)")
    seconds = timed("ALTER EXTENSION audit_log UPDATE", db)
    version = psql("SELECT extversion FROM pg_extension WHERE extname = 'audit_log'", db)
    first, first_filenode = psql("SELECT partition::text, pg_relation_filenode(partition) "
                                 "FROM audit_log.partition_bounds() WHERE from_time = '-infinity'", db).split("|")
    after = int(psql("SELECT count(*) FROM audit_log.events", db))
    partitions = int(psql("SELECT count(*) FROM audit_log.partition_bounds()", db))
    RESULTS["upgrade"] = {"seconds": seconds, "events_before": count, "events_after": after, "version": version,
                          "first_partition": first, "filenode_before": filenode, "filenode_after": first_filenode,
                          "partitions": partitions}
    save()
    log(f"{db}: {json.dumps(RESULTS['upgrade'])}")


# ---------------------------------------------------------------- report


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return (f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, {platform.system()} "
            f"{platform.release()}; {psql('SELECT version()', 'postgres')}")


def settings():
    return psql("SELECT string_agg(name || ' = ' || current_setting(name), ', ' ORDER BY name) FROM pg_settings "
                "WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'full_page_writes', 'wal_level', "
                "'max_wal_size', 'checkpoint_timeout', 'work_mem', 'maintenance_work_mem', 'jit')", "postgres")


def mb(n):
    return f"{n / 1e6:,.0f} MB"


def yes(ok):
    return "yes" if ok else "**no**"


def report(elapsed):
    r = RESULTS
    L = ["# Scale benchmark (issue 16)", "",
         f"Generated by `bash bench/scale.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
         f"in {elapsed / 60:.0f} minutes.", "",
         f"- Machine: {r.get('machine', '?')}",
         f"- Server: throwaway cluster (bench/scale.sh): {r.get('settings', '?')}",
         f"- Build: release, {os.environ.get('SCALE_BUILD') or 'unknown commit'}; the audit-log command, release",
         f"- Trail: {EVENTS:,} events over the {MONTHS} months {START[:7]} to {bound(MONTH_LIST[-1])[:7]} "
         f"({PER_MONTH:,} a month, spread evenly), {TABLES} tables, {ACTORS:,} actors, {KEYS:,} rows per table; "
         "30% INSERT, 60% UPDATE, 10% DELETE, a TRUNCATE every 100,000 events (bench/reading.py's generator); "
         f"{TX_PER_MONTH:,} transaction ids a month, in time order",
         (f"- Database: `{PART}` (this version, partitioned by month), loaded as in the full benchmark but not "
         "sealed; reading only (SCALE_READING_ONLY=1)" if READING_ONLY else
         f"- Databases: `{PART}` (this version, partitioned by month), `{SINGLE}` (0.4.0, one table), and the "
         f"empty `{EMPTY_PART}` and `{EMPTY_SINGLE}` for the capture baseline"), ""]
    p = r.get("load_partitioned")
    if READING_ONLY and p:
        L += [f"Loaded in {sum(p[k] for k in ('rows_s', 'indexes_s', 'attach_prepare_s', 'vacuum_checkpoint_s')):.0f} s "
              f"(rows {p['rows_s']:.0f} s, indexes {p['indexes_s']:.0f} s, attach and prepare_partitions() "
              f"{p['attach_prepare_s']:.1f} s, VACUUM (ANALYZE) and CHECKPOINT {p['vacuum_checkpoint_s']:.0f} s); "
              f"{p['events']:,} events, {mb(p['heap_bytes'] + p['index_bytes'])} with indexes.", ""]
    if r["errors"]:
        L += ["**Errors in this run:**", ""] + [f"- {e.splitlines()[0]}" for e in r["errors"]] + [""]

    p, s, seal = r.get("load_partitioned"), r.get("load_single"), r.get("seal")
    if p and s:
        L += ["## 1. Loading the trail, as a restore would (data first, indexes after)", "",
              "| log | rows (2 sessions) | indexes (2 sessions) | attach, prepare_partitions() | "
              "VACUUM (ANALYZE), CHECKPOINT | total | heap and TOAST | indexes | on disk per event |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, x in (("partitioned (24 months, each loaded, indexed, then attached)", p),
                         ("single table (0.4.0; secondary indexes dropped, made again after)", s)):
            total = x["rows_s"] + x["indexes_s"] + x.get("attach_prepare_s", 0) + x["vacuum_checkpoint_s"]
            attach = f"{x['attach_prepare_s']:.1f} s" if "attach_prepare_s" in x else "-"
            L.append(f"| {label} | {x['rows_s']:.0f} s | {x['indexes_s']:.0f} s | {attach} | "
                     f"{x['vacuum_checkpoint_s']:.0f} s | {total:.0f} s ({EVENTS / total:,.0f} events/s) | "
                     f"{mb(x['heap_bytes'])} | {mb(x['index_bytes'])} | "
                     f"{(x['heap_bytes'] + x['index_bytes']) / EVENTS:,.0f} B |")
        L += ["", f"The partitioned figures are the {MONTHS} loaded months' tables. "
              "The loaded months were attached with `audit_log.partition_maintenance` on (a CHECK constraint "
              "matching each month's bounds first, so that ATTACH does not scan it); `prepare_partitions()` then "
              f"made {p['prepared'] or 'nothing'} and dropped the empty default partition.", ""]
    if seal:
        ok = seal["months_sealed"] == MONTHS and seal["months_archivable"] == MONTHS
        times = [t for t, _ in seal["seals"]]
        L += ["Sealing the partitioned trail a month at a time, as it would have been sealed while it grew: "
              "each month's transaction ids are ids the server had not handed out when the trail was loaded; "
              "before each `SELECT audit_log.seal()` the transaction counter is moved past the next month's "
              "(so that the seal's watermark takes that month and its horizon reaches the month's end). "
              f"{len(times)} seals took {seal['seconds']:.0f} s in all for "
              f"{seal['events_added']:,} events ({seal['events_added'] / seal['seconds']:,.0f} events/s), each "
              f"{min(times):.1f} to {max(times):.1f} s (median {statistics.median(times):.1f} s). The "
              f"the tree then takes {mb(seal['tree_bytes'])} ({seal['tree_bytes'] / EVENTS:,.0f} B per event). "
              f"Loaded months sealed (`audit_log.partitions.sealed`): {seal['months_sealed']} of {MONTHS}; "
              f"archivable (`audit_log.archivable()` NULL): {seal['months_archivable']} of {MONTHS} "
              f"({yes(ok)}){'; ' + seal['not_archivable'] if seal['not_archivable'] else ''}.", ""]

    c = r.get("capture")
    if c:
        m = c["median"]
        L += ["## 2. Capture against a full log and an empty one", "",
              f"`public.accounts` (bench/capture.py's 12 columns) tracked in each database. W2: pgbench, one "
              f"single-row INSERT per transaction, 1 client, {c['seconds']} s (tps). W4: `INSERT INTO accounts "
              f"SELECT ...` of {c['w4_rows']:,} rows (seconds). {len(c['rounds'])} rounds, each running every "
              "database once, in a rotating order, a CHECKPOINT before each measurement; medians of the rounds. "
              "Ratio: the full log's speed over the empty one's (tps / tps for W2, seconds / seconds inverted for W4).",
              "",
              "| workload | empty partitioned | full partitioned | ratio (target ≥ 0.9) | met | "
              "empty single table | full single table | ratio |",
              "|---|---:|---:|---:|---|---:|---:|---:|"]
        rp = m[PART]["w2_tps"] / m[EMPTY_PART]["w2_tps"]
        rs = m[SINGLE]["w2_tps"] / m[EMPTY_SINGLE]["w2_tps"]
        L.append(f"| W2 single-row INSERT (tps) | {m[EMPTY_PART]['w2_tps']:,.0f} | {m[PART]['w2_tps']:,.0f} | "
                 f"{rp:.2f} | {yes(rp >= 0.9)} | {m[EMPTY_SINGLE]['w2_tps']:,.0f} | {m[SINGLE]['w2_tps']:,.0f} | {rs:.2f} |")
        rp = m[EMPTY_PART]["w4_s"] / m[PART]["w4_s"]
        rs = m[EMPTY_SINGLE]["w4_s"] / m[SINGLE]["w4_s"]
        L.append(f"| W4 INSERT ... SELECT (s) | {m[EMPTY_PART]['w4_s']:.2f} | {m[PART]['w4_s']:.2f} | "
                 f"{rp:.2f} | {yes(rp >= 0.9)} | {m[EMPTY_SINGLE]['w4_s']:.2f} | {m[SINGLE]['w4_s']:.2f} | {rs:.2f} |")
        L.append(f"| W4 WAL per event (B) | {m[EMPTY_PART]['w4_wal'] / c['w4_rows']:,.0f} | "
                 f"{m[PART]['w4_wal'] / c['w4_rows']:,.0f} | | | {m[EMPTY_SINGLE]['w4_wal'] / c['w4_rows']:,.0f} | "
                 f"{m[SINGLE]['w4_wal'] / c['w4_rows']:,.0f} | |")
        L += ["", "Each round (W2 tps / W4 s): " + "; ".join(
            f"round {i + 1}: " + ", ".join(f"{db} {x[db]['w2_tps']:,.0f} / {x[db]['w4_s']:.2f}" for db in DATABASES)
            for i, x in enumerate(c["rounds"])), ""]

    lat = r.get("latencies")
    if lat:
        L += ["## 3. Reading the full logs", "",
              "Median of 20 runs, timed inside the server, warm cache (bench/reading.py's queries; the week is "
              f"{MONTHS // 2} months after the first loaded month); a query still running after 30 s of runs stops "
              "after its third run (the number of runs is then given). Measured before capture, so that the "
              "newest events are the trail's.", "",
              "| query | partitioned: ms | rows | under 10 ms | single table: ms | rows |",
              "|---|---:|---:|---|---:|---:|"]
        runs = lambda x: f" ({x['runs']} runs)" if x["runs"] < 20 else ""
        for a, b in zip(lat[PART], lat.get(SINGLE) or [None] * len(lat[PART])):
            L.append(f"| {a['name']} | {a['median_ms']:,.3f}{runs(a)} | {a['rows']} | {yes(a['median_ms'] < 10)} | "
                     + (f"{b['median_ms']:,.3f}{runs(b)} | {b['rows']} |" if b else "(not measured) | |"))
        L.append("")

    a = r.get("archive")
    if a:
        wr = a["writer"]
        L += ["## 4. Archiving one month", "",
              f"`audit-log archive --before {a['before']}` on `{PART}`: the oldest month, `{a['partition']}` "
              f"({a['month_events']:,} events, {mb(a['month_bytes'])} in the database with its indexes, "
              f"{mb(a['month_heap_bytes'])} without). The events capture had written since the first seal were "
              f"sealed just before ({a['pre_seal_s']:.1f} s). Meanwhile, pgbench inserted single rows into the "
              "tracked table, 1 client, in 5-second runs logging every transaction (`-l`).", "",
              "| | figure | target | met |", "|---|---:|---|---|",
              f"| archive, end to end (exit status {a['status']}) | {a['seconds']:.1f} s | | |"]
        if wr["transactions"]:
            L += [f"| writer during the archive: transactions, tps | {wr['transactions']:,}, {wr['tps']:,.0f} tps "
                  f"(before it: {wr['tps_before']:,.0f} tps) | | |",
                  f"| writer latency: median / p99 | {wr['median_ms']:.1f} / {wr['p99_ms']:.1f} ms | | |",
                  f"| writer latency: max | {wr['max_ms']:,.1f} ms | ≤ 1,000 ms | {yes(wr['max_ms'] <= 1000)} |"]
        files = a["files"]
        for name, size in files.items():
            L.append(f"| file {name} | {size:,} B ({size / a['month_bytes'] * 100:.1f}% of the month in the database) | | |")
        ve = a.get("verify_export")
        if ve:
            L.append(f"| `audit-log verify-export` of the archive | {ve['seconds']:.1f} s: {ve['output']} | OK | "
                     f"{yes(ve['status'] == 0 and ve['output'].startswith('OK:'))} |")
        if "partition_dropped" in a:
            L.append(f"| partition dropped, ARCHIVE event recorded | {a['partition_dropped']}, {a['archive_events']} | "
                     f"dropped, 1 | {yes(a['partition_dropped'] and a['archive_events'] == 1)} |")
        v = r.get("verify")
        if v:
            L.append(f"| `SELECT count(*) FROM audit_log.verify()` after it ({v['events']:,} events) | "
                     f"{v['problems']} rows in {v['seconds']:.0f} s ({v['events'] / v['seconds']:,.0f} events/s) | 0 rows | "
                     f"{yes(v['problems'] == 0)} |")
        L += ["", f"archive's output: `{a['stdout'] or a['stderr']}`", "",
              "What the archive's session was doing (pg_stat_activity every 0.2 s; seconds from its start; "
              "idle while the command writes or checks files; wait events with the number of samples they were "
              "seen in):", ""]
        for x in a["phases"]:
            waits = ", ".join(f"{w} {n}" for w, n in sorted(x["waits"].items(), key=lambda kv: -kv[1]))
            L.append(f"- {x['from']:.1f} s: {x['what'] or '(not connected)'}"
                     + (f" — waiting in {waits} of {x['samples']} samples" if waits else ""))
        L += ["", "Writers waiting for a lock during the archive: " +
              ("; ".join(f"{t} s: {w}" for t, w in a["writer_lock_waits"]) or "none seen") + ".", ""]

    o = r.get("one_seal")
    if o and a:
        proof = lambda files: next((size for name, size in files.items() if name.endswith(".proof")), 0)
        proof_text = lambda files, n: (f"{proof(files):,} B | {proof(files) / n:,.0f} B" if proof(files)
                                       else "none | -")
        L += ["## 4b. The same archive from a trail sealed in one seal", "",
              f"A third database, `{ONE_SEAL}`, with {o['events']:,} events loaded the same way "
              f"({o['events'] // MONTHS:,} a month) and sealed in one seal ({o['seal']['seconds']:.0f} s), as a "
              "restored trail, or one upgraded from 0.2.0, is at its first seal; then `audit-log archive` of its "
              "oldest month, no writer. A complete proof takes the stretch of the tree from the last seal before "
              "the period to the seal that closes it, revealing the headers of the stretch's other events: "
              "here, the whole tree.", "",
              "| trail | events in the tree | month archived | archive | exit status | proof file | proof per archived event |",
              "|---|---:|---:|---:|---:|---:|---:|",
              f"| sealed a month at a time (part 4) | {EVENTS:,} | {a['month_events']:,} | {a['seconds']:.1f} s | "
              f"{a['status']} | {proof_text(a['files'], a['month_events'])} |",
              f"| sealed in one seal | {o['events']:,} | {o['month_events']:,} | {o['seconds']:.1f} s | "
              f"{o['status']} | {proof_text(o['files'], o['month_events'])} |", ""]
        if o["status"]:
            L += [f"**The archive failed** after {o['seconds']:.0f} s: "
                  f"`{(o['stdout'] + ' ' + o['stderr']).strip()[-600:]}`. The month's complete proof carries every "
                  "other event of its stretch, here the whole tree: a trail sealed in one seal cannot have its "
                  "months archived once that exceeds PostgreSQL's 1 GB limit for one value.", ""]

    if p and s:
        m = c["median"] if c else None
        L += ["## 5. Bytes per event", "",
              "| | partitioned | single table |", "|---|---:|---:|",
              f"| on disk: heap and TOAST | {p['heap_bytes'] / EVENTS:,.0f} B | {s['heap_bytes'] / EVENTS:,.0f} B |",
              f"| on disk: indexes | {p['index_bytes'] / EVENTS:,.0f} B | {s['index_bytes'] / EVENTS:,.0f} B |",
              f"| on disk: log with its indexes | {(p['heap_bytes'] + p['index_bytes']) / EVENTS:,.0f} B | "
              f"{(s['heap_bytes'] + s['index_bytes']) / EVENTS:,.0f} B |"]
        if seal:
            L.append(f"| on disk: the integrity tree, once sealed | {seal['tree_bytes'] / EVENTS:,.0f} B | (not sealed) |")
        if m:
            L.append(f"| WAL of W4, per event (row and event), full log | {m[PART]['w4_wal'] / W4_ROWS:,.0f} B | "
                     f"{m[SINGLE]['w4_wal'] / W4_ROWS:,.0f} B |")
            L.append(f"| WAL of W4, per event (row and event), empty log | {m[EMPTY_PART]['w4_wal'] / W4_ROWS:,.0f} B | "
                     f"{m[EMPTY_SINGLE]['w4_wal'] / W4_ROWS:,.0f} B |")
        L += ["", "Events here are the synthetic trail's (small JSON values: about 60 bytes each before and "
              "after); docs/operations.md's sizing is for a 12-column row (bench/results/sizing.md).", ""]

    u = r.get("upgrade")
    if u:
        same = u["filenode_before"] == u["filenode_after"]
        L += ["## 6. Upgrading the full single-table log", "",
              "| | figure | expected | met |", "|---|---:|---|---|",
              f"| `ALTER EXTENSION audit_log UPDATE` (0.4.0 to {u['version']}), {u['events_before']:,} events | "
              f"{u['seconds']:.1f} s ({u['events_before'] / u['seconds']:,.0f} events/s) | | |",
              f"| the old table became `{u['first_partition']}`, same file | filenode {u['filenode_before']} → "
              f"{u['filenode_after']} | same | {yes(same)} |",
              f"| events after | {u['events_after']:,} | {u['events_before']:,} | {yes(u['events_after'] == u['events_before'])} |",
              f"| partitions after | {u['partitions']} | the old table and 4 months | |", ""]

    slow = [(db, x) for db in (PART, SINGLE) for x in (lat or {}).get(db, []) if x["plan"]]
    if slow:
        L += ["## Plans of the queries over 10 ms", "",
              "auto_explain (ANALYZE, nested statements) of one run: the statements that took 1 ms or more, "
              "and their plan nodes that did.", ""]
        for db, x in slow:
            L += [f"### {db}: {x['name']}", "", f"`{x['query']}`", "", "```", x["plan"].strip(), "```", ""]
    if (lat or {}).get("entity_segments_plan"):
        L += [f"### {PART}: the statement of entity_segments(), which list(entity) and history() call", "",
              "`EXPLAIN (ANALYZE, BUFFERS)` of its SQL body for `ARRAY['bench.table_25']` (auto_explain does not "
              "show it):", "", "```", lat["entity_segments_plan"].strip(), "```", ""]

    loads = r.get("machine_load")
    if loads:
        L += ["## The machine during the run", "",
              "Load average (1 minute, 2 cores) sampled every 5 s, and other work seen running (anything but this "
              "benchmark's server and clients): figures taken while the machine was busy with other work are noisier.", "",
              "| part | mean load | max load | other work seen |", "|---|---:|---:|---|"]
        for name, x in loads.items():
            if x["samples"]:
                L.append(f"| {name} | {x['load'] / x['samples']:.1f} | {x['max']:.1f} | "
                         f"{', '.join(x['other']) or 'none'} |")
        L.append("")

    raw = json.loads(json.dumps(r))
    for x in (raw.get("latencies") or {}).values():
        for q in x if isinstance(x, list) else []:
            q.pop("plan", None)
    (raw.get("latencies") or {}).pop("entity_segments_plan", None)
    L += ["## Raw figures", "", "```json", json.dumps(raw, indent=1), "```", ""]
    with open(OUT, "w") as f:
        f.write("\n".join(L))
    log(f"wrote {OUT}")


# What else ran on the machine: the figures are only as good as the machine
# was quiet. Every 5 s, the load average and the programs of other work
# (compilers, other PostgreSQL servers, test runners, benchmarks) seen.
CURRENT_PART = ["setup"]
BUILDERS_AND_TESTS = {"rustc", "cargo", "cc1", "cc", "ld", "pg_regress", "pytest"}


def other_work(args, mine):
    """What a process is, if it is other work: a build, a test, another server, a benchmark."""
    name = os.path.basename(args[0]) if args else ""
    if name in BUILDERS_AND_TESTS:
        return name
    if name in ("postgres", "postmaster") and "-D" in args and not any(a.startswith(mine) for a in args):
        return "another PostgreSQL server"
    if name.startswith("python"):
        return next((a for a in args[1:] if re.search(r"(bench|tests)/\S+\.py$", a)), None)
    return None


def sample_machine(stop):
    mine = os.environ["PGHOST"]
    while not stop.wait(5):
        try:
            load = float(open("/proc/loadavg").read().split()[0])
            seen = set()
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == os.getpid():
                    continue
                try:
                    args = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\0")
                except OSError:
                    continue
                found = other_work([a for a in args if a], mine)
                if found:
                    seen.add(found)
            entry = RESULTS.setdefault("machine_load", {}).setdefault(CURRENT_PART[0], {"samples": 0, "load": 0.0,
                                                                                        "max": 0.0, "other": []})
            entry["samples"] += 1
            entry["load"] += load
            entry["max"] = max(entry["max"], load)
            entry["other"] = sorted(set(entry["other"]) | seen)
        except Exception:  # noqa: BLE001 - a sample lost is no matter
            pass


def part(name, fn):
    CURRENT_PART[0] = name
    try:
        fn()
        save()
        return True
    except Exception as e:  # noqa: BLE001 - the report says what failed
        message = f"{name}: {e}"
        RESULTS["errors"].append(message)
        log(f"FAILED {message}")
        save()
        return False


def main():
    sampler_stop = threading.Event()
    threading.Thread(target=sample_machine, args=(sampler_stop,), daemon=True).start()
    RESULTS["machine"] = machine()
    RESULTS["settings"] = settings()
    log(f"{EVENTS:,} events over {MONTHS} months from {START}; {free_disk():.0f} GiB free")
    for db in DATABASES:
        psql(f"DROP DATABASE IF EXISTS {db}", "postgres")
        psql(f"CREATE DATABASE {db}", "postgres")
    if READING_ONLY:
        if part("load (partitioned)", lambda: RESULTS.__setitem__("load_partitioned", load_partitioned())):
            part("reading", latencies)
        finish()
        return
    partitioned = part("load and seal (partitioned)", load_and_seal_partitioned)
    single = part("load (single table)", load_single)
    if partitioned and single:
        # Reading first: the newest events are then the trail's, not capture's.
        part("reading", latencies)
        part("capture", capture)
    if partitioned and part("archive", archive):
        part("verify", verify_all)
    if ONE_SEAL_EVENTS:
        part("archive from a trail sealed in one seal", one_seal)
    if single:
        part("upgrade", upgrade)
    finish()


def finish():
    elapsed = time.monotonic() - STARTED
    RESULTS["elapsed_s"] = elapsed
    report(elapsed)
    if RESULTS["errors"]:
        log("errors:\n" + "\n".join(RESULTS["errors"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
