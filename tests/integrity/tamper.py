#!/usr/bin/env python3
"""Tampers with an export's CSV the way someone editing it would, touching
only the bytes meant (the rest of the file stays byte for byte as PostgreSQL
wrote it). Python's csv module only finds where records start and end; a
field is located in its record's raw text by its value, quoted as COPY
quotes it.

    tamper.py IN OUT field ID NAME   one byte of field NAME of event ID
    tamper.py IN OUT null-to-empty ID NAME   a NULL field written as ""
    tamper.py IN OUT swap ID1 ID2     two rows change places
    tamper.py IN OUT drop ID          a row removed
    tamper.py IN OUT replace ID OTHER_CSV   the row of event ID replaced by
                                            the row of the same id in OTHER_CSV
"""
import csv
import sys

COLUMNS = ["id", "occurred_at", "tx_id", "actor", "db_user", "application_name",
           "client_addr", "entity", "entity_id", "action", "changed_fields",
           "old_values", "new_values", "context"]


def records(path):
    """(values, raw text) of each record, header first."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines(keepends=True)
    out = []
    feed = iter(lines)
    reader = csv.reader(feed)
    consumed = 0
    for values in reader:
        raw = "".join(lines[consumed:reader.line_num])
        consumed = reader.line_num
        out.append((values, raw))
    assert "".join(raw for _, raw in out) == "".join(lines)
    return out


def quoted(value):
    if value == "" or any(c in value for c in ',"\n\r') or value == "\\.":
        return '"' + value.replace('"', '""') + '"'
    return value


def find(recs, event_id):
    for i, (values, _) in enumerate(recs):
        if i > 0 and values[0] == str(event_id):
            return i
    sys.exit(f"event {event_id} is not in the CSV")


def change_one_byte(value):
    # The last character that is a plain letter or digit, changed to another
    # of its kind: quoting stays the same.
    for k in range(len(value) - 1, -1, -1):
        c = value[k]
        if c.isdigit():
            return value[:k] + ("1" if c != "1" else "2") + value[k + 1:]
        if c.isascii() and c.isalpha():
            return value[:k] + ("x" if c != "x" else "y") + value[k + 1:]
    sys.exit(f"nothing to change in {value!r}")


def replace_field(raw, value, new_value):
    """The record's raw text with the field holding `value` (delimited by
    commas or the record's ends) written as `new_value` instead."""
    body = raw.rstrip("\n")
    fields_at = [0] + [i + 1 for i, c in enumerate(body) if c == ","]
    target = quoted(value) if value != "" else ""
    for start in fields_at:
        end = start + len(target)
        if body[start:end] == target and (end == len(body) or body[end] == ","):
            return body[:start] + new_value + body[end:] + raw[len(body):]
    sys.exit(f"field {value!r} not found in {raw!r}")


def main():
    source, target, what = sys.argv[1:4]
    recs = records(source)
    raws = [raw for _, raw in recs]
    if what == "field":
        i = find(recs, sys.argv[4])
        column = COLUMNS.index(sys.argv[5])
        value = recs[i][0][column]
        raws[i] = replace_field(raws[i], value, quoted(change_one_byte(value)))
    elif what == "null-to-empty":
        i = find(recs, sys.argv[4])
        column = COLUMNS.index(sys.argv[5])
        # Walk the raw text field by field, knowing each one's value.
        body = raws[i].rstrip("\n")
        reader_values = recs[i][0]
        assert reader_values[column] == "", "that field is not empty"
        at = 0
        for k, v in enumerate(reader_values):
            raw_field = quoted(v) if body[at:at + 1] == '"' else v
            if k == column:
                assert raw_field == "", "that field is not NULL"
                body = body[:at] + '""' + body[at:]
                break
            at += len(raw_field) + 1
        raws[i] = body + raws[i][len(raws[i].rstrip("\n")):]
    elif what == "swap":
        i, j = find(recs, sys.argv[4]), find(recs, sys.argv[5])
        raws[i], raws[j] = raws[j], raws[i]
    elif what == "drop":
        del raws[find(recs, sys.argv[4])]
    elif what == "replace":
        other = records(sys.argv[5])
        i, j = find(recs, sys.argv[4]), find(other, sys.argv[4])
        raws[i] = other[j][1]
    else:
        sys.exit(f"unknown tampering {what}")
    with open(target, "w", encoding="utf-8", newline="") as f:
        f.write("".join(raws))


if __name__ == "__main__":
    main()
