#!/usr/bin/env bash
# Memory stays bounded with RESOURCE_TABLES tracked tables (1,000 in `make test`),
# a 100 MB row is captured, cancelled big UPDATEs leave nothing
# (tests/reliability/resources.py).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS resources" -c "CREATE DATABASE resources"
"$PG_BINDIR/psql" -X -q -d resources -c "CREATE EXTENSION audit_log"
PGDATABASE=resources python3 "$here/reliability/resources.py" "${RESOURCE_TABLES:-1000}"
