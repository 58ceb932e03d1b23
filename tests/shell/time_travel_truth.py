"""as_of() and revert against the truth (tests/shell/time_travel_truth.sh).

A randomized workload on three tracked tables (a baseline of rows older than
tracking, excluded and redacted columns, NULLs, many types, key changes, rows
moving between partitions, a rename, a TRUNCATE) snapshots every table with
to_jsonb() after each transaction. Then as_of() at each of those instants must
give exactly the snapshot (excluded columns absent, redacted ones masked), for
the whole table and for single rows; and reverting the transactions, newest
first, must bring the tables back through the same snapshots.
"""

import json
import os
import random
import re
import sys

import psycopg

SEED = int(os.environ.get("TRUTH_SEED", "20261201"))
STEPS = int(os.environ.get("TRUTH_STEPS", "160"))
rng = random.Random(SEED)

conn = psycopg.connect(dbname=sys.argv[1], autocommit=True)


def q(sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
        return cur.fetchall() if cur.description else None


# The rows as_of() says the trail cannot account for (its NOTICE).
notices = []
conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))


def as_of_counted(name, at):
    notices.clear()
    rows = q("SELECT entity_id, \"row\" FROM audit_log.as_of(%s, %s)", name, at)
    return rows, sum(int(m.group(1)) for m in (re.search(r"cannot account for (\d+) row", n) for n in notices) if m)


def fail(message):
    print(f"FAILED (seed {SEED}): {message}")
    sys.exit(1)


q("""
CREATE TABLE learners (id int PRIMARY KEY, uid serial, name text, score numeric(6,2), seen timestamptz,
                       tags text[], data jsonb, note text, secret text, skip text);
CREATE TABLE stock (region text, id int, qty int, label text, uid serial, PRIMARY KEY (region, id))
    PARTITION BY LIST (region);
CREATE TABLE stock_eu PARTITION OF stock FOR VALUES IN ('eu');
CREATE TABLE stock_us PARTITION OF stock FOR VALUES IN ('us');
CREATE TABLE kinds (k uuid PRIMARY KEY, b boolean, i2 smallint, i8 bigint, f8 double precision,
                    n numeric, d date, t time, ts timestamp, tz timestamptz, iv interval, ip inet,
                    j json, by bytea, arr int[], txt text);
""")
# Rows older than tracking: the baseline tells their story.
q("INSERT INTO learners (id, name, score, seen, tags, data, note, secret, skip) SELECT g, 'learner ' || g, g * 1.5, '2026-01-01'::timestamptz + g * interval '1 day', "
  "ARRAY['t' || g], jsonb_build_object('g', g), NULL, 's' || g, 'k' || g FROM generate_series(1, 12) g")
q("INSERT INTO stock (region, id, qty, label) SELECT CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g, g * 10, 'item ' || g "
  "FROM generate_series(1, 10) g")
before_tracking = q("SELECT clock_timestamp()")[0][0]
q("SELECT audit_log.track('learners', exclude_columns => '{skip}', redact_columns => '{secret}', baseline => true)")
q("SELECT audit_log.track('stock', baseline => true)")
q("SELECT audit_log.track('kinds')")

names = {"learners": "learners", "stock": "stock", "kinds": "kinds"}
keys = {"learners": ["id"], "stock": ["region", "id"], "kinds": ["k"]}


def snapshot():
    state = {}
    for table, name in names.items():
        key = ", ".join(f"'{k}', {k}" for k in keys[table])
        rows = q(f"SELECT jsonb_build_object({key}), to_jsonb(snap) FROM {name} snap")
        rendered = {}
        for entity_id, row in rows:
            if table == "learners":
                row.pop("skip")
                row["secret"] = "[REDACTED]"
            rendered[json.dumps(entity_id, sort_keys=True)] = row
        state[table] = rendered
    return state


def rand_text():
    return rng.choice([None, "", "plain", "a,b", 'quote " here', "line\nbreak", "émoji 🙂", "back\\slash"])


