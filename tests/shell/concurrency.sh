#!/usr/bin/env bash
# 8 clients, RELIABILITY_SECONDS (10 in `make test`) of mixed writes, rollbacks,
# savepoints, deadlocks, key changes and partition moves; then the trail,
# replayed from its first event, must give the tables' contents exactly, with
# one event per committed row change (tests/reliability/load.py).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS reliability" -c "CREATE DATABASE reliability"
"$PG_BINDIR/psql" -X -q -d reliability -c "CREATE EXTENSION audit_log"
export PGDATABASE=reliability
python3 "$here/reliability/load.py" setup
python3 "$here/reliability/load.py" run "${RELIABILITY_SECONDS:-10}" 8 "$work/acked"
python3 "$here/reliability/load.py" check "$work/acked" --exact
