//! `audit-log witness`: an independent copy of the log's history. Each run
//! seals, checks that the log's new tree extends the one this witness signed
//! last (a consistency proof from the database, checked here), signs the new
//! checkpoint, and hands the signature to the database. A trail rewritten
//! after the witness signed, even with its stored hashes, cannot extend what
//! it signed: the witness refuses, loudly, and signs nothing.

use std::fs;
use std::path::Path;

use audit_log_tree::format::{ConsistencyProof, CONSISTENCY_PROOF_FORMAT};
use audit_log_tree::note::{Note, SignerKey};
use audit_log_tree::proof::verify_consistency;
use audit_log_tree::Hash;

use crate::export_check::{origin, read_checkpoint, signature_problem};
use crate::keys::sign;

/// The file in the state directory that holds the last signed checkpoint.
pub const STATE_FILE: &str = "checkpoint";

pub fn run(dsn: &str, key: &SignerKey, state: &Path) -> Result<String, String> {
    let mut client = postgres::Client::connect(dsn, postgres::NoTls)
        .map_err(|e| format!("cannot connect to {dsn}: {e}"))?;
    let sealed: String = client
        .query_one("SELECT audit_log.seal()", &[])
        .map_err(|e| format!("audit_log.seal() failed: {e}"))?
        .get(0);
    let (_, new) = read_checkpoint(&sealed)
        .map_err(|e| format!("audit_log.seal() returned no checkpoint: {e}"))?;

    let state_file = state.join(STATE_FILE);
    let previous = match fs::read_to_string(&state_file) {
        Ok(text) => Some(
            read_checkpoint(&text)
                .map_err(|e| format!("{} is not a checkpoint: {e}", state_file.display()))?
                .1,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", state_file.display())),
    };
    let extends = match &previous {
        None => String::from("first checkpoint of this witness"),
        Some(old) => {
            if origin(old) != origin(&new) {
                return Err(format!(
                    "REFUSED: this witness signed {} and the database is {}: another log",
                    origin(old),
                    origin(&new)
                ));
            }
            if old.size > new.size {
                return Err(format!(
                    "REFUSED: the log at tree size {} does not extend the tree of size {} this witness signed: it lost leaves",
                    new.size, old.size
                ));
            }
            let text: String = client
                .query_one(
                    "SELECT audit_log.consistency_proof($1, $2)",
                    &[&(old.size as i64), &(new.size as i64)],
                )
                .map_err(|e| {
                    format!(
                        "REFUSED: no consistency proof from tree size {} to {}: {e}",
                        old.size, new.size
                    )
                })?
                .get(0);
            let proof: ConsistencyProof = serde_json::from_str(&text)
                .map_err(|e| format!("the consistency proof is malformed: {e}"))?;
            if proof.format != CONSISTENCY_PROOF_FORMAT
                || proof.old_size != old.size
                || proof.new_size != new.size
                || proof.origin != origin(&new)
            {
                return Err(format!(
                    "REFUSED: the database answered with a consistency proof of another tree (from {} to {} of {})",
                    proof.old_size, proof.new_size, proof.origin
                ));
            }
            let hashes: Vec<Hash> = proof.hashes.iter().map(|h| h.0).collect();
            verify_consistency(old.size, new.size, &old.root, &new.root, &hashes).map_err(|e| {
                format!(
                    "REFUSED: the log at tree size {} does not extend the tree of size {} this witness signed ({e}): the sealed trail was rewritten",
                    new.size, old.size
                )
            })?;
            format!("extends tree size {}", old.size)
        }
    };

    let signed = sign(
        &Note {
            body: new.text(),
            signatures: vec![],
        },
        key,
    )
    .text();
    client
        .execute("SELECT audit_log.add_signature($1)", &[&signed])
        .map_err(|e| format!("audit_log.add_signature() failed: {e}"))?;
    fs::create_dir_all(state).map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    // Written aside, then renamed: a crash never leaves half a checkpoint.
    let partial = state.join(format!("{STATE_FILE}.partial"));
    fs::write(&partial, &signed)
        .and_then(|()| fs::rename(&partial, &state_file))
        .map_err(|e| format!("cannot write {}: {e}", state_file.display()))?;
    Ok(format!(
        "witnessed {} at tree size {} ({extends}), signed by {}",
        origin(&new),
        new.size,
        key.name
    ))
}

/// `audit-log verify-consistency`: the new checkpoint's tree extends the old.
pub fn verify_files(
    old_text: &str,
    new_text: &str,
    proof_text: &str,
    key: Option<&audit_log_tree::note::VerifierKey>,
) -> Result<String, Vec<String>> {
    let mut problems = vec![];
    let (old_note, old) = read_checkpoint(old_text).map_err(|e| vec![format!("--old: {e}")])?;
    let (new_note, new) = read_checkpoint(new_text).map_err(|e| vec![format!("--new: {e}")])?;
    let proof: ConsistencyProof = serde_json::from_str(proof_text)
        .map_err(|e| vec![format!("--proof is not a consistency proof: {e}")])?;
    let mut signed_by = None;
    if let Some(key) = key {
        for (which, note) in [("old checkpoint", &old_note), ("new checkpoint", &new_note)] {
            match signature_problem(which, note, key) {
                Ok(()) => signed_by = Some(key.name.clone()),
                Err(problem) => problems.push(problem),
            }
        }
    }
    if proof.format != CONSISTENCY_PROOF_FORMAT {
        problems.push(format!("the proof's format is {:?}", proof.format));
    }
    if origin(&old) != origin(&new) || proof.origin != origin(&new) {
        problems.push(format!(
            "not one log: old {}, new {}, proof {}",
            origin(&old),
            origin(&new),
            proof.origin
        ));
    }
    if proof.old_size != old.size || proof.new_size != new.size {
        problems.push(format!(
            "the proof goes from tree size {} to {}, the checkpoints are of {} and {}",
            proof.old_size, proof.new_size, old.size, new.size
        ));
    }
    if problems.is_empty() {
        let hashes: Vec<Hash> = proof.hashes.iter().map(|h| h.0).collect();
        if let Err(e) = verify_consistency(old.size, new.size, &old.root, &new.root, &hashes) {
            problems.push(format!(
                "the tree of size {} does not extend the tree of size {}: {e}",
                new.size, old.size
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let signature = signed_by.map_or(String::new(), |name| format!(" (signed by {name})"));
    Ok(format!(
        "OK: {} at tree size {} extends tree size {}{signature}",
        origin(&new),
        new.size,
        old.size
    ))
}
