#!/usr/bin/env bash
# Archives (API section 8): `audit-log archive` writes each closed month as a
# zstd CSV export, its complete proof and a manifest, verifies them, detaches
# the partition concurrently and drops it through drop_archived(). A legal
# hold stops it; a crash between any two steps leaves the partition or a
# verified archive, and the next run finishes; afterwards verify() finds
# nothing wrong, sealing goes on, the archive verifies offline like any
# export, a complete proof needing archived events is refused naming the
# archive, and one of a later month still works.
set -euo pipefail
bin=${AUDIT_LOG_BIN:?the audit-log command to test}
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { psql -At -d archives -c "$1"; }
fail() { echo "FAILED: $*"; exit 1; }
# The SQLSTATE and message of a statement expected to fail.
refusal() {
    psql -At -d archives -v ON_ERROR_STOP=0 -c "\\set VERBOSITY verbose" -c "$1" 2>&1 \
        | grep -m 1 '^ERROR:' | sed 's/^ERROR:  //' || true
}
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }

psql -d postgres -c "DROP DATABASE IF EXISTS archives" -c "CREATE DATABASE archives"
dsn="host=$PGHOST port=$PGPORT user=${PGUSER:-postgres} dbname=archives"

# Three months of 2025, loaded through the log into the empty log as a
# restore would, with values full of commas, quotes, newlines, emoji and
# backslashes; their transaction ids interleave the months' leaves in the
# tree. Then a tracked table writes this month's events.
psql -d archives <<'SQL'
CREATE EXTENSION audit_log;
INSERT INTO audit_log.events (id, occurred_at, tx_id, actor, db_user, entity, entity_id, action, old_values, new_values, changed_fields)
SELECT g,
       timestamptz '2025-01-01 00:00:00+00' + (g * interval '43 minutes'),
       (1000 + (g * 7919) % 3000)::text::xid8,
       CASE g % 3 WHEN 0 THEN 'alice' WHEN 1 THEN 'bob, "the builder"' ELSE E'zoé \\ 🙂' END,
       'loader', 'public.learners', jsonb_build_object('id', g), 'UPDATE',
       jsonb_build_object('note', E'before,\n"quoted"\\' || g),
       jsonb_build_object('note', 'after ' || g),
       ARRAY['note']
  FROM generate_series(1, 2900) AS g;
SELECT setval('audit_log.events_id_seq', 2900);
CREATE TABLE learners (id int PRIMARY KEY, note text);
SELECT audit_log.track('learners');
SET audit_log.actor = 'carol';
INSERT INTO learners SELECT g, 'now ' || g FROM generate_series(1, 200) AS g;
SQL
q "SELECT audit_log.seal()" >/dev/null
months=$(q "SELECT string_agg(partition::text, ' ' ORDER BY from_time) FROM audit_log.partitions WHERE to_time <= '2025-04-01'")
expect_eq "$months" "audit_log.events_2025_01 audit_log.events_2025_02 audit_log.events_2025_03" "the loaded months"
expect_eq "$(q "SELECT count(*) FROM audit_log.partitions WHERE to_time <= '2025-04-01' AND sealed")" 3 "sealed months"
q "SELECT audit_log.archivable('audit_log.events_2025_01') IS NULL" | grep -qx t || fail "January 2025 should be archivable"
this_month=$(q "SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date")
echo "three sealed months of 2025 and this month's events; archiving before $this_month"
# What an auditor will ask the archives, answered by the database first.
by_actor=$(q "SELECT actor || '=' || count(*) FROM audit_log.events WHERE occurred_at < '2025-04-01' GROUP BY actor ORDER BY actor")
note_5=$(q "SELECT old_values ->> 'note' FROM audit_log.events WHERE id = 5")

# This month is not closed: a DETACH of it, even concurrently, is refused.
open=$(q "SELECT partition FROM audit_log.partitions WHERE from_time <= now() AND to_time > now()")
refusal "ALTER TABLE audit_log.events DETACH PARTITION $open CONCURRENTLY" | grep -q "^55000" \
    || fail "detaching this month concurrently was not refused"
# Nor is a closed month's detach let through without CONCURRENTLY.
refusal "ALTER TABLE audit_log.events DETACH PARTITION audit_log.events_2025_01" | grep -q "^42501" \
    || fail "a plain detach was not refused"

# A legal hold stops everything: nothing written, nothing detached.
hold=$(q "SELECT audit_log.legal_hold('inspection 2026-11')")
if out=$("$bin" archive --dsn "$dsn" --before "$this_month" --out "$work/archive" 2>&1); then
    echo "$out"; fail "archived under a legal hold"
