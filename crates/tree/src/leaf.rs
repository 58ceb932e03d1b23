//! Leaf data (API section 6.1): what one leaf of the tree stands for.

use sha2::{Digest, Sha256};

use crate::tree::Hash;

/// `item(tag, bytes)`: one byte `tag`, the length of `bytes` as 4 bytes
/// big-endian, then `bytes`.
pub fn push_item(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("an item holds less than 4 GiB");
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Tags of the header fields, by position in `export()`: id, occurred_at,
/// tx_id, actor, db_user, entity, entity_id, action.
pub const HEADER: [u8; 8] = [1, 2, 3, 4, 5, 8, 9, 10];
/// Tags of the body fields: application_name, client_addr, changed_fields,
/// old_values, new_values, context.
const BODY: [u8; 6] = [6, 7, 11, 12, 13, 14];
/// The tag of the body hash in an event's leaf data.
const BODY_HASH: u8 = 15;

/// An event's 14 text fields, as `export()` returns them (`None` for NULL),
/// by their position there: `fields[0]` is field 1, `id`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFields {
    pub fields: [Option<Vec<u8>>; 14],
}

impl EventFields {
    fn field(&self, tag: u8) -> Option<&[u8]> {
        self.fields[usize::from(tag) - 1].as_deref()
    }

    /// SHA-256 of the items of the non-NULL body fields, in tag order.
    pub fn body_hash(&self) -> Hash {
        let mut items = Vec::new();
        for tag in BODY {
            if let Some(bytes) = self.field(tag) {
                push_item(&mut items, tag, bytes);
            }
        }
        Sha256::digest(&items).into()
    }

    /// The items of the non-NULL header fields in tag order, then
    /// `item(15, body_hash)`.
    pub fn leaf_data(&self) -> Vec<u8> {
        let mut data = Vec::new();
        for tag in HEADER {
            if let Some(bytes) = self.field(tag) {
                push_item(&mut data, tag, bytes);
            }
        }
        push_item(&mut data, BODY_HASH, &self.body_hash());
        data
    }
}

fn update_item(hasher: &mut Sha256, tag: u8, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("an item holds less than 4 GiB");
    hasher.update([tag]);
    hasher.update(len.to_be_bytes());
    hasher.update(bytes);
}

/// The body hash of an event given its 14 fields by reference (`fields[0]`
/// is field 1, `id`): what stands for its values in a revealed header.
pub fn event_body_hash(fields: &[Option<&[u8]>; 14]) -> Hash {
    let mut body = Sha256::new();
    for tag in BODY {
        if let Some(bytes) = fields[usize::from(tag) - 1] {
            update_item(&mut body, tag, bytes);
        }
    }
    body.finalize().into()
}

/// The leaf hash of an event from its header fields alone, in tag order (id,
/// occurred_at, tx_id, actor, db_user, entity, entity_id, action), and its
/// body hash: how a proof reveals who changed which key when, not the values.
pub fn header_leaf_hash(header: &[Option<&[u8]>; 8], body_hash: &Hash) -> Hash {
    let mut leaf = Sha256::new();
    leaf.update([0x00]);
    for (tag, bytes) in HEADER.iter().zip(header) {
        if let Some(bytes) = bytes {
            update_item(&mut leaf, *tag, bytes);
        }
    }
    update_item(&mut leaf, BODY_HASH, body_hash);
    leaf.finalize().into()
}

