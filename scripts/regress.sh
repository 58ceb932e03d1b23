#!/usr/bin/env bash
# Regression tests: installs the extension, starts a throwaway cluster, runs
# tests/pg_regress (SQL whose expected output doubles as documentation) and
# tests/shell (what needs more than one psql session, such as pg_dump), and
# ends with one "N passed, N failed" line.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"
export PATH="$HOME/.cargo/bin:$PATH"

# The audit-log command, for the tests that check proofs as an auditor does.
if [ -z "${AUDIT_LOG_BIN:-}" ]; then
    cargo build --quiet -p audit-log-cli
    export AUDIT_LOG_BIN="$ROOT_DIR/target/debug/audit-log"
fi

say "installing the extension into $("$PG_CONFIG" --pkglibdir)"
cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null
# A small extension whose scripts run DDL on a tracked table (ddl_reach.sql).
cp tests/extension/audit_log_test_ext* "$("$PG_CONFIG" --sharedir)/extension/"

work=$(scratch_dir)
port=$(free_port)
cleanup() {
    cluster_stop "$work/pg"
    if [ -z "${KEEP_TEST_CLUSTER:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
say "starting a throwaway PostgreSQL on port $port"
cluster_start "$work/pg" "$port"

passed=0
failed=0

# pg_regress, in the order of tests/pg_regress/schedule (later tests build on
# the extension created by the first one).
mapfile -t tests < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' tests/pg_regress/schedule)
pg_regress="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
mkdir -p "$work/regress"
set +e
"$pg_regress" --inputdir=tests/pg_regress --outputdir="$work/regress" \
    --bindir="$(pg_bindir)" --host="$work/pg" --port="$port" --user=postgres \
    --dbname=audit_log_regress "${tests[@]}" | tee "$work/regress/summary.out"
set -e
ok=$(grep -cE '\.\.\. ok|^ok ' "$work/regress/summary.out" || true)
bad=$(grep -cE '\.\.\. FAILED|^not ok ' "$work/regress/summary.out" || true)
passed=$((passed + ok))
failed=$((failed + bad + ${#tests[@]} - ok - bad))
if [ -s "$work/regress/regression.diffs" ]; then
    cat "$work/regress/regression.diffs"
    mkdir -p tests/pg_regress/results
    cp "$work/regress/results/"*.out tests/pg_regress/results/ 2>/dev/null || true
    cp "$work/regress/regression.diffs" tests/pg_regress/ 2>/dev/null || true
fi

# Shell tests: each script exits 0 on success.
for script in tests/shell/*.sh; do
    [ -e "$script" ] || continue
    name=$(basename "$script" .sh)
    if PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PG_BINDIR="$(pg_bindir)" PG_CONFIG="$PG_CONFIG" \
        bash "$script" >"$work/$name.log" 2>&1; then
        echo "shell test $name ... ok"
        # What it measured (figures for docs/reliability.md), indented.
        grep -E '^[{]|^round |^crash recoveries|^first failure' "$work/$name.log" | tail -n 4 | sed 's/^/    /' || true
        passed=$((passed + 1))
    else
        echo "shell test $name ... FAILED"
        cat "$work/$name.log"
        failed=$((failed + 1))
    fi
done

echo "regress: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
