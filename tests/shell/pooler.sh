#!/usr/bin/env bash
# set_actor() behind PgBouncer in transaction pooling mode never gives a
# client's actor to another client, and the session-level SET does
# (tests/reliability/pooler.py).
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(scratch_dir)
bouncer_port=$(free_port)
trap 'as_server_user kill "$(cat "$work/pgbouncer.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS pooled" -c "CREATE DATABASE pooled"
"$PG_BINDIR/psql" -X -q -d pooled -c "CREATE EXTENSION audit_log"

cat >"$work/pgbouncer.ini" <<INI
[databases]
safe = host=$PGHOST port=$PGPORT dbname=pooled user=postgres pool_size=3
leaky = host=$PGHOST port=$PGPORT dbname=pooled user=postgres pool_size=1
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $work/users.txt
pool_mode = transaction
max_client_conn = 200
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
echo '"postgres" ""' >"$work/users.txt"
# PgBouncer refuses to run as root, like PostgreSQL.
as_server_user /usr/sbin/pgbouncer -d "$work/pgbouncer.ini"
for _ in $(seq 50); do [ -s "$work/pgbouncer.pid" ] && break; sleep 0.1; done

dsn="host=127.0.0.1 port=$bouncer_port user=postgres"
python3 "$here/reliability/pooler.py" check "$dsn dbname=safe" "$dsn dbname=leaky"
