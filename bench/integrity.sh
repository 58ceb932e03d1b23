#!/usr/bin/env bash
# Integrity benchmark (issue 14): seal() throughput, verify() next to a plain
# export of the same events, capture with and without sealing in the
# background; one throwaway PostgreSQL 15, release build. Writes
# bench/results/integrity.md.
# Usage: bash bench/integrity.sh   (VERIFY_EVENTS, CAPTURE_ROWS, PGBENCH_SECONDS, ROUNDS to scale it)
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
start_throwaway_cluster
restart_with_settings <<CONF
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = '2GB'
work_mem = '16MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
jit = off
shared_preload_libraries = 'audit_log'
audit_log.seal_interval = 0
CONF

PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" BENCH_WORK="$work" \
    python3 bench/integrity.py bench/results
