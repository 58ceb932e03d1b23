#!/usr/bin/env bash
# Scale benchmark (issue 16): a trail of 30 million events over 24 months,
# partitioned by month (this version) and as one table (0.4.0), in one
# throwaway PostgreSQL 15: load, seal, capture against a full log and an
# empty one, reading latencies, archiving one month with a writer running,
# bytes per event, and the upgrade of the 30-million-event table.
# Writes bench/results/scale.md.
# Also: archiving a month of a 4.8-million-event trail sealed in one seal.
# Usage: bash bench/scale.sh   (about 70 minutes on 2 cores; about 60 GB of
# free disk). A small run to try it out, in three minutes:
#   SCALE_EVENTS=600000 SCALE_ONE_SEAL_EVENTS=240000 SCALE_PGBENCH_SECONDS=5 SCALE_ROUNDS=2 \
#   SCALE_W4_ROWS=20000 SCALE_OUT=/tmp/scale-small.md bash bench/scale.sh
# Event counts must be multiples of the months (SCALE_MONTHS, default 24).
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
# The single-table log is 0.4.0's: its install script, next to this version's
# (as tests/shell/upgrade_keeps_the_trail.sh does).
cp sql/versions/audit_log--0.4.0.sql "$("$PG_CONFIG" --sharedir)/extension/"
say "building the audit-log command"
cargo build --quiet --release -p audit-log-cli
start_throwaway_cluster
# shared_buffers as issue 16 says; a default install's durability.
restart_with_settings <<CONF
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = '1GB'
work_mem = '16MB'
maintenance_work_mem = '1GB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
jit = off
CONF

# What was built, for the report.
if [ -z "${SCALE_BUILD:-}" ] && git rev-parse --short HEAD >/dev/null 2>&1; then
    SCALE_BUILD="commit $(git rev-parse --short HEAD)"
    if [ -n "$(git status --porcelain -- src sql crates Cargo.toml Cargo.lock audit_log.control)" ]; then
        SCALE_BUILD="$SCALE_BUILD with uncommitted changes to src/, sql/ or crates/"
    fi
fi
export SCALE_BUILD

PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" BENCH_WORK="$work" \
    AUDIT_LOG_BIN="$ROOT_DIR/target/release/audit-log" \
    python3 bench/scale.py "${SCALE_OUT:-bench/results/scale.md}"
