"""The benchmarks' synthetic trail (bench/reading.py, bench/time_travel.py,
bench/scale.py): events written straight into the log as a restore would,
with the shape capture gives them. Event g is about key (g * 7) % KEYS of
table bench.table_NN, NN = (g * 31) % TABLES, acted by one of ACTORS users;
30% INSERT, 60% UPDATE, 10% DELETE, a TRUNCATE every 100,000 events. A key
gets one action only, and all its events lie in one table.
"""

TABLES, ACTORS, KEYS = 50, 1000, 20000


def fill(target, lo, hi, occurred_at, tx_id, months_from=""):
    """INSERT of events lo..hi into target. occurred_at and tx_id are SQL
    expressions of g (the event id); months_from, a LATERAL item they may use."""
    return f"""
INSERT INTO {target}
SELECT g,
       {occurred_at},
       ({tx_id})::text::xid8,
       'user-' || ((g * 7919) % {ACTORS}) || '@example.org',
       'app', 'web', ('10.0.' || (g % 200) || '.' || (g % 250))::inet,
       jsonb_build_object('request_id', 'r-' || g),
       'bench.table_' || lpad(((g * 31) % {TABLES})::text, 2, '0'),
       jsonb_build_object('id', k),
       a,
       CASE WHEN a IN ('UPDATE', 'DELETE') THEN jsonb_build_object('id', k, 'title', 'Course ' || k, 'price', g % 1000, 'seats', g % 30) END,
       CASE WHEN a IN ('INSERT', 'UPDATE') THEN jsonb_build_object('id', k, 'title', 'Course ' || k, 'price', (g + 1) % 1000, 'seats', g % 30) END,
       CASE WHEN a = 'UPDATE' THEN ARRAY['price'] END
  FROM generate_series({lo}::bigint, {hi}) AS g,{months_from}
       LATERAL (SELECT (g * 7) % {KEYS} AS k,
                       CASE WHEN g % 100000 = 0 THEN 'TRUNCATE'
                            WHEN g % 10 < 3 THEN 'INSERT'
                            WHEN g % 10 < 9 THEN 'UPDATE'
                            ELSE 'DELETE' END AS a) AS x
"""


def fill_over_days(lo, hi, start, days, events):
    """The reading benchmark's trail: events spread evenly over `days` from
    `start`, three to a transaction id, into audit_log.events."""
    return fill("audit_log.events", lo, hi,
                f"timestamptz '{start}' + g * ({days} * 86400.0 / {events}) * interval '1 second'",
                "1000 + g / 3")
