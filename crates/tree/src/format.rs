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

impl B64 {
    /// A hash from its standard base64 text, if it is exactly one.
    pub fn decode(text: &[u8]) -> Option<B64> {
        STANDARD
            .decode(text)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes).ok())
            .map(B64)
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        B64::decode(text.as_bytes())
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

/// Writes an `ExportProof` piece by piece, as the database reads it, to the
/// same bytes `serde_json` writes for the whole struct: the prover then keeps
/// the proof it returns and little else, however many events it proves.
///
/// Call `begin`, `event` for each proven event, `unsealed`, then with a
/// stretch `stretch_begin`, `stretch_leaf` for each revealed leaf and
/// `stretch_end`, and last `finish`.
pub struct ExportProofWriter<W: std::io::Write> {
    out: W,
    written: u64,
    first_item: bool,
}

impl<W: std::io::Write> ExportProofWriter<W> {
    /// Everything before the events.
    pub fn begin(
        out: W,
        checkpoint: &str,
        filters: &Filters,
        complete: bool,
    ) -> std::io::Result<Self> {
        let mut writer = ExportProofWriter {
            out,
            written: 0,
            first_item: true,
        };
        writer.raw(b"{\"format\":")?;
        writer.value(EXPORT_PROOF_FORMAT)?;
        writer.raw(b",\"checkpoint\":")?;
        writer.value(checkpoint)?;
        writer.raw(b",\"filters\":")?;
        writer.value(filters)?;
        writer.raw(b",\"complete\":")?;
        writer.value(&complete)?;
        writer.raw(b",\"events\":[")?;
        Ok(writer)
    }

    /// One proven event; returns where its hash's base64 text starts in the
    /// output, for a prover that reads it back rather than keep a copy.
    pub fn event(&mut self, id: i64, leaf: u64, hash: &Hash) -> std::io::Result<u64> {
        self.separate()?;
        let head = format!("[{id},{leaf},\"");
        self.raw(head.as_bytes())?;
        let at = self.written;
        let text = STANDARD.encode(hash);
        self.raw(text.as_bytes())?;
        self.raw(b"\"]")?;
        Ok(at)
    }

    /// The end of the events, and the unsealed ids.
    pub fn unsealed(&mut self, ids: &[i64]) -> std::io::Result<()> {
        self.raw(b"],\"unsealed\":")?;
        self.value(ids)
    }

    pub fn stretch_begin(&mut self, first: u64, end: u64, open: bool) -> std::io::Result<()> {
        let head =
            format!(",\"stretch\":{{\"first\":{first},\"end\":{end},\"open\":{open},\"leaves\":[");
        self.raw(head.as_bytes())?;
        self.first_item = true;
        Ok(())
    }

    pub fn stretch_leaf(&mut self, leaf: &RevealedLeaf) -> std::io::Result<()> {
        self.separate()?;
        self.value(leaf)
    }

    pub fn stretch_end(&mut self) -> std::io::Result<()> {
        self.raw(b"]}")
    }

    /// The inclusion proof's hashes and the consistency proof; returns the
    /// output.
    pub fn finish(
        mut self,
        hashes: &[Hash],
        consistency: Option<&Consistency>,
    ) -> std::io::Result<W> {
        self.raw(b",\"hashes\":[")?;
        self.first_item = true;
        for hash in hashes {
            self.separate()?;
            self.value(&B64(*hash))?;
        }
        self.raw(b"]")?;
        if let Some(consistency) = consistency {
            self.raw(b",\"consistency\":")?;
            self.value(consistency)?;
        }
        self.raw(b"}")?;
        Ok(self.out)
    }

    /// The output so far.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn separate(&mut self) -> std::io::Result<()> {
        if self.first_item {
            self.first_item = false;
            Ok(())
        } else {
            self.raw(b",")
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(value)?;
        self.raw(&bytes)
    }
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

