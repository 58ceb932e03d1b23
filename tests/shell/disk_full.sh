#!/usr/bin/env bash
# When the log cannot be written (its disk is full: a tablespace on a 4 MB
# tmpfs), the write to the tracked table fails with disk_full (53100) instead
# of committing without its event; what committed before is all in the trail.
# Mounting needs root (or sudo without a password).
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
mnt=$(mktemp -d)
cleanup() {
    psql -d postgres -c "DROP DATABASE IF EXISTS diskfull" -c "DROP TABLESPACE IF EXISTS tiny" >/dev/null 2>&1 || true
    "${SUDO[@]}" umount "$mnt" 2>/dev/null || true
    rmdir "$mnt"
}
trap cleanup EXIT
"${SUDO[@]}" mount -t tmpfs -o size=4M tmpfs "$mnt"
"${SUDO[@]}" chown "$PG_RUN_USER" "$mnt"
[ "$(id -u)" = 0 ] || "${SUDO[@]}" chown "$(id -un)" "$mnt"

psql -d postgres -c "DROP DATABASE IF EXISTS diskfull" -c "CREATE DATABASE diskfull" \
    -c "CREATE TABLESPACE tiny LOCATION '$mnt'"
psql -d diskfull <<'SQL'
CREATE EXTENSION audit_log;
CREATE TABLE orders (id int PRIMARY KEY, note text);
SELECT audit_log.track('orders');
-- The log's months to come, and those made already.
ALTER TABLE audit_log.events SET TABLESPACE tiny;
SELECT format('ALTER TABLE %s SET TABLESPACE tiny', partition) FROM audit_log.partition_bounds() \gexec
SQL
# One order per subtransaction until the log's disk is full.
result=$(psql -At -d diskfull <<'SQL'
CREATE FUNCTION pg_temp.fill() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    i int := 0;
BEGIN
    LOOP
        i := i + 1;
        BEGIN
            INSERT INTO orders VALUES (i, repeat(md5(i::text), 40));
        EXCEPTION WHEN OTHERS THEN
            RETURN SQLSTATE || '|' || i || '|' || (SELECT count(*) FROM orders)
                   || '|' || (SELECT count(*) FROM audit_log.events WHERE action = 'INSERT')
                   || '|' || (SELECT count(*) FROM orders WHERE id = i);
        END;
        IF i > 100000 THEN
            RETURN 'never full';
        END IF;
    END LOOP;
END
$$;
SELECT pg_temp.fill();
SQL
)
IFS='|' read -r sqlstate failed_at orders events failed_row <<<"$result"
echo "first failure: SQLSTATE $sqlstate at order $failed_at; $orders orders committed, $events INSERT events"
[ "$sqlstate" = 53100 ] || { echo "expected disk_full (53100), got: $result"; exit 1; }
[ "$failed_row" = 0 ] || { echo "the order whose event could not be written was kept"; exit 1; }
[ "$orders" = "$events" ] || { echo "$orders orders but $events events"; exit 1; }
[ "$orders" -gt 0 ] || { echo "nothing was written before the disk filled"; exit 1; }
