#!/usr/bin/env bash
# Test vectors of the integrity format: tests/vectors/compute.py (hashlib
# only) gives the expected leaves and roots of a few events; the Rust crate
# checks them in `cargo test -p audit-log-tree`, and here PostgreSQL does:
# loaded into an empty trail, the events export byte for byte as
# events.csv, and seal() stores the expected leaf hashes and a root that
# hashlib recomputes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
python3 "$here/vectors/compute.py" --check
psql -d postgres -c "DROP DATABASE IF EXISTS vectors" -c "CREATE DATABASE vectors"
psql -d vectors -c "CREATE EXTENSION audit_log"
export PGDATABASE=vectors
python3 "$here/vectors/check_pg.py" load
psql -d vectors -c "\\copy (SELECT * FROM audit_log.export()) TO '$work/export.csv' WITH (FORMAT csv, HEADER)"
cmp "$work/export.csv" "$here/vectors/events.csv" || { diff "$work/export.csv" "$here/vectors/events.csv"; exit 1; }
psql -d vectors -XAtc "SELECT audit_log.export_csv()" >"$work/export_csv.csv"
cmp "$work/export_csv.csv" "$here/vectors/events.csv" || { diff "$work/export_csv.csv" "$here/vectors/events.csv"; exit 1; }
psql -d vectors -c "SELECT audit_log.seal()" >/dev/null
python3 "$here/vectors/check_pg.py" check
problems=$(psql -At -d vectors -c "SELECT count(*) FROM audit_log.verify()")
[ "$problems" = 0 ] || { echo "verify() found $problems problems"; exit 1; }
psql -d postgres -c "DROP DATABASE vectors"
