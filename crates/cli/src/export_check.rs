//! `audit-log verify-export`: an export's CSV against its proof and the
//! auditor's checkpoint, with nothing else.
//!
//! What is trusted is the auditor's checkpoint (signed by a key they know,
//! or kept by them earlier); everything else comes from the organisation and
//! is checked: the proof must lead to the checkpoint's root (or extend it),
//! every CSV row must hash to the leaf the proof says, and with `complete`
//! the proof must cover, leaf by leaf, the stretch of the tree that the
//! period's seal leaves bound, showing that no other leaf of it matches.

use std::collections::HashMap;
use std::io::Read;

use audit_log_tree::format::{ExportProof, Filters, RevealedLeaf, EXPORT_PROOF_FORMAT};
use audit_log_tree::note::{Note, VerifierKey};
use audit_log_tree::proof::{root_from_inclusion, verify_consistency};
use audit_log_tree::tree::leaf_hash;
use audit_log_tree::{event_leaf_hash, header_leaf_hash, Checkpoint, Hash, SealLeaf};

use crate::csv_rows::CsvRows;
use crate::keys::{check, SignatureCheck};

/// What the check found: problems, one line each, or what was proven.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub proven: usize,
    pub origin: String,
    pub tree_size: u64,
    pub signed_by: Option<String>,
    pub complete: bool,
}

impl Report {
    /// The line that says it all when nothing is wrong.
    pub fn summary(&self) -> String {
        let signature = match &self.signed_by {
            Some(name) => format!("signed by {name}"),
            None => "signature not checked: no --key".to_string(),
        };
        let complete = if self.complete {
            "; complete: no sealed event of the selection is missing"
        } else {
            ""
        };
        format!(
            "OK: {} events proven against {} at tree size {} ({signature}){complete}",
            self.proven, self.origin, self.tree_size
        )
    }
}

/// Parses a checkpoint file: a signed note whose text is a checkpoint.
pub fn read_checkpoint(text: &str) -> Result<(Note, Checkpoint), String> {
    let note = Note::parse(text)?;
    let checkpoint = Checkpoint::parse(&note.body)?;
    Ok((note, checkpoint))
}

pub fn origin(checkpoint: &Checkpoint) -> String {
    format!(
        "{}{}",
        audit_log_tree::checkpoint::ORIGIN_PREFIX,
        checkpoint.log_id
    )
}

/// Whether `note` (the `which` checkpoint) is signed by `key`, or the
/// problem, in words.
pub fn signature_problem(which: &str, note: &Note, key: &VerifierKey) -> Result<(), String> {
    match check(note, key) {
        SignatureCheck::Valid => Ok(()),
        SignatureCheck::Missing => Err(format!(
            "the {which} carries no signature by {} (key {}): it cannot be trusted as theirs",
            key.name,
            key.key_id
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )),
        SignatureCheck::Invalid => Err(format!(
            "the {which}'s signature by {} is wrong: the checkpoint was altered or forged",
            key.name
        )),
    }
}

/// Checks the auditor's checkpoint (its signature, and that the proof's
/// tree is it or extends it). Returns the signer's name when checked.
pub fn check_kept_checkpoint(
    kept_text: &str,
    key: Option<&VerifierKey>,
    proof_checkpoint: &Checkpoint,
    consistency: Option<(u64, &[Hash])>,
    problems: &mut Vec<String>,
) -> Option<String> {
    let (note, kept) = match read_checkpoint(kept_text) {
        Ok(parsed) => parsed,
        Err(message) => {
            problems.push(format!(
                "the checkpoint file is not a checkpoint: {message}"
            ));
            return None;
        }
    };
    let mut signed_by = None;
    if let Some(key) = key {
        match signature_problem("checkpoint", &note, key) {
            Ok(()) => signed_by = Some(key.name.clone()),
            Err(problem) => problems.push(problem),
        }
    }
    if origin(&kept) != origin(proof_checkpoint) {
        problems.push(format!(
            "the checkpoint is of another log ({}), the proof is of {}",
            origin(&kept),
            origin(proof_checkpoint)
        ));
        return signed_by;
    }
    if kept.size == proof_checkpoint.size {
        if kept.root != proof_checkpoint.root {
            problems.push(format!(
                "the checkpoint is not the proof's: both are of tree size {} but their roots differ (a forged checkpoint, or a rewritten trail)",
                kept.size
            ));
        }
    } else if kept.size > proof_checkpoint.size {
        problems.push(format!(
            "the checkpoint (tree size {}) is newer than the proof (tree size {}): ask for a proof made after it",
            kept.size, proof_checkpoint.size
        ));
    } else {
        match consistency {
            None => problems.push(format!(
                "the checkpoint is not the proof's (tree size {} against {}) and the proof carries no consistency proof from it: ask for export_proof(..., checkpoint => ...) with this checkpoint",
                kept.size, proof_checkpoint.size
            )),
            Some((old_size, _)) if old_size != kept.size => problems.push(format!(
                "the proof's consistency proof starts at tree size {old_size}, not at the checkpoint's {}",
                kept.size
            )),
            Some((_, hashes)) => {
                if let Err(message) = verify_consistency(
                    kept.size,
                    proof_checkpoint.size,
                    &kept.root,
                    &proof_checkpoint.root,
                    hashes,
                ) {
                    problems.push(format!(
                        "the proof's tree (size {}) does not extend the checkpoint (size {}): {message}",
                        proof_checkpoint.size, kept.size
                    ));
                }
            }
        }
    }
    signed_by
}

