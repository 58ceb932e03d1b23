#!/usr/bin/env bash
# Connection rate with audit_log.track_logins off and on (PostgreSQL 18: login
# event triggers exist from 17 on), for the capture benchmark's report.
# Writes bench/results/logins.json; bench/capture.sh runs it first.
# Usage: bash bench/logins.sh [seconds per round]   (default 20)
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
export PG_CONFIG=${LOGINS_PG_CONFIG:-$PG18_CONFIG}
export PATH="$HOME/.cargo/bin:$PATH"
install_extension --release
start_throwaway_cluster
restart_with_settings <<CONF
fsync = on
synchronous_commit = on
shared_buffers = '1GB'
jit = off
CONF
PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" \
    python3 bench/logins.py "${1:-20}" bench/results/logins.json
