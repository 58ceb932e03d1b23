"""Resources (tests/shell/resources.sh).

    resources.py TABLES

1. One session tracks TABLES tables and writes to each: the backend's
   private memory grows by a small, bounded amount per table (measured from
   /proc/<backend>/status, since capture's per-table cache lives outside
   PostgreSQL's memory contexts).
2. A 100 MB row is captured (or refused with a SQLSTATE), never a crash.
3. statement_timeout and pg_cancel_backend() during a big audited UPDATE
   roll back cleanly: no event, no change.
4. export_proof() of PROOF_EVENTS sealed events holds little more than the
   proof it returns (the proof once, a few bytes per proven leaf), and
   verify() over them stays flat.
"""

import json
import sys
import threading
import time

import psycopg

TABLES = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
db = psycopg.connect(autocommit=True)
report = {}


def private_kib(pid):
    """Resident anonymous memory of a backend: its heap, not shared buffers."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon")


def many_tables():
    db.execute("DROP SCHEMA IF EXISTS many CASCADE")
    db.execute("CREATE SCHEMA many")
    for i in range(TABLES):
        db.execute(f"CREATE TABLE many.t{i} (id int PRIMARY KEY, a text, b numeric, c timestamptz, d jsonb)")
    db.execute("SELECT audit_log.track_schema('many', follow_new_tables => false)")
    writer = psycopg.connect(autocommit=True)
    pid = writer.info.backend_pid

    def write(tables, key=1):
        for i in tables:
            writer.execute(f"INSERT INTO many.t{i} VALUES ({key}, 'x', 1.5, now(), '{{\"k\": 1}}')")
            writer.execute(f"UPDATE many.t{i} SET b = b + 1 WHERE id = {key}")

    write(range(10))
    warm = private_kib(pid)
    write(range(10, TABLES))
    after = private_kib(pid)
    write(range(TABLES), key=2)  # again: the caches are full, nothing more should grow
    again = private_kib(pid)
    per_table = (after - warm) / (TABLES - 10)
    report.update(tables=TABLES, backend_kib_after_10=warm, backend_kib_after_all=after,
                  backend_kib_after_second_pass=again, kib_per_table=round(per_table, 1))
    events = db.execute("SELECT count(*) FROM audit_log.events WHERE entity LIKE 'many.%' "
                        "AND action IN ('INSERT', 'UPDATE')").fetchone()[0]
    assert events == 4 * TABLES, f"{events} events for {4 * TABLES} writes"
    # PostgreSQL's own relcache and catalog caches take some KiB per table too;
    # capture must not add more than a few per table, nor grow on a second pass.
    assert per_table < 64, f"{per_table:.1f} KiB per tracked table"
    assert again - after < 2048, f"a second pass over the same tables grew the backend by {again - after} KiB"
    writer.close()
    db.execute("DROP SCHEMA many CASCADE")


def big_row():
    db.execute("DROP TABLE IF EXISTS public.big")
    db.execute("CREATE TABLE public.big (id int PRIMARY KEY, body text, n int)")
    db.execute("SELECT audit_log.track('public.big')")
    # 100 MB that compresses poorly.
    db.execute("INSERT INTO public.big SELECT 1, string_agg(md5(g::text || random()::text), ''), 0 "
               "FROM generate_series(1, 100 * 1024 * 1024 / 32) g")
    db.execute("UPDATE public.big SET n = 1")
    sizes = db.execute("""SELECT action, length(coalesce(new_values, old_values) ->> 'body')
                            FROM audit_log.events WHERE entity = 'public.big' AND action <> 'TRACK'
                           ORDER BY id""").fetchall()
    assert [s[1] for s in sizes] == [100 * 1024 * 1024] * 2, sizes
    report["big_row_bytes_captured"] = sizes[0][1]
    db.execute("DROP TABLE public.big")


def peak_private_kib(pid, statement, session):
    """The backend's peak private memory while it runs the statement."""
    peak = [private_kib(pid)]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], private_kib(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = session.execute(statement).fetchone()[0]
    finally:
        done.set()
        sampler.join()
    return peak[0], result


def proof_memory(events=100_000):
    db.execute("DROP TABLE IF EXISTS public.proven")
    db.execute("CREATE TABLE public.proven (id int PRIMARY KEY, label text)")
    db.execute("SELECT audit_log.track('public.proven')")
    db.execute(f"INSERT INTO public.proven SELECT g, 'label ' || g FROM generate_series(1, {events}) g")
    db.execute("SELECT audit_log.seal()")
    with psycopg.connect(autocommit=True) as session:
        pid = session.info.backend_pid
        session.execute("SELECT length(audit_log.export_proof(entity => 'public.proven', "
                        "since => now() + interval '1 day'))")  # caches warm, nothing proven
        # What reading the selection itself takes (the executor's sort, SPI).
        before = private_kib(pid)
        peak, _ = peak_private_kib(
            pid, "SELECT count(*) FROM audit_log.export(entity => 'public.proven')", session)
        reading = peak - before
        before = private_kib(pid)
        peak, length = peak_private_kib(
            pid, "SELECT length(audit_log.export_proof(entity => 'public.proven'))", session)
        grown = peak - before
        proof_kib = length / 1024
        report.update(proof_events=events, proof_kib=round(proof_kib), export_backend_growth_kib=reading,
                      export_proof_backend_growth_kib=grown)
        # Reading the selection, the proof (65 bytes an event), 16 bytes per
        # proven leaf besides it, and some room: the proof used to be held
        # four times over, and SPI kept every row fetched.
        assert grown < reading + 1.5 * proof_kib + 4 * 1024, \
            f"export_proof() grew the backend by {grown} KiB for a proof of {proof_kib:.0f} KiB " \
            f"(reading the selection: {reading} KiB)"
        before = private_kib(pid)
        peak, problems = peak_private_kib(pid, "SELECT count(*) FROM audit_log.verify()", session)
        assert problems == 0, f"verify() found {problems} problems"
        report["verify_backend_growth_kib"] = peak - before
        # verify() reads every event through a cursor, batch by batch, and
        # frees each batch of stored tree nodes it compares; it never JIT
        # compiles (LLVM took 20 MB more here). About 3 MiB for 100,000
        # events, and no more for 300,000.
        assert peak - before < 8 * 1024, f"verify() grew the backend by {peak - before} KiB"
    db.execute("DROP TABLE public.proven")


def interrupted():
    db.execute("DROP TABLE IF EXISTS public.bulk")
    db.execute("CREATE TABLE public.bulk (id int PRIMARY KEY, v int)")
    db.execute("INSERT INTO public.bulk SELECT g, 0 FROM generate_series(1, 300000) g")
    db.execute("SELECT audit_log.track('public.bulk')")
    before = db.execute("SELECT count(*) FROM audit_log.events").fetchone()[0]

    with psycopg.connect(autocommit=True) as session:
        session.execute("SET statement_timeout = '300ms'")
        try:
            session.execute("UPDATE public.bulk SET v = v + 1")
            raise AssertionError("the UPDATE finished before statement_timeout")
        except psycopg.errors.QueryCanceled:
            pass

    with psycopg.connect(autocommit=True) as session:
        pid = session.info.backend_pid
        timer = threading.Timer(0.3, lambda: db.execute("SELECT pg_cancel_backend(%s)", (pid,)))
        timer.start()
        try:
            session.execute("UPDATE public.bulk SET v = v + 1")
            raise AssertionError("the UPDATE finished before it was cancelled")
        except psycopg.errors.QueryCanceled:
            pass
        timer.join()
        session.execute("SELECT 1")  # the session goes on

    after = db.execute("SELECT count(*) FROM audit_log.events").fetchone()[0]
    changed = db.execute("SELECT count(*) FROM public.bulk WHERE v <> 0").fetchone()[0]
    assert after == before and changed == 0, f"{after - before} events, {changed} rows changed"
    report["cancelled_updates_left_events"] = after - before
    db.execute("DROP TABLE public.bulk")


if __name__ == "__main__":
    started = time.time()
    many_tables()
    proof_memory()  # before big_row(), whose 100 MB events verify() would read
    big_row()
    interrupted()
    report["seconds"] = round(time.time() - started, 1)
    print(json.dumps(report))
