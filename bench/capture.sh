#!/usr/bin/env bash
# Capture benchmark (issue 4): six workloads, each run with no auditing, with
# audit_log and with a hand-written PL/pgSQL trigger, in one throwaway
# PostgreSQL 15, and the connection rate with track_logins off and on in
# PostgreSQL 18 (bench/logins.sh). Writes bench/results/capture.md and capture.png.
# Usage: bash bench/capture.sh [rows] [pgbench seconds]   (default 1000000 60)
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install --quiet matplotlib

# Sign-ins first (their own PostgreSQL 18 server), then the capture workloads.
bash bench/logins.sh
install_extension --release
start_throwaway_cluster
# A default install's durability (fsync, synchronous_commit, full_page_writes
# on), with memory and checkpoint spacing sized for this machine.
restart_with_settings <<CONF
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = '2GB'
work_mem = '16MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
jit = off
CONF

PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" BENCH_WORK="$work" \
    python3 bench/capture.py "${1:-1000000}" "${2:-60}" bench/results
