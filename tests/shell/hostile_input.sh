#!/usr/bin/env bash
# Generated hostile input for every public function and random table shapes
# for track() (tests/reliability/hostile.py): no crash, no XX000, nothing
# half-written. HOSTILE_EXAMPLES per property (60 in `make test`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS hostile" -c "CREATE DATABASE hostile"
"$PG_BINDIR/psql" -X -q -d hostile -c "CREATE EXTENSION audit_log"
PGDATABASE=hostile python3 "$here/reliability/hostile.py" "${HOSTILE_EXAMPLES:-60}"
