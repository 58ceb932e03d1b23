"""The benchmarks' synthetic trail (bench/reading.py, bench/time_travel.py,
bench/scale.py): events written straight into the log as a restore would,
with the shape capture gives them. Event g is about key (g * 7) % KEYS of
table bench.table_NN, NN = (g * 31) % TABLES, acted by one of ACTORS users;
30% INSERT, 60% UPDATE, 10% DELETE, a TRUNCATE every 100,000 events. A key
gets one action only, and all its events lie in one table.
"""

TABLES, ACTORS, KEYS = 50, 1000, 20000


# pg_temp.median_ms(query, runs, budget_ms): "median|runs", the median in ms
# of runs of the query timed inside the server; with a budget, a query of
# seconds stops after its third run once the budget is spent.
TIMER = """
CREATE OR REPLACE FUNCTION pg_temp.median_ms(query text, runs int, budget_ms numeric DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first timestamptz := clock_timestamp();
    started timestamptz;
    took numeric[] := '{}';
BEGIN
    FOR i IN 1..runs LOOP
        started := clock_timestamp();
        EXECUTE 'SELECT count(*) FROM (' || query || ') q';
        took := took || (extract(epoch FROM clock_timestamp() - started) * 1000)::numeric;
        EXIT WHEN i >= 3 AND extract(epoch FROM clock_timestamp() - first) * 1000 > budget_ms;
    END LOOP;
    RETURN (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t)::numeric, 3) FROM unnest(took) t)
           || '|' || cardinality(took);
END $$;
"""


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


def reading_queries(psql, mid, events, week_label):
    """The reading benchmark's queries (name, SQL) on the week from `mid` (an
    SQL timestamptz): list() with each filter, the next page, history() of a
    row and changes() of an event. psql(sql) answers the lookup of an actor
    and a row that do occur in that week and table, so that the combined
    filter and history() return something."""
    week_later = f"{mid} + interval '7 days'"
    event_id = events // 2 + 3  # an UPDATE
    actor, key = psql(f"""SELECT actor, entity_id FROM audit_log.events
                          WHERE entity = 'bench.table_25' AND action = 'UPDATE'
                            AND occurred_at >= {mid} AND occurred_at < {week_later}
                          ORDER BY occurred_at, id LIMIT 1""").split("|")
    return [
        ("list() first page, no filter", "SELECT * FROM audit_log.list()"),
        (f"list(since, until): one week, {week_label}",
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
