"""Time-travel benchmark for audit_log (issue 17; see bench/time_travel.sh).

On the synthetic trail of the reading benchmark (bench/reading.py: 50 tables
bench.table_00..49, 20,000 keys, one year), loaded straight into the
partitioned log, plus tables given a history through capture, measures in one
run:
- as_of() of one row: median of 20 runs timed inside the server, checked
  against the row's last event at or before the instant (synthetic trail) or
  the snapshot taken then (bench.hundred_k);
- as_of() of a whole table: bench.hundred_k (100,000 rows, a few hundred
  thousand captured events) in the middle of its history and at its end, and
  a table of the synthetic trail; median of 5, the backend's peak private
  memory, temporary files, and the rows compared with snapshots of the table;
- track(..., baseline => true) of a 1-million-row table next to a plain
  INSERT ... SELECT copy of it: time, WAL, peak memory, BASELINE events;
- revert_transaction() of a transaction of 1,000 row changes.

HUNDRED_K_ROWS and MILLION_ROWS shrink the two tables for a quick try.
"""

import io
import json
import os
import platform
import re
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
HUNDRED_K = int(os.environ.get("HUNDRED_K_ROWS", "100000"))
MILLION = int(os.environ.get("MILLION_ROWS", "1000000"))
ROUNDS = 5
MID_ROUND = 2
RESULTS = {}


def psql(sql, *extra):
    result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {sql}\n{result.stderr}")
    return result.stdout.strip()


def psql_notices(sql):
    """(output, the NOTICE/WARNING lines the server sent)."""
    result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {sql}\n{result.stderr}")
    return result.stdout.strip(), [line for line in result.stderr.splitlines() if line.strip()]


def say(text):
    print(text, flush=True)




def load():
    """Makes the trail's months first (create_partition()), then those ahead
    (prepare_partitions(), which drops the then empty default partition), and
    loads the trail into the empty log: straight into its months, in two
    sessions. The log refuses SQL inserts once it holds events (a restore
    loads an empty log), so both sessions start while it is empty."""
    psql("CREATE EXTENSION IF NOT EXISTS audit_log")
    psql("CREATE SCHEMA bench")
    started = time.monotonic()
    months = psql(f"""
        SELECT count(audit_log.create_partition(m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC'))
          FROM generate_series(date_trunc('month', timestamptz '{START}' AT TIME ZONE 'UTC'),
                               (timestamptz '{START}' + interval '{DAYS} days') AT TIME ZONE 'UTC',
                               interval '1 month') AS m""")
    ahead = psql("SELECT count(*) FROM audit_log.prepare_partitions()")
    if psql("SELECT to_regclass('audit_log.events_default') IS NULL") != "t":
        raise SystemExit("prepare_partitions() left the default partition")
    sessions = 2 if EVENTS >= 1_000_000 else 1
    step = EVENTS // sessions
    spans = [(1 + i * step, EVENTS if i == sessions - 1 else (i + 1) * step) for i in range(sessions)]
    procs = [subprocess.Popen([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                               trail.fill_over_days(lo, hi, START, DAYS, EVENTS)])
             for lo, hi in spans]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("load failed")
    psql(f"SELECT setval('audit_log.events_id_seq', {EVENTS})")
    psql("VACUUM (ANALYZE) audit_log.events")
    seconds = time.monotonic() - started
    loaded = int(psql("SELECT count(*) FROM audit_log.events"))
    partitions = psql("SELECT count(*) FILTER (WHERE events > 0) || '/' || count(*) FROM audit_log.partitions")
    if loaded != EVENTS:
        raise SystemExit(f"loaded {loaded} events, not {EVENTS}")
    RESULTS["load"] = dict(seconds=round(seconds, 1), events=loaded, months_made=int(months),
                           months_ahead=int(ahead), partitions_holding_events=partitions,
                           sessions=sessions,
                           size=psql("SELECT pg_size_pretty(sum(pg_total_relation_size(partition))) "
                                     "FROM audit_log.partition_bounds()"))
    say(f"loaded {loaded:,} events in {seconds:.0f} s: {RESULTS['load']}")


def median_ms(query, runs):
    quoted = query.replace("'", "''")
    out = psql(trail.TIMER + f"SET client_min_messages = warning; SELECT pg_temp.median_ms('{quoted}', {runs})")
    return float(out.splitlines()[-1].split("|")[0])


def plan_of(query):
    """The plans of the statements the query runs, nested ones included
    (auto_explain), with the time each took."""
    return subprocess.run(
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


def trim_plan(plan, min_ms=1.0):
    """The plans auto_explain logged, without the statements that took less
    than min_ms (each partition of the log makes a plan long)."""
    blocks = re.split(r"(?m)^(?=\S*NOTICE:  duration: )", plan.strip())
    blocks = [b for b in blocks if b.strip()]
    kept = [b for b in blocks if not (m := re.search(r"duration: ([\d.]+) ms", b)) or float(m.group(1)) >= min_ms]
    left = len(blocks) - len(kept)
    return "\n".join(b.rstrip() for b in kept) + (f"\n({left} statements under {min_ms:g} ms left out)" if left else "")


def temp_bytes():
    return int(psql("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"))


def in_own_backend(sql, output=None):
    """(seconds, peak private KiB, bytes of temporary files) of one statement
    run by a backend of its own; its output into the binary file `output`."""
    before = temp_bytes()
    elapsed, _, peak, pid = run_statement([PSQL], sql, output)
    # The backend reports its temporary files as it exits.
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.02)
    return elapsed, peak, temp_bytes() - before


