"""Proof benchmark (see bench/integrity.sh): export_proof() and
`audit-log verify-export` for 1,000, 100,000 and 1,000,000 exported events
out of a trail of PROOF_EVENTS (10 million by default), next to writing the
same export as CSV; and one scattered selection (one actor among 1,000).

The trail is loaded straight into audit_log.events (capture is benchmarked
elsewhere) in one statement, then sealed. occurred_at is spread over a year,
so a period selects a contiguous stretch of the tree, as an auditor's month
would.

Target: proving an export takes no more than twice as long as writing it.
Writes bench/results/proofs.md.
"""

import os
import platform
import subprocess
import sys
import time

from backend import run_statement

PSQL = os.path.join(os.environ["PG_BINDIR"], "psql")
AUDIT_LOG = os.environ["AUDIT_LOG_BIN"]
EVENTS = int(os.environ.get("PROOF_EVENTS", "10000000"))
OUT = sys.argv[1]
WORK = os.environ["BENCH_WORK"]
START = "2025-11-21 00:00:00+00"
DAYS = 365


def psql(sql, db="proofs"):
    result = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


FILL = """
INSERT INTO audit_log.events
SELECT g,
       timestamptz '{start}' + g * ({days} * 86400.0 / {events}) * interval '1 second',
       pg_catalog.pg_current_xact_id(),
       'user-' || ((g * 7919) % 1000) || '@example.org',
       'app', 'web', ('10.0.' || (g % 200) || '.' || (g % 250))::inet,
       jsonb_build_object('request_id', 'r-' || g),
       'bench.table_' || lpad(((g * 31) % 50)::text, 2, '0'),
       jsonb_build_object('id', (g * 7) % 20000),
       'UPDATE',
       jsonb_build_object('id', (g * 7) % 20000, 'title', 'Course ' || g, 'price', g % 1000, 'seats', g % 30),
       jsonb_build_object('id', (g * 7) % 20000, 'title', 'Course ' || g, 'price', (g + 1) % 1000, 'seats', g % 30),
       ARRAY['price']
  FROM generate_series({lo}::bigint, {hi}) AS g
"""


def load():
    psql("DROP DATABASE IF EXISTS proofs", "postgres")
    psql("CREATE DATABASE proofs", "postgres")
    psql("CREATE EXTENSION audit_log")
    started = time.monotonic()
    # One statement: the log takes rows this way only into an empty trail
    # (as a restore does).
    psql(FILL.format(start=START, days=DAYS, events=EVENTS, lo=1, hi=EVENTS))
    psql(f"SELECT setval('audit_log.events_id_seq', {EVENTS})")
    loaded = time.monotonic() - started
    psql("SELECT audit_log.seal()")
    psql("VACUUM (ANALYZE) audit_log.events")
    psql("VACUUM (ANALYZE) audit_log.tree_leaves")
    return loaded, time.monotonic() - started - loaded


def period(count):
    """since/until holding `count` events, in the middle of the year."""
    seconds = DAYS * 86400.0 / EVENTS
    first = EVENTS // 2 - count // 2
    since = psql(f"SELECT (timestamptz '{START}' + {first * seconds} * interval '1 second')::text")
    until = psql(f"SELECT (timestamptz '{START}' + {(first + count) * seconds} * interval '1 second')::text")
    return f"since => '{since}', until => '{until}'"


def run(sql, path=None):
    """Runs one statement with psql, its output to `path` (if given):
    (seconds, bytes, peak private KiB of the backend)."""
    if path is None:
        return run_statement([PSQL, "-d", "proofs"], sql)[:3]
    with open(path, "wb") as out:
        return run_statement([PSQL, "-d", "proofs"], sql, out)[:3]