/// The leaf hash of an event given its 14 fields by reference (`fields[0]`
/// is field 1, `id`), without building its leaf data: what a seal and a
/// verification compute for every event.
pub fn event_leaf_hash(fields: &[Option<&[u8]>; 14]) -> Hash {
    let header = HEADER.map(|tag| fields[usize::from(tag) - 1]);
    header_leaf_hash(&header, &event_body_hash(fields))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealLeaf {
    /// The watermark W: the oldest transaction id still running.
    pub watermark: u64,
    /// When the seal ran, written like `occurred_at` in `export()`.
    pub sealed_at: String,
    /// A time no event sealed later can precede, or `-infinity`.
    pub horizon: String,
    /// The cluster's system identifier, as `pg_control_system()` prints it
    /// (a bigint).
    pub cluster: i64,
}

impl SealLeaf {
    pub fn leaf_data(&self) -> Vec<u8> {
        let mut data = Vec::new();
        push_item(&mut data, 16, b"seal");
        push_item(&mut data, 17, self.watermark.to_string().as_bytes());
        push_item(&mut data, 18, self.sealed_at.as_bytes());
        push_item(&mut data, 19, self.horizon.as_bytes());
        push_item(&mut data, 20, crate::FORMAT_VERSION.as_bytes());
        push_item(&mut data, 21, self.cluster.to_string().as_bytes());
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(values: [Option<&str>; 14]) -> EventFields {
        EventFields {
            fields: values.map(|v| v.map(|s| s.as_bytes().to_vec())),
        }
    }

    #[test]
    fn items_are_tag_length_bytes() {
        let mut out = Vec::new();
        push_item(&mut out, 4, b"alice");
        push_item(&mut out, 15, b"");
        assert_eq!(out, b"\x04\x00\x00\x00\x05alice\x0f\x00\x00\x00\x00");
    }

    #[test]
    fn an_event_leaf_is_its_header_then_its_body_hash() {
        let e = event([
            Some("42"),
            Some("2026-11-21T09:30:00.123456Z"),
            Some("1001"),
            None,
            Some("app"),
            Some("psql"),
            None,
            Some("public.trainings"),
            Some(r#"{"id": 7}"#),
            Some("UPDATE"),
            Some(r#"["title"]"#),
            Some(r#"{"id": 7, "title": "A"}"#),
            Some(r#"{"id": 7, "title": "B"}"#),
            None,
        ]);
        // The body: application_name, changed_fields, old and new values
        // (client_addr and context are NULL, so absent).
        let mut body = Vec::new();
        push_item(&mut body, 6, b"psql");
        push_item(&mut body, 11, br#"["title"]"#);
        push_item(&mut body, 12, br#"{"id": 7, "title": "A"}"#);
        push_item(&mut body, 13, br#"{"id": 7, "title": "B"}"#);
        let body_hash: Hash = Sha256::digest(&body).into();
        assert_eq!(e.body_hash(), body_hash);
        // The header: id, occurred_at, tx_id, db_user, entity, entity_id,
        // action (actor is NULL).
        let mut expected = Vec::new();
        push_item(&mut expected, 1, b"42");
        push_item(&mut expected, 2, b"2026-11-21T09:30:00.123456Z");
        push_item(&mut expected, 3, b"1001");
        push_item(&mut expected, 5, b"app");
        push_item(&mut expected, 8, b"public.trainings");
        push_item(&mut expected, 9, br#"{"id": 7}"#);
        push_item(&mut expected, 10, b"UPDATE");
        push_item(&mut expected, 15, &body_hash);
        assert_eq!(e.leaf_data(), expected);
    }

    #[test]
    fn the_streaming_leaf_hash_is_the_hash_of_the_leaf_data() {
        let e = event([
            Some("7"),
            Some("2026-11-21T09:30:00.000000Z"),
            Some("9"),
            Some("bob"),
            Some("app"),
            None,
            Some("10.0.0.1/32"),
            Some("public.t"),
            None,
            Some("DELETE"),
            None,
            Some(r#"{"id": 1}"#),
            None,
            Some("{}"),
        ]);
        let borrowed: [Option<&[u8]>; 14] = std::array::from_fn(|i| e.fields[i].as_deref());
        assert_eq!(
            event_leaf_hash(&borrowed),
            crate::tree::leaf_hash(&e.leaf_data())
        );
    }

    #[test]
    fn a_null_field_differs_from_an_empty_one() {
        let mut with_empty = EventFields::default();
        with_empty.fields[3] = Some(Vec::new());
        assert_ne!(with_empty.leaf_data(), EventFields::default().leaf_data());
        let mut body_empty = EventFields::default();
        body_empty.fields[13] = Some(Vec::new());
        assert_ne!(body_empty.body_hash(), EventFields::default().body_hash());
    }

    #[test]
    fn a_seal_leaf_names_its_watermark_times_version_and_cluster() {
        let seal = SealLeaf {
            watermark: 1234,
            sealed_at: "2026-11-30T10:00:00.000000Z".into(),
            horizon: "-infinity".into(),
            cluster: 7_311_482_590_000_000_001,
        };
        let mut expected = Vec::new();
        push_item(&mut expected, 16, b"seal");
        push_item(&mut expected, 17, b"1234");
        push_item(&mut expected, 18, b"2026-11-30T10:00:00.000000Z");
        push_item(&mut expected, 19, b"-infinity");
        push_item(&mut expected, 20, b"1");
        push_item(&mut expected, 21, b"7311482590000000001");
        assert_eq!(seal.leaf_data(), expected);
    }
}