/// A time as `export()` writes it, comparable: `-infinity`, then times in
/// order, then `infinity`.
fn time_key(text: &str) -> (i8, &str) {
    match text {
        "-infinity" => (-1, ""),
        "infinity" => (1, ""),
        _ => (0, text),
    }
}

/// Whether an event's header matches the export's filters.
struct Header<'a> {
    id: Option<i64>,
    occurred_at: Option<&'a str>,
    actor: Option<&'a str>,
    entity: Option<&'a str>,
    action: Option<&'a str>,
}

fn matches(filters: &Filters, header: &Header<'_>) -> bool {
    let at = header.occurred_at.map(time_key);
    if let Some(since) = &filters.since {
        if at.is_none_or(|at| at < time_key(since)) {
            return false;
        }
    }
    if let Some(until) = &filters.until {
        if at.is_none_or(|at| at >= time_key(until)) {
            return false;
        }
    }
    if let Some(actor) = &filters.actor {
        if header.actor != Some(actor.as_str()) {
            return false;
        }
    }
    if let Some(action) = &filters.action {
        if header.action != Some(action.as_str()) {
            return false;
        }
    }
    if let Some(entity) = &filters.entity {
        let (Some(name), Some(id)) = (header.entity, header.id) else {
            return false;
        };
        if !entity
            .segments
            .iter()
            .any(|s| s.name == name && s.after_id < id && id < s.before_id)
        {
            return false;
        }
    }
    true
}

fn text(field: &Option<Vec<u8>>) -> Option<&str> {
    field.as_deref().and_then(|b| std::str::from_utf8(b).ok())
}

