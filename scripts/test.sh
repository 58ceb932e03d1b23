#!/usr/bin/env bash
# Every test: lint, the Rust-level #[pg_test]s (in pgrx's own throwaway
# cluster), then the regression tests. Each suite ends with its own
# "N passed, N failed" or cargo "test result:" line; the exit status is
# non-zero if any suite failed.
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"
bash scripts/setup.sh || exit 1
export PATH="$HOME/.cargo/bin:$PATH"

status=0

say "lint: cargo fmt --check, cargo clippy (the extension on PostgreSQL 15 and 18, the other crates)"
lint_failed=0
cargo fmt --all --check || lint_failed=1
for version in "${TEST_VERSIONS[@]}"; do
    cargo clippy --quiet --all-targets --no-default-features --features "pg${version%%:*} pg_test" \
        -- -D warnings || lint_failed=1
done
cargo clippy --quiet --all-targets -p audit-log-tree -p audit-log-cli -- -D warnings || lint_failed=1
echo "lint: $((1 - lint_failed)) passed, $lint_failed failed"
[ "$lint_failed" -eq 0 ] || status=1

say "Rust tests of the crates beside the extension (the tree format, the audit-log command)"
cargo test -p audit-log-tree -p audit-log-cli || status=1
# The command the shell tests run as an auditor would.
cargo build --quiet -p audit-log-cli || status=1
export AUDIT_LOG_BIN="$ROOT_DIR/target/debug/audit-log"

for version in "${TEST_VERSIONS[@]}"; do
    major=${version%%:*}
    say "Rust tests on PostgreSQL $major (cargo pgrx test pg$major)"
    if [ "$(id -u)" = 0 ]; then
        pgdata=$(scratch_dir)
        cargo pgrx test "pg$major" --runas "$PG_RUN_USER" --pgdata "$pgdata/data" || status=1
        rm -rf "$pgdata"
    else
        cargo pgrx test "pg$major" || status=1
    fi

    say "regression tests on PostgreSQL $major"
    PG_CONFIG=${version#*:} bash scripts/regress.sh || status=1
done

exit $status
