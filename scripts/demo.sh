#!/usr/bin/env bash
# The demo: builds and installs the extension, starts a throwaway PostgreSQL,
# runs demo/training.sql (a training organisation audited for Qualiopi),
# prints the CSV export, seals the trail, tampers with it as a superuser and
# shows verify() naming the event, then stops the server and removes everything.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
start_throwaway_cluster

export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres PGAPPNAME=certeef-web
(cd "$work" && "$(pg_bindir)/psql" -X -q -f "$ROOT_DIR/demo/training.sql")

say "audit.csv, as an auditor receives it"
cat "$work/audit.csv"
say "done: the server is stopped and its directory removed"
