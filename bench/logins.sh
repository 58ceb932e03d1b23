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
measure() {
    PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" \
        python3 bench/logins.py "${1:-20}" bench/results/logins.json "$2" ${3:-}
}
# As installed: the library is loaded by each connection's first call.
measure "${1:-20}" "as installed (fsync and synchronous_commit on)"
# Loaded once by the postmaster, as the seal worker needs anyway.
restart_with_settings <<CONF
shared_preload_libraries = 'audit_log'
CONF
measure "${1:-20}" "\`shared_preload_libraries = 'audit_log'\`" --append
# What the commit's WAL flush costs: the same without waiting for it.
restart_with_settings <<CONF
synchronous_commit = off
CONF
measure "${1:-20}" "\`shared_preload_libraries = 'audit_log'\`, \`synchronous_commit = off\` (not advised: a crash may lose the last logins)" --append
