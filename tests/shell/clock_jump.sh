#!/usr/bin/env bash
# A write never fails or waits for lack of a partition. Months are made
# ahead (this one and the next three); the server's clock is moved with
# libfaketime: a transaction that starts in the last second of a month and
# writes again after midnight puts each statement's events in its own month;
# a clock months ahead writes into the months made ahead; with a clock a year
# ahead the writer makes the month it needs, and prepare_partitions() the
# months after it. Runs its own server (the clock is the server's).
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
faketime_lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
[ -n "$faketime_lib" ] || { echo "libfaketime is not installed (scripts/setup.sh installs it)"; exit 1; }
work=$(scratch_dir)
port=$(free_port)
trap 'cluster_stop "$work/pg"; rm -rf "$work"' EXIT
cluster_start "$work/pg" "$port"
export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres
sql() { "$(pg_bindir)/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# start_at FAKETIME: restarts the server with its clock set by libfaketime.
start_at() {
    as_server_user "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null
    as_server_user env LD_PRELOAD="$faketime_lib" FAKETIME="$1" DONT_FAKE_MONOTONIC=1 \
        "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w start >/dev/null
}
# partition_of ID: the month (UTC) of the partition holding event ID, or "default".
partition_of() {
    sql -c "SELECT CASE WHEN b.from_time IS NULL THEN 'default'
                        ELSE to_char(b.from_time AT TIME ZONE 'UTC', 'YYYY-MM') END
              FROM audit_log.events e JOIN audit_log.partition_bounds() b ON b.partition = e.tableoid
             WHERE e.id = $1"
}

sql -c "CREATE EXTENSION audit_log" -c "CREATE TABLE t (id int PRIMARY KEY, at text)" \
    -c "SELECT audit_log.track('t')" >/dev/null

# The last second of the month after next (made ahead by track()), then past midnight.
last_second=$(sql -c "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months' - interval '8 seconds',
                                     'YYYY-MM-DD HH24:MI:SS')")
start_at "@$last_second"
sql <<'SQL' >/dev/null
BEGIN;
INSERT INTO t VALUES (1, 'before midnight');
SELECT pg_sleep_until(date_trunc('month', now() AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC' + interval '0.2 s');
INSERT INTO t VALUES (2, 'after midnight');
COMMIT;
SQL
read -r before after <<<"$(sql -c "SELECT string_agg(e.id::text, ' ' ORDER BY e.id) FROM audit_log.events e WHERE e.action = 'INSERT'")"
one_tx=$(sql -c "SELECT count(DISTINCT tx_id) FROM audit_log.events WHERE id IN ($before, $after)")
[ "$one_tx" = 1 ] || fail "the two writes were not one transaction"
month_before=$(partition_of "$before"); month_after=$(partition_of "$after")
expected_before=$(sql -c "SELECT to_char(timestamp '$last_second', 'YYYY-MM')")
expected_after=$(sql -c "SELECT to_char(timestamp '$last_second' + interval '1 day', 'YYYY-MM')")
[ "$month_before" = "$expected_before" ] || fail "the write before midnight went to $month_before, not $expected_before"
[ "$month_after" = "$expected_after" ] || fail "the write after midnight went to $month_after, not $expected_after"
echo "a transaction across midnight: events in $month_before and $month_after"

# A clock a year ahead: no month made that far, the writer makes that month
# for its event, in the writing transaction; prepare_partitions() then makes
# the months after it.
start_at "+400d"
sql -c "INSERT INTO t VALUES (3, 'a year ahead')"
id=$(sql -c "SELECT max(id) FROM audit_log.events")
month=$(sql -c "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM')")
[ "$(partition_of "$id")" = "$month" ] || fail "a year ahead, the write went to $(partition_of "$id"), not $month"
made=$(sql -c "SELECT count(*) FROM audit_log.prepare_partitions()")
[ "$made" = 3 ] || fail "prepare_partitions() made $made months a year ahead, not 3"
echo "a clock a year ahead: the writer made $month for its write; the three months after it followed"

# Back to the real clock: still writing, into this month.
start_at "+0d"
sql -c "INSERT INTO t VALUES (4, 'now')"
id=$(sql -c "SELECT max(id) FROM audit_log.events")
[ "$(partition_of "$id")" = "$(sql -c "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM')")" ] \
    || fail "back to now, the write went to $(partition_of "$id")"
echo "clock jumps: every write kept, in the partition of its time"
