#!/usr/bin/env bash
# The CSV an auditor gets reads back, with Python's csv module, to exactly the
# stored values; and export_csv() writes the same bytes as \copy of export().
set -euo pipefail
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

psql -d postgres -c "DROP DATABASE IF EXISTS export_rt" -c "CREATE DATABASE export_rt"
psql -d export_rt <<'SQL'
CREATE EXTENSION audit_log;
CREATE TABLE notes (id int PRIMARY KEY, body text);
SELECT audit_log.track('notes');
SET audit_log.actor = 'comma, "quote" and
newline';
SET audit_log.context = '{"why": "a \"quoted\", comma\nand a backslash \\ 🎓"}';
INSERT INTO notes VALUES (1, E'commas, "quotes",\nnewlines\r\ncarriage\rreturns, \\backslashes\\, emoji 🎓🚀, tab\t.'),
                         (2, ''), (3, NULL), (4, '\.'), (5, ' leading and trailing spaces ');
UPDATE notes SET body = body || '!' WHERE id IN (1, 2);
DELETE FROM notes WHERE id = 3;
SQL

psql -d export_rt -c "\\copy (SELECT * FROM audit_log.export()) TO 'copy.csv' WITH (FORMAT csv, HEADER)"
psql -d export_rt -At -c "SELECT audit_log.export_csv()" >export_csv.csv
cmp copy.csv export_csv.csv || { echo "export_csv() differs from \\copy of export()"; diff copy.csv export_csv.csv | head; exit 1; }

# The stored values, as JSON (NULLs included), to compare with what the CSV reads back to.
psql -d export_rt -At -c "SELECT json_agg(x ORDER BY x.id::bigint) FROM audit_log.export() x" >expected.json
python3 - <<'PY'
import csv, json
with open("copy.csv", newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
header, records = rows[0], rows[1:]
expected = json.load(open("expected.json", encoding="utf-8"))
assert header == list(expected[0].keys()), (header, list(expected[0].keys()))
assert len(records) == len(expected) == 9, (len(records), len(expected))
for record, stored in zip(records, expected):
    for name, value in zip(header, record):
        want = stored[name]
        # CSV has no NULL: COPY writes it as an empty field, and an empty string as "".
        assert value == (want if want is not None else ""), (name, value, want)
bodies = [json.loads(r[header.index("new_values")])["body"] for r in records if r[header.index("action")] == "INSERT"]
assert bodies[0] == 'commas, "quotes",\nnewlines\r\ncarriage\rreturns, \\backslashes\\, emoji 🎓🚀, tab\t.', bodies[0]
assert bodies[1] == "" and bodies[2] is None and bodies[3] == "\\." and bodies[4] == " leading and trailing spaces "
print("round trip ok:", len(records), "events")
PY
