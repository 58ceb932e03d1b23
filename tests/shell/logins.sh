#!/usr/bin/env bash
# Sign-ins (API section 10): with audit_log.track_logins on, PostgreSQL 17 and
# later record every connection as a LOGIN event (db_user, application_name,
# client_addr, the context set at connection time), through a login event
# trigger that never stops a login: a read-only session, a role without any
# audit privilege, a lock held on the log, a full disk for the log's
# tablespace all log in, with a WARNING instead of an event. On older
# servers turning it on is refused.
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { psql -At -d logins -c "$1"; }
fail() { echo "FAILED: $*"; exit 1; }
psql -d postgres -c "DROP DATABASE IF EXISTS logins" -c "CREATE DATABASE logins"
psql -d logins -c "CREATE EXTENSION audit_log" -c "SELECT count(*) FROM audit_log.prepare_partitions()" >/dev/null
version=$(q "SELECT current_setting('server_version_num')::int / 10000")

if [ "$version" -lt 17 ]; then
    # Checked where the extension's library is loaded (any of its functions
    # loads it; shared_preload_libraries loads it everywhere).
    out=$(psql -d logins -c "LOAD 'audit_log'" -c "ALTER DATABASE logins SET audit_log.track_logins = on" 2>&1 || true)
    out2=$(psql -d logins -c "LOAD 'audit_log'" -c "SET audit_log.track_logins = on" 2>&1 || true)
    grep -q "PostgreSQL 17" <<<"$out2" || { echo "$out2"; fail "SET track_logins = on was not refused on PostgreSQL $version"; }
    grep -q "PostgreSQL 17" <<<"$out" || { echo "$out"; fail "turning track_logins on was not refused on PostgreSQL $version"; }
    [ "$(q "SELECT count(*) FROM pg_event_trigger WHERE evtevent = 'login'")" = 0 ] || fail "a login trigger on $version"
    echo "PostgreSQL $version: turning track_logins on is refused: $(grep -m1 ERROR <<<"$out")"
    psql -d postgres -c "DROP DATABASE logins"
    exit 0
fi

# Off (the default): a connection records nothing.
psql -d logins -c "SELECT 1" >/dev/null
[ "$(q "SELECT count(*) FROM audit_log.events WHERE action = 'LOGIN'")" = 0 ] || fail "a login recorded while off"

psql -d logins -c "ALTER DATABASE logins SET audit_log.track_logins = on"
PGAPPNAME=web-frontend PGOPTIONS="-c audit_log.context={\"browser\":\"Firefox\",\"os\":\"Linux\"}" \
    psql -h 127.0.0.1 -d logins -c "SELECT 1" >/dev/null