def learners_step(late):
    # Late in the workload (the transactions reverted below), no deletion and
    # no change of the redacted column: undoing them needs values the trail
    # does not hold. Earlier ones check that such a revert is refused.
    ids = [r[0] for r in q(f"SELECT id FROM {names['learners']}")]
    op = rng.choice((["insert", "update", "update", "rekey"] if late else
                     ["insert", "update", "update", "delete", "rekey", "secret"]) if ids else ["insert"])
    if op == "insert":
        new = rng.randint(13, 500)
        q(f"INSERT INTO {names['learners']} (id, name, score, seen, tags, data, note, secret, skip) "
          "VALUES (%s, %s, %s, now(), %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
          new, rand_text(), rng.choice([None, rng.randint(0, 9999) / 100]),
          rng.choice([None, ["x", "y,z"]]), json.dumps({"n": rng.randint(0, 9)}), rand_text(), "sec", "skipped")
    elif op == "update":
        q(f"UPDATE {names['learners']} SET name = %s, score = %s, note = %s, skip = %s WHERE id = %s",
          rand_text(), rng.choice([None, rng.randint(0, 9999) / 100]), rand_text(), rand_text(), rng.choice(ids))
    elif op == "secret":
        q(f"UPDATE {names['learners']} SET secret = %s WHERE id = %s", rand_text(), rng.choice(ids))
    elif op == "delete":
        q(f"DELETE FROM {names['learners']} WHERE id = %s", rng.choice(ids))
    else:
        new = rng.randint(501, 900)
        q(f"UPDATE {names['learners']} SET id = %s WHERE id = %s "
          f"AND NOT EXISTS (SELECT 1 FROM {names['learners']} WHERE id = %s)", new, rng.choice(ids), new)


def stock_step():
    rows = q("SELECT region, id FROM stock")
    op = rng.choice(["insert", "update", "move", "delete", "rekey"] if rows else ["insert"])
    if op == "insert":
        q("INSERT INTO stock (region, id, qty, label) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
          rng.choice(["eu", "us"]), rng.randint(11, 300), rng.choice([None, rng.randint(0, 99)]), rand_text())
    else:
        region, id_ = rng.choice(rows)
        if op == "update":
            q("UPDATE stock SET qty = %s, label = %s WHERE region = %s AND id = %s",
              rng.choice([None, rng.randint(0, 99)]), rand_text(), region, id_)
        elif op == "move":  # to the other partition: a change of key too
            other = "us" if region == "eu" else "eu"
            q("UPDATE stock SET region = %s WHERE region = %s AND id = %s "
              "AND NOT EXISTS (SELECT 1 FROM stock WHERE region = %s AND id = %s)", other, region, id_, other, id_)
        elif op == "rekey":
            new = rng.randint(301, 600)
            q("UPDATE stock SET id = %s WHERE region = %s AND id = %s "
              "AND NOT EXISTS (SELECT 1 FROM stock WHERE region = %s AND id = %s)", new, region, id_, region, new)
        else:
            q("DELETE FROM stock WHERE region = %s AND id = %s", region, id_)


def kinds_step():
    keys_now = [r[0] for r in q("SELECT k FROM kinds")]
    if keys_now and rng.random() < 0.5:
        q("UPDATE kinds SET f8 = %s, n = %s, iv = %s, j = %s, by = %s, arr = %s, txt = %s WHERE k = %s",
          rng.choice([None, 0.1, -2.5e-10, 1e300]), rng.choice([None, "1.50", "-0.000001"]),
          rng.choice([None, "1 day 02:03:04", "-3 months"]), rng.choice([None, '{"a": [1, 2]}', "[]"]),
          rng.choice([None, b"\x00\xff", b""]), rng.choice([None, [1, None, 3]]), rand_text(), rng.choice(keys_now))
    elif keys_now and rng.random() < 0.3:
        q("DELETE FROM kinds WHERE k = %s", rng.choice(keys_now))
    else:
        q("INSERT INTO kinds VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, %s, %s, %s, now(), %s, %s, %s, %s, %s, %s)",
          rng.choice([None, True, False]), rng.randint(-32768, 32767), rng.randint(-2**62, 2**62),
          rng.choice([None, 3.14159, -0.0]), rng.choice([None, "123456789.123456789"]),
          rng.choice([None, "2024-02-29"]), rng.choice([None, "23:59:59.999999"]),
          rng.choice([None, "1999-12-31 23:59:59"]), rng.choice([None, "00:00:01"]),
          rng.choice([None, "10.0.0.1/8", "::1"]), rng.choice([None, '{"x": "y"}']),
          rng.choice([None, b"\x01\x02"]), rng.choice([None, [7]]), rand_text())


snapshots = []  # (time, state, tx_id of the transaction just before, or None)
snapshots.append((q("SELECT clock_timestamp()")[0][0], snapshot(), None))
for step in range(STEPS):
    if step == STEPS // 3:
        q("TRUNCATE kinds")
    if step == STEPS // 2:
        q("ALTER TABLE learners RENAME TO pupils")
        names["learners"] = "pupils"
    with conn.transaction():
        for _ in range(rng.randint(1, 3)):
            step_of = rng.choice([lambda: learners_step(step >= STEPS - 40), stock_step, kinds_step])
            step_of()
        tx = q("SELECT pg_current_xact_id()::text")[0][0]
    snapshots.append((q("SELECT clock_timestamp()")[0][0], snapshot(), tx))

