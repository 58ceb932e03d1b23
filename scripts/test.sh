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

say "lint: cargo fmt --check, cargo clippy"
lint_failed=0
cargo fmt --check || lint_failed=1
cargo clippy --quiet --all-targets --features "pg$PG_MAJOR pg_test" -- -D warnings || lint_failed=1
echo "lint: $((1 - lint_failed)) passed, $lint_failed failed"
[ "$lint_failed" -eq 0 ] || status=1

say "Rust tests (cargo pgrx test pg$PG_MAJOR)"
if [ "$(id -u)" = 0 ]; then
    pgdata=$(scratch_dir)
    cargo pgrx test "pg$PG_MAJOR" --runas "$PG_RUN_USER" --pgdata "$pgdata/data" || status=1
    rm -rf "$pgdata"
else
    cargo pgrx test "pg$PG_MAJOR" || status=1
fi

say "regression tests"
bash scripts/regress.sh || status=1

exit $status
