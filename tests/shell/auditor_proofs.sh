#!/usr/bin/env bash
# Proof for auditors, away from the database (API section 7), with the
# audit-log command exactly as an auditor runs it: exports filtered by
# period, actor, entity and action, full of commas, quotes, newlines, emoji
# and backslashes, written by \copy and by export_csv(), verify against a
# witness-signed checkpoint; every kind of tampering is refused with its own
# message; consistency between an old and a new checkpoint verifies and a
# forged one is refused; the witness signs as the log grows and refuses
# once the trail was rewritten together with its stored hashes.
set -euo pipefail
bin=${AUDIT_LOG_BIN:?the audit-log command to test}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { psql -At -d proofs -c "$1"; }
fail() { echo "FAILED: $*"; exit 1; }

# Expects the command to fail and say something matching a pattern.
refused() {
    local pattern=$1; shift
    local out
    if out=$("$bin" "$@" 2>&1); then
        echo "$out"; fail "accepted, expected a refusal matching: $pattern"
    fi
    grep -qE -- "$pattern" <<<"$out" || { echo "$out"; fail "refused, but without: $pattern"; }
    echo "  refused as expected: $(grep -E -- "$pattern" <<<"$out" | head -n 1)"
}
accepted() {
    local pattern=$1; shift
    local out
    out=$("$bin" "$@" 2>&1) || { echo "$out"; fail "refused, expected: $pattern"; }
    grep -qE -- "$pattern" <<<"$out" || { echo "$out"; fail "accepted, but without: $pattern"; }
    echo "  $out"
}

psql -d postgres -c "DROP DATABASE IF EXISTS proofs" -c "CREATE DATABASE proofs"
psql -d postgres -c "DROP DATABASE IF EXISTS proofs_other" -c "CREATE DATABASE proofs_other"
dsn="host=$PGHOST port=$PGPORT user=${PGUSER:-postgres} dbname=proofs"

"$bin" keygen witness >/dev/null
"$bin" keygen auditor >/dev/null
"$bin" keygen stranger >/dev/null
[ "$(stat -c %a witness.key)" = 600 ] || fail "a private key must be readable by its owner only"
refused "exists" keygen witness

for db in proofs proofs_other; do
    psql -d "$db" <<'SQL'
CREATE EXTENSION audit_log;
CREATE TABLE learners (id int PRIMARY KEY, name text, note text, data jsonb);
SELECT audit_log.track('learners');
SET audit_log.actor = 'setup';
INSERT INTO learners SELECT g, 'learner ' || g, NULL, '{}' FROM generate_series(1, 3000) g;
SQL
done
q "SELECT audit_log.seal()" >/dev/null
psql -d proofs_other -c "SELECT audit_log.seal()" >/dev/null

# The witness's first signature, and the auditor's own early checkpoint.
accepted "first checkpoint of this witness" witness --dsn "$dsn" --key witness.key --state witness-state
q "SELECT audit_log.checkpoint()" | "$bin" sign --key auditor.key >old.txt
grep -q "^— auditor " old.txt || fail "sign added no auditor signature line"

# History before the period: many seals, so the tree is long.
history() {
    for round in $(seq 1 "$1"); do
        psql -d proofs -c "SET audit_log.actor = 'batch'" \
             -c "UPDATE learners SET note = 'round $round' WHERE id % 40 = $round % 40" \
             -c "SELECT audit_log.seal()" >/dev/null
    done
}
history 25
since=$(q "SELECT audit_log.iso_utc(clock_timestamp())")
sleep 0.05