# as_of() at each instant is the snapshot, table-wide and row by row.
final = snapshot()
checked_rows = 0
for at, state, _ in snapshots:
    for table, name in names.items():
        rows, unaccounted = as_of_counted(name, at)
        got = {json.dumps(e, sort_keys=True): row for e, row in rows}
        # Every row's story is told from tracking on (baselines; kinds began empty).
        if unaccounted:
            fail(f"as_of({name}, {at}) says it cannot account for {unaccounted} row(s)")
        if got != state[table]:
            missing = set(state[table]) - set(got)
            extra = set(got) - set(state[table])
            wrong = [k for k in set(got) & set(state[table]) if got[k] != state[table][k]][:3]
            fields = [(k, f, got[k].get(f), state[table][k].get(f)) for k in wrong
                      for f in sorted(set(got[k]) | set(state[table][k])) if got[k].get(f) != state[table][k].get(f)]
            fail(f"as_of({name}, {at}): missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}, "
                 f"different fields (key, field, as_of, truth) {fields[:6]}")
        # One row: named by the key it has now, it is followed back to the
        # key it had then (rows carry a uid of their own to tell).
        ident = "k" if table == "kinds" else "uid"
        then = {row[ident]: row for row in state[table].values()}
        for key_now, row_now in rng.sample(sorted(final[table].items()), min(3, len(final[table]))):
            one = [r[0] for r in q("SELECT \"row\" FROM audit_log.as_of(%s, %s, %s)", name, at, key_now)]
            expected = [then[row_now[ident]]] if row_now[ident] in then else []
            if one != expected:
                fail(f"as_of({name}, {at}, {key_now}) = {one}, expected {expected}")
            checked_rows += 1
print(f"as_of matches {len(snapshots)} snapshots of 3 tables ({checked_rows} single rows checked too)")

# Before tracking began the trail knows no row: none is invented, and the
# NOTICE counts exactly the rows the baselines found later.
for table, expected in (("learners", 12), ("stock", 10), ("kinds", 0)):
    rows, unaccounted = as_of_counted(names[table], before_tracking)
    if rows or unaccounted != expected:
        fail(f"as_of({names[table]}) before tracking: {len(rows)} row(s), {unaccounted} unaccounted, "
             f"expected none and {expected}")

# Reverting the transactions newest first walks back through the snapshots,
# down to the TRUNCATE (which cannot be undone).
reverted = 0
for (at_before, before, _), (at_after, after, tx) in reversed(list(zip(snapshots, snapshots[1:]))):
    if reverted >= 40:
        break
    current = snapshot()
    if current != after:
        fail(f"before reverting transaction {tx}, the tables are not as it left them")
    if not q("SELECT count(*) FROM audit_log.events WHERE tx_id = %s::xid8", tx)[0][0]:
        # A transaction whose statements matched no row wrote nothing: there
        # is nothing to revert, and revert_transaction() says so.
        if before != after:
            fail(f"transaction {tx} changed the tables but the trail has no event of it")
        try:
            q("SELECT audit_log.revert_transaction(%s::xid8)", tx)
            fail(f"revert_transaction({tx}) of a transaction without events was not refused")
        except psycopg.errors.InvalidParameterValue:
            pass
        continue
    try:
        q("SELECT audit_log.revert_transaction(%s::xid8)", tx)
    except psycopg.Error as e:
        fail(f"revert_transaction({tx}) refused: {e}")
    if snapshot() != before:
        fail(f"revert_transaction({tx}) did not bring the tables back to the snapshot before it")
    reverted += 1
print(f"{reverted} transactions reverted, newest first: each brought the tables back to the snapshot before it")

# A deletion or a change of the redacted column needs values the trail does
# not hold: refused, and nothing changes.
refusable = q("SELECT id FROM audit_log.events WHERE entity IN ('public.learners', 'public.pupils') "
              "AND (action = 'DELETE' OR (action = 'UPDATE' AND 'secret' = ANY (changed_fields))) ORDER BY id")
if not refusable:
    fail("the workload made no deletion or change of the redacted column")
before = snapshot()
for (event_id,) in refusable[:5]:
    try:
        q("SELECT audit_log.revert(%s)", event_id)
        fail(f"revert({event_id}) went through without the values it needs")
    except psycopg.errors.ObjectNotInPrerequisiteState as e:
        if "does not hold" not in str(e) and "no longer" not in str(e):
            fail(f"revert({event_id}) refused for another reason: {e}")
if snapshot() != before:
    fail("a refused revert changed something")
print(f"reverting a learner's deletion or redacted change: refused ({len(refusable[:5])} tried), nothing changed")
