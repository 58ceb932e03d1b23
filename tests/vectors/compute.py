"""Test vectors of the integrity format (API section 6.1), computed with
nothing but Python's hashlib, independently of the Rust code:

    python3 compute.py           write expected.json and events.csv
    python3 compute.py --check   exit 1 if they differ from what is committed

events.json holds a few events (export()'s 14 text fields, null for NULL)
and two seals. Each seal appends its seal leaf, then the events whose tx_id
is below its watermark and not sealed yet, in (tx_id, id) order.
"""
import hashlib, json, os, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
HEADER, BODY = (1, 2, 3, 4, 5, 8, 9, 10), (6, 7, 11, 12, 13, 14)


def item(tag, text):
    data = text.encode() if isinstance(text, str) else text
    return bytes([tag]) + struct.pack(">I", len(data)) + data


def event_leaf(fields):
    body = b"".join(item(t, fields[t - 1]) for t in BODY if fields[t - 1] is not None)
    header = b"".join(item(t, fields[t - 1]) for t in HEADER if fields[t - 1] is not None)
    return header + item(15, hashlib.sha256(body).digest())


def seal_leaf(s):
    return (item(16, "seal") + item(17, s["watermark"]) + item(18, s["sealed_at"])
            + item(19, s["horizon"]) + item(20, "1") + item(21, s["cluster"]))


def root(hashes):  # RFC 9162 MTH
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + root(hashes[:k]) + root(hashes[k:])).digest()


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def csv_field(v):
    if v is None:
        return ""
    return '"' + v.replace('"', '""') + '"' if v == "" or any(c in v for c in ',"\n\r') else v


if __name__ == "__main__":
    vectors = json.load(open(os.path.join(here, "events.json"), encoding="utf-8"))
    events = {int(e[0]): e for e in vectors["events"]}
    leaves, roots, sealed = [], [], set()
    for s in vectors["seals"]:
        leaves.append({"seal": s, "leaf_hash": leaf_hash(seal_leaf(s)).hex()})
        for e in sorted((e for i, e in events.items() if i not in sealed and int(e[2]) < int(s["watermark"])),
                        key=lambda e: (int(e[2]), int(e[0]))):
            sealed.add(int(e[0]))
            leaves.append({"event_id": int(e[0]), "body_hash": hashlib.sha256(
                b"".join(item(t, e[t - 1]) for t in BODY if e[t - 1] is not None)).hexdigest(),
                "leaf_hash": leaf_hash(event_leaf(e)).hex()})
        roots.append({"tree_size": len(leaves),
                      "root": root([bytes.fromhex(l["leaf_hash"]) for l in leaves]).hex()})
    expected = json.dumps({"leaves": leaves, "roots": roots}, indent=1, ensure_ascii=False) + "\n"
    # export() orders by occurred_at, then id.
    rows = [vectors["fields"]] + sorted(vectors["events"], key=lambda e: (e[1], int(e[0])))
    csv_text = "".join(",".join(csv_field(v) for v in r) + "\n" for r in rows)

    outputs = {"expected.json": expected, "events.csv": csv_text}
    if "--check" in sys.argv:
        stale = [n for n, text in outputs.items()
                 if open(os.path.join(here, n), encoding="utf-8", newline="").read() != text]
        if stale:
            sys.exit(f"out of date: {', '.join(stale)} (run python3 compute.py)")
        print("test vectors: expected.json and events.csv match events.json")
    else:
        for n, text in outputs.items():
            open(os.path.join(here, n), "w", encoding="utf-8", newline="").write(text)