# The period: hostile values, three actors, every action.
psql -d proofs <<'SQL'
SET audit_log.actor = 'alice@example.org';
SET audit_log.context = '{"request": "r-1, \"quoted\"", "why": "line1\nline2"}';
INSERT INTO learners VALUES
    (5001, 'Zoë, "the" learner', E'two\nlines\r\nand a back\\slash', '{"emoji": "🎓", "quote": "\"", "comma": ","}'),
    (5002, '', NULL, 'null'),
    (5003, 'ending backslash \', E'tab\there', '{"nested": {"a": [1, "two", null]}}');
UPDATE learners SET name = 'Zoë, renamed', note = '🎓🎓' WHERE id = 5001;
SET audit_log.actor = 'bob, "the builder"';
RESET audit_log.context;
UPDATE learners SET data = '{"k": "v,\"w\""}' WHERE id BETWEEN 100 AND 104;
DELETE FROM learners WHERE id = 5003;
RESET audit_log.actor;
SET application_name = 'app, "quoted"';
UPDATE learners SET note = E'anonymous\\n' WHERE id = 7;
SQL
q "SELECT audit_log.seal()" >/dev/null
sleep 0.05
until=$(q "SELECT audit_log.iso_utc(clock_timestamp())")
sleep 0.05
history 25
# A seal whose horizon passed the period's end closes it.
for _ in $(seq 1 50); do
    closed=$(q "SELECT count(*) FROM audit_log.seals WHERE horizon >= '$until'")
    [ "$closed" -gt 0 ] && break
    q "SELECT audit_log.seal()" >/dev/null; sleep 0.1
done
[ "$closed" -gt 0 ] || fail "no seal closed the period"
accepted "extends tree size" witness --dsn "$dsn" --key witness.key --state witness-state
q "SELECT audit_log.checkpoint()" >kept.txt
grep -q "^— witness " kept.txt || fail "checkpoint() does not return the witness's signature"

# Export + proof in one snapshot, as docs/integrity.md tells organisations.
export_with_proof() {
    local name=$1 filters=$2 proof_extra=$3
    psql -At -d proofs <<SQL
BEGIN ISOLATION LEVEL REPEATABLE READ;
\copy (SELECT * FROM audit_log.export($filters)) TO '$work/$name.csv' WITH (FORMAT csv, HEADER)
\o $work/$name.proof
SELECT audit_log.export_proof($filters$proof_extra);
\o
COMMIT;
SQL
    psql -At -d proofs -c "SELECT audit_log.export_csv($filters)" >"$name.export_csv.csv"
    cmp "$name.csv" "$name.export_csv.csv" || fail "$name: export_csv() and \\copy differ"
}
count() { q "SELECT count(*) FROM audit_log.export($1)"; }

period="since => '$since', until => '$until'"
echo "period export, complete"
export_with_proof period "$period" ", complete => true"
n=$(count "$period")
[ "$n" -ge 10 ] || fail "the period has $n events"
accepted "^OK: $n events proven against audit_log/[0-9a-f-]+ at tree size [0-9]+ \(signed by witness\); complete" \
    verify-export --csv period.csv --proof period.proof --checkpoint kept.txt --key witness.pub
accepted "^OK: $n events proven" \
    verify-export --csv period.export_csv.csv --proof period.proof --checkpoint kept.txt --key witness.pub
# Compressed with zstd, as an archive holds it: read as it is, whatever its
# name; a changed byte inside the compressed stream is still refused.
zstd -q -f period.csv -o period.csv.zst
cp period.csv.zst period.zst.renamed
accepted "^OK: $n events proven.*complete" \
    verify-export --csv period.zst.renamed --proof period.proof --checkpoint kept.txt --key witness.pub
python3 "$here/integrity/tamper.py" period.csv tampered.csv field "$(sed -n 2p period.csv | cut -d, -f1)" actor
zstd -q -f tampered.csv -o tampered.csv.zst
refused "^line 2: event [0-9]+ was changed" \
    verify-export --csv tampered.csv.zst --proof period.proof --checkpoint kept.txt

echo "actor, entity and action filters"
actor="$period, actor => 'bob, \"the builder\"'"
export_with_proof actor "$actor" ", complete => true"
accepted "^OK: $(count "$actor") events proven.*complete" \
    verify-export --csv actor.csv --proof actor.proof --checkpoint kept.txt --key witness.pub
entity="$period, entity => 'learners', action => 'update'"
export_with_proof entity "$entity" ", complete => true"
accepted "^OK: $(count "$entity") events proven.*complete" \
    verify-export --csv entity.csv --proof entity.proof --checkpoint kept.txt --key witness.pub
everything="actor => 'alice@example.org'"
export_with_proof alice "$everything" ""
accepted "^OK: $(count "$everything") events proven" \
    verify-export --csv alice.csv --proof alice.proof --checkpoint kept.txt

echo "a complete proof of a short period stays the size of the period's stretch"
python3 - "$work/period.proof" "$(q "SELECT max(tree_size) FROM audit_log.seals")" <<'EOF'
import json, sys
proof = json.load(open(sys.argv[1]))
size = int(sys.argv[2])
stretch = proof["stretch"]
length = stretch["end"] - stretch["first"]
print(f"  tree of {size} leaves, stretch of {length}, {len(proof['hashes'])} hashes, "
      f"{len(open(sys.argv[1]).read())} bytes")
assert size > 4000, size
assert length < 200, f"the stretch holds {length} leaves"
assert len(proof["hashes"]) <= 2 * 64, len(proof["hashes"])
assert not stretch["open"]
EOF

echo "tampering with the CSV"
# An UPDATE by alice: every field but client_addr (a Unix socket) is set.
target=$(q "SELECT id FROM audit_log.events WHERE action = 'UPDATE' AND actor = 'alice@example.org'")
line=$(grep -n "^$target," period.csv | cut -d: -f1)
[ -n "$line" ] || fail "event $target not found in period.csv"
for field in id occurred_at tx_id actor db_user application_name entity entity_id action \
             changed_fields old_values new_values context; do
    python3 "$here/integrity/tamper.py" period.csv tampered.csv field "$target" "$field"
    ! cmp -s period.csv tampered.csv || fail "$field: nothing changed"
    refused "^line $line: event [0-9]+ (was changed|is not in the proof|again)" \
        verify-export --csv tampered.csv --proof period.proof --checkpoint kept.txt --key witness.pub
done
python3 "$here/integrity/tamper.py" period.csv tampered.csv null-to-empty "$target" client_addr
refused "^line $line: event $target was changed" \
    verify-export --csv tampered.csv --proof period.proof --checkpoint kept.txt
second=$(q "SELECT id FROM audit_log.export($period)" | grep -A1 -x "$target" | tail -n 1)
python3 "$here/integrity/tamper.py" period.csv tampered.csv swap "$target" "$second"
refused "out of order" verify-export --csv tampered.csv --proof period.proof --checkpoint kept.txt
python3 "$here/integrity/tamper.py" period.csv tampered.csv drop "$target"
refused "event $target \(leaf [0-9]+\) is in the export but missing from the CSV" \
    verify-export --csv tampered.csv --proof period.proof --checkpoint kept.txt
# The row dropped and the proof edited to match: the stretch now lacks it.
python3 - "$target" <<'EOF'
import json, sys
proof = json.load(open("period.proof"))
proof["events"] = [e for e in proof["events"] if e[0] != int(sys.argv[1])]
json.dump(proof, open("tampered.proof", "w"))
EOF
refused "leaves out leaf" verify-export --csv tampered.csv --proof tampered.proof --checkpoint kept.txt
# The row shown as a revealed header instead: it matches the filters.
python3 - "$target" <<'EOF'
import json, sys
proof = json.load(open("period.proof"))
event = [e for e in proof["events"] if e[0] == int(sys.argv[1])][0]
proof["events"].remove(event)
proof["stretch"]["leaves"].append({"kind": "event", "leaf": event[1], "id": str(event[0]),
    "occurred_at": None, "tx_id": None, "actor": "alice@example.org", "db_user": None,
    "entity": None, "entity_id": None, "action": None, "body_hash": event[2]})
proof["stretch"]["leaves"].sort(key=lambda l: l["leaf"])
json.dump(proof, open("tampered.proof", "w"))
EOF
refused "do not lead to the root" verify-export --csv tampered.csv --proof tampered.proof --checkpoint kept.txt
# A row of another log, with the same id and the same content.
psql -d proofs_other -c "\\copy (SELECT * FROM audit_log.export()) TO '$work/other.csv' WITH (FORMAT csv, HEADER)"
setup_csv_id=$(q "SELECT min(id) FROM audit_log.events WHERE actor = 'setup'")
export_with_proof setup "actor => 'setup'" ""
python3 "$here/integrity/tamper.py" setup.csv tampered.csv replace "$setup_csv_id" other.csv
refused "^line 2: event $setup_csv_id was changed" \
    verify-export --csv tampered.csv --proof setup.proof --checkpoint kept.txt

echo "checkpoints: another key, forged, another log"
python3 -c "import json; print(json.load(open('period.proof'))['checkpoint'].split('\n\n')[0])" >bare.txt
"$bin" sign --key stranger.key <bare.txt >stranger.txt
refused "carries no signature by witness" \
    verify-export --csv period.csv --proof period.proof --checkpoint stranger.txt --key witness.pub
python3 - <<'EOF'
text = open("kept.txt").read()
lines = text.split("\n")
root = lines[2]
lines[2] = ("A" if root[0] != "A" else "B") + root[1:]
open("forged.txt", "w").write("\n".join(lines))
EOF
refused "signature by witness is wrong" \
    verify-export --csv period.csv --proof period.proof --checkpoint forged.txt --key witness.pub
refused "not the proof's" verify-export --csv period.csv --proof period.proof --checkpoint forged.txt
psql -At -d proofs_other -c "SELECT audit_log.checkpoint()" >other_log.txt
refused "another log" verify-export --csv period.csv --proof period.proof --checkpoint other_log.txt

echo "consistency with the auditor's earlier checkpoint"
old_size=$(sed -n 2p old.txt)
export_with_proof since_old "$period" ", complete => true, checkpoint => \$cp\$$(cat old.txt)\$cp\$"
accepted "^OK: $n events proven .*\(signed by auditor\)" \
    verify-export --csv since_old.csv --proof since_old.proof --checkpoint old.txt --key auditor.pub
refused "carries no consistency proof" \
    verify-export --csv period.csv --proof period.proof --checkpoint old.txt --key auditor.pub
q "SELECT audit_log.consistency_proof($old_size)" >consistency.proof
accepted "^OK: audit_log/[0-9a-f-]+ at tree size [0-9]+ extends tree size $old_size" \
    verify-consistency --old old.txt --new kept.txt --proof consistency.proof
refused "does not extend" verify-consistency --old old.txt --new forged.txt --proof consistency.proof
python3 - <<'EOF'
import json
proof = json.load(open("consistency.proof"))
h = proof["hashes"][0]
proof["hashes"][0] = ("A" if h[0] != "A" else "B") + h[1:]
json.dump(proof, open("forged_consistency.proof", "w"))
EOF
refused "does not extend" verify-consistency --old old.txt --new kept.txt --proof forged_consistency.proof

echo "periods that cannot be called complete, events not sealed yet"
open_period="since => '$since', until => now() + interval '1 hour'"
export_with_proof open "$open_period" ", complete => true"
refused "still open" verify-export --csv open.csv --proof open.proof --checkpoint kept.txt
psql -d proofs -c "SET audit_log.actor = 'late'" -c "INSERT INTO learners VALUES (9001, 'late', NULL, NULL)"
export_with_proof late "actor => 'late'" ""
refused "not sealed yet" verify-export --csv late.csv --proof late.proof --checkpoint kept.txt

echo "the witness"
psql -d proofs -c "UPDATE learners SET note = 'between witness runs' WHERE id < 50" >/dev/null
accepted "extends tree size" witness --dsn "$dsn" --key witness.key --state witness-state
signed_size=$(sed -n 2p witness-state/checkpoint)
# The trail rewritten together with its stored hashes: an event changed,
# the tree dropped and sealed again from scratch, more events on top.
psql -d proofs <<'SQL'
BEGIN;
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'audit\_log\_%' LOOP
        EXECUTE format('ALTER EVENT TRIGGER %I DISABLE', t);
    END LOOP;
END
$$;
ALTER TABLE audit_log.events DISABLE TRIGGER ALL;
ALTER TABLE audit_log.tree_leaves DISABLE TRIGGER ALL;
ALTER TABLE audit_log.tree_seals DISABLE TRIGGER ALL;
ALTER TABLE audit_log.tree_nodes DISABLE TRIGGER ALL;
ALTER TABLE audit_log.tree_signatures DISABLE TRIGGER ALL;
UPDATE audit_log.events SET actor = 'someone else' WHERE actor = 'alice@example.org';
DELETE FROM audit_log.tree_leaves;
DELETE FROM audit_log.tree_seals;
DELETE FROM audit_log.tree_nodes;
DELETE FROM audit_log.tree_signatures;
COMMIT;
SET audit_log.actor = 'cover-up';
INSERT INTO learners SELECT g, 'padding', NULL, NULL FROM generate_series(10001, 12000) g;
SQL
refused "REFUSED: the log at tree size [0-9]+ does not extend the tree of size $signed_size this witness signed" \
    witness --dsn "$dsn" --key witness.key --state witness-state
[ "$(sed -n 2p witness-state/checkpoint)" = "$signed_size" ] || fail "the witness moved its state after refusing"

psql -d postgres -c "DROP DATABASE proofs" -c "DROP DATABASE proofs_other"
echo "auditor proofs: ok"