fi
grep -q "not archived: audit_log.events_2025_01: legal hold $hold is on" <<<"$out" || { echo "$out"; fail "no hold named"; }
refusal "ALTER TABLE audit_log.events DETACH PARTITION audit_log.events_2025_01 CONCURRENTLY" | grep -q "^55000" \
    || fail "a concurrent detach under a hold was not refused"
expect_eq "$(q "SELECT count(*) FROM audit_log.partitions WHERE to_time <= '2025-04-01'")" 3 "months kept under the hold"
q "SELECT audit_log.release_hold($hold)" >/dev/null
echo "under a legal hold: refused, nothing archived"

# Crashes between steps: after writing the files, after verifying them (the
# partition is still there), after detaching it (the archive is verified,
# the partition detached and kept until the next run drops it).
january=$(q "SELECT count(*) FROM audit_log.events_2025_01")
for step in written verified; do
    if AUDIT_LOG_ARCHIVE_CRASH_AT=$step "$bin" archive --dsn "$dsn" --before "$this_month" --out "$work/archive" >/dev/null 2>&1; then
        fail "the crash at $step did not happen"
    fi
    expect_eq "$(q "SELECT count(*) FROM audit_log.events WHERE occurred_at < '2025-02-01'")" "$january" \
        "January's events in the log after a crash at $step"
    expect_eq "$(q "SELECT count(*) FROM audit_log.verify()")" 0 "verify() after a crash at $step"
    echo "crash after the files were $step: January is still in the log, verified"
done
[ -s "$work/archive/2025-01.manifest.json" ] || fail "no manifest after the files were written"
if AUDIT_LOG_ARCHIVE_CRASH_AT=detached "$bin" archive --dsn "$dsn" --before "$this_month" --out "$work/archive" >/dev/null 2>&1; then
    fail "the crash after detaching did not happen"
fi
expect_eq "$(q "SELECT count(*) FROM audit_log.partition_bounds() WHERE partition::text = 'audit_log.events_2025_01'")" 0 \
    "January detached"
expect_eq "$(q "SELECT count(*) FROM audit_log.events_2025_01")" "$january" "the detached table keeps January"
expect_eq "$(q "SELECT partition FROM audit_log.detached_partitions")" "audit_log.events_2025_01" "noted as detached"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checkpoint"], end="")' \
    "$work/archive/2025-01.manifest.json" >"$work/january-checkpoint.txt"
"$bin" verify-export --csv "$work/archive/2025-01.csv.zst" --proof "$work/archive/2025-01.proof" \
    --checkpoint "$work/january-checkpoint.txt" | grep -q "^OK: $january events proven" \
    || fail "the archive of the detached month does not verify"
echo "crash after detaching: January detached, its archive verifies ($january events)"

# Meanwhile, the detached table is as guarded as a partition, and
# drop_archived() refuses a manifest that does not describe it.
refusal "DROP TABLE audit_log.events_2025_01" | grep -q "^42501" || fail "dropping the detached month by hand"
refusal "DELETE FROM audit_log.events_2025_01" | grep -q "^42501" || fail "deleting from the detached month"
for change in '.events += 1' '.leaf_ranges[0][1] += 1' '.csv_sha256 = ("0" * 64)' \
              '.leaf_hashes_sha256 = ("0" * 64)' '.partition = "audit_log.events_2025_02"'; do
    forged=$(python3 - "$change" "$work/archive/2025-01.manifest.json" <<'PY'
import json, sys
change, path = sys.argv[1], sys.argv[2]
m = json.load(open(path))
if change.startswith('.events'): m['events'] += 1
elif change.startswith('.leaf_ranges'): m['leaf_ranges'][0][1] += 1
elif change.startswith('.csv'): m['csv_sha256'] = '0' * 64
elif change.startswith('.leaf_hashes'): m['leaf_hashes_sha256'] = '0' * 64
else: m['partition'] = 'audit_log.events_2025_02'
print(json.dumps(m).replace("'", "''"))
PY
)
    refusal "SELECT audit_log.drop_archived('audit_log.events_2025_01', '$forged')" | grep -q "^22023" \
        || fail "drop_archived() accepted a manifest with $change"
done
hold=$(q "SELECT audit_log.legal_hold('one more question')")
refusal "SELECT audit_log.drop_archived('audit_log.events_2025_01', '$(sed "s/'/''/g" "$work/archive/2025-01.manifest.json")')" | grep -q "^55000" \
    || fail "drop_archived() under a hold"
q "SELECT audit_log.release_hold($hold)" >/dev/null
refusal "SELECT audit_log.drop_archived('audit_log.events_2025_02', '{}')" | grep -q "^55000" \
    || fail "drop_archived() of an attached month"
echo "drop_archived(): forged manifests, a hold, an attached month refused"

