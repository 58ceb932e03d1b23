#!/usr/bin/env bash
# The demo: builds and installs the extension, starts a throwaway PostgreSQL,
# runs demo/training.sql (a training organisation audited for Qualiopi),
# prints the CSV export, then stops the server and removes everything.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

say "building and installing audit_log"
cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null

work=$(scratch_dir)
port=$(free_port)
cleanup() {
    cluster_stop "$work/pg"
    rm -rf "$work"
}
trap cleanup EXIT
say "starting a throwaway PostgreSQL (port $port, data in $work)"
cluster_start "$work/pg" "$port"

export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres PGAPPNAME=certeef-web
(cd "$work" && "$(pg_bindir)/psql" -X -q -f "$ROOT_DIR/demo/training.sql")

say "audit.csv, as an auditor receives it"
cat "$work/audit.csv"
say "done: the server is stopped and $work removed"