    fn streamed(proof: &ExportProof) -> Vec<u8> {
        let mut writer = ExportProofWriter::begin(
            Vec::new(),
            &proof.checkpoint,
            &proof.filters,
            proof.complete,
        )
        .unwrap();
        for event in &proof.events {
            let at = writer.event(event.0, event.1, &event.2 .0).unwrap() as usize;
            let text = &writer.get_ref()[at..at + 44];
            assert_eq!(STANDARD.decode(text).unwrap(), event.2 .0);
        }
        writer.unsealed(&proof.unsealed).unwrap();
        if let Some(stretch) = &proof.stretch {
            writer
                .stretch_begin(stretch.first, stretch.end, stretch.open)
                .unwrap();
            for leaf in &stretch.leaves {
                writer.stretch_leaf(leaf).unwrap();
            }
            writer.stretch_end().unwrap();
        }
        let hashes: Vec<Hash> = proof.hashes.iter().map(|h| h.0).collect();
        writer.finish(&hashes, proof.consistency.as_ref()).unwrap()
    }

    #[test]
    fn a_proof_written_piece_by_piece_is_the_proof_serde_writes() {
        let seal = RevealedLeaf::Seal {
            leaf: 5,
            watermark: "750".into(),
            sealed_at: "2026-11-21T09:30:00.123456Z".into(),
            horizon: "-infinity".into(),
            version: "1".into(),
            cluster: "7300000000000000000".into(),
        };
        let event = RevealedLeaf::Event {
            leaf: 6,
            id: Some("9".into()),
            occurred_at: None,
            tx_id: Some("800".into()),
            actor: Some("a \"quoted\" \\ actor, été 🎉\n".into()),
            db_user: Some("app".into()),
            entity: Some("public.t".into()),
            entity_id: Some("{\"id\": 1}".into()),
            action: Some("INSERT".into()),
            body_hash: B64([3; 32]),
        };
        let filters = Filters {
            since: Some("2026-11-21T09:30:00.000000Z".into()),
            until: None,
            actor: Some("zoé \"x\"".into()),
            entity: Some(EntityFilter {
                given: "t".into(),
                segments: vec![EntitySegment {
                    name: "public.t".into(),
                    after_id: 0,
                    before_id: i64::MAX,
                }],
            }),
            action: Some("UPDATE".into()),
        };
        let mut proofs = vec![];
        for (events, unsealed, stretch, hashes, consistency) in [
            (vec![], vec![], false, vec![], false),
            (
                vec![ProvenEvent(1, 0, B64([1; 32]))],
                vec![],
                false,
                vec![B64([9; 32])],
                false,
            ),
            (
                vec![
                    ProvenEvent(-7, 3, B64([1; 32])),
                    ProvenEvent(i64::MAX, u64::MAX, B64([255; 32])),
                ],
                vec![4, 5],
                true,
                vec![B64([9; 32]), B64([8; 32])],
                true,
            ),
            (vec![], vec![2], true, vec![], true),
        ] {
            proofs.push(ExportProof {
                format: EXPORT_PROOF_FORMAT.into(),
                checkpoint: "audit_log/x\n3\nAAAA\n\n— name sig\n".into(),
                filters: filters.clone(),
                complete: stretch,
                events,
                unsealed,
                stretch: stretch.then(|| Stretch {
                    first: 2,
                    end: 9,
                    open: consistency,
                    leaves: vec![seal.clone(), event.clone()],
                }),
                hashes,
                consistency: consistency.then(|| Consistency {
                    old_size: 2,
                    hashes: vec![B64([4; 32])],
                }),
            });
        }
        proofs.push(ExportProof {
            filters: Filters::default(),
            stretch: Some(Stretch {
                first: 0,
                end: 0,
                open: false,
                leaves: vec![],
            }),
            ..proofs[0].clone()
        });
        for proof in &proofs {
            let bytes = streamed(proof);
            assert_eq!(
                String::from_utf8(bytes.clone()).unwrap(),
                serde_json::to_string(proof).unwrap()
            );
            assert_eq!(
                &serde_json::from_slice::<ExportProof>(&bytes).unwrap(),
                proof
            );
        }
    }
}