# The next run finishes January and archives February and March.
out=$("$bin" archive --dsn "$dsn" --before "$this_month" --out "$work/archive") || { echo "$out"; fail "archive"; }
echo "$out" | sed 's/^/  /'
expect_eq "$(grep -c '^archived ' <<<"$out")" 3 "months archived"
expect_eq "$(q "SELECT count(*) FROM audit_log.partitions WHERE to_time <= '2025-04-01'")" 0 "archived months left the log"
expect_eq "$(q "SELECT count(*) FROM audit_log.detached_partitions")" 0 "nothing left detached"
expect_eq "$(q "SELECT count(*) FROM pg_class WHERE relname ~ '^events_2025_'")" 0 "archived tables dropped"
expect_eq "$(q "SELECT string_agg(entity_id->>'partition', ' ' ORDER BY id) FROM audit_log.events WHERE action = 'ARCHIVE'")" \
    "$months" "ARCHIVE events"
expect_eq "$(q "SELECT count(*) FROM audit_log.verify()")" 0 "verify() after archiving"
ranges=$(q "SELECT jsonb_array_length(new_values->'leaf_ranges') FROM audit_log.events WHERE action = 'ARCHIVE' ORDER BY id LIMIT 1")
[ "$ranges" -gt 1 ] || fail "January's leaves were expected to interleave with February's"

# Each archive verifies offline, complete, against its checkpoint; a changed
# byte in it is caught.
total=0
for month in 2025-01 2025-02 2025-03; do
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checkpoint"], end="")' \
        "$work/archive/$month.manifest.json" >"$work/kept.txt"
    ok=$("$bin" verify-export --csv "$work/archive/$month.csv.zst" --proof "$work/archive/$month.proof" --checkpoint "$work/kept.txt") \
        || fail "$month does not verify"
    grep -q "complete" <<<"$ok" || fail "$month is not proven complete: $ok"
    total=$((total + $(sed -E 's/^OK: ([0-9]+) events.*/\1/' <<<"$ok")))
done
expect_eq "$total" 2900 "events in the three archives"
zstd -q -d -c "$work/archive/2025-02.csv.zst" | sed '0,/alice/s//alicf/' | zstd -q -c >"$work/forged.csv.zst"
if "$bin" verify-export --csv "$work/forged.csv.zst" --proof "$work/archive/2025-02.proof" --checkpoint "$work/kept.txt" >"$work/forged.out" 2>&1; then
    fail "a changed archive verified"
fi
echo "the three archives verify offline ($total events); a changed one is refused"

# DuckDB reads the archives as they are, and answers as the database did.
duck=$(python3 - "$work/archive" <<'PY'
import glob, sys
import duckdb
files = sorted(glob.glob(sys.argv[1] + "/2025-*.csv.zst"))
trail = f"read_csv({files!r}, header = true)"
for actor, events in duckdb.sql(f"SELECT actor, count(*) FROM {trail} GROUP BY actor ORDER BY actor").fetchall():
    print(f"{actor}={events}")
print("--")
print(duckdb.sql(f"SELECT json_extract_string(old_values, '$.note') FROM {trail} WHERE id = 5").fetchall()[0][0])
PY
)
expect_eq "$duck" "$(printf '%s\n--\n%s' "$by_actor" "$note_5")" "DuckDB on the archives"
echo "DuckDB reads the archives: events per actor and a value with a newline, quotes and a backslash, as the database had them"

# Sealing goes on; a complete proof needing archived events is refused,
# naming the archive; one of this month still works.
q "UPDATE learners SET note = 'later' WHERE id <= 10" >/dev/null
cut=$(q "SELECT clock_timestamp()")
q "SELECT audit_log.seal()" >/dev/null
expect_eq "$(q "SELECT count(*) FROM audit_log.verify()")" 0 "verify() after sealing more"
refusal "SELECT audit_log.export_proof(complete => true)" | grep -q "^55000.*archived with partition audit_log.events_2025_0" \
    || fail "a complete proof of the whole trail should be refused naming the archive"
q "SELECT audit_log.export_proof(since => '$this_month', until => '$cut', complete => true)" >"$work/now.proof" \
    || fail "a complete proof of this month"
psql -d archives -c "\\copy (SELECT * FROM audit_log.export(since => '$this_month', until => '$cut')) TO '$work/now.csv' WITH (FORMAT csv, HEADER, ENCODING 'UTF8')"
q "SELECT audit_log.checkpoint()" >"$work/now.txt"
"$bin" verify-export --csv "$work/now.csv" --proof "$work/now.proof" --checkpoint "$work/now.txt" | grep -q "complete" \
    || fail "this month's complete proof does not verify"
echo "after archiving: sealing goes on, this month proves complete, the whole trail is refused naming the archive"

# Nothing more to archive.
"$bin" archive --dsn "$dsn" --before "$this_month" --out "$work/archive" | grep -q "nothing to archive" \
    || fail "a second run should find nothing to archive"
psql -d postgres -c "DROP DATABASE archives"
