#!/usr/bin/env bash
# as_of() and revert_transaction() against the truth: a randomized workload
# snapshotted after every transaction (tests/shell/time_travel_truth.py).
# TRUTH_SEED and TRUTH_STEPS replay or lengthen it.
set -euo pipefail
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "DROP DATABASE IF EXISTS truth" -c "CREATE DATABASE truth"
psql -d truth -c "CREATE EXTENSION audit_log"
python3 "$(dirname "$0")/time_travel_truth.py" truth
psql -d postgres -c "DROP DATABASE truth"