/// Checks the CSV against the proof and the auditor's checkpoint.
/// `progress` is told how many bytes of the CSV were read.
pub fn verify_export(
    csv: impl Read,
    proof: &ExportProof,
    kept_text: &str,
    key: Option<&VerifierKey>,
    mut progress: impl FnMut(u64),
) -> Result<Report, String> {
    if proof.format != EXPORT_PROOF_FORMAT {
        return Err(format!(
            "the proof's format is {:?}, this command reads {EXPORT_PROOF_FORMAT:?}",
            proof.format
        ));
    }
    let (_, proof_checkpoint) = read_checkpoint(&proof.checkpoint)
        .map_err(|message| format!("the proof's checkpoint is malformed: {message}"))?;
    let mut report = Report {
        origin: origin(&proof_checkpoint),
        tree_size: proof_checkpoint.size,
        complete: proof.complete,
        ..Report::default()
    };
    let problems = &mut report.problems;
    let consistency_hashes: Option<Vec<Hash>> = proof
        .consistency
        .as_ref()
        .map(|c| c.hashes.iter().map(|h| h.0).collect());
    report.signed_by = check_kept_checkpoint(
        kept_text,
        key,
        &proof_checkpoint,
        proof
            .consistency
            .as_ref()
            .zip(consistency_hashes.as_deref())
            .map(|(c, hashes)| (c.old_size, hashes)),
        problems,
    );

    // The rows, against the leaves the proof lists for them.
    let mut listed: HashMap<i64, (usize, u64, Hash)> = HashMap::new();
    for (position, event) in proof.events.iter().enumerate() {
        if listed
            .insert(event.0, (position, event.1, event.2 .0))
            .is_some()
        {
            problems.push(format!("the proof lists event {} twice", event.0));
        }
    }
    let unsealed: std::collections::HashSet<i64> = proof.unsealed.iter().copied().collect();
    let mut seen: HashMap<i64, u64> = HashMap::new();
    let mut next_position = 0usize;
    let mut rows = CsvRows::new(csv)?;
    let mut count = 0u64;
    while let Some(row) = rows.next_row()? {
        count += 1;
        if count.is_multiple_of(4096) {
            progress(rows.bytes_read());
        }
        let line = row.line;
        let Some(id) = text(&row.fields[0]).and_then(|t| t.parse::<i64>().ok()) else {
            problems.push(format!("line {line}: the id is not a number"));
            continue;
        };
        if let Some(first) = seen.insert(id, line) {
            problems.push(format!(
                "line {line}: event {id} again (first on line {first})"
            ));
            continue;
        }
        let header = Header {
            id: Some(id),
            occurred_at: text(&row.fields[1]),
            actor: text(&row.fields[3]),
            entity: text(&row.fields[7]),
            action: text(&row.fields[9]),
        };
        if unsealed.contains(&id) {
            problems.push(format!(
                "line {line}: event {id} is not sealed yet: nothing proves it; seal, then prove the export again"
            ));
            continue;
        }
        let Some(&(position, leaf, expected)) = listed.get(&id) else {
            problems.push(format!(
                "line {line}: event {id} is not in the proof: not an event of this log's tree"
            ));
            continue;
        };
        let fields: [Option<&[u8]>; 14] = std::array::from_fn(|i| row.fields[i].as_deref());
        if event_leaf_hash(&fields) != expected {
            problems.push(format!(
                "line {line}: event {id} was changed: the row does not match its sealed leaf {leaf}"
            ));
        } else if !matches(&proof.filters, &header) {
            problems.push(format!(
                "line {line}: event {id} does not match the export's filters"
            ));
        } else {
            report.proven += 1;
        }
        if position != next_position {
            problems.push(format!(
                "line {line}: event {id} is out of order: the export has it as sealed row {} (rows are ordered by occurred_at, then id)",
                position + 1
            ));
        }
        next_position = position + 1;
    }
    progress(rows.bytes_read());
    for event in &proof.events {
        if !seen.contains_key(&event.0) {
            problems.push(format!(
                "event {} (leaf {}) is in the export but missing from the CSV: a row was dropped",
                event.0, event.1
            ));
        }
    }

    // The proof's leaves against the checkpoint's root.
    let mut known: Vec<(u64, Hash)> = proof.events.iter().map(|e| (e.1, e.2 .0)).collect();
    if proof.complete {
        match &proof.stretch {
            None => {
                problems.push("the proof says complete but reveals no stretch of the tree".into())
            }
            Some(stretch) => check_stretch(proof, &proof_checkpoint, stretch, &mut known, problems),
        }
    }
    known.sort_unstable_by_key(|(leaf, _)| *leaf);
    if known.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        problems.push("the proof shows some leaf twice".into());
    } else if known.is_empty() {
        if !proof.hashes.is_empty() {
            problems.push("the proof carries hashes but no leaf".into());
        }
    } else {
        let hashes: Vec<Hash> = proof.hashes.iter().map(|h| h.0).collect();
        match root_from_inclusion(proof_checkpoint.size, &known, &hashes) {
            Ok(root) if root == proof_checkpoint.root => {}
            Ok(_) => problems.push(format!(
                "the proof's leaves and hashes do not lead to the root of {} at tree size {}: the proof was altered or forged",
                report.origin, proof_checkpoint.size
            )),
            Err(message) => problems.push(format!("the proof is malformed: {message}")),
        }
    }
    Ok(report)
}