row=$(q "SELECT db_user, application_name, client_addr, entity IS NULL, context ->> 'browser'
           FROM audit_log.events WHERE action = 'LOGIN' AND application_name = 'web-frontend'")
[ "$row" = "postgres|web-frontend|127.0.0.1|t|Firefox" ] || fail "the LOGIN event: $row"
echo "a connection over TCP: LOGIN by postgres from web-frontend at 127.0.0.1, context kept"

# (Every psql here logs in too: count the test role's logins only.)
logins() { q "SELECT count(*) FROM audit_log.events WHERE action = 'LOGIN' AND db_user = 'nobody_special'"; }
# A role with no audit privilege at all: recorded all the same.
psql -d logins -c "CREATE ROLE nobody_special LOGIN"
before=$(logins)
psql -U nobody_special -d logins -c "SELECT 1" >/dev/null || fail "a plain role could not log in"
[ "$(logins)" = $((before + 1)) ] || fail "the plain role's login was not recorded"
echo "a role without any audit privilege: logs in, recorded"

# A read-only session: logs in with a WARNING, no event.
psql -d logins -c "ALTER ROLE nobody_special SET default_transaction_read_only = on"
before=$(logins)
out=$(psql -U nobody_special -d logins -c "SELECT 1" 2>&1) || { echo "$out"; fail "a read-only session could not log in"; }
grep -q "WARNING:  audit_log: the login of nobody_special is not recorded" <<<"$out" || { echo "$out"; fail "no WARNING"; }
[ "$(logins)" = "$before" ] || fail "a read-only session's login was recorded"
psql -d logins -c "ALTER ROLE nobody_special RESET default_transaction_read_only"
echo "a read-only session: logs in, $(grep -m1 WARNING <<<"$out" | cut -c1-90)..."

# The log locked by someone else: the login waits a moment, then goes on.
partition=$(q "SELECT partition FROM audit_log.partitions WHERE from_time <= now() AND to_time > now()")
psql -d logins -c "BEGIN; LOCK TABLE $partition IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(5); COMMIT;" >/dev/null &
locker=$!
sleep 1
out=$(timeout 4 "$PG_BINDIR/psql" -X -U nobody_special -d logins -c "SELECT 'in'" 2>&1) || { echo "$out"; fail "a login waited on the locked log"; }
grep -q "^ in" <<<"$out" || { echo "$out"; fail "the login did not go on"; }
grep -q "WARNING:  audit_log: the login of nobody_special is not recorded" <<<"$out" || { echo "$out"; fail "no WARNING while locked"; }
wait "$locker"
echo "the log locked: logs in after a short wait, with a WARNING"

# A full disk for the log's tablespace (a 4 MB tmpfs; needs root or sudo).
if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
mnt=$(mktemp -d)
cleanup() {
    psql -d postgres -c "DROP DATABASE IF EXISTS logins" >/dev/null 2>&1 || true
    psql -d postgres -c "DROP TABLESPACE IF EXISTS tiny_logins" >/dev/null 2>&1 || true
    "${SUDO[@]}" umount "$mnt" 2>/dev/null || true
    rmdir "$mnt"
}
trap cleanup EXIT
"${SUDO[@]}" mount -t tmpfs -o size=4M tmpfs "$mnt"
"${SUDO[@]}" chown "$PG_RUN_USER" "$mnt"
psql -d postgres -c "CREATE TABLESPACE tiny_logins LOCATION '$mnt'"
psql -d logins <<'SQL'
CREATE TABLE filler (v text) TABLESPACE tiny_logins;
SELECT format('ALTER TABLE %s SET TABLESPACE tiny_logins', partition) FROM audit_log.partition_bounds() \gexec
SQL
# Fill the disk to the last byte.
psql -d logins -c "DO \$\$ BEGIN LOOP INSERT INTO filler SELECT repeat(md5(random()::text), 100) FROM generate_series(1, 50); END LOOP; EXCEPTION WHEN disk_full THEN NULL; END \$\$" \
    -c "DO \$\$ BEGIN LOOP INSERT INTO filler VALUES ('x'); END LOOP; EXCEPTION WHEN disk_full THEN NULL; END \$\$"
before=$(logins)
ok=0
for i in $(seq 1 400); do
    out=$(psql -U nobody_special -d logins -c "SELECT 'in'" 2>&1) || { echo "$out"; fail "login $i failed with the log's disk full"; }
    grep -q "could not extend\|No space left" <<<"$out" && ok=1 && break
done
[ "$ok" = 1 ] || fail "the log's disk never filled up"
grep -q "WARNING:  audit_log: the login of nobody_special is not recorded" <<<"$out" || { echo "$out"; fail "no WARNING with a full disk"; }
echo "the log's disk full: logs in, $(grep -m1 WARNING <<<"$out" | cut -c1-100)..."
psql -d logins -c "DROP TABLE filler" >/dev/null
psql -d logins -c "DROP ROLE nobody_special" 2>/dev/null || psql -d logins -c "DROP OWNED BY nobody_special" -c "DROP ROLE nobody_special"
echo "logins recorded and never stopped"