MID = f"timestamptz '{START}' + interval '{DAYS // 2} days'"

# The expected answer of as_of(entity, at, key) for one row, by the rule of
# docs/reference.md, section 9: a row is named by the key it has now (or last
# had) and followed back through its changes of key. The key's latest arrival
# (its latest INSERT or BASELINE, or the latest UPDATE that moved a row to
# it): after `at` and an INSERT/BASELINE, no row (even if an earlier,
# since-deleted row had that key at `at`); after `at` and a change of key, the
# same with the previous key, among the events before that one; otherwise
# the state left by the key's last event at or before `at` among that
# incarnation's events (none after a DELETE, or when the table's last
# TRUNCATE at or before `at` came after it). Written here apart from the
# extension, from the rule; the log's tables are never renamed here.
EXPECTED = """
CREATE OR REPLACE FUNCTION pg_temp.expected_row(ent text, at timestamptz, wanted jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    k jsonb := wanted;
    bound bigint := 9223372036854775807;
    arrival record;
    last record;
    cut record;
BEGIN
    SELECT t.occurred_at, t.id INTO cut FROM audit_log.events t
     WHERE t.entity = ent AND t.action = 'TRUNCATE' AND t.occurred_at <= at
     ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1;
    LOOP
        SELECT e.id, e.occurred_at, e.action, e.previous INTO arrival
          FROM (SELECT e.*, (SELECT jsonb_object_agg(n, e.old_values -> n) FROM jsonb_object_keys(e.entity_id) AS n) AS previous
                  FROM audit_log.events e
                 WHERE e.entity = ent
                   AND jsonb_hash_extended(e.entity_id, hashtext(e.entity)) = jsonb_hash_extended(k, hashtext(ent))
                   AND e.entity_id = k AND e.id < bound
                   AND e.action IN ('INSERT', 'BASELINE', 'UPDATE')) AS e
         WHERE e.action <> 'UPDATE' OR e.previous IS DISTINCT FROM e.entity_id
         ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1;
        IF FOUND AND arrival.occurred_at > at THEN
            IF arrival.action <> 'UPDATE' THEN
                RETURN NULL;  -- the row that has the key now came after `at`
            END IF;
            k := arrival.previous;  -- moved to this key after `at`
            bound := arrival.id;
            CONTINUE;
        END IF;
        EXIT;
    END LOOP;
    SELECT e.id, e.occurred_at, e.action, e.new_values INTO last
      FROM audit_log.events e
     WHERE e.entity = ent
       AND jsonb_hash_extended(e.entity_id, hashtext(e.entity)) = jsonb_hash_extended(k, hashtext(ent))
       AND e.entity_id = k AND e.id < bound AND e.occurred_at <= at
       AND (arrival.id IS NULL OR (e.occurred_at, e.id) >= (arrival.occurred_at, arrival.id))
       AND e.action IN ('INSERT', 'UPDATE', 'DELETE', 'BASELINE')
     ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1;
    IF NOT FOUND OR last.action = 'DELETE'
       OR (cut.id IS NOT NULL AND (last.occurred_at, last.id) < (cut.occurred_at, cut.id)) THEN
        RETURN NULL;
    END IF;
    RETURN last.new_values;
END $$;
"""


def check_one(entity, at, key, typed, snapshot=None):
    """(as documented, the expected answer, notices, agrees with snapshot):
    as_of() of the row against pg_temp.expected_row(), typed as `typed`;
    with `snapshot` (a query giving the snapshot's row at `at`, typed), also
    whether the documented answer is the snapshot's."""
    snap = (f", (SELECT array_agg(ROW(m.*)::{typed}) FROM ({snapshot}) m) IS NOT DISTINCT FROM "
            f"(SELECT array_agg(jsonb_populate_record(NULL::{typed}, x.v)) FROM exp x WHERE x.v IS NOT NULL)"
            if snapshot else "")
    out, notices = psql_notices(EXPECTED + f"""
        WITH exp AS MATERIALIZED (SELECT pg_temp.expected_row('{entity}', {at}, '{key}') AS v)
        SELECT (SELECT array_agg(jsonb_populate_record(NULL::{typed}, a."row"))
                  FROM audit_log.as_of('{entity}', {at}, '{key}') AS a)
               IS NOT DISTINCT FROM
               (SELECT array_agg(jsonb_populate_record(NULL::{typed}, x.v)) FROM exp x WHERE x.v IS NOT NULL),
               (SELECT x.v IS NOT NULL FROM exp x){snap}""")
    fields = out.splitlines()[-1].split("|")
    return (fields[0] == "t", fields[1] == "t", notices, (fields[2] == "t") if snapshot else None)


