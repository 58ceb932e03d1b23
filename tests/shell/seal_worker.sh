#!/usr/bin/env bash
# Automatic sealing: with shared_preload_libraries = 'audit_log', the
# background worker seals each database of audit_log.seal_databases every
# audit_log.seal_interval, without anyone calling seal(). Listed databases
# that do not exist, lack the extension, cannot be sealed (not UTF8) or are
# dropped meanwhile only get a log line; sealing goes on after a restart and
# a reload, stops at seal_interval = 0, and nothing crashes.
# Runs its own server, since it needs shared_preload_libraries.
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
work=$(scratch_dir)
port=$(free_port)
trap 'cluster_stop "$work/pg"; rm -rf "$work"' EXIT
cluster_start "$work/pg" "$port"
cat >>"$work/pg/data/postgresql.conf" <<'CONF'
shared_preload_libraries = 'audit_log'
audit_log.seal_interval = '1s'
audit_log.seal_databases = 'app, missing_db, plain, dropme, latin'
CONF
log=$work/pg/server.log
restart() {
    as_server_user "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -l "$log" -w restart >/dev/null
}
restart

export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres
sql() { "$(pg_bindir)/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
fail() {
    echo "FAIL: $*" >&2
    tail -40 "$log" >&2
    exit 1
}

sql -d postgres -c "CREATE DATABASE app" -c "CREATE DATABASE plain" -c "CREATE DATABASE dropme" \
    -c "CREATE DATABASE latin ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0"
sql -d app -c "CREATE EXTENSION audit_log" -c "CREATE TABLE t (id int PRIMARY KEY, v text)" \
    -c "SELECT audit_log.track('t')" >/dev/null
sql -d dropme -c "CREATE EXTENSION audit_log"
sql -d latin -c "CREATE EXTENSION audit_log"

# The worker also makes the log's months ahead, where nobody called track().
for _ in $(seq 60); do
    months=$(sql -d dropme -c "SELECT count(*) FROM audit_log.partition_bounds() WHERE from_time IS NOT NULL")
    [ "$months" = 4 ] && break
    sleep 0.5
done
[ "$months" = 4 ] || fail "the worker made $months months ahead in dropme, not 4"

seals() { sql -d app -c "SELECT count(*) FROM audit_log.seals"; }

# write FIRST LAST: rows FIRST..LAST in app's tracked table.
write() {
    sql -d app -c "INSERT INTO t SELECT g, 'v' || g FROM generate_series($1, $2) g"
}

# sealed_after SEALS WHAT: waits (30 s at most) until a seal newer than the
# first SEALS left no event of app unsealed.
sealed_after() {
    local before=$1 what=$2 state
    for _ in $(seq 60); do
        state=$(sql -d app -c "SELECT s.unsealed_events = 0
                                      AND (SELECT count(*) FROM audit_log.seals) > $before
                                      AND (SELECT count(*) FROM audit_log.events)
                                        = (SELECT count(*) FROM audit_log.tree_leaves WHERE event_id IS NOT NULL)
                                 FROM audit_log.seal_status() s")
        [ "$state" = t ] && return 0
        sleep 0.5
    done
    fail "$what: app not sealed within 30 s ($(sql -d app -c "SELECT * FROM audit_log.seal_status()"))"
}

before=$(seals)
write 1 100
sealed_after "$before" "first rows"

sql -d postgres -c "DROP DATABASE dropme WITH (FORCE)"
before=$(seals)
write 101 200
sealed_after "$before" "after DROP DATABASE dropme"

restart
before=$(seals)
write 201 300
sealed_after "$before" "after a restart"

# A reload with a messy list: blanks, empty entries, a name too long to be a
# database's. The rest is still sealed.
long=$(printf 'x%.0s' $(seq 70))
sql -d postgres -c "ALTER SYSTEM SET audit_log.seal_databases = ' , app,,$long , missing_db '" \
    -c "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
before=$(seals)
write 301 400
sealed_after "$before" "after a reload"

interval=$(sql -d app -c "SHOW audit_log.seal_interval")
[ "$interval" = 1s ] || fail "SHOW audit_log.seal_interval gave '$interval', not 1s"
launchers=$(sql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'audit_log seal launcher'")
[ "$launchers" = 1 ] || fail "$launchers seal launchers running, not 1"

# 0 turns sealing off.
sql -d postgres -c "ALTER SYSTEM SET audit_log.seal_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
write 401 410
sleep 3
unsealed=$(sql -d app -c "SELECT unsealed_events FROM audit_log.seal_status()")
[ "$unsealed" -gt 0 ] || fail "app was sealed with audit_log.seal_interval = 0"

grep -q 'database "missing_db" does not exist or accepts no connections; not sealed' "$log" || fail "no log line for missing_db"
grep -q 'database "plain" has no audit_log.seal(); not sealed' "$log" || fail "no log line for plain"
grep -q 'could not seal database "latin": sealing requires a UTF8 database' "$log" ||
    fail "no log line for latin"
grep -q "\"$long\" is not a valid database name" "$log" || fail "no log line for the long name"
if grep -E 'PANIC|terminated by signal|server process .* was terminated' "$log"; then
    fail "the server log shows a crash"
fi
# Reported when the problem appears, not every round: once per start or reload.
missing=$(grep -c 'database "missing_db" does not exist' "$log")
[ "$missing" -le 3 ] || fail "missing_db reported $missing times"

echo "seal worker: $(seals) seals of app, launcher alive, $missing reports of missing_db, $(grep -c 'could not seal database "latin"' "$log") failed seals of latin logged"
