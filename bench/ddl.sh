#!/usr/bin/env bash
# DDL benchmark (issue 11): mean time per DDL statement beside 0, 1,000 and
# 10,000 tracked tables, next to the same statements in a database with as
# many tables and no extension; then one transaction creating 1,000 tracked
# tables with a foreign key each. Writes bench/results/ddl.md.
# Usage: bash bench/ddl.sh [sizes] [repeats]   (default "0 1000 10000" 50)
# About 15 minutes on a 2-core machine.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
# The data directory on tmpfs: creating a relation's files on a disk
# filesystem costs milliseconds that vary from run to run (the kernel's inode
# allocation), which would drown the catalog work this benchmark measures.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
start_throwaway_cluster
# track_schema() of 10,000 tables locks each of them in one transaction.
restart_with_settings <<CONF
shared_buffers = '1GB'
max_locks_per_transaction = 256
synchronous_commit = off
jit = off
CONF

PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" \
    python3 bench/ddl.py "${1:-0 1000 10000}" "${2:-50}" bench/results/ddl.md
