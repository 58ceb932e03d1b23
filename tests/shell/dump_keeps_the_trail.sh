#!/usr/bin/env bash
# pg_dump carries the trail: the events, the id sequence and the tracking
# configuration are extension config tables, so a dump restored into a new
# database has the same events, keeps capturing, and continues the ids.
set -euo pipefail
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql -d postgres -c "DROP DATABASE IF EXISTS dump_src" -c "DROP DATABASE IF EXISTS dump_dst" \
    -c "CREATE DATABASE dump_src" -c "CREATE DATABASE dump_dst"
psql -d dump_src <<'SQL'
CREATE EXTENSION audit_log;
CREATE TABLE learners (id int PRIMARY KEY, name text, phone text);
SELECT audit_log.track('learners', redact_columns => '{phone}');
SET audit_log.actor = 'alice@example.org';
INSERT INTO learners VALUES (1, 'Ada', '+33 1'), (2, 'Alan', '+33 2');
UPDATE learners SET name = 'Ada L.' WHERE id = 1;
DELETE FROM learners WHERE id = 2;
SQL

"$PG_BINDIR/pg_dump" -d dump_src -f "$work/dump.sql"
grep -q '^COPY audit_log.events ' "$work/dump.sql" || { echo "no events in the dump"; exit 1; }
grep -q "setval('audit_log.events_id_seq'" "$work/dump.sql" || { echo "no sequence position in the dump"; exit 1; }
psql -d dump_dst -f "$work/dump.sql" >/dev/null

trail="SELECT id, occurred_at, tx_id, actor, db_user, application_name, client_addr, context,
               entity, entity_id, action, old_values, new_values, changed_fields
          FROM audit_log.events ORDER BY id"
psql -At -d dump_src -c "$trail" >"$work/src.txt"
psql -At -d dump_dst -c "$trail" >"$work/dst.txt"
[ "$(wc -l <"$work/src.txt")" -eq 5 ] || { echo "expected 5 events in the source"; cat "$work/src.txt"; exit 1; }
diff "$work/src.txt" "$work/dst.txt" || { echo "restored events differ"; exit 1; }

# Tracking is still on after the restore, with its options, and ids continue.
psql -d dump_dst -c "SET audit_log.actor = 'bob'; INSERT INTO learners VALUES (3, 'Grace', '+33 3')"
result=$(psql -At -d dump_dst -c "
    SELECT e.id > (SELECT max(id) FROM audit_log.events WHERE id < e.id), e.action, e.new_values->>'phone'
      FROM audit_log.events e ORDER BY e.id DESC LIMIT 1")
[ "$result" = "t|INSERT|[REDACTED]" ] || { echo "capture after restore: $result"; exit 1; }
echo "dump and restore keep the trail"
