#!/usr/bin/env bash
# Integrity benchmark (issues 14 and 15): seal() throughput, verify() next to
# a plain export of the same events, capture with and without sealing in the
# background (bench/integrity.py, bench/results/integrity.md); export_proof()
# and audit-log verify-export next to writing the export (bench/proofs.py,
# bench/results/proofs.md). One throwaway PostgreSQL 15, release builds.
# Usage: bash bench/integrity.sh   (VERIFY_EVENTS, CAPTURE_ROWS, PGBENCH_SECONDS,
# ROUNDS, PROOF_EVENTS to scale it; PROOFS_ONLY=1 for the proofs alone)
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
cargo build --quiet --release -p audit-log-cli
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

export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" BENCH_WORK="$work"
if [ -z "${PROOFS_ONLY:-}" ]; then
    python3 bench/integrity.py bench/results
fi
AUDIT_LOG_BIN="$ROOT_DIR/target/release/audit-log" python3 bench/proofs.py bench/results
