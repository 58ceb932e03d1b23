#!/usr/bin/env bash
# A DDL event names who changed the tracked table, never a bystander. Session
# B runs its own ALTER TABLE (a foreign key to the tracked table t, which
# must wait for t's lock) while an admin, in another session, untracks t or
# disables its capture trigger and commits. B's command then sees t changed,
# but not by B: nothing may be recorded with B's actor. Tried with B in READ
# COMMITTED and in REPEATABLE READ (its snapshot older than the admin's
# commit).
set -euo pipefail
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
db=bystander
psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -d "$db" <<'SQL'
CREATE EXTENSION audit_log;
CREATE TABLE t (id int PRIMARY KEY);
CREATE TABLE u1 (id int PRIMARY KEY, t_id int);
CREATE TABLE u2 (id int PRIMARY KEY, t_id int);
CREATE TABLE u3 (id int PRIMARY KEY, t_id int);
SQL

# The admin's change, held open for a while: B's ALTER TABLE queues behind it.
admin() {
    psql -d "$db" -c "SET audit_log.actor = 'admin'" -c "BEGIN" -c "$1" -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null
}
disable_capture="DO \$\$ BEGIN EXECUTE format('ALTER TABLE t DISABLE TRIGGER %I',
    (SELECT tgname FROM pg_trigger WHERE tgrelid = 't'::regclass AND tgname LIKE 'audit_log_row_%')); END \$\$"

# 1. untrack(t) while B, in READ COMMITTED, adds a foreign key to t.
psql -d "$db" -c "SELECT audit_log.track('t')" >/dev/null
admin "SELECT audit_log.untrack('t')" &
sleep 0.5
psql -d "$db" -c "SET audit_log.actor = 'bystander'" -c "ALTER TABLE u1 ADD FOREIGN KEY (t_id) REFERENCES t"
wait

# 2. A capture trigger disabled (recorded, for the admin) while B waits.
psql -d "$db" -c "SELECT audit_log.track('t')" >/dev/null
admin "$disable_capture" &
sleep 0.5
psql -d "$db" -c "SET audit_log.actor = 'bystander'" -c "ALTER TABLE u2 ADD FOREIGN KEY (t_id) REFERENCES t"
wait

# 3. The same, B in REPEATABLE READ with a snapshot taken before the
#    admin's change commits.
psql -d "$db" -c "ALTER TABLE t ENABLE TRIGGER ALL" >/dev/null
admin "$disable_capture" &
sleep 0.5
psql -d "$db" -c "SET audit_log.actor = 'bystander'" -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
    -c "SELECT count(*) FROM u3" -c "ALTER TABLE u3 ADD FOREIGN KEY (t_id) REFERENCES t" -c "COMMIT" >/dev/null
wait

blamed=$(psql -At -d "$db" -c "SELECT count(*) FROM audit_log.events WHERE actor = 'bystander'")
recorded=$(psql -At -d "$db" -c "
    SELECT string_agg(action || ':' || coalesce(new_values ->> 'command_tag', ''), ' ' ORDER BY id)
      FROM audit_log.events WHERE actor = 'admin'")
psql -d postgres -c "DROP DATABASE $db"
[ "$blamed" = 0 ] || { echo "$blamed DDL events blame the bystander"; exit 1; }
[ "$recorded" = "UNTRACK: DDL:ALTER TABLE DDL:ALTER TABLE" ] || { echo "the admin's own changes: $recorded"; exit 1; }
echo "a bystander's DDL records nothing of another session's changes (read committed, repeatable read)"
