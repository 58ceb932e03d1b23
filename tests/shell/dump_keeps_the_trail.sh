#!/usr/bin/env bash
# pg_dump carries the trail: the events, the id sequence and the tracking
# configuration are extension config tables. Restored into a new database,
# in plain and in custom format, the dump gives the same events (ids, values,
# order), creates none of its own, keeps tracking on (options, partitions,
# schemas followed), and the ids continue above the last one.
set -euo pipefail
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

psql -d postgres -c "DROP DATABASE IF EXISTS dump_src" -c "CREATE DATABASE dump_src"
psql -d dump_src <<'SQL'
CREATE EXTENSION audit_log;
CREATE TABLE learners (id int PRIMARY KEY, name text, phone text);
SELECT audit_log.track('learners', redact_columns => '{phone}');
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE sales.orders_eu PARTITION OF sales.orders FOR VALUES IN ('eu');
SELECT audit_log.track_schema('sales');
SET audit_log.actor = 'alice@example.org';
INSERT INTO learners VALUES (1, 'Ada', '+33 1'), (2, 'Alan', '+33 2');
UPDATE learners SET name = 'Ada L.' WHERE id = 1;
DELETE FROM learners WHERE id = 2;
INSERT INTO sales.orders VALUES (1, 'eu');
ALTER TABLE learners ADD COLUMN email text;
SQL

"$PG_BINDIR/pg_dump" -d dump_src -f "$work/dump.sql"
"$PG_BINDIR/pg_dump" -d dump_src -Fc -f "$work/dump.custom"
# The log's months are tables of the dump, attached to the log, with their
# rows; their guards are not in it (the extension makes them as they attach).
grep -q '^COPY audit_log.events_[0-9_]* ' "$work/dump.sql" || { echo "no events in the dump"; exit 1; }
grep -q '^ALTER TABLE ONLY audit_log.events ATTACH PARTITION audit_log.events_[0-9_]* FOR VALUES' "$work/dump.sql" \
    || { echo "the log's partitions are not attached in the dump"; exit 1; }
! grep -q 'CREATE TRIGGER events_' "$work/dump.sql" || { echo "partition guards in the dump"; exit 1; }
grep -q "setval('audit_log.events_id_seq'" "$work/dump.sql" || { echo "no sequence position in the dump"; exit 1; }

trail="SELECT id, occurred_at, tx_id, actor, db_user, application_name, client_addr, context,
               entity, entity_id, action, old_values, new_values, changed_fields
          FROM audit_log.events ORDER BY id"
psql -At -d dump_src -c "$trail" >"$work/src.txt"
[ "$(wc -l <"$work/src.txt")" -eq 8 ] || { echo "expected 8 events in the source"; cat "$work/src.txt"; exit 1; }

for format in plain custom; do
    psql -d postgres -c "DROP DATABASE IF EXISTS dump_dst" -c "CREATE DATABASE dump_dst"
    if [ "$format" = plain ]; then
        psql -d dump_dst -f "$work/dump.sql" >/dev/null
    else
        "$PG_BINDIR/pg_restore" -d dump_dst --exit-on-error "$work/dump.custom"
    fi

    psql -At -d dump_dst -c "$trail" >"$work/dst.txt"
    diff "$work/src.txt" "$work/dst.txt" || { echo "$format: restored events differ"; exit 1; }

    # Every partition is back with its seven indexes and four guards, once,
    # and refuses changes; the restore was noted for sealing.
    shape=$(psql -At -d dump_dst -c "
        SELECT string_agg(DISTINCT (SELECT count(*) FROM pg_index x WHERE x.indrelid = b.partition)::text || ' indexes, '
                          || (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = b.partition AND t.tgisinternal
                                 AND t.tgenabled = 'A')::text || ' guards', '; ')
          FROM audit_log.partition_bounds() b")
    [ "$shape" = "7 indexes, 4 guards" ] || { echo "$format: restored partitions: $shape"; exit 1; }
    refused=$(psql -At -d dump_dst -c "SELECT format('DELETE FROM %s', e.tableoid::regclass) FROM audit_log.events e LIMIT 1" \
              | psql -d dump_dst 2>&1 || true)
    echo "$refused" | grep -q "append-only: DELETE is not allowed" || { echo "$format: a restored partition is not guarded: $refused"; exit 1; }
    noted=$(psql -At -d dump_dst -c "SELECT max(last_event_id) = (SELECT max(id) FROM audit_log.events) FROM audit_log.restored_trails")
    [ "$noted" = t ] || { echo "$format: the restore was not noted in restored_trails"; exit 1; }

    # The restored capture triggers are named after the restored tables (the
    # dump names them after the source's OIDs): only such names capture.
    misnamed=$(psql -At -d dump_dst -c "
        SELECT count(*) FROM pg_trigger t
         WHERE t.tgfoid IN ('audit_log.capture_row()'::regprocedure, 'audit_log.capture_truncate()'::regprocedure)
           AND NOT EXISTS (SELECT 1 FROM (SELECT t.tgrelid UNION SELECT p.relid FROM pg_partition_ancestors(t.tgrelid) AS p) AS a(relid)
                             JOIN audit_log.tracked k ON k.relid = a.relid
                            WHERE t.tgname IN ('audit_log_row_' || a.relid::oid, 'audit_log_truncate_' || a.relid::oid))")
    [ "$misnamed" = 0 ] || { echo "$format: $misnamed capture triggers keep the source's names"; exit 1; }

    # Tracking is still on after the restore, with its options, partitions
    # and followed schemas, and ids continue above the last one.
    psql -d dump_dst <<'SQL'
SET audit_log.actor = 'bob';
INSERT INTO learners VALUES (3, 'Grace', '+33 3', NULL);
INSERT INTO sales.orders VALUES (2, 'eu');
TRUNCATE sales.orders_eu;
CREATE TABLE sales.refunds (id int PRIMARY KEY);
SQL
    result=$(psql -At -F ' ' -d dump_dst -c "
        SELECT string_agg(concat_ws(':', e.action, e.entity, e.new_values->>'phone'), ' ' ORDER BY e.id)
          FROM audit_log.events e WHERE e.id > (SELECT max(id) FROM audit_log.events WHERE actor IS DISTINCT FROM 'bob')")
    expected="INSERT:public.learners:[REDACTED] INSERT:sales.orders TRUNCATE:sales.orders TRACK:sales.refunds"
    [ "$result" = "$expected" ] || { echo "$format: capture after restore: $result"; exit 1; }
    first_new=$(psql -At -d dump_dst -c "SELECT min(id) FROM audit_log.events WHERE actor = 'bob'")
    last_old=$(tail -1 "$work/src.txt" | cut -d'|' -f1)
    [ "$first_new" -gt "$last_old" ] || { echo "$format: ids restart at $first_new after $last_old"; exit 1; }
done
echo "dump and restore keep the trail (plain and custom formats)"
