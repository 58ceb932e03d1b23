"""Connection rate with audit_log.track_logins off and on (bench/logins.sh).

pgbench -C opens a new connection for every transaction (`SELECT 1`): each
one fires the login event trigger, which records a LOGIN event when the
setting is on and only reads the setting when it is off. Rounds alternate
off and on, side by side in one run; the median of each is reported.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

BIN = os.environ["PG_BINDIR"]
ROUNDS, SECONDS, CLIENTS = 3, int(sys.argv[1]), 2


def psql(sql, db="logins"):
    return subprocess.run([os.path.join(BIN, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def rate():
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write("SELECT 1;\n")
    run = subprocess.run([os.path.join(BIN, "pgbench"), "-n", "-C", "-c", str(CLIENTS), "-j", str(CLIENTS),
                          "-T", str(SECONDS), "-f", f.name, "logins"], capture_output=True, text=True)
    os.unlink(f.name)
    if run.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{run.stdout}\n{run.stderr}")
    tps = next(float(line.split("=")[1].split()[0]) for line in run.stdout.splitlines() if line.startswith("tps ="))
    return tps


psql("DROP DATABASE IF EXISTS logins", "postgres")
psql("CREATE DATABASE logins", "postgres")
psql("CREATE EXTENSION audit_log")
psql("SELECT count(*) FROM audit_log.prepare_partitions()")
result = {"server": psql("SELECT 'PostgreSQL ' || current_setting('server_version')", "postgres"),
          "clients": CLIENTS, "seconds": SECONDS, "off": [], "on": []}
for _ in range(ROUNDS):
    for setting in ["off", "on"]:
        psql(f"ALTER DATABASE logins SET audit_log.track_logins = {setting}", "postgres")
        psql("CHECKPOINT", "postgres")
        result[setting].append(rate())
        print(setting, result[setting][-1], flush=True)
result["events"] = int(psql("SELECT count(*) FROM audit_log.events WHERE action = 'LOGIN'"))
with open(sys.argv[2], "w") as f:
    json.dump(result, f, indent=1)
print(json.dumps(result))
