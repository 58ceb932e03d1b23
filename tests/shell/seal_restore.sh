#!/usr/bin/env bash
# A sealed trail survives pg_dump and a restore into another cluster, whose
# transaction ids are lower than the ones the trail recorded: the log id, the
# tree and every earlier checkpoint stay valid; the first seal there (a new
# generation) takes the restored events not sealed yet, then the new
# cluster's own; later seals go on from there. Plain and custom formats;
# also a restore into another database of the same cluster.
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
psql_at() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
work=$(scratch_dir)
other_port=$(free_port)
trap 'cluster_stop "$work/other"; rm -rf "$work"' EXIT

psql_at -d postgres -c "DROP DATABASE IF EXISTS seal_src" -c "DROP DATABASE IF EXISTS seal_copy" \
    -c "CREATE DATABASE seal_src"
psql_at -d seal_src <<'SQL'
CREATE EXTENSION audit_log;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);
SELECT audit_log.track('accounts');
-- Transaction ids well above those of a fresh cluster.
CREATE PROCEDURE burn_xids(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP;
END $$;
CALL burn_xids(3000);
SET audit_log.actor = 'alice@example.org';
INSERT INTO accounts SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 20) g;
SQL
first=$(psql_at -At -d seal_src -c "SELECT audit_log.seal()")
psql_at -d seal_src -c "UPDATE accounts SET balance = balance + 1 WHERE id <= 5"
second=$(psql_at -At -d seal_src -c "SELECT audit_log.seal()")
# Left unsealed in the dump.
psql_at -d seal_src -c "DELETE FROM accounts WHERE id > 15" -c "CALL burn_xids(10)"
unsealed=$(psql_at -At -d seal_src -c "SELECT unsealed_events FROM audit_log.seal_status()")
[ "$unsealed" = 5 ] || { echo "expected 5 unsealed events in the source, found $unsealed"; exit 1; }
last_source_id=$(psql_at -At -d seal_src -c "SELECT max(id) FROM audit_log.events")
source_xid=$(psql_at -At -d seal_src -c "SELECT pg_current_xact_id()")

"$PG_BINDIR/pg_dump" -d seal_src -f "$work/dump.sql"
"$PG_BINDIR/pg_dump" -d seal_src -Fc -f "$work/dump.custom"

say "a second cluster, for the restores"
cluster_start "$work/other" "$other_port"
other() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/other" -p "$other_port" -U postgres "$@"; }
other_xid=$(other -At -d postgres -c "SELECT pg_current_xact_id()")
[ "$other_xid" -lt "$source_xid" ] || { echo "the new cluster's xids ($other_xid) should be below the source's ($source_xid)"; exit 1; }
other -d postgres -c "CREATE DATABASE r_plain" -c "CREATE DATABASE r_custom"
other -d r_plain -f "$work/dump.sql" >/dev/null
"$PG_BINDIR/pg_restore" -h "$work/other" -p "$other_port" -U postgres -d r_custom "$work/dump.custom"

check_restored() {
    local run=$1 db=$2
    local origin
    origin=$($run -At -d "$db" -c "SELECT split_part(audit_log.checkpoint(), E'\n', 1)")
    [ "$origin" = "$(head -1 <<<"$first")" ] || { echo "$db: log id changed: $origin"; exit 1; }
    for kept in "$first" "$second"; do
        problems=$($run -At -d "$db" -c "SELECT count(*) FROM audit_log.verify(\$\$$kept
\$\$)")
        [ "$problems" = 0 ] || { echo "$db: a checkpoint kept before the dump no longer verifies"; exit 1; }
    done
    same=$($run -At -d "$db" -c "SELECT audit_log.checkpoint() = \$\$$second
\$\$")
    [ "$same" = t ] || { echo "$db: the restored tree's checkpoint differs"; exit 1; }

    # New events in the restored database, then the new generation's first seal.
    $run -d "$db" -c "SET audit_log.actor = 'bob@example.org'" \
        -c "INSERT INTO accounts VALUES (100, 'new', 1)" -c "UPDATE accounts SET balance = 2 WHERE id = 100"
    third=$($run -At -d "$db" -c "SELECT audit_log.seal()")
    result=$($run -At -d "$db" <<SQL
SELECT (SELECT count(*) FROM audit_log.events e
         WHERE NOT EXISTS (SELECT 1 FROM audit_log.tree_leaves l WHERE l.event_id = e.id)) AS unsealed,
       (SELECT max(l.leaf_index) FROM audit_log.tree_leaves l WHERE l.event_id <= $last_source_id)
       < (SELECT min(l.leaf_index) FROM audit_log.tree_leaves l WHERE l.event_id > $last_source_id) AS restored_first,
       (SELECT cluster FROM audit_log.tree_seals ORDER BY tree_size DESC LIMIT 1)
       = (pg_control_system()).system_identifier AS new_generation,
       (SELECT events_added FROM audit_log.seals ORDER BY tree_size DESC LIMIT 1) AS added;
SQL
)
    [ "$result" = "0|t|t|7" ] || { echo "$db: first seal after the restore: $result (unsealed|restored first|new generation|added)"; exit 1; }
    # The generation goes on: later events, later seals, every checkpoint valid.
    $run -d "$db" -c "DELETE FROM accounts WHERE id = 100"
    fourth=$($run -At -d "$db" -c "SELECT audit_log.seal()")
    [ "$(sed -n 2p <<<"$fourth")" -gt "$(sed -n 2p <<<"$third")" ] || { echo "$db: the next seal appended nothing"; exit 1; }
    for kept in "$first" "$second" "$third" "$fourth"; do
        problems=$($run -At -d "$db" -c "SELECT count(*) FROM audit_log.verify(\$\$$kept
\$\$)")
        [ "$problems" = 0 ] || {
            $run -d "$db" -c "SELECT * FROM audit_log.verify(\$\$$kept
\$\$)"
            echo "$db: verify() after sealing the restored trail"
            exit 1
        }
    done
    echo "$db: log id, tree and checkpoints kept; restored events sealed before new ones"
}
check_restored other r_plain
check_restored other r_custom

# Same cluster, another database: the same generation goes on.
psql_at -d postgres -c "CREATE DATABASE seal_copy"
psql_at -d seal_copy -f "$work/dump.sql" >/dev/null
check_restored psql_at seal_copy
psql_at -d postgres -c "DROP DATABASE seal_copy" -c "DROP DATABASE seal_src"
