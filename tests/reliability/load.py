"""Concurrent load on tracked tables, and the invariants the trail must keep.

    load.py setup                      create the tracked tables
    load.py run SECONDS CLIENTS FILE   run the load; append what committed to FILE
    load.py check FILE [--exact]       check the trail against the tables and FILE

Each client runs transactions that mix INSERTs, UPDATEs (some changing the
primary key, some moving a row to another partition), DELETEs, savepoints
rolled back, whole transactions rolled back, and updates of shared rows in
random order (some transactions die as deadlock victims). Every transaction
sets its actor with set_actor() and inserts one marker row tagged with its
name. A client appends to FILE, for each transaction whose COMMIT returned,
its tag and the number of row changes it made.

check replays the trail, from the first event, strictly (an UPDATE or DELETE
must find exactly its old values in the replayed row, an INSERT an empty
slot) and compares the result with the tables' contents; checks that all
events of one transaction have one actor, the one that transaction set, and
one tx_id; that
every acknowledged transaction's marker is in the trail; and with --exact (no
crash in the run) that the number of events equals the number of row changes
the clients committed.
"""

import json
import os
import random
import sys
import threading
import time

import psycopg
from psycopg import errors

SHARED_ROWS = 16
TABLES = ["rel.accounts", "rel.items"]


def connect():
    return psycopg.connect(autocommit=True)


def setup():
    with connect() as db:
        db.execute("""
            DROP SCHEMA IF EXISTS rel CASCADE;
            CREATE SCHEMA rel;
            CREATE TABLE rel.accounts (id bigint PRIMARY KEY, balance int NOT NULL, tag text);
            CREATE TABLE rel.items (id bigint, bucket int, qty int NOT NULL, tag text,
                                    PRIMARY KEY (id, bucket)) PARTITION BY LIST (bucket);
            CREATE TABLE rel.items_0 PARTITION OF rel.items FOR VALUES IN (0);
            CREATE TABLE rel.items_1 PARTITION OF rel.items FOR VALUES IN (1);
            SELECT audit_log.track('rel.accounts');
            SELECT audit_log.track('rel.items');
        """)
        with db.transaction():
            db.execute("SELECT audit_log.set_actor('setup')")
            db.execute("INSERT INTO rel.accounts SELECT g, 0, 'shared' FROM generate_series(1, %s) g",
                       (SHARED_ROWS,))


class Client(threading.Thread):
    def __init__(self, number, deadline, out, lock):
        super().__init__(daemon=True)
        self.number, self.deadline, self.out, self.lock = number, deadline, out, lock
        self.rng = random.Random(number * 7919 + int(time.time()))
        self.next_id = (number + 1) * 10_000_000 + int(time.time() * 1000) % 1_000_000 * 10
        self.own = []  # (table, key) of rows this client created and believes committed
        self.stats = {"committed": 0, "rolled_back": 0, "deadlocks": 0, "lost": 0}

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def run(self):
        tx = 0
        while time.time() < self.deadline:
            try:
                with connect() as db:
                    while time.time() < self.deadline:
                        tx += 1
                        self.transaction(db, f"c{self.number}-t{tx}-{self.next_id}")
            except (psycopg.OperationalError, psycopg.InterfaceError):
                # The server went away (crash test): reconnect when it is back.
                self.stats["lost"] += 1
                time.sleep(0.5)

    def transaction(self, db, tag):
        rng = self.rng
        changes = 0
        created = []
        removed = []
        cur = db.cursor()
        try:
            cur.execute("BEGIN")
            cur.execute("SELECT audit_log.set_actor(%s)", (f"client-{self.number}",))
            cur.execute("INSERT INTO rel.accounts VALUES (%s, 0, %s)", (self.new_id(), tag))
            created.append(("rel.accounts", self.next_id))
            changes += 1
            for _ in range(rng.randint(1, 4)):
                kind = rng.choice(["insert", "item", "update_shared", "pk_change", "move",
                                   "delete", "savepoint", "deadlock"])
                if kind == "insert":
                    n = rng.randint(1, 3)
                    for _ in range(n):
                        cur.execute("INSERT INTO rel.accounts VALUES (%s, %s, %s)",
                                    (self.new_id(), rng.randint(0, 100), tag))
                        created.append(("rel.accounts", self.next_id))
                    changes += n
                elif kind == "item":
                    cur.execute("INSERT INTO rel.items VALUES (%s, %s, 1, %s)",
                                (self.new_id(), rng.randint(0, 1), tag))
                    created.append(("rel.items", self.next_id))
                    changes += 1
                elif kind == "update_shared":
                    cur.execute("UPDATE rel.accounts SET balance = balance + 1, tag = %s WHERE id = %s",
                                (tag, rng.randint(1, SHARED_ROWS)))
                    changes += cur.rowcount
                elif kind == "pk_change" and self.own:
                    table, key = self.own.pop(rng.randrange(len(self.own)))
                    new_key = self.new_id()
                    cur.execute(f"UPDATE {table} SET id = %s, tag = %s WHERE id = %s", (new_key, tag, key))
                    changes += cur.rowcount
                    removed.append((table, key))
                    if cur.rowcount:
                        created.append((table, new_key))
                elif kind == "move":
                    cur.execute("UPDATE rel.items SET bucket = 1 - bucket, qty = qty + 1, tag = %s "
                                "WHERE id = (SELECT id FROM rel.items WHERE tag LIKE %s LIMIT 1)",
                                (tag, f"c{self.number}-%"))
                    changes += cur.rowcount
                elif kind == "delete" and self.own:
                    table, key = self.own.pop(rng.randrange(len(self.own)))
                    cur.execute(f"DELETE FROM {table} WHERE id = %s", (key,))
                    changes += cur.rowcount
                    removed.append((table, key))
                elif kind == "savepoint":
                    cur.execute("SAVEPOINT s")
                    cur.execute("INSERT INTO rel.accounts VALUES (%s, -1, %s)", (self.new_id(), tag))
                    cur.execute("UPDATE rel.accounts SET balance = balance - 1000, tag = %s WHERE id = %s",
                                (tag, rng.randint(1, SHARED_ROWS)))
                    cur.execute("ROLLBACK TO SAVEPOINT s")
                elif kind == "deadlock":
                    a, b = rng.sample(range(1, SHARED_ROWS + 1), 2)
                    for key in (a, b):
                        cur.execute("UPDATE rel.accounts SET balance = balance + 1, tag = %s WHERE id = %s",
                                    (tag, key))
                        changes += cur.rowcount
                        time.sleep(0.002)
            if rng.random() < 0.1:
                cur.execute("ROLLBACK")
                self.stats["rolled_back"] += 1
                return
            cur.execute("COMMIT")
        except errors.DeadlockDetected:
            db.execute("ROLLBACK")
            self.stats["deadlocks"] += 1
            return
        except (errors.SerializationFailure, errors.LockNotAvailable):
            db.execute("ROLLBACK")
            self.stats["rolled_back"] += 1
            return
        self.stats["committed"] += 1
        for row in removed:
            if row in self.own:
                self.own.remove(row)
        self.own.extend(created)
        with self.lock:
            self.out.write(json.dumps({"tag": tag, "changes": changes}) + "\n")
            self.out.flush()


