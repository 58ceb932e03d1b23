//! The format that makes the audit trail tamper-evident (format version 1),
//! shared by the extension and the `audit-log` command so that both hash the
//! same bytes by construction. Public on purpose: an auditor can recompute a
//! root from an export with code of their own.
//!
//! - leaves: an event's `leaf_data` is built from the 14 text fields of
//!   `audit_log.export()` as tagged items, the header in clear and the body
//!   as one hash; a seal leaf says when a block was sealed (`leaf`);
//! - the tree: RFC 9162 (Certificate Transparency 2.0) hashing with SHA-256,
//!   and a frontier that appends leaves and gives the root in O(log n)
//!   (`tree`);
//! - checkpoints: the C2SP `tlog-checkpoint` text an auditor keeps
//!   (`checkpoint`);
//! - proofs: RFC 9162 consistency proofs and inclusion proofs of many leaves
//!   sharing their hashes (`proof`), and the JSON that carries them to an
//!   auditor (`format`).

pub mod checkpoint;
pub mod format;
pub mod leaf;
pub mod note;
pub mod proof;
pub mod tree;

pub use checkpoint::Checkpoint;
pub use leaf::{event_body_hash, event_leaf_hash, header_leaf_hash, EventFields, SealLeaf};
pub use tree::{Frontier, Hash};

/// The version of this format, written in every seal leaf.
pub const FORMAT_VERSION: &str = "1";
