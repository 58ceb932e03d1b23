//! The committed test vectors (tests/vectors, computed by an independent
//! Python script with hashlib) against this crate: same leaves, same roots.

use std::collections::BTreeMap;

use audit_log_tree::tree::{leaf_hash, root};
use audit_log_tree::{EventFields, Frontier, Hash, SealLeaf};
use serde_json::Value;

fn vectors(name: &str) -> Value {
    let path = format!("{}/../../tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn event(fields: &Value) -> EventFields {
    let mut event = EventFields::default();
    for (slot, value) in event.fields.iter_mut().zip(fields.as_array().unwrap()) {
        *slot = value.as_str().map(|s| s.as_bytes().to_vec());
    }
    event
}

#[test]
fn leaves_and_roots_match_the_independent_computation() {
    let input = vectors("events.json");
    let expected = vectors("expected.json");
    let events: BTreeMap<u64, &Value> = input["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().parse().unwrap(), e))
        .collect();

    let mut computed: Vec<Hash> = Vec::new();
    let mut frontier = Frontier::new();
    let mut roots = Vec::new();
    let mut sealed = std::collections::BTreeSet::new();
    for seal in input["seals"].as_array().unwrap() {
        let watermark: u64 = seal["watermark"].as_str().unwrap().parse().unwrap();
        let leaf = SealLeaf {
            watermark,
            sealed_at: seal["sealed_at"].as_str().unwrap().into(),
            horizon: seal["horizon"].as_str().unwrap().into(),
            cluster: seal["cluster"].as_str().unwrap().parse().unwrap(),
        };
        computed.push(leaf_hash(&leaf.leaf_data()));
        let mut block: Vec<(u64, u64)> = events
            .iter()
            .filter(|(id, _)| !sealed.contains(*id))
            .map(|(id, e)| (e[2].as_str().unwrap().parse::<u64>().unwrap(), *id))
            .filter(|(tx, _)| *tx < watermark)
            .collect();
        block.sort();
        for (_, id) in block {
            sealed.insert(id);
            computed.push(leaf_hash(&event(events[&id]).leaf_data()));
        }
        for hash in &computed[frontier.size() as usize..] {
            frontier.push(*hash);
        }
        roots.push((computed.len(), frontier.root()));
        assert_eq!(frontier.root(), root(&computed));
    }

    let leaves = expected["leaves"].as_array().unwrap();
    assert_eq!(computed.len(), leaves.len());
    for (i, (hash, leaf)) in computed.iter().zip(leaves).enumerate() {
        assert_eq!(hex(hash), leaf["leaf_hash"].as_str().unwrap(), "leaf {i}");
        if let Some(id) = leaf["event_id"].as_u64() {
            assert_eq!(
                hex(&event(events[&id]).body_hash()),
                leaf["body_hash"].as_str().unwrap(),
                "body of event {id}"
            );
        }
    }
    let expected_roots: Vec<(usize, String)> = expected["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["tree_size"].as_u64().unwrap() as usize,
                r["root"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let roots: Vec<(usize, String)> = roots.iter().map(|(n, r)| (*n, hex(r))).collect();
    assert_eq!(roots, expected_roots);
}
