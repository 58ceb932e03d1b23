"""Connection rate with audit_log.track_logins off and on (bench/logins.sh).

pgbench -C opens a new connection for every transaction (`SELECT 1`): each
one fires the login event trigger, which records a LOGIN event when the
setting is on and only reads the setting when it is off. Rounds alternate
off and on, side by side in one run; the median of each is reported, for
each server configuration bench/logins.sh runs.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

BIN = os.environ["PG_BINDIR"]
ROUNDS, CLIENTS = 3, 2
SECONDS = int(sys.argv[1]) if __name__ == "__main__" else 0


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




def measure(label):
    psql("DROP DATABASE IF EXISTS logins", "postgres")
    psql("CREATE DATABASE logins", "postgres")
    psql("CREATE EXTENSION audit_log")
    psql("SELECT count(*) FROM audit_log.prepare_partitions()")
    config = {"label": label, "off": [], "on": []}
    for _ in range(ROUNDS):
        for setting in ["off", "on"]:
            psql(f"ALTER DATABASE logins SET audit_log.track_logins = {setting}", "postgres")
            psql("CHECKPOINT", "postgres")
            config[setting].append(rate())
            print(label, setting, config[setting][-1], flush=True)
    config["events"] = int(psql("SELECT count(*) FROM audit_log.events WHERE action = 'LOGIN'"))
    return config


def section(path):
    """The capture report's lines about sign-ins, from what this wrote."""
    with open(path) as f:
        result = json.load(f)
    lines = ["", f"Connections per second with `audit_log.track_logins` off and on, {result['server']} "
             f"(pgbench -C, {result['clients']} clients, `SELECT 1`, median of {len(result['configs'][0]['off'])} alternating rounds "
             f"of {result['seconds']} s in each configuration; `bash bench/logins.sh`):", "",
             "| server configuration | track_logins off | on | on / off | LOGIN events written |",
             "|---|---:|---:|---:|---:|"]
    for c in result["configs"]:
        off, on = statistics.median(c["off"]), statistics.median(c["on"])
        lines.append(f"| {c['label']} | {off:,.0f} | {on:,.0f} | {on / off:.2f} | {c['events']:,} |")
    lines += ["", "A recorded login is a write and its commit: one WAL flush per connection (the third line shows "
              "what that flush costs on this disk). Without `shared_preload_libraries`, each new connection also "
              "loads the extension's library when the login trigger first calls it."]
    return lines


if __name__ == "__main__":
    label, out = sys.argv[3], sys.argv[2]
    if os.path.exists(out) and sys.argv[4:] == ["--append"]:
        with open(out) as f:
            result = json.load(f)
    else:
        result = {"server": psql("SELECT 'PostgreSQL ' || current_setting('server_version')", "postgres"),
                  "clients": CLIENTS, "seconds": SECONDS, "configs": []}
    result["configs"].append(measure(label))
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
