"""The test vectors against PostgreSQL (tests/shell/integrity_vectors.sh):
the vector events loaded into an empty trail export exactly as events.csv,
and seal() stores for each the leaf hash compute.py expects; the root seal()
returns is the one recomputed here, with hashlib, from its leaves (the seal
leaf rebuilt from the seal's row).

    check_pg.py load     load events.json into audit_log.events
    check_pg.py check    compare after seal()
"""
import hashlib, json, os, sys

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compute  # noqa: E402  (recomputes expected.json in memory, writes nothing)

here = os.path.dirname(os.path.abspath(__file__))


def literal(value):
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def load(db):
    vectors = json.load(open(os.path.join(here, "events.json"), encoding="utf-8"))
    rows = []
    for e in vectors["events"]:
        (id_, at, tx, actor, user, app, addr, entity, entity_id, action,
         changed, old, new, context) = [literal(v) for v in e]
        changed = "NULL" if e[10] is None else f"ARRAY(SELECT jsonb_array_elements_text({changed}::jsonb))"
        rows.append(f"({id_}::bigint, {at}::timestamptz, {tx}::xid8, {actor}, {user}, {app}, {addr}::inet, "
                    f"{context}::jsonb, {entity}, {entity_id}::jsonb, {action}, {old}::jsonb, {new}::jsonb, {changed})")
    # One statement: a trail is loaded by SQL only into an empty log, as a restore does.
    db.execute("INSERT INTO audit_log.events (id, occurred_at, tx_id, actor, db_user, application_name, "
               "client_addr, context, entity, entity_id, action, old_values, new_values, changed_fields) VALUES "
               + ", ".join(rows))


def check(db):
    expected = json.load(open(os.path.join(here, "expected.json"), encoding="utf-8"))
    want = {l["event_id"]: l["leaf_hash"] for l in expected["leaves"] if "event_id" in l}
    leaves = db.execute("SELECT leaf_index, leaf_hash, event_id FROM audit_log.tree_leaves "
                        "ORDER BY leaf_index").fetchall()
    got = {event_id: bytes(h).hex() for _, h, event_id in leaves if event_id is not None}
    if got != want:
        sys.exit(f"leaf hashes differ from the vectors:\n got  {got}\n want {want}")
    seal = db.execute("SELECT watermark::text, audit_log.iso_utc(sealed_at), audit_log.iso_utc(horizon), "
                      "cluster::text, seal_leaf_index, tree_size FROM audit_log.tree_seals").fetchall()
    if len(seal) != 1 or seal[0][4] != 0:
        sys.exit(f"expected one seal, its leaf first: {seal}")
    w, sealed_at, horizon, cluster, _, size = seal[0]
    hashes = [compute.leaf_hash(compute.seal_leaf(
        {"watermark": w, "sealed_at": sealed_at, "horizon": horizon, "cluster": cluster}))]
    hashes += [bytes.fromhex(got[event_id]) for _, _, event_id in leaves[1:]]
    if [bytes(h) for _, h, _ in leaves][:1] != hashes[:1]:
        sys.exit("the seal leaf differs from the one rebuilt from its row")
    checkpoint = db.execute("SELECT audit_log.checkpoint()").fetchone()[0]
    import base64
    root = base64.b64decode(checkpoint.split("\n")[2])
    if root != compute.root(hashes) or int(checkpoint.split("\n")[1]) != size:
        sys.exit(f"the checkpoint's root is not the one recomputed from the leaves: {checkpoint!r}")
    order = [event_id for _, _, event_id in leaves[1:]]
    print(f"PostgreSQL {db.info.server_version}: {len(got)} event leaves as the vectors say, "
          f"tree order {order}, root recomputed with hashlib")


with psycopg.connect(autocommit=True) as db:
    {"load": load, "check": check}[sys.argv[1]](db)