def one_row_synthetic():
    """as_of() of one row of the synthetic trail. The generator gives each
    table one action (bench.table_NN gets INSERTs when NN ends in 0-2,
    UPDATEs for 3-8, DELETEs for 9) and bench.table_00 its TRUNCATEs; each
    key belongs to one table and has EVENTS / 20,000 events spread over the
    year, so an INSERT-only key's latest INSERT (its latest arrival) is near
    the end of the year: at mid-year, by the documented rule, it has no row.
    For the latency of finding a row, such keys are asked just after their
    latest INSERT; an UPDATE-only key (no arrival at all) in the middle of
    the year. The no-row cases are kept for comparison."""
    rows = []
    keys = {}
    for entity in ("bench.table_25", "bench.table_21", "bench.table_29", "bench.table_00"):
        keys[entity] = psql(f"""SELECT entity_id FROM audit_log.events
                                 WHERE entity = '{entity}' AND action IN ('INSERT', 'UPDATE', 'DELETE') AND occurred_at >= {MID}
                                 ORDER BY occurred_at, id LIMIT 1""")
    def same_row(entity):
        return f"""e.entity = '{entity}'
                   AND jsonb_hash_extended(e.entity_id, hashtext(e.entity)) = jsonb_hash_extended('{keys[entity]}', hashtext('{entity}'))
                   AND e.entity_id = '{keys[entity]}'"""
    def after_latest_insert(entity):
        at = psql(f"SELECT (max(e.occurred_at) + interval '1 millisecond')::text FROM audit_log.events e "
                  f"WHERE {same_row(entity)} AND e.action = 'INSERT'")
        return f"timestamptz '{at}'", f"just after the key's latest INSERT ({at[:10]})"
    mid = (MID, "middle of the year")
    cases = [
        ("bench.table_25", "UPDATEs only: no arrival, the state its last UPDATE before the instant left", mid, True),
        ("bench.table_21", "INSERTs only, its latest INSERT before the instant: that INSERT's row",
         after_latest_insert("bench.table_21"), True),
        ("bench.table_00", "INSERTs only and the table's TRUNCATEs, its latest INSERT before the instant "
                           "and no TRUNCATE between: that INSERT's row", after_latest_insert("bench.table_00"), True),
        ("bench.table_29", "DELETEs only: no row (its last event before the instant is a DELETE)", mid, False),
        ("bench.table_21", "INSERTs only, its latest INSERT after the instant: no row (the row that has the key "
                           "now came later)", mid, False),
    ]
    for entity, kind, (at, at_label), plan in cases:
        key = keys[entity]
        history = int(psql(f"SELECT count(*) FROM audit_log.events e WHERE {same_row(entity)}"))
        query = f"SELECT * FROM audit_log.as_of('{entity}', {at}, '{key}')"
        right, expect_row, notices, _ = check_one(entity, at, key, "bench.course")
        rows.append(measure_one(f"{entity}, a key with {history} events: {kind}", query, right, notices,
                                plan=plan, instant=at_label, expect_row=expect_row))
    key = keys["bench.table_25"]
    rows.append(measure_one("history() of the first row, for comparison",
                            f"SELECT * FROM audit_log.history('bench.table_25', '{key}')", None, [], plan=True,
                            instant="—", expect_row=None))
    return rows


def measure_one(name, query, right, notices, plan, instant, expect_row, snapshot_agrees=None):
    median = median_ms(query, 20)
    count = int(psql(f"SELECT count(*) FROM ({query}) q"))
    row = dict(name=name, query=query, instant=instant, expect_row=expect_row, median_ms=median, rows=count,
               right=right, snapshot_agrees=snapshot_agrees, notices=notices, plan=plan_of(query) if plan else None)
    say(f"{name}: {median} ms, {count} rows, right: {right} {notices}")
    return row


def table_wide(entity, at, label, reference=None, typed=None, runs=5, plan=False):
    """as_of() of a whole table: median time, the backend's peak memory and
    temporary files, and the rows compared with `reference` (a query giving
    the table's rows as they were at `at`, typed as `typed`)."""
    query = f"SELECT * FROM audit_log.as_of('{entity}', '{at}')"
    events = int(psql(f"SELECT count(*) FROM audit_log.events WHERE entity = '{entity}' AND occurred_at <= '{at}'"))
    median = median_ms(query, runs) if runs > 1 else None
    output = io.BytesIO()
    elapsed, peak, temp = in_own_backend(f"SELECT count(*) FROM ({query}) q", output)
    rows = int(output.getvalue().split()[-1])
    check, notices = None, []
    if reference is not None:
        # Typed rows against the reference: counts, sums of price, every row
        # both ways (EXCEPT ALL), and each row's key as its row says.
        out, notices = psql_notices(f"""
            WITH x AS MATERIALIZED (SELECT * FROM audit_log.as_of('{entity}', '{at}')),
                 a AS MATERIALIZED (SELECT t.* FROM x, jsonb_populate_record(NULL::{typed}, x."row") AS t),
                 r AS MATERIALIZED ({reference})
            SELECT (SELECT count(*) FROM a), (SELECT sum(price) FROM a),
                   (SELECT count(*) FROM r), (SELECT sum(price) FROM r),
                   (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM r) d),
                   (SELECT count(*) FROM (SELECT * FROM r EXCEPT ALL SELECT * FROM a) d),
                   (SELECT count(*) FROM x WHERE x.entity_id <> jsonb_build_object('id', x."row" -> 'id'))""")
        n_a, sum_a, n_r, sum_r, extra, missing, bad_keys = out.split("|")
        check = dict(rows=int(n_a), sum_price=int(sum_a or 0), reference_rows=int(n_r),
                     reference_sum_price=int(sum_r or 0), rows_not_in_reference=int(extra),
                     reference_rows_missing=int(missing), keys_not_matching_row=int(bad_keys))
        check["right"] = (n_a == n_r and sum_a == sum_r and extra == "0" and missing == "0" and bad_keys == "0")
    result = dict(name=label, entity=entity, at=at, events_up_to_at=events, rows=rows, median_ms=median,
                  runs=runs, single_run_s=round(elapsed, 3), peak_kib=peak, temp_bytes=temp, check=check,
                  notices=notices, plan=plan_of(query) if plan else None)
    say(f"{label}: {median} ms median, one run {elapsed:.2f} s, {rows} rows, peak {peak} KiB, "
        f"temp {temp} B, check {check} {notices}")
    return result


