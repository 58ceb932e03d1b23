#!/usr/bin/env bash
# Crashes under load: 8 clients write while the postmaster is killed with
# SIGKILL, CRASH_ROUNDS times (3 in `make test`). After each restart, every
# commit a client saw acknowledged has its events, and the trail replayed
# from its first event gives the tables' contents exactly: nothing lost,
# nothing recorded for what did not commit (tests/reliability/load.py).
# Runs its own server, since it kills it.
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(scratch_dir)
port=$(free_port)
trap 'cluster_stop "$work/pg"; rm -rf "$work"' EXIT
cluster_start "$work/pg" "$port"
# A crash must not lose what was acknowledged: durable commits, as in production.
sed -i 's/^fsync = off$/fsync = on/' "$work/pg/data/postgresql.conf"
as_server_user "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w restart >/dev/null

export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
"$(pg_bindir)/psql" -X -q -c "CREATE EXTENSION audit_log"
python3 "$here/reliability/load.py" setup

for round in $(seq "${CRASH_ROUNDS:-3}"); do
    python3 "$here/reliability/load.py" run "${CRASH_SECONDS:-8}" 8 "$work/acked" >"$work/load.log" 2>&1 &
    load=$!
    sleep "$(python3 -c 'import random; print(random.uniform(2, 5))')"
    postmaster=$(head -1 "$work/pg/data/postmaster.pid")
    kill -9 "$postmaster"
    # Backends notice their postmaster's death and exit; then restart (crash recovery).
    for _ in $(seq 60); do
        as_server_user "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w start >/dev/null 2>&1 && break
        sleep 0.5
    done
    wait "$load" || { cat "$work/load.log"; exit 1; }
    echo "round $round: killed postmaster $postmaster; load $(tail -1 "$work/load.log")"
    python3 "$here/reliability/load.py" check "$work/acked"
done
grep -c "database system was interrupted" "$work/pg/server.log" | sed 's/^/crash recoveries: /'