def verify(name, checkpoint):
    started = time.monotonic()
    result = subprocess.run([AUDIT_LOG, "verify-export", "--csv", f"{WORK}/{name}.csv",
                             "--proof", f"{WORK}/{name}.proof", "--checkpoint", checkpoint],
                            capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0 or not result.stdout.startswith("OK:"):
        raise SystemExit(f"verify-export of {name} failed: {result.stdout}{result.stderr}")
    return elapsed, result.stdout.strip()


def measure(name, filters):
    # psql -At prints the value and a newline: the proof file as an
    # organisation writes it.
    export = run(f"COPY (SELECT * FROM audit_log.export({filters})) TO STDOUT WITH (FORMAT csv, HEADER)",
                 f"{WORK}/{name}.csv")
    proof = run(f"SELECT audit_log.export_proof({filters})", f"{WORK}/{name}.proof")
    # The function alone: sending one large text value makes PostgreSQL
    # copy it twice more (its text output, then the protocol message).
    alone = run(f"SELECT length(audit_log.export_proof({filters}))")
    checked, line = verify(name, f"{WORK}/checkpoint.txt")
    print(f"{name}: export {export[0]:.2f} s {export[1]:,} B; proof {proof[0]:.2f} s {proof[1]:,} B "
          f"(backend {proof[2]:,} KiB, {alone[2]:,} KiB without sending it); "
          f"verify-export {checked:.2f} s: {line}", flush=True)
    return export, proof, alone, checked, line


def machine():
    cpus = os.cpu_count()
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // (1024 * 1024)
    version = psql("SHOW server_version")
    return f"{platform.system()} {platform.release()}, {cpus} CPUs, {mem} GiB; PostgreSQL {version}"


def main():
    loaded, sealed = load()
    size = int(psql("SELECT max(tree_size) FROM audit_log.seals"))
    with open(f"{WORK}/checkpoint.txt", "w") as f:
        f.write(psql("SELECT audit_log.checkpoint()") + "\n")
    print(f"loaded {EVENTS:,} events in {loaded:.0f} s, sealed in {sealed:.0f} s; tree of {size:,} leaves",
          flush=True)
    rows = []
    for count in [1_000, 100_000, 1_000_000]:
        rows.append((f"{count:,} (a period)", *measure(f"period_{count}", period(count))))
    actor = "actor => 'user-7@example.org'"
    rows.append((f"{int(psql(f'SELECT count(*) FROM audit_log.export({actor})')):,} (one actor of 1,000, spread over the tree)",
                 *measure("actor", actor)))
    lines = ["# Proof benchmark (`make bench-integrity`, bench/proofs.py)", "",
             f"- machine: {machine()}, release build, one server, one run",
             f"- trail: {EVENTS:,} events loaded straight into audit_log.events in {loaded:.0f} s, "
             f"sealed in {sealed:.0f} s (tree of {size:,} leaves); occurred_at spread over a year",
             "- export: `COPY (SELECT * FROM audit_log.export(...)) TO STDOUT WITH (FORMAT csv, HEADER)`; "
             "proof: `SELECT audit_log.export_proof(...)` through `psql -XAt`; both written to files by psql; "
             "verify-export: the release `audit-log verify-export` against the latest checkpoint",
             "- backend memory: the peak of RssAnon (private memory, not shared buffers) of the backend while it "
             "runs the statement; sent: as above, the proof sent to psql (PostgreSQL then also holds its text "
             "output and the protocol message: two more copies of any large value); alone: "
             "`SELECT length(audit_log.export_proof(...))`, what export_proof() itself holds", "",
             "| exported events | CSV | export | export_proof() | proof / export time | proof | proof / CSV size "
             "| backend memory: sent / alone | alone / proof | verify-export |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, export, proof, alone, checked, _ in rows:
        lines.append(f"| {label} | {export[1] / 1e6:,.1f} MB | {export[0]:.2f} s | {proof[0]:.2f} s "
                     f"| {proof[0] / export[0]:.2f} | {proof[1] / 1e6:,.2f} MB | {proof[1] / export[1]:.1%} "
                     f"| {proof[2] / 1024:,.1f} / {alone[2] / 1024:,.1f} MiB "
                     f"| {alone[2] * 1024 / proof[1]:.2f} | {checked:.2f} s |")
    lines += ["", "Target: proving an export takes no more than twice as long as writing it "
              "(the proof / export time column), for the three periods. One actor's events are the "
              "worst case, reported beside them: each of its leaves sits alone in its part of the tree, "
              "so it needs its own path of about log2(tree / selection) sibling hashes (a proof larger "
              "than its CSV), each looked up in the stored tree, against a CSV of only 10,000 rows.", ""]
    with open(os.path.join(OUT, "proofs.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