def clock():
    return psql("SELECT clock_timestamp()")


def history_for_hundred_k():
    """bench.hundred_k, tracked empty, given a history through capture:
    100,000 INSERTs, then rounds of UPDATEs of 40% of the rows, DELETEs of
    2%, re-INSERTs of the rows deleted the round before, and in round 4 a
    change of key of 1 row in 1,000 (id + 1,000,000). A snapshot of the table
    is kept after round 2 (an untracked copy) with the instant it was taken."""
    n = HUNDRED_K
    psql("CREATE TABLE bench.hundred_k (id int PRIMARY KEY, title text, price int, seats int)")
    psql("SELECT audit_log.track('bench.hundred_k')")
    started = time.monotonic()
    psql(f"INSERT INTO bench.hundred_k SELECT g, 'Course ' || g, (g * 37) % 1000, g % 30 FROM generate_series(1, {n}) g")
    marks = {}
    for r in range(1, ROUNDS + 1):
        if r > 1:
            psql(f"""INSERT INTO bench.hundred_k
                     SELECT g, 'Course ' || g || ' (again)', (g * 41 + {r}) % 1000, (g + {r}) % 30
                       FROM generate_series(1, {n}) g
                      WHERE abs(hashint4(g * 17 + {r - 1})::bigint) % 100 < 2
                        AND NOT EXISTS (SELECT 1 FROM bench.hundred_k t WHERE t.id = g)""")
        psql(f"""UPDATE bench.hundred_k SET price = (price + {r} * 7) % 1000, seats = (seats + 1) % 30,
                        title = CASE WHEN id % 7 = {r} THEN title || ' *' ELSE title END
                  WHERE abs(hashint4(id * 31 + {r})::bigint) % 100 < 40""")
        psql(f"DELETE FROM bench.hundred_k WHERE abs(hashint4(id * 17 + {r})::bigint) % 100 < 2")
        if r == 4:
            psql("UPDATE bench.hundred_k SET id = id + 1000000 WHERE id % 1000 = 7 AND id < 1000000")
        if r == MID_ROUND:
            marks["mid"] = clock()
            psql("CREATE TABLE bench.hundred_k_mid AS SELECT * FROM bench.hundred_k")
    marks["end"] = clock()
    seconds = time.monotonic() - started
    # Every event of this history lands in the current month's partition,
    # which autovacuum analyzes within its naptime (a minute: 50 rows plus
    # 10% changed trigger it). Measured at once, its statistics would still
    # say it is empty, and the cached generic plans of as_of() and history()
    # would walk the time index through all of the table's events (26 to
    # 74 ms instead of under 1 ms in an earlier run). So: as autovacuum would.
    current = psql("SELECT partition FROM audit_log.partitions WHERE now() >= from_time AND now() < to_time")
    psql(f"ANALYZE {current}")
    marks["analyzed"] = current
    events = dict(line.split("|") for line in psql(
        "SELECT action, count(*) FROM audit_log.events WHERE entity = 'bench.hundred_k' "
        "GROUP BY action ORDER BY action").splitlines())
    events = {action: int(n) for action, n in events.items()}
    RESULTS["hundred_k"] = dict(rows=int(psql("SELECT count(*) FROM bench.hundred_k")),
                                rows_at_mid=int(psql("SELECT count(*) FROM bench.hundred_k_mid")),
                                events=events, seconds=round(seconds, 1), **marks)
    say(f"bench.hundred_k: {RESULTS['hundred_k']}")
    return marks