def run(seconds, clients, path):
    deadline = time.time() + seconds
    lock = threading.Lock()
    with open(path, "a") as out:
        workers = [Client(n, deadline, out, lock) for n in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    totals = {k: sum(w.stats[k] for w in workers) for k in workers[0].stats}
    print(json.dumps(totals))


def check(path, exact):
    acked = [json.loads(line) for line in open(path)]
    with connect() as db:
        events = db.execute("""
            SELECT id, tx_id::text, actor, entity, action, entity_id, old_values, new_values
              FROM audit_log.events
             WHERE entity = ANY (%s) AND action IN ('INSERT', 'UPDATE', 'DELETE')
             ORDER BY id""", (TABLES,)).fetchall()
        contents = {}
        for table in TABLES:
            for (row,) in db.execute(f"SELECT to_jsonb(t) FROM {table} t"):
                key = (table, json.dumps({"id": row["id"], **({"bucket": row["bucket"]} if "bucket" in row else {})},
                                         sort_keys=True))
                contents[key] = row
        marker_tags = {tag for (tag,) in db.execute(
            "SELECT new_values ->> 'tag' FROM audit_log.events "
            "WHERE entity = 'rel.accounts' AND action = 'INSERT' AND new_values ->> 'balance' = '0'")}

    def key_of(table, values):
        names = ["id", "bucket"] if table == "rel.items" else ["id"]
        return (table, json.dumps({n: values[n] for n in names}, sort_keys=True))

    problems = []
    replay = {}
    actors = {}
    for event_id, tx_id, actor, entity, action, entity_id, old, new in events:
        actors.setdefault(tx_id, set()).add(actor)
        if action in ("UPDATE", "DELETE"):
            old_key = key_of(entity, old)
            if replay.get(old_key) != old:
                problems.append(f"event {event_id}: {action} of {old_key} does not start from the replayed row")
            replay.pop(old_key, None)
        if action in ("INSERT", "UPDATE"):
            new_key = key_of(entity, new)
            if json.dumps(entity_id, sort_keys=True) != new_key[1]:
                problems.append(f"event {event_id}: entity_id {entity_id} is not the new key {new_key}")
            if new_key in replay:
                problems.append(f"event {event_id}: {action} into {new_key}, which the replay already holds")
            replay[new_key] = new
    if replay != contents:
        missing = set(contents) - set(replay)
        extra = set(replay) - set(contents)
        differ = [k for k in set(replay) & set(contents) if replay[k] != contents[k]]
        problems.append(f"replay differs from the tables: {len(missing)} rows missing, {len(extra)} extra, "
                        f"{len(differ)} different")
    mixed = [tx for tx, who in actors.items() if len(who) != 1 or None in who]
    if mixed:
        problems.append(f"{len(mixed)} transactions whose events do not have one actor")
    # Every row a transaction writes carries its tag: one tag, one tx_id.
    tx_of_tag = {}
    for _, tx_id, _, _, action, _, _, new in events:
        if action != "DELETE" and new.get("tag") not in (None, "shared"):
            tx_of_tag.setdefault(new["tag"], set()).add(tx_id)
    split = [tag for tag, txs in tx_of_tag.items() if len(txs) != 1]
    if split:
        problems.append(f"{len(split)} transactions whose events have several tx_ids, e.g. {split[:3]}")
    lost = [a["tag"] for a in acked if a["tag"] not in marker_tags]
    if lost:
        problems.append(f"{len(lost)} acknowledged commits missing from the trail, e.g. {lost[:3]}")
    expected = sum(a["changes"] for a in acked) + SHARED_ROWS_INSERT_EVENTS
    if exact and len(events) != expected:
        problems.append(f"{len(events)} events for {expected} committed row changes")
    summary = {"events": len(events), "transactions_acknowledged": len(acked),
               "rows": len(contents), "problems": problems}
    print(json.dumps(summary))
    return not problems


# setup() inserts the shared rows while the tables are tracked.
SHARED_ROWS_INSERT_EVENTS = SHARED_ROWS

if __name__ == "__main__":
    command = sys.argv[1]
    if command == "setup":
        setup()
    elif command == "run":
        run(float(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif command == "check":
        sys.exit(0 if check(sys.argv[2], "--exact" in sys.argv) else 1)
