#!/usr/bin/env bash
# The demo: builds and installs the extension, starts a throwaway PostgreSQL,
# runs demo/training.sql (a training organisation audited for Qualiopi),
# prints the CSV export, seals the trail, proves the export to an auditor with
# the audit-log command (a witness-signed checkpoint, verify-export saying OK,
# then a forged CSV refused), tampers with the trail as a superuser and shows
# verify() naming the event, then stops the server and removes everything.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

install_extension --release
cargo build --quiet --release -p audit-log-cli
audit_log="$ROOT_DIR/target/release/audit-log"
start_throwaway_cluster

export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres PGAPPNAME=certeef-web
(cd "$work" && "$(pg_bindir)/psql" -X -q -f "$ROOT_DIR/demo/training.sql")

say "audit.csv, as an auditor receives it"
cat "$work/audit.csv"

say "the organisation's witness signs the checkpoint (audit-log witness, from cron in real life)"
cd "$work"
"$audit_log" keygen certeef-witness
"$audit_log" witness --dsn "host=$PGHOST port=$PGPORT user=postgres dbname=postgres" \
    --key certeef-witness.key --state witness-state
"$(pg_bindir)/psql" -X -At -c "SELECT audit_log.checkpoint()" >checkpoint.txt
cat checkpoint.txt
say "the auditor, with the three files and the witness's public key, and no database"
echo "\$ audit-log verify-export --csv audit.csv --proof audit.proof --checkpoint checkpoint.txt --key certeef-witness.pub"
"$audit_log" verify-export --csv audit.csv --proof audit.proof --checkpoint checkpoint.txt --key certeef-witness.pub
say "someone edits the CSV before sending it: the new price, 590.00 instead of 950.00"
sed "s/\"\"price\"\": 950.00/\"\"price\"\": 590.00/" audit.csv >forged.csv
diff audit.csv forged.csv || true
if "$audit_log" verify-export --csv forged.csv --proof audit.proof --checkpoint checkpoint.txt --key certeef-witness.pub; then
    echo "the forged CSV was accepted: this is a bug" >&2
    exit 1
fi
cd "$ROOT_DIR"

(cd "$work" && "$(pg_bindir)/psql" -X -q -f "$ROOT_DIR/demo/tamper.sql")
say "done: the server is stopped and its directory removed"