def one_row_hundred_k(mid):
    """One row of bench.hundred_k at mid: an ordinary one, one named by the
    key it has now, which it got after mid (round 4), and one deleted after
    mid whose key was inserted again (rounds 3 and 4); each checked against
    the documented rule (pg_temp.expected_row()), and the rule's answer
    compared with the snapshot taken at mid."""
    rows = []
    plain = psql("SELECT id FROM bench.hundred_k_mid WHERE id % 1000 = 500 ORDER BY id LIMIT 1")
    moved = psql("SELECT m.id FROM bench.hundred_k_mid m JOIN bench.hundred_k t ON t.id = m.id + 1000000 "
                 "ORDER BY m.id LIMIT 1")
    # There at mid, deleted in round 3, inserted again in round 4.
    again = psql(f"SELECT m.id FROM bench.hundred_k_mid m JOIN bench.hundred_k t ON t.id = m.id "
                 f"WHERE abs(hashint4(m.id * 17 + 3)::bigint) % 100 < 2 ORDER BY m.id LIMIT 1")
    for label, key, was, kind in (
            ("bench.hundred_k, one row", plain, plain, "a row: the state at the instant"),
            ("bench.hundred_k, one row named by the key it got after the instant",
             str(int(moved) + 1000000), moved, "a row: followed back to its previous key, the state then"),
            ("bench.hundred_k, one row deleted after the instant, its key inserted again later",
             again, again, "no row: the key's latest arrival is an INSERT after the instant (the row there at "
                           "the instant is another incarnation, since deleted)")):
        key_json = f'{{"id": {key}}}'
        query = f"SELECT * FROM audit_log.as_of('bench.hundred_k', '{mid}', '{key_json}')"
        right, expect_row, notices, agrees = check_one(
            "bench.hundred_k", f"'{mid}'", key_json, "bench.hundred_k",
            snapshot=f"SELECT * FROM bench.hundred_k_mid WHERE id = {was}")
        rows.append(measure_one(f"{label} ({key_json}, {{\"id\": {was}}} then): {kind}", query, right,
                                notices, plan=False, instant="middle of its history", expect_row=expect_row,
                                snapshot_agrees=agrees))
    return rows


def log_bytes():
    return int(psql("SELECT sum(pg_total_relation_size(partition)) FROM audit_log.partition_bounds()"))


def write_statement(name, prepare, sql):
    """One write, after a checkpoint (both sides start alike): wall time,
    WAL bytes (insert position before and after), the backend's peak private
    memory, and whether an autovacuum ran meanwhile (its WAL would count)."""
    if prepare:
        psql(prepare)
    psql("CHECKPOINT")
    lsn = psql("SELECT pg_current_wal_insert_lsn()")
    since = clock()
    elapsed, peak, temp = in_own_backend(sql)
    wal = int(psql(f"SELECT pg_current_wal_insert_lsn() - '{lsn}'::pg_lsn"))
    vacuums = psql(f"""SELECT coalesce(string_agg(relid::regclass::text, ', '), '') FROM pg_stat_all_tables
                        WHERE last_autovacuum >= '{since}' OR last_autoanalyze >= '{since}'""")
    result = dict(name=name, sql=sql, seconds=round(elapsed, 3), wal_bytes=wal, peak_kib=peak,
                  temp_bytes=temp, autovacuum_meanwhile=vacuums)
    say(f"{name}: {result}")
    return result


def baseline():
    """track(..., baseline => true) of a MILLION-row table next to a plain
    copy of it (before and after, to see the noise)."""
    n = MILLION
    psql(f"CREATE TABLE bench.million AS SELECT g AS id, 'title ' || g AS title, g % 1000 AS price, now() AS at "
         f"FROM generate_series(1, {n}) g")
    psql("ALTER TABLE bench.million ADD PRIMARY KEY (id)")
    psql("VACUUM (ANALYZE) bench.million")
    psql("VACUUM (ANALYZE) audit_log.events")
    # The copies are not vacuumed by autovacuum while the other side runs.
    copy = ("CREATE TABLE bench.{name} (LIKE bench.million) WITH (autovacuum_enabled = off)",
            "INSERT INTO bench.{name} SELECT * FROM bench.million")
    runs = [write_statement("plain copy (INSERT ... SELECT), before", copy[0].format(name="million_copy"),
                            copy[1].format(name="million_copy"))]
    grown = log_bytes()
    runs.append(write_statement("track(..., baseline => true)", None,
                                "SELECT audit_log.track('bench.million', baseline => true)"))
    grown = log_bytes() - grown
    runs.append(write_statement("plain copy (INSERT ... SELECT), after", copy[0].format(name="million_copy_2"),
                                copy[1].format(name="million_copy_2")))
    baselines, tracks, transactions, keys = psql(
        "SELECT count(*) FILTER (WHERE action = 'BASELINE'), count(*) FILTER (WHERE action = 'TRACK'), "
        "count(DISTINCT tx_id), count(DISTINCT entity_id) FILTER (WHERE action = 'BASELINE') "
        "FROM audit_log.events WHERE entity = 'bench.million'").split("|")
    check = dict(baseline_events=int(baselines), track_events=int(tracks), transactions=int(transactions),
                 distinct_keys=int(keys), rows=n)
    check["right"] = int(baselines) == n and int(keys) == n and int(tracks) == 1 and int(transactions) == 1
    result = dict(rows=n, runs=runs, log_grew_bytes=grown, check=check,
                  table_bytes=int(psql("SELECT pg_table_size('bench.million')")))
    say(f"baseline check: {check}, log grew {grown} bytes")
    return result


