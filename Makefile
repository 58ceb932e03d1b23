# The two commands a new machine needs: `make demo` and `make test`.
# Both install what they need first (scripts/setup.sh), as root or as a user
# with sudo.

.PHONY: demo test setup install install-cli lint bench-reading bench-capture bench-ddl bench-integrity bench-sizing bench-scale bench-time-travel reliability-long

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

install: setup
	cargo pgrx install --pg-config /usr/bin/pg_config

# The audit-log command (API section 7), into ~/.cargo/bin (or $CARGO_HOME/bin).
install-cli:
	cargo install --locked --path crates/cli

lint:
	cargo fmt --all --check
	cargo clippy --all-targets --no-default-features --features "pg15 pg_test" -- -D warnings
	cargo clippy --all-targets --no-default-features --features "pg18 pg_test" -- -D warnings
	cargo clippy --all-targets -p audit-log-tree -p audit-log-cli -- -D warnings

bench-reading:
	bash bench/reading.sh

bench-capture:
	bash bench/capture.sh

bench-ddl:
	bash bench/ddl.sh

bench-integrity:
	bash bench/integrity.sh

bench-sizing:
	bash bench/sizing.sh

# as_of(), baselines and revert_transaction() on the reading benchmark's trail (issue 17).
bench-time-travel:
	bash bench/time_travel.sh

# A trail of 30 million events over 24 months, partitioned and as one table (issue 16).
# Reading alone, quicker: SCALE_READING_ONLY=1 SCALE_OUT=bench/results/scale_reading.md make bench-scale
bench-scale:
	bash bench/scale.sh

# The reliability tests in long mode (docs/reliability.md), on PostgreSQL 15.
reliability-long: setup
	RELIABILITY_SECONDS=60 CRASH_ROUNDS=10 CRASH_SECONDS=15 HOSTILE_EXAMPLES=2000 bash scripts/regress.sh
