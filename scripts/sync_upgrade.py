#!/usr/bin/env python3
"""Development helper: refreshes the functions an upgrade script (re)defines
from their current definitions in sql/*.sql, so that an unreleased upgrade
script keeps up with the version it leads to. Only functions the script
already defines are touched; new objects are added to it by hand.
tests/shell/upgrade_keeps_the_trail.sh checks the result.

    python3 scripts/sync_upgrade.py sql/audit_log--0.2.0--0.3.0.sql
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
start = re.compile(r"^CREATE (OR REPLACE )?FUNCTION (audit_log\.\w+)\(")


def blocks(lines):
    """(key, first line, line after the block) of each function definition."""
    i = 0
    while i < len(lines):
        m = start.match(lines[i])
        if not m:
            i += 1
            continue
        # A body ends where its kind of body ends: $$ ... $$;, BEGIN ATOMIC
        # ... END;, or AS 'MODULE_PATHNAME', '...'; for C.
        end = None
        j = i
        while True:
            line = lines[j].rstrip()
            if end is None:
                if line.startswith("AS $$"):
                    end = "$$;"
                elif line.startswith("BEGIN ATOMIC"):
                    end = "END;"
                elif line.startswith("AS '") and line.endswith("';"):
                    break
            elif line == end or (end == "$$;" and line.endswith("$$;") and not line.startswith("AS $$")):
                break
            j += 1
        # Keyed by the first line: overloads share a name.
        yield lines[i].replace("CREATE OR REPLACE", "CREATE", 1), i, j + 1
        i = j + 1


current = {}
for path in sorted((root / "sql").glob("*.sql")):
    if "--" in path.name:
        continue
    lines = path.read_text().splitlines(keepends=True)
    for name, i, j in blocks(lines):
        current[name] = lines[i:j]

script = pathlib.Path(sys.argv[1])
lines = script.read_text().splitlines(keepends=True)
out, last = [], 0
for name, i, j in blocks(lines):
    out += lines[last:i]
    body = list(current[name])
    if start.match(lines[i]).group(1):
        body[0] = body[0].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    out += body
    last = j
out += lines[last:]
script.write_text("".join(out))