def revert():
    """revert_transaction() of a transaction of 1,000 row changes of
    bench.hundred_k (700 UPDATEs, 150 DELETEs, 150 INSERTs): timed three
    times in transactions rolled back, then once committed, and checked."""
    state = "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM bench.hundred_k t"
    before = psql(state)
    xid = subprocess.run(
        [PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
         "-c", "BEGIN",
         "-c", "UPDATE bench.hundred_k SET price = price + 1, title = title || ' (batch)' "
               "WHERE id IN (SELECT id FROM bench.hundred_k ORDER BY id LIMIT 700)",
         "-c", "DELETE FROM bench.hundred_k WHERE id IN (SELECT id FROM bench.hundred_k WHERE id < 1000000 "
               "ORDER BY id DESC LIMIT 150)",
         "-c", "INSERT INTO bench.hundred_k SELECT 2000000 + g, 'New ' || g, g, g % 30 FROM generate_series(1, 150) g",
         "-c", "SELECT pg_current_xact_id()",
         "-c", "COMMIT"], check=True, capture_output=True, text=True).stdout.strip()
    actions = dict(line.split("|") for line in psql(
        f"SELECT action, count(*) FROM audit_log.events WHERE tx_id = '{xid}' GROUP BY action ORDER BY action").splitlines())
    timed = """DO $$
DECLARE started timestamptz := clock_timestamp(); n integer;
BEGIN
    n := audit_log.revert_transaction('{xid}');
    RAISE NOTICE 'reverted % in % ms by %', n, extract(epoch FROM clock_timestamp() - started) * 1000, pg_current_xact_id();
END $$""".format(xid=xid)
    profile = revert_profile(xid)
    timings = []
    for end in ("ROLLBACK", "ROLLBACK", "ROLLBACK", "COMMIT"):
        result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", "BEGIN", "-c", timed,
                                 "-c", end], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"revert_transaction() failed:\n{result.stderr}")
        n, ms, by = re.search(r"reverted (\d+) in ([\d.]+) ms by (\d+)", result.stderr).groups()
        timings.append(float(ms))
        say(f"revert_transaction('{xid}'): {n} events in {ms} ms ({end})")
    undone = dict(line.split("|") for line in psql(
        f"SELECT action, count(*) FROM audit_log.events WHERE tx_id = '{by}' AND context ? 'reverts' "
        f"GROUP BY action ORDER BY action").splitlines())
    after = psql(state)
    result = dict(tx_id=xid, events={k: int(v) for k, v in actions.items()}, reverted=int(n), ms=timings,
                  median_ms=statistics.median(timings), revert_tx_id=by,
                  revert_events={k: int(v) for k, v in undone.items()}, table_as_before=after == before,
                  profile=profile)
    result["right"] = result["table_as_before"] and sum(result["revert_events"].values()) == sum(result["events"].values())
    say(f"revert: {result}")
    return result


def revert_profile(xid):
    """Where revert_transaction() spends its time: the statements it runs
    (auto_explain, nested, without analyze), summed by their text's start,
    in a transaction rolled back. Planning is not counted."""
    result = subprocess.run(
        [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "BEGIN",
         "-c", "LOAD 'auto_explain'",
         "-c", "SET auto_explain.log_min_duration = 0",
         "-c", "SET auto_explain.log_nested_statements = on",
         "-c", "SET auto_explain.log_level = notice",
         "-c", "SET client_min_messages = notice",
         "-c", f"SELECT audit_log.revert_transaction('{xid}')",
         "-c", "ROLLBACK"], check=True, capture_output=True, text=True).stderr
    totals = {}
    for ms, text in re.findall(r"duration: ([\d.]+) ms\s+plan:\s*\nQuery Text: ([^\n]*)", result):
        text = " ".join(text.split())[:100] or "(an expression)"
        took, count = totals.get(text, (0.0, 0))
        totals[text] = (took + float(ms), count + 1)
    return sorted(([round(t, 1), n, text] for text, (t, n) in totals.items()), reverse=True)[:15]


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return (f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, {platform.system()} "
            f"{platform.release()}; {psql('SELECT version()')}")


