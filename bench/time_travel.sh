#!/usr/bin/env bash
# Time-travel benchmark (issue 17): as_of() of one row and of whole tables,
# a baseline of a 1-million-row table next to a plain copy of it, and
# revert_transaction(), on the 10-million-event trail of the reading benchmark,
# in a throwaway PostgreSQL. Writes bench/results/time_travel.md.
# Usage: bash bench/time_travel.sh [trail events]   (default 10000000)
# Smaller tables for a quick try: HUNDRED_K_ROWS=10000 MILLION_ROWS=50000 bash bench/time_travel.sh 100000
# PG_CONFIG chooses the PostgreSQL built for and run (scripts/common.sh; default
# the system's 15).
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
start_throwaway_cluster
# The reading benchmark's server (bench/reading.sh).
restart_with_settings <<CONF
shared_buffers = '4GB'
work_mem = '16MB'
maintenance_work_mem = '1GB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
synchronous_commit = on
jit = off
CONF
# The synthetic trail's transaction ids (1000 and up, as in the reading
# benchmark) are those a fresh cluster is about to hand out: the events this
# run captures would share them, and revert_transaction() would take the
# synthetic events for part of the transaction reverted. Like a trail
# restored from another cluster (docs/reference.md, 6.1), they belong to
# another epoch: this cluster's transaction ids start at 2^32.
as_server_user "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null
as_server_user "$(pg_bindir)/pg_resetwal" -e 1 -D "$work/pg/data" >/dev/null
as_server_user env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
    "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 start >/dev/null

PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" \
    python3 bench/time_travel.py "${1:-10000000}" bench/results/time_travel.md