/// Complete mode: the stretch covers `[first, end)` leaf by leaf, its bounds
/// are the period's, and no revealed event matches the filters.
fn check_stretch(
    proof: &ExportProof,
    checkpoint: &Checkpoint,
    stretch: &audit_log_tree::format::Stretch,
    known: &mut Vec<(u64, Hash)>,
    problems: &mut Vec<String>,
) {
    let filters = &proof.filters;
    if stretch.first > stretch.end || stretch.end > checkpoint.size {
        problems.push(format!(
            "the proof's stretch [{}, {}) is not inside the tree of {} leaves",
            stretch.first, stretch.end, checkpoint.size
        ));
        return;
    }
    let mut exported: Vec<u64> = proof.events.iter().map(|e| e.1).collect();
    exported.sort_unstable();
    let mut revealed = stretch.leaves.iter().peekable();
    let mut seals: Vec<(u64, &str, &str)> = Vec::new(); // (leaf, sealed_at, horizon)
    for index in stretch.first..stretch.end {
        if exported.binary_search(&index).is_ok() {
            if revealed.peek().is_some_and(|leaf| leaf.leaf() == index) {
                problems.push(format!("leaf {index} is both exported and revealed"));
                revealed.next();
            }
            continue;
        }
        let Some(leaf) = revealed.next_if(|leaf| leaf.leaf() == index) else {
            problems.push(format!(
                "the proof leaves out leaf {index} of the period's stretch: it cannot show that nothing is missing"
            ));
            return;
        };
        match leaf {
            RevealedLeaf::Seal {
                watermark,
                sealed_at,
                horizon,
                version,
                cluster,
                ..
            } => {
                let (Ok(watermark), Ok(cluster)) =
                    (watermark.parse::<u64>(), cluster.parse::<i64>())
                else {
                    problems.push(format!("seal leaf {index} is malformed"));
                    return;
                };
                if version != audit_log_tree::FORMAT_VERSION {
                    problems.push(format!(
                        "seal leaf {index} is of format version {version}, this command reads {}",
                        audit_log_tree::FORMAT_VERSION
                    ));
                    return;
                }
                let seal = SealLeaf {
                    watermark,
                    sealed_at: sealed_at.clone(),
                    horizon: horizon.clone(),
                    cluster,
                };
                known.push((index, leaf_hash(&seal.leaf_data())));
                seals.push((index, sealed_at, horizon));
            }
            RevealedLeaf::Event {
                id,
                occurred_at,
                tx_id,
                actor,
                db_user,
                entity,
                entity_id,
                action,
                body_hash,
                ..
            } => {
                let header = [
                    id,
                    occurred_at,
                    tx_id,
                    actor,
                    db_user,
                    entity,
                    entity_id,
                    action,
                ]
                .map(|f| f.as_deref().map(str::as_bytes));
                known.push((index, header_leaf_hash(&header, &body_hash.0)));
                let id_number = id.as_deref().and_then(|t| t.parse::<i64>().ok());
                let shown = Header {
                    id: id_number,
                    occurred_at: occurred_at.as_deref(),
                    actor: actor.as_deref(),
                    entity: entity.as_deref(),
                    action: action.as_deref(),
                };
                if matches(filters, &shown) {
                    problems.push(format!(
                        "sealed event {} (leaf {index}) matches the export's filters but is missing from the export",
                        id.as_deref().unwrap_or("?")
                    ));
                }
            }
        }
    }
    if let Some(extra) = revealed.next() {
        problems.push(format!(
            "the proof reveals leaf {} outside its stretch [{}, {}), or out of order",
            extra.leaf(),
            stretch.first,
            stretch.end
        ));
        return;
    }

    // Where the stretch starts: nothing before a seal leaf sealed at or
    // before `since` can be of the period (its events ended before it).
    if stretch.first != 0 {
        let starts_well = match (&filters.since, seals.first()) {
            (Some(since), Some((leaf, sealed_at, _))) => {
                *leaf == stretch.first && time_key(sealed_at) <= time_key(since)
            }
            _ => false,
        };
        if !starts_well {
            problems.push(format!(
                "the proof's stretch starts at leaf {}, which is not a seal leaf sealed before the period: events of the period may lie before it",
                stretch.first
            ));
        }
    }
    // Where it ends: through the block of the first seal leaf whose horizon
    // is at or after `until`, closed by the next seal leaf or the tree's end.
    let closing = filters.until.as_ref().and_then(|until| {
        seals
            .iter()
            .position(|(_, _, horizon)| time_key(horizon) >= time_key(until))
    });
    match closing {
        Some(position) => {
            let closed = match seals.get(position + 1) {
                Some((leaf, _, _)) => *leaf + 1 == stretch.end,
                None => stretch.end == checkpoint.size,
            };
            if !closed {
                problems.push(format!(
                    "the proof's stretch ends at leaf {}, not where the block of seal leaf {} ends: events of the period may lie after it",
                    stretch.end, seals[position].0
                ));
            }
        }
        None => {
            if stretch.end == checkpoint.size {
                problems.push(match &filters.until {
                    Some(until) => format!(
                        "the period is still open: no seal has a horizon at or after {until} yet, so events of it may still come; it cannot be called complete yet (prove it again once it is sealed past its end)"
                    ),
                    None => "the selection has no end (no until): it is always open and cannot be called complete".to_string(),
                });
            } else {
                problems.push(format!(
                    "the proof's stretch ends at leaf {} before any seal closes the period",
                    stretch.end
                ));
            }
        }
    }
}
