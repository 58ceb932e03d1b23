#!/usr/bin/env bash
# Reading and export benchmark (issue 3): 10 million events over 50 tables and
# 1,000 actors in a throwaway PostgreSQL, then list()/history()/changes()
# latencies and export() throughput and memory. Writes bench/results/reading.md.
# Usage: bash bench/reading.sh [events]   (default 10000000)
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

say "building and installing audit_log (release)"
cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null

work=$(scratch_dir)
port=$(free_port)
trap 'cluster_stop "$work/pg"; rm -rf "$work"' EXIT
say "starting a throwaway PostgreSQL on port $port"
cluster_start "$work/pg" "$port"
# Written here so that the figures can be reproduced: a modest server on this
# machine, not a tuned one.
cat >>"$work/pg/data/postgresql.conf" <<CONF
shared_buffers = '4GB'
work_mem = '16MB'
maintenance_work_mem = '1GB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
synchronous_commit = on
jit = off
CONF
as_server_user "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -w restart -l "$work/pg/server.log" >/dev/null

PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" \
    python3 bench/reading.py "${1:-10000000}" bench/results/reading.md
