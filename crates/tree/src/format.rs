//! The JSON documents that carry proofs to an auditor (API section 7):
//! `audit_log.export_proof()` writes an `ExportProof`, `consistency_proof()`
//! a `ConsistencyProof`; `audit-log verify-export` and `verify-consistency`
//! read them. Hashes are standard base64, like the checkpoint's root.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tree::Hash;

/// The `format` of an export proof of this version.
pub const EXPORT_PROOF_FORMAT: &str = "audit_log export proof 1";
/// The `format` of a consistency proof of this version.
pub const CONSISTENCY_PROOF_FORMAT: &str = "audit_log consistency proof 1";

/// A SHA-256 hash written in standard base64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct B64(pub Hash);

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .ok()
            .and_then(|bytes| Hash::try_from(bytes).ok())
            .map(B64)
            .ok_or_else(|| serde::de::Error::custom("a hash is 32 bytes in standard base64"))
    }
}

/// What `export_proof()` proves, against the checkpoint it embeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportProof {
    /// `EXPORT_PROOF_FORMAT`.
    pub format: String,
    /// The checkpoint of the tree the proof is against, with the signatures
    /// the database holds for it.
    pub checkpoint: String,
    /// The export's filters as the database applied them.
    pub filters: Filters,
    /// Whether the proof also shows that no sealed matching event is missing.
    pub complete: bool,
    /// The exported events that are sealed, in the export's order.
    pub events: Vec<ProvenEvent>,
    /// Ids of the exported events not sealed yet, in the export's order.
    pub unsealed: Vec<i64>,
    /// With `complete`: every other leaf of the stretch the period bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stretch: Option<Stretch>,
    /// The subtree hashes of the multi-leaf inclusion proof of every leaf
    /// above (`proof::inclusion_subtrees` says which and in what order).
    pub hashes: Vec<B64>,
    /// With the auditor's earlier checkpoint: the consistency proof from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
}

/// An exported, sealed event: its id, its leaf index and its leaf hash (so
/// that a changed row is named, not only a wrong root).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenEvent(pub i64, pub u64, pub B64);

/// The filters of `export()`, resolved: times as `export()` writes
/// `occurred_at`, the entity as the names (and stretches of ids under each
/// name, following renames) it stands for, the action as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    pub since: Option<String>,
    pub until: Option<String>,
    pub actor: Option<String>,
    pub entity: Option<EntityFilter>,
    pub action: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityFilter {
    /// As given to `export()`.
    pub given: String,
    /// An event matches when one segment has its entity name and
    /// `after_id < id < before_id`.
    pub segments: Vec<EntitySegment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySegment {
    pub name: String,
    pub after_id: i64,
    pub before_id: i64,
}

/// The leaves `[first, end)` of the tree that section 6.1 bounds for the
/// period; `leaves` reveals those not exported, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stretch {
    pub first: u64,
    pub end: u64,
    /// No seal leaf has a horizon at or after `until` yet: the period can
    /// still receive events, the proof cannot call it complete.
    pub open: bool,
    pub leaves: Vec<RevealedLeaf>,
}

/// A leaf shown without its values: a seal leaf whole, an event's header
/// fields and body hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RevealedLeaf {
    Seal {
        leaf: u64,
        watermark: String,
        sealed_at: String,
        horizon: String,
        version: String,
        cluster: String,
    },
    Event {
        leaf: u64,
        id: Option<String>,
        occurred_at: Option<String>,
        tx_id: Option<String>,
        actor: Option<String>,
        db_user: Option<String>,
        entity: Option<String>,
        entity_id: Option<String>,
        action: Option<String>,
        body_hash: B64,
    },
}

impl RevealedLeaf {
    pub fn leaf(&self) -> u64 {
        match self {
            RevealedLeaf::Seal { leaf, .. } | RevealedLeaf::Event { leaf, .. } => *leaf,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    pub old_size: u64,
    pub hashes: Vec<B64>,
}

/// What `consistency_proof()` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// `CONSISTENCY_PROOF_FORMAT`.
    pub format: String,
    /// The checkpoint's origin line: `audit_log/<log id>`.
    pub origin: String,
    pub old_size: u64,
    pub new_size: u64,
    pub hashes: Vec<B64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_base64_and_exactly_32_bytes() {
        let proof = Consistency {
            old_size: 1,
            hashes: vec![B64([7; 32])],
        };
        let json = serde_json::to_string(&proof).unwrap();
        assert_eq!(
            json,
            r#"{"old_size":1,"hashes":["BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="]}"#
        );
        assert_eq!(serde_json::from_str::<Consistency>(&json).unwrap(), proof);
        assert!(
            serde_json::from_str::<Consistency>(r#"{"old_size":1,"hashes":["AAAA"]}"#).is_err()
        );
        assert!(
            serde_json::from_str::<Consistency>(r#"{"old_size":1,"hashes":[],"x":1}"#).is_err()
        );
    }

    #[test]
    fn revealed_leaves_say_their_kind() {
        let leaf = RevealedLeaf::Seal {
            leaf: 3,
            watermark: "750".into(),
            sealed_at: "2026-11-21T09:30:00.123456Z".into(),
            horizon: "-infinity".into(),
            version: "1".into(),
            cluster: "7300000000000000000".into(),
        };
        let json = serde_json::to_string(&leaf).unwrap();
        assert!(json.starts_with(r#"{"kind":"seal","leaf":3,"#), "{json}");
        assert_eq!(serde_json::from_str::<RevealedLeaf>(&json).unwrap(), leaf);
        let event: RevealedLeaf = serde_json::from_str(
            r#"{"kind":"event","leaf":4,"id":"9","occurred_at":"2026-11-21T09:30:00.123456Z",
                "tx_id":"800","actor":null,"db_user":"app","entity":"public.t",
                "entity_id":"{\"id\": 1}","action":"INSERT",
                "body_hash":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}"#,
        )
        .unwrap();
        assert_eq!(event.leaf(), 4);
    }
}
