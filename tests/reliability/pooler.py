"""Behind PgBouncer in transaction pooling mode (tests/shell/pooler.sh).

    pooler.py check SAFE_DSN LEAKY_DSN

1. Through SAFE_DSN (a pool smaller than the clients, so that server
   connections pass from client to client), 24 clients each run transactions
   `BEGIN; SELECT audit_log.set_actor(<own name>); INSERT ...; COMMIT`, and a
   quarter of them set no actor at all. Every event carries the actor of the
   client that made it, or NULL for a client that set none: never another's.
2. Through LEAKY_DSN (a pool of one server connection), a client that uses the
   session-level `SET audit_log.actor` leaks its actor to the next client's
   transaction on that connection: this is why only set_actor() (or SET LOCAL)
   is safe in transaction pooling mode.
"""

import json
import sys
import threading

import psycopg

CLIENTS = 24
TRANSACTIONS = 40


def client(dsn, number, errors):
    name = f"user-{number}" if number % 4 else None
    try:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as db:
            for n in range(TRANSACTIONS):
                with db.transaction():
                    if name:
                        db.execute("SELECT audit_log.set_actor(%s)", (name,))
                    db.execute("INSERT INTO pool.writes (client, n) VALUES (%s, %s)", (number, n))
    except Exception as error:  # reported, and the check fails
        errors.append(f"client {number}: {error!r}")


def main(safe_dsn, leaky_dsn):
    problems = []
    with psycopg.connect(safe_dsn, autocommit=True) as db:
        db.execute("DROP SCHEMA IF EXISTS pool CASCADE")
        db.execute("CREATE SCHEMA pool")
        db.execute("CREATE TABLE pool.writes (id serial PRIMARY KEY, client int, n int)")
        db.execute("SELECT audit_log.track('pool.writes')")

    errors = []
    threads = [threading.Thread(target=client, args=(safe_dsn, i, errors)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    problems += errors

    with psycopg.connect(safe_dsn, autocommit=True) as db:
        rows = db.execute("""
            SELECT (new_values ->> 'client')::int, actor FROM audit_log.events
             WHERE entity = 'pool.writes' AND action = 'INSERT'""").fetchall()
        backends = db.execute("SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE datname = current_database()").fetchone()[0]
    wrong = [(c, a) for c, a in rows if a != (f"user-{c}" if c % 4 else None)]
    if len(rows) != CLIENTS * TRANSACTIONS:
        problems.append(f"{len(rows)} events for {CLIENTS * TRANSACTIONS} inserts")
    if wrong:
        problems.append(f"{len(wrong)} events with another client's actor, e.g. {wrong[:3]}")

    # The session-level SET leaks across clients sharing a server connection.
    with psycopg.connect(leaky_dsn, autocommit=True) as first, \
         psycopg.connect(leaky_dsn, autocommit=True) as second:
        first.execute("SET audit_log.actor = 'user-who-left'")
        second.execute("INSERT INTO pool.writes (client, n) VALUES (-1, 0)")
        leaked = second.execute("""
            SELECT actor FROM audit_log.events
             WHERE entity = 'pool.writes' AND new_values ->> 'client' = '-1'""").fetchone()[0]
    if leaked != "user-who-left":
        problems.append(f"the session-level SET did not leak as expected (actor {leaked!r}): the demonstration is wrong")

    print(json.dumps({"clients": CLIENTS, "transactions": CLIENTS * TRANSACTIONS,
                      "events_checked": len(rows), "session_set_leaked_to_next_client": leaked,
                      "problems": problems}))
    return not problems


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[2], sys.argv[3]) else 1)
