#!/usr/bin/env bash
# Sizing benchmark (issue 16): bytes and WAL per event, for docs/operations.md.
# One throwaway PostgreSQL 15, release build. Writes bench/results/sizing.md.
# Usage: bash bench/sizing.sh   (SIZING_ROWS, SIZING_SINGLE to scale it)
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
start_throwaway_cluster
restart_with_settings <<CONF
fsync = on
full_page_writes = on
shared_buffers = '1GB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
CONF

PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" \
    python3 bench/sizing.py bench/results
