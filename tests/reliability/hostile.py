"""Hostile input, generated (property-based, with Hypothesis).

    hostile.py [EXAMPLES]

Random argument values for every public function (NULLs, empty and huge
strings, invalid JSON, unknown tables, extreme timestamps, negative and huge
ids, every action in any case) and random table shapes for track() (odd
column names, every type capture handles, no primary key, dropped columns,
1,600 columns), followed by writes. Properties:
  - the server never crashes: a sentinel session opened first is still there
    at the end (a crashed backend makes PostgreSQL end every session);
  - every error has a SQLSTATE, and never XX000 (internal error);
  - a failing call changes nothing (events, tracked tables, capture triggers);
  - every successful write to a tracked table adds exactly its events.
"""

import json
import string
import sys

import psycopg
from hypothesis import HealthCheck, given, settings, strategies as st
from psycopg import sql

EXAMPLES = int(sys.argv[1]) if len(sys.argv) > 1 else 100
RUN = settings(max_examples=EXAMPLES, deadline=None, database=None,
               suppress_health_check=list(HealthCheck))

db = psycopg.connect(autocommit=True)
sentinel = psycopg.connect(autocommit=True)
sentinel_pid = sentinel.info.backend_pid
tried = {"calls": 0, "errors": 0, "tables": 0, "writes": 0}

# What a client can send at all: no NUL byte, no lone surrogate.
chars = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
huge = st.sampled_from(["x" * 1_000_000, "é" * 100_000, "\"" * 10_000, "'; DROP TABLE x; --" * 1000])
texts = st.one_of(st.none(), st.just(""), st.text(chars, max_size=40), huge,
                  st.text(alphabet=string.printable, max_size=200))
actions = st.one_of(texts, st.sampled_from(["insert", "UPDATE", "Delete", "truncate", "TRACK",
                                            "untrack", "ddl", " INSERT", "INSERT\n"]))
timestamps = st.one_of(st.none(), st.sampled_from(["infinity", "-infinity", "4713-01-01 00:00 BC",
                                                   "294276-12-31 23:59:59", "1970-01-01", "2026-11-21 09:30:00+14"]),
                       st.datetimes().map(lambda d: d.isoformat()))
ids = st.one_of(st.none(), st.integers(min_value=-2**63, max_value=2**63 - 1),
                st.sampled_from([0, -1, 1, 2**31, 2**63 - 1]))
json_texts = st.one_of(st.none(), texts,
                       st.recursive(st.none() | st.booleans() | st.integers() | st.text(chars, max_size=10),
                                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(chars, max_size=5), c, max_size=3),
                                    max_leaves=8).map(json.dumps))
text_arrays = st.one_of(st.none(), st.lists(texts, max_size=4))
max_rows = st.one_of(st.none(), st.integers(min_value=-2**31, max_value=2**31 - 1), st.sampled_from([0, 1, 100]))


def state():
    return db.execute("""
        SELECT (SELECT count(*) FROM audit_log.events),
               (SELECT count(*) FROM audit_log.tracked),
               (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'audit\\_log\\_%')""").fetchone()


def call(statement, params=(), in_transaction=False):
    """Runs statement; returns True if it succeeded. Fails the property on an
    internal error, a missing SQLSTATE, a crash, or a half-done failure."""
    tried["calls"] += 1
    before = state()
    try:
        if in_transaction:
            with db.transaction():
                db.execute(statement, params)
        else:
            db.execute(statement, params)
        return True
    except psycopg.errors.ProgramLimitExceeded:
        tried["errors"] += 1
    except psycopg.DatabaseError as error:
        tried["errors"] += 1
        code = error.sqlstate
        assert code is not None, f"error without SQLSTATE: {error!r} for {statement}"
        assert code != "XX000", f"internal error: {error} for {statement} {params!r:.300}"
    assert not db.closed and not db.broken, f"session lost after {statement}"
    assert state() == before, f"a failed call changed something: {statement} {params!r:.300}"
    return False


@RUN
@given(since=timestamps, until=timestamps, actor=texts, entity=texts, action=actions,
       rows=max_rows, before=ids)
def test_list(since, until, actor, entity, action, rows, before):
    call("SELECT count(*) FROM audit_log.list(%s::timestamptz, %s::timestamptz, %s, %s, %s, %s, %s)",
         (since, until, actor, entity, action, rows, before))


@RUN
@given(since=timestamps, until=timestamps, actor=texts, entity=texts, action=actions)
def test_export(since, until, actor, entity, action):
    args = (since, until, actor, entity, action)
    call("SELECT count(*) FROM audit_log.export(%s::timestamptz, %s::timestamptz, %s, %s, %s)", args)
    call("SELECT count(*) FROM audit_log.export_csv(%s::timestamptz, %s::timestamptz, %s, %s, %s)", args)


@RUN
@given(entity=texts, key=json_texts, event=ids)
def test_history_and_changes(entity, key, event):
    call("SELECT count(*) FROM audit_log.history(%s, %s::jsonb)", (entity, key))
    call("SELECT count(*) FROM audit_log.changes(%s)", (event,))


