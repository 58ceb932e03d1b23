#!/usr/bin/env bash
# Sealing while eight clients write (savepoints, rollbacks, deadlocks, long
# transactions, two-phase commits), seal() every 20 to 50 ms for
# SEALING_SECONDS (20 in `make test`): no false alarm from verify(), every
# checkpoint taken during the run still verifies, one seal after the last
# writer covers every event, horizons hold (tests/integrity/sealing_load.py).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS sealing" -c "CREATE DATABASE sealing"
"$PG_BINDIR/psql" -X -q -d sealing -c "CREATE EXTENSION audit_log"
prepared=$("$PG_BINDIR/psql" -X -At -d sealing -c "SHOW max_prepared_transactions")
[ "$prepared" -gt 0 ] || { echo "max_prepared_transactions is 0: two-phase commits cannot be tested"; exit 1; }
export PGDATABASE=sealing
python3 "$here/integrity/sealing_load.py" "${SEALING_SECONDS:-20}"
"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE sealing"