def source():
    head = subprocess.run(["git", "log", "-1", "--format=%h %cs"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "sql", "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True).stdout.split()
    return head + (f" with uncommitted changes to {', '.join(dirty[1::2])}" if dirty else "")


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def ms(value):
    return "—" if value is None else f"{value:,.3f}"


def mib(kib):
    return f"{kib / 1024:,.1f} MiB"


def report(one, wide, base, rev):
    load = RESULTS["load"]
    lines = [
        "# Time-travel benchmark",
        "",
        f"Generated by `bash bench/time_travel.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"(source {RESULTS['source']}).",
        "",
        f"- Machine: {RESULTS['machine']}; load average {RESULTS['loadavg'][0]} at the start, "
        f"{RESULTS['loadavg'][1]} at the end (other work ran on the machine meanwhile)",
        "- Server: throwaway cluster, shared_buffers 4GB, work_mem 16MB, jit off (bench/time_travel.sh, "
        "as bench/reading.sh)",
        f"- Trail: the reading benchmark's ({EVENTS:,} events over {TABLES} tables bench.table_00..49, "
        f"{KEYS:,} keys per table, {ACTORS:,} actors, one year from {START[:10]}; 30% INSERT, 60% UPDATE, "
        f"10% DELETE; a key gets one action, {EVENTS // KEYS:,} events, all in one table), loaded in "
        f"{load['seconds']:.0f} s into the partitioned log: its {load['months_made']} months made first "
        f"(create_partition()), then {load['months_ahead']} ahead by prepare_partitions(), which dropped the "
        f"empty default partition; then the trail inserted straight into the months ({load['sessions']} "
        f"session(s)); partitions holding events: {load['partitions_holding_events']}; log with indexes "
        f"{load['size']}",
        f"- bench.hundred_k (id int primary key, title text, price int, seats int): tracked empty, "
        f"{HUNDRED_K:,} rows inserted, then {ROUNDS} rounds of UPDATEs of 40% of the rows, DELETEs of 2%, "
        f"re-INSERTs of the rows deleted the round before, and in round 4 a change of key of 1 row in 1,000; "
        f"captured events: {sum(RESULTS['hundred_k']['events'].values()):,} "
        f"({', '.join(f'{n:,} {a}' for a, n in RESULTS['hundred_k']['events'].items())}) "
        f"in {RESULTS['hundred_k']['seconds']:.0f} s; "
        f"{RESULTS['hundred_k']['rows_at_mid']:,} rows after round {MID_ROUND} (\"middle\", a snapshot kept), "
        f"{RESULTS['hundred_k']['rows']:,} at the end; then `ANALYZE {RESULTS['hundred_k']['analyzed']}`, "
        "the partition all of it landed in, as autovacuum does within a minute of such a history",
        "",
        "## as_of() of one row (median of 20 runs, timed in the server, warm cache)",
        "",
        "| row, and the answer the documented rule expects | instant | median ms | rows | as documented | "
        "under 10 ms |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in one:
        right = "—" if r["right"] is None else ("yes" if r["right"] else "**no**")
        if r.get("snapshot_agrees") is False:
            right += " (differs from the snapshot at the instant, as the rule says)"
        lines.append(f"| {r['name']} | {r['instant']} | {r['median_ms']:.3f} | {r['rows']} | {right} | "
                     f"{'yes' if r['median_ms'] < 10 else '**no**'} |")
    lines += [
        "",
        "\"As documented\": the rows as_of() returned, typed, equal the answer of docs/reference.md, section 9 "
        "(\"one row is named by the key it has now (or last had): it is followed back through its changes of "
        "key\"), computed by the benchmark from the trail on its own (pg_temp.expected_row() in "
        "bench/time_travel.py): take the key's latest arrival (its latest INSERT or BASELINE, or the latest "
        "UPDATE that moved a row to that key); if it is after the instant and an INSERT or BASELINE, no row, "
        "even if an earlier, since-deleted row had that key at the instant; if it is a change of key after the "
        "instant, the same with the previous key, among the events before that one; otherwise the state left "
        "by the key's last event at or before the instant among that incarnation's events (no row after a "
        "DELETE, or when the table's last TRUNCATE at or before the instant came later). For bench.hundred_k "
        "the rule's answer is also compared with the snapshot taken at the instant: it differs only where the "
        "rule says so (a key inserted again after the instant names the new row, which did not exist yet).",
        "",
        "## as_of() of a whole table",
        "",
        "| table, instant | its events up to then | rows | median ms (runs) | one run, own backend | "
        "peak backend private memory | temporary files | rows as at the instant |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for w in wide:
        c = w["check"]
        if c is None:
            right = "—"
        else:
            right = ("yes" if c["right"] else "**no**") + (
                f": {c['rows']:,} rows, sum(price) {c['sum_price']:,}; reference {c['reference_rows']:,}, "
                f"{c['reference_sum_price']:,}; {c['rows_not_in_reference']} extra, "
                f"{c['reference_rows_missing']} missing")
        lines.append(f"| {w['name']} | {w['events_up_to_at']:,} | {w['rows']:,} | "
                     f"{ms(w['median_ms'])} ({w['runs']}) | {w['single_run_s']:,.2f} s | {mib(w['peak_kib'])} | "
                     f"{w['temp_bytes'] / 2**20:,.1f} MiB | {right} |")
    idle = RESULTS["idle_peak_kib"]
    lines += [
        "",
        f"Peak private memory is the backend's largest RssAnon (anonymous pages, not shared_buffers) sampled "
        f"every 20 ms (bench/backend.py); a backend running `SELECT 1` peaks at {mib(idle)}. Temporary files: "
        "pg_stat_database.temp_bytes written by that backend. \"Rows as at the instant\": the rows, typed, "
        "compared one by one (EXCEPT ALL both ways) with the table at that instant (the snapshot, or the "
        "table itself at the end) or, for the synthetic table, with each key's last event.",
        "",
        f"## Baseline of a {base['rows']:,}-row table",
        "",
        f"`bench.million` (id, title, price, at timestamptz; primary key; {base['table_bytes'] / 2**20:,.0f} MiB). "
        "A checkpoint before each statement; WAL is the insert position's advance over the statement. "
        "The plain copy is `CREATE TABLE bench.million_copy (LIKE bench.million); "
        "INSERT INTO bench.million_copy SELECT * FROM bench.million` (no index, as LIKE makes it), "
        "run once before and once after the baseline.",
        "",
        "| statement | seconds | WAL | peak backend private memory | autovacuum meanwhile |",
        "|---|---:|---:|---:|---|",
    ]
    for r in base["runs"]:
        lines.append(f"| {r['name']} | {r['seconds']:,.2f} | {r['wal_bytes'] / 2**20:,.1f} MiB | "
                     f"{mib(r['peak_kib'])} | {r['autovacuum_meanwhile'] or 'none'} |")
    copies = [r for r in base["runs"] if "copy" in r["name"]]
    track = next(r for r in base["runs"] if "track" in r["name"])
    copy_s = statistics.mean(r["seconds"] for r in copies)
    copy_wal = statistics.mean(r["wal_bytes"] for r in copies)
    c = base["check"]
    lines += [
        "",
        # (A copy of a few rows, in a quick try, can time as 0.)
        f"Baseline / plain copy (mean of the two copies): "
        f"{f'{track_s / copy_s:.1f}×' if (track_s := track['seconds']) and copy_s else 'n/a:'} the time, "
        f"{track['wal_bytes'] / copy_wal:.1f}× the WAL ({track['wal_bytes'] / base['rows']:,.0f} bytes of WAL "
        f"per row against {copy_wal / base['rows']:,.0f}); the log grew by {base['log_grew_bytes'] / 2**20:,.0f} MiB "
        f"with its indexes. Events written: {c['baseline_events']:,} BASELINE for {c['distinct_keys']:,} keys and "
        f"{c['track_events']} TRACK, in {c['transactions']} transaction(s): "
        f"{'right' if c['right'] else '**wrong**'}.",
        "",
    ]
    if rev:
        lines += [
            "## revert_transaction()",
            "",
            f"A transaction of {sum(rev['events'].values()):,} row changes of bench.hundred_k "
            f"({', '.join(f'{n} {a}' for a, n in rev['events'].items())}), reverted three times in a transaction "
            f"rolled back, then once committed: {', '.join(f'{t:,.0f}' for t in rev['ms'])} ms "
            f"(median {rev['median_ms']:,.0f} ms, {rev['median_ms'] / rev['reverted']:.2f} ms per event); "
            f"the revert wrote {', '.join(f'{n} {a}' for a, n in rev['revert_events'].items())} events with "
            f"context.reverts; the table is {'again as it was before the transaction' if rev['table_as_before'] else '**not** as before the transaction'}.",
            "",
            "Where the time goes: one more run (rolled back) under auto_explain (nested statements, no analyze), "
            "the statements' execution summed by their text (planning, and PL/pgSQL between statements, not "
            "counted):",
            "",
            "| ms | times | statement |",
            "|---:|---:|---|",
        ]
        for took, count, text in rev["profile"]:
            lines.append(f"| {took:,.1f} | {count:,} | `{text.replace('|', '&#124;')}` |")
        lines.append("")
    lines += ["## Plans", "",
              "auto_explain (analyze, buffers, nested statements) of one run of each; the statements "
              "under 1 ms are left out.", ""]
    for r in one + wide:
        if r.get("plan"):
            lines += [f"### {r['name']}", "", f"`{r['query'] if 'query' in r else r['entity']}`", "",
                      "```", trim_plan(r["plan"]), "```", ""]
    raw = dict(RESULTS, one_row=[{k: v for k, v in r.items() if k != "plan"} for r in one],
               table_wide=[{k: v for k, v in r.items() if k != "plan"} for r in wide], baseline=base,
               revert=rev)
    lines += ["## Raw figures", "", "```json", json.dumps(raw, indent=1), "```", ""]
    with open(OUT, "w") as out:
        out.write("\n".join(lines))
    say(f"wrote {OUT}")


def main():
    RESULTS["loadavg"] = [loadavg()]
    RESULTS["source"] = source()
    RESULTS["machine"] = machine()
    if psql("SELECT pg_current_xact_id()::text::numeric >= 4294967296") != "t":
        raise SystemExit("this cluster's transaction ids collide with the trail's: bench/time_travel.sh "
                         "starts them at 2^32 (pg_resetwal -e 1)")
    load()
    psql("CREATE TYPE bench.course AS (id int, title text, price int, seats int)")
    RESULTS["idle_peak_kib"] = in_own_backend("SELECT 1")[1]
    one = one_row_synthetic()
    mid = psql(f"SELECT ({MID})::text")
    wide = [table_wide("bench.table_25", mid, "bench.table_25 (synthetic trail), middle of the year",
                       reference=f"""SELECT (jsonb_populate_record(NULL::bench.course, l.new_values)).*
                                       FROM (SELECT DISTINCT ON (e.entity_id) e.action, e.new_values
                                               FROM audit_log.events e
                                              WHERE e.entity = 'bench.table_25' AND e.occurred_at <= '{mid}'
                                                AND e.action IN ('INSERT', 'UPDATE', 'DELETE')
                                              ORDER BY e.entity_id, e.occurred_at DESC, e.id DESC) AS l
                                      WHERE l.action <> 'DELETE'""",
                       typed="bench.course")]
    marks = history_for_hundred_k()
    one += one_row_hundred_k(marks["mid"])
    wide.append(table_wide("bench.hundred_k", marks["mid"], f"bench.hundred_k, middle (after round {MID_ROUND})",
                           reference="SELECT * FROM bench.hundred_k_mid", typed="bench.hundred_k", plan=True))
    wide.append(table_wide("bench.hundred_k", marks["end"], "bench.hundred_k, end",
                           reference="SELECT * FROM bench.hundred_k", typed="bench.hundred_k"))
    base = baseline()
    wide.append(table_wide("bench.million", clock(), "bench.million, after its baseline",
                           reference="SELECT * FROM bench.million", typed="bench.million", runs=1))
    rev = revert()
    RESULTS["loadavg"].append(loadavg())
    report(one, wide, base, rev)


if __name__ == "__main__":
    main()
