"""Sealing under concurrent writers: no false alarm, whatever the order in
which transactions commit.

    sealing_load.py SECONDS

Six clients of tests/reliability/load.py (savepoints, rollbacks, deadlocks,
key changes, partition moves), one client holding long transactions open,
one using two-phase commit (PREPARE TRANSACTION, then COMMIT or ROLLBACK
PREPARED); meanwhile seal() every 20 to 50 ms and verify() every few
seconds. Then, after the last writer:

- one seal covers every event;
- verify() finds nothing, with the latest checkpoint and with checkpoints
  taken during the run; every checkpoint seal() returned is still the one
  checkpoint() gives for its size;
- no event sealed after a seal occurred before that seal's horizon;
- every seal taken while a transaction of this database was prepared has
  the horizon -infinity, and seal_status() named the prepared transaction.

Exits non-zero on the first broken promise.
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reliability"))
import load  # noqa: E402
import psycopg  # noqa: E402

failures = []
failures_lock = threading.Lock()


def fail(message):
    with failures_lock:
        failures.append(message)
    print("FAIL:", message, flush=True)


def connect():
    return psycopg.connect(autocommit=True)


class Sealer(threading.Thread):
    def __init__(self, deadline):
        super().__init__(daemon=True)
        self.deadline = deadline
        self.checkpoints = []

    def run(self):
        with connect() as db:
            while time.time() < self.deadline:
                try:
                    text = db.execute("SELECT audit_log.seal()").fetchone()[0]
                    self.checkpoints.append(text)
                except Exception as e:  # noqa: BLE001 - any error is a failure
                    fail(f"seal(): {e}")
                time.sleep(random.uniform(0.02, 0.05))


class Verifier(threading.Thread):
    def __init__(self, deadline):
        super().__init__(daemon=True)
        self.deadline = deadline
        self.runs = 0

    def run(self):
        with connect() as db:
            while time.time() < self.deadline:
                time.sleep(3)
                problems = db.execute("SELECT * FROM audit_log.verify()").fetchall()
                self.runs += 1
                if problems:
                    fail(f"verify() during the run: {problems[:5]}")


class LongWriter(threading.Thread):
    """Transactions open for seconds: every later event waits behind them."""

    def __init__(self, deadline):
        super().__init__(daemon=True)
        self.deadline = deadline
        self.committed = 0

    def run(self):
        next_id = 900_000_000 + int(time.time()) % 100_000 * 1000
        with connect() as db:
            while time.time() < self.deadline:
                with db.transaction():
                    db.execute("SELECT audit_log.set_actor('long-writer')")
                    end = time.time() + random.uniform(1.5, 4)
                    while time.time() < end:
                        next_id += 1
                        db.execute("INSERT INTO rel.accounts VALUES (%s, 1, 'long')", (next_id,))
                        time.sleep(0.2)
                self.committed += 1
                time.sleep(random.uniform(0.3, 1.5))


class TwoPhaseWriter(threading.Thread):
    """Prepared transactions: their events wait until COMMIT PREPARED."""

    def __init__(self, deadline):
        super().__init__(daemon=True)
        self.deadline = deadline
        self.prepared_spans = []  # (from, to) server times while one was prepared
        self.seals_while_prepared = []  # (prepared since, tree size seal() returned)
        self.named = 0
        self.committed = 0

    def run(self):
        next_id = 800_000_000 + int(time.time()) % 100_000 * 1000
        with connect() as db, connect() as other:
            n = 0
            while time.time() < self.deadline:
                n += 1
                gid = f"audit_log_2pc_{os.getpid()}_{n}"
                db.execute("BEGIN")
                db.execute("SELECT audit_log.set_actor('two-phase')")
                for _ in range(random.randint(1, 5)):
                    next_id += 1
                    db.execute("INSERT INTO rel.accounts VALUES (%s, 2, 'prepared')", (next_id,))
                db.execute(f"PREPARE TRANSACTION '{gid}'")
                start = db.execute("SELECT clock_timestamp()").fetchone()[0]
                time.sleep(random.uniform(0.05, 0.6))
                # This seal reads the running transactions while ours is
                # prepared: if it appends leaves, its horizon is -infinity.
                text = other.execute("SELECT audit_log.seal()").fetchone()[0]
                self.seals_while_prepared.append((start, int(text.split("\n")[1])))
                waiting = other.execute("SELECT waiting_for FROM audit_log.seal_status()").fetchone()[0]
                if waiting and gid in waiting:
                    self.named += 1
                else:
                    fail(f"seal_status() does not name prepared transaction {gid}: {waiting!r}")
                end = db.execute("SELECT clock_timestamp()").fetchone()[0]
                self.prepared_spans.append((start, end))
                if random.random() < 0.8:
                    db.execute(f"COMMIT PREPARED '{gid}'")
                    self.committed += 1
                else:
                    db.execute(f"ROLLBACK PREPARED '{gid}'")
                time.sleep(random.uniform(0.05, 0.3))


def main():
    seconds = float(sys.argv[1])
    load.setup()
    deadline = time.time() + seconds
    acked = open(os.devnull, "w")
    lock = threading.Lock()
    clients = [load.Client(i, deadline, acked, lock) for i in range(6)]
    long_writer, two_phase = LongWriter(deadline), TwoPhaseWriter(deadline)
    sealer, verifier = Sealer(deadline), Verifier(deadline)
    writers = clients + [long_writer, two_phase]
    for t in writers + [sealer, verifier]:
        t.start()
    for t in writers:
        t.join()
    sealer.join()
    verifier.join()

    with connect() as db:
        # The last writer has committed: wait until no transaction holds the
        # watermark (an autovacuum's ANALYZE may, for a moment), then one
        # seal must cover every event.
        for _ in range(200):
            busy = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                "AND pid <> pg_backend_pid()").fetchone()[0]
            busy += db.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone()[0]
            if busy == 0:
                break
            time.sleep(0.05)
        final = db.execute("SELECT audit_log.seal()").fetchone()[0]
        left = db.execute(
            "SELECT count(*) FROM audit_log.events e WHERE NOT EXISTS "
            "(SELECT 1 FROM audit_log.tree_leaves l WHERE l.event_id = e.id)").fetchone()[0]
        if left:
            fail(f"after the last writer, one seal left {left} events unsealed")
        status = db.execute("SELECT unsealed_events, waiting_for FROM audit_log.seal_status()").fetchone()
        if status[0] != 0:
            fail(f"seal_status() after the final seal: {status}")

        problems = db.execute("SELECT * FROM audit_log.verify(%s)", (final,)).fetchall()
        if problems:
            fail(f"verify() at the end: {problems[:5]}")
        changed = 0
        for text in sealer.checkpoints:
            size = int(text.split("\n")[1])
            if db.execute("SELECT audit_log.checkpoint(%s)", (size,)).fetchone()[0] != text:
                changed += 1
        if changed:
            fail(f"{changed} checkpoints returned during the run are no longer the tree's")
        sample = sealer.checkpoints[:: max(1, len(sealer.checkpoints) // 15)]
        for text in sample:
            problems = db.execute("SELECT * FROM audit_log.verify(%s)", (text,)).fetchall()
            if problems:
                fail(f"a checkpoint taken during the run no longer verifies: {problems[:3]}")

        # Horizons: each leaf against the latest horizon of the seals before
        # its block.
        early = db.execute("""
            WITH floors AS (
                SELECT seal_leaf_index AS starts,
                       max(horizon) OVER (ORDER BY tree_size ROWS BETWEEN UNBOUNDED PRECEDING
                                                                     AND 1 PRECEDING) AS floor
                  FROM audit_log.tree_seals)
            SELECT count(*)
              FROM audit_log.tree_leaves l
              JOIN audit_log.events e ON e.id = l.event_id
             CROSS JOIN LATERAL (SELECT f.floor FROM floors f WHERE f.starts <= l.leaf_index
                                  ORDER BY f.starts DESC LIMIT 1) f
             WHERE e.occurred_at < f.floor""").fetchone()[0]
        if early:
            fail(f"{early} events sealed after a seal whose horizon they precede")
        during_prepared = 0
        for start, size in two_phase.seals_while_prepared:
            row = db.execute("SELECT horizon = '-infinity' FROM audit_log.seals "
                             "WHERE tree_size = %s AND sealed_at > %s", (size, start)).fetchone()
            if row is None:
                continue  # that seal() had nothing to append
            during_prepared += 1
            if not row[0]:
                fail(f"the seal at tree size {size}, taken while a transaction was prepared, "
                     "has a finite horizon")
        if during_prepared == 0:
            fail("no seal appended leaves while a transaction was prepared: the test exercised nothing")

        seals, size = db.execute("SELECT count(*), max(tree_size) FROM audit_log.seals").fetchone()
        events = db.execute("SELECT count(*) FROM audit_log.events").fetchone()[0]
        deadlocks = sum(c.stats["deadlocks"] for c in clients)
        rolled_back = sum(c.stats["rolled_back"] for c in clients)
        print(f"{seconds:.0f} s: {events} events in {seals} seals (tree of {size} leaves); "
              f"{len(sealer.checkpoints)} seal() calls, {verifier.runs} verify() during the run; "
              f"{deadlocks} deadlocks, {rolled_back} rollbacks, {long_writer.committed} long transactions, "
              f"{two_phase.committed} committed of {len(two_phase.prepared_spans)} prepared "
              f"({during_prepared} seals while prepared, all with horizon -infinity)")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