@RUN
@given(actor=texts, context=json_texts)
def test_settings(actor, context):
    call("SELECT audit_log.set_actor(%s, %s::jsonb)", (actor, context), in_transaction=True)
    call("SELECT set_config('audit_log.context', %s, false)", (context,))
    call("SELECT set_config('audit_log.actor', %s, false)", (actor,))
    db.execute("RESET audit_log.actor")
    db.execute("RESET audit_log.context")


@RUN
@given(target=texts, exclude=text_arrays, redact=text_arrays, schema=texts, follow=st.one_of(st.none(), st.booleans()))
def test_tracking_arguments(target, exclude, redact, schema, follow):
    call("SELECT audit_log.track(%s::regclass, %s, %s)", (target, exclude, redact))
    call("SELECT audit_log.untrack(%s::regclass)", (target,))
    call("SELECT audit_log.track_schema(%s, %s, %s)", (schema, exclude, follow))


TYPES = {
    "int2": "1", "int4": "-2147483648", "int8": "9223372036854775807", "numeric": "'NaN'",
    "float4": "'-Infinity'", "float8": "1e308", "text": "E'a\\nb\"c'", "varchar(5)": "'abc'",
    "char(3)": "'a'", "bool": "true", "date": "'infinity'", "timestamp": "'294276-12-31'",
    "timestamptz": "'-infinity'", "interval": "'1 year 2 mons'", "uuid": "gen_random_uuid()",
    "jsonb": "'{\"a\": [1, null]}'", "json": "'[1, 2]'", "bytea": "'\\x00ff'", "inet": "'::1'",
    "int[]": "'{1,NULL}'", "text[]": "'{\"a b\",c}'", "point": "'(1,2)'", "money": "'1.5'",
}
column_names = st.text(alphabet=string.ascii_letters + string.digits + " \"'.;-\n$é", min_size=1, max_size=20)


@RUN
@given(columns=st.lists(st.tuples(column_names, st.sampled_from(sorted(TYPES))), min_size=1, max_size=12,
                        unique_by=lambda c: c[0]),
       with_key=st.booleans(), drop=st.booleans(), policy=st.data())
def test_table_shapes(columns, with_key, drop, policy):
    tried["tables"] += 1
    db.execute("DROP TABLE IF EXISTS public.shape")
    defs = [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns]
    if with_key:
        defs.insert(0, sql.SQL("shape_id serial PRIMARY KEY"))
    db.execute(sql.SQL("CREATE TABLE public.shape ({})").format(sql.SQL(", ").join(defs)))
    if drop and len(columns) > 1:
        db.execute(sql.SQL("ALTER TABLE public.shape DROP COLUMN {}").format(sql.Identifier(columns[0][0])))
        columns = columns[1:]
    names = [name for name, _ in columns] + ["no such column"]
    exclude = policy.draw(st.lists(st.sampled_from(names), max_size=2))
    redact = policy.draw(st.lists(st.sampled_from(names), max_size=2))
    tracked = call("SELECT audit_log.track('public.shape', %s, %s)", (exclude, redact))
    values = sql.SQL(", ").join(sql.SQL(TYPES[kind]) for _, kind in columns)
    targets = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    for statement, changed in [
        (sql.SQL("INSERT INTO public.shape ({}) VALUES ({}), ({})").format(targets, values, values), 2),
        (sql.SQL("UPDATE public.shape SET {} = NULL").format(sql.Identifier(columns[-1][0])), None),
        (sql.SQL("DELETE FROM public.shape"), 2),
    ]:
        before = db.execute("SELECT count(*) FROM audit_log.events").fetchone()[0]
        cur = db.execute(statement)
        tried["writes"] += 1
        after = db.execute("SELECT count(*) FROM audit_log.events").fetchone()[0]
        if tracked and changed is not None:
            assert after - before == cur.rowcount, f"{after - before} events for {cur.rowcount} rows: {statement.as_string(db)}"
        if not tracked:
            assert after == before
    db.execute("DROP TABLE public.shape")


def test_wide_table():
    """1,600 columns, the most PostgreSQL allows."""
    db.execute("DROP TABLE IF EXISTS public.wide")
    db.execute("CREATE TABLE public.wide (id int PRIMARY KEY, " +
               ", ".join(f"c{i} int DEFAULT {i}" for i in range(1, 1600)) + ")")
    assert call("SELECT audit_log.track('public.wide', '{c5}', '{c7}')")
    db.execute("INSERT INTO public.wide (id) VALUES (1)")
    db.execute("UPDATE public.wide SET c1599 = 0")
    new = db.execute("SELECT new_values FROM audit_log.events WHERE entity = 'public.wide' "
                     "AND action = 'UPDATE'").fetchone()[0]
    assert len(new) == 1599 and "c5" not in new and new["c7"] == "[REDACTED]" and new["c1599"] == 0
    db.execute("DROP TABLE public.wide")


if __name__ == "__main__":
    for test in [test_list, test_export, test_history_and_changes, test_settings,
                 test_tracking_arguments, test_table_shapes, test_wide_table]:
        test()
    assert sentinel.execute("SELECT pg_backend_pid()").fetchone()[0] == sentinel_pid, "the server restarted"
    print(json.dumps({"examples_per_property": EXAMPLES, **tried}))
