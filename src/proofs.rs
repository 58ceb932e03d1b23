//! Proofs for auditors (API section 7): `export_proof()`,
//! `consistency_proof()` and `add_signature()`.
//!
//! A proof is built from what the tree stores (leaf hashes, interior nodes,
//! seals) and checked against the stored root before it is returned: a
//! damaged tree gives an error here, never a proof that fails in the
//! auditor's hands for a reason the database could have said.

use audit_log_tree::format::{
    Consistency, ConsistencyProof, EntityFilter, EntitySegment, ExportProof, Filters, ProvenEvent,
    RevealedLeaf, Stretch, B64, CONSISTENCY_PROOF_FORMAT, EXPORT_PROOF_FORMAT,
};
use audit_log_tree::note::Note;
use audit_log_tree::proof::{consistency_subtrees, inclusion_subtrees, root_from_inclusion};
use audit_log_tree::{event_body_hash, header_leaf_hash, leaf, Checkpoint, Hash, SealLeaf};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};

use crate::event_rows::for_each_row;
use crate::sealing::{iso, last_seal, log_id, parse_xid8, EVENT_FIELDS};
use crate::tree_store::{root_at, subtree_hashes};

/// A proof is returned as one text value, which PostgreSQL caps at 1 GB.
const MAX_PROOF_BYTES: usize = 1 << 30;

/// `audit_log.export_proof()`.
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false)]
fn audit_log_export_proof(
    since: Option<TimestampWithTimeZone>,
    until: Option<TimestampWithTimeZone>,
    actor: Option<&str>,
    entity: Option<&str>,
    action: Option<&str>,
    complete: Option<bool>,
    checkpoint: Option<&str>,
) -> String {
    let kept = checkpoint.map(parse_checkpoint);
    let complete = complete.unwrap_or(false);
    Spi::connect(|client| {
        export_proof_with(
            client,
            [since, until],
            actor,
            entity,
            action,
            complete,
            kept,
        )
    })
    .unwrap_or_else(|e| error!("audit_log.export_proof(): {e}"))
}

fn parse_checkpoint(text: &str) -> Checkpoint {
    Note::parse(text)
        .and_then(|note| Checkpoint::parse(&note.body))
        .unwrap_or_else(|message| {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("malformed checkpoint: {message}")
            );
        })
}

/// The latest tree: its size, root and checkpoint with its signatures.
struct Tree {
    size: u64,
    root: Hash,
    checkpoint: String,
    origin: String,
}

fn latest_tree(client: &SpiClient<'_>) -> SpiResult<Tree> {
    let log = log_id(client)?;
    let (size, root) = match last_seal(client)? {
        Some(seal) => (seal.tree_size as u64, seal.root),
        None => (0, audit_log_tree::Frontier::new().root()),
    };
    let checkpoint: String = client
        .select(
            "SELECT audit_log.checkpoint($1)",
            None,
            &[(size as i64).into()],
        )?
        .first()
        .get_one()?
        .unwrap_or_default();
    Ok(Tree {
        size,
        root,
        checkpoint,
        origin: format!("{}{log}", audit_log_tree::checkpoint::ORIGIN_PREFIX),
    })
}

/// The consistency proof from the auditor's checkpoint to this tree, after
/// checking that it is a state of this log at all.
fn consistency_from(
    client: &SpiClient<'_>,
    tree: &Tree,
    kept: &Checkpoint,
) -> SpiResult<Consistency> {
    let kept_origin = format!(
        "{}{}",
        audit_log_tree::checkpoint::ORIGIN_PREFIX,
        kept.log_id
    );
    if kept_origin != tree.origin {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "the checkpoint is of another log ({kept_origin}), not of {}",
                tree.origin
            )
        );
    }
    if kept.size > tree.size {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "the checkpoint is of a tree of {} leaves, this log has sealed {}",
                kept.size, tree.size
            ),
            "A checkpoint bigger than the log's tree is not one this log gave."
        );
    }
    if root_at(client, kept.size)? != kept.root {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "the checkpoint's root is not this log's at tree size {}",
                kept.size
            ),
            "Either the checkpoint was not given by this log, or the sealed trail was rewritten since: run audit_log.verify() with it."
        );
    }
    let subtrees = consistency_subtrees(kept.size, tree.size).unwrap_or_default();
    let hashes = subtree_hashes(client, &subtrees)?;
    Ok(Consistency {
        old_size: kept.size,
        hashes: hashes.into_iter().map(B64).collect(),
    })
}

fn export_proof_with(
    client: &SpiClient<'_>,
    [since, until]: [Option<TimestampWithTimeZone>; 2],
    actor: Option<&str>,
    entity: Option<&str>,
    action: Option<&str>,
    complete: bool,
    kept: Option<Checkpoint>,
) -> SpiResult<String> {
    let tree = latest_tree(client)?;
    let filters = resolve_filters(client, since, until, actor, entity, action)?;

    // The selection, in the export's order, with the leaf of each sealed
    // event: export() itself, so that the proof covers what it exports.
    let mut events: Vec<ProvenEvent> = Vec::new();
    let mut unsealed: Vec<i64> = Vec::new();
    let mut cursor = client.open_cursor(
        "SELECT x.id::bigint, l.leaf_index, l.leaf_hash, x.occurred_at \
           FROM audit_log.export($1, $2, $3, $4, $5) AS x \
           LEFT JOIN LATERAL (SELECT t.leaf_index, t.leaf_hash FROM audit_log.tree_leaves t \
                               WHERE t.event_id = x.id::bigint AND t.leaf_index < $6 \
                               LIMIT 1) AS l ON true",
        &[
            since.into(),
            until.into(),
            actor.into(),
            entity.into(),
            action.into(),
            (tree.size as i64).into(),
        ],
    );
    let mut previous: Option<(Vec<u8>, i64)> = None;
    for_each_row(&mut cursor, |row| {
        let id = row.int8(0).expect("an event has an id");
        let occurred_at = row.bytes(3).unwrap_or_default();
        // The nested loop keeps export()'s order; checked, not assumed.
        if let Some((at, previous_id)) = &previous {
            if (at.as_slice(), *previous_id) > (occurred_at, id) {
                error!("audit_log.export_proof(): the selection came out of export() order");
            }
        }
        previous = Some((occurred_at.to_vec(), id));
        match (row.int8(1), row.bytes(2)) {
            (Some(leaf), Some(hash)) => {
                let hash: Hash = hash.try_into().unwrap_or_else(|_| damaged(leaf as u64));
                events.push(ProvenEvent(id, leaf as u64, B64(hash)));
            }
            _ => unsealed.push(id),
        }
        Ok(())
    })?;
    drop(cursor);

    let mut known: Vec<(u64, Hash)> = events.iter().map(|e| (e.1, e.2 .0)).collect();
    known.sort_unstable_by_key(|(leaf, _)| *leaf);
    if known.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        damaged(known[0].0);
    }

    let stretch = if complete {
        let stretch = reveal_stretch(client, &tree, [since, until], &known)?;
        known.extend(stretch.1);
        known.sort_unstable_by_key(|(leaf, _)| *leaf);
        Some(stretch.0)
    } else {
        None
    };

    let indexes: Vec<u64> = known.iter().map(|(leaf, _)| *leaf).collect();
    let subtrees = inclusion_subtrees(tree.size, &indexes)
        .unwrap_or_else(|message| error!("audit_log.export_proof(): {message}"));
    let hashes = subtree_hashes(client, &subtrees)?;
    if !known.is_empty() && root_from_inclusion(tree.size, &known, &hashes).ok() != Some(tree.root)
    {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            "the stored tree does not give its own root: no proof can be made",
            "Run audit_log.verify()."
        );
    }

    // What the proof does not carry goes before it is written: the backend
    // holds little more than the proof.
    drop(known);
    drop(indexes);
    drop(subtrees);
    let consistency = match kept {
        Some(kept) => Some(consistency_from(client, &tree, &kept)?),
        None => None,
    };
    let proof = ExportProof {
        format: EXPORT_PROOF_FORMAT.into(),
        checkpoint: tree.checkpoint,
        filters,
        complete,
        events,
        unsealed,
        stretch,
        hashes: hashes.into_iter().map(B64).collect(),
        consistency,
    };
    // Written into a buffer sized for it, not one grown by doubling.
    let estimate = 4096
        + proof.events.len() * 72
        + proof.unsealed.len() * 12
        + proof.hashes.len() * 48
        + proof.stretch.as_ref().map_or(0, |s| s.leaves.len() * 400);
    let mut json = Vec::with_capacity(estimate.min(MAX_PROOF_BYTES));
    serde_json::to_writer(&mut json, &proof)
        .unwrap_or_else(|e| error!("audit_log.export_proof(): {e}"));
    drop(proof);
    let json = String::from_utf8(json).unwrap_or_else(|e| error!("audit_log.export_proof(): {e}"));
    if json.len() >= MAX_PROOF_BYTES {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            "the proof would exceed 1 GB",
            "Prove a shorter period, or narrow the filters."
        );
    }
    Ok(json)
}

fn damaged(leaf: u64) -> ! {
    {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("the tree is damaged around leaf {leaf}: no proof can be made"),
            "Run audit_log.verify()."
        );
    }
}

/// The filters as export() applies them (its own functions resolve them,
/// and raise the same errors for bad ones).
fn resolve_filters(
    client: &SpiClient<'_>,
    since: Option<TimestampWithTimeZone>,
    until: Option<TimestampWithTimeZone>,
    actor: Option<&str>,
    entity: Option<&str>,
    action: Option<&str>,
) -> SpiResult<Filters> {
    let row = client
        .select(
            "SELECT audit_log.check_period($1, $2), audit_log.iso_utc($1), audit_log.iso_utc($2), \
                    audit_log.normalize_action($5)",
            None,
            &[
                since.into(),
                until.into(),
                actor.into(),
                entity.into(),
                action.into(),
            ],
        )?
        .first();
    let since_text: Option<String> = row.get(2)?;
    let until_text: Option<String> = row.get(3)?;
    let action: Option<String> = row.get(4)?;
    let entity = match entity {
        None => None,
        Some(given) => {
            let mut segments = vec![];
            for row in client.select(
                "SELECT s.name, s.after_id, s.before_id \
                   FROM audit_log.entity_segments(audit_log.matching_entities($1)) AS s \
                  ORDER BY s.name, s.after_id",
                None,
                &[given.into()],
            )? {
                segments.push(EntitySegment {
                    name: row.get(1)?.unwrap_or_default(),
                    after_id: row.get(2)?.unwrap_or(0),
                    before_id: row.get(3)?.unwrap_or(i64::MAX),
                });
            }
            Some(EntityFilter {
                given: given.to_string(),
                segments,
            })
        }
    };
    Ok(Filters {
        since: since_text,
        until: until_text,
        actor: actor.map(str::to_string),
        entity,
        action,
    })
}

/// The stretch of leaves section 6.1 bounds for the period: from the last
/// seal leaf sealed at or before `since` (nothing before it can be of the
/// period: its events ended before it was sealed), through the block of the
/// first seal leaf whose horizon is at or after `until` and the seal leaf
/// that closes that block. Every leaf of it not exported is revealed: seal
/// leaves whole, events by header and body hash. Returns the stretch and the
/// revealed leaves' hashes.
fn reveal_stretch(
    client: &SpiClient<'_>,
    tree: &Tree,
    [since, until]: [Option<TimestampWithTimeZone>; 2],
    exported: &[(u64, Hash)],
) -> SpiResult<(Stretch, Vec<(u64, Hash)>)> {
    let bounds = client
        .select(
            "SELECT coalesce((SELECT s.seal_leaf_index FROM audit_log.tree_seals s \
                               WHERE s.sealed_at <= $1 ORDER BY s.tree_size DESC LIMIT 1), 0), \
                    (SELECT s.tree_size FROM audit_log.tree_seals s \
                      WHERE s.horizon >= $2 ORDER BY s.tree_size LIMIT 1)",
            None,
            &[since.into(), until.into()],
        )?
        .first();
    let first: i64 = if since.is_some() {
        bounds.get(1)?.unwrap_or(0)
    } else {
        0
    };
    let closing_seal_size: Option<i64> = bounds.get(2)?;
    let (end, open) = match closing_seal_size {
        None => (tree.size as i64, true),
        Some(size) => {
            // The seal leaf after that block closes it, or the tree ends there.
            let next: Option<i64> = client
                .select(
                    "SELECT (SELECT s.seal_leaf_index FROM audit_log.tree_seals s \
                              WHERE s.tree_size > $1 ORDER BY s.tree_size LIMIT 1)",
                    None,
                    &[size.into()],
                )?
                .first()
                .get_one()?;
            (next.map_or(tree.size as i64, |leaf| leaf + 1), false)
        }
    };

    let mut seals = std::collections::HashMap::new();
    for row in client.select(
        "SELECT seal_leaf_index, watermark::text, sealed_at, horizon, cluster \
           FROM audit_log.tree_seals WHERE seal_leaf_index >= $1 AND seal_leaf_index < $2",
        None,
        &[first.into(), end.into()],
    )? {
        let index: i64 = row.get(1)?.unwrap_or(-1);
        let sealed_at: TimestampWithTimeZone = row.get(3)?.expect("sealed_at");
        let horizon: TimestampWithTimeZone = row.get(4)?.expect("horizon");
        seals.insert(
            index,
            SealLeaf {
                watermark: parse_xid8(row.get::<String>(2)?.as_deref()),
                sealed_at: iso(sealed_at.into_inner()),
                horizon: iso(horizon.into_inner()),
                cluster: row.get(5)?.unwrap_or(0),
            },
        );
    }

    let mut revealed = Vec::new();
    let mut hashes = Vec::new();
    let query = format!(
        "SELECT {EVENT_FIELDS}, l.leaf_index, l.leaf_hash, l.event_id \
           FROM audit_log.tree_leaves l LEFT JOIN audit_log.events e ON e.id = l.event_id \
          WHERE l.leaf_index >= $1 AND l.leaf_index < $2 ORDER BY l.leaf_index"
    );
    let mut cursor = client.open_cursor(&query, &[first.into(), end.into()]);
    let mut expected = first;
    let mut size_so_far = 0usize;
    for_each_row(&mut cursor, |row| {
        let index = row.int8(14).unwrap_or(-1);
        if index != expected {
            damaged(expected as u64);
        }
        expected += 1;
        let stored: Hash = row
            .bytes(15)
            .and_then(|h| h.try_into().ok())
            .unwrap_or_else(|| damaged(index as u64));
        if exported
            .binary_search_by_key(&(index as u64), |(leaf, _)| *leaf)
            .is_ok()
        {
            return Ok(());
        }
        let (leaf, hash) = match (row.int8(16), seals.get(&index)) {
            (None, Some(seal)) => (
                RevealedLeaf::Seal {
                    leaf: index as u64,
                    watermark: seal.watermark.to_string(),
                    sealed_at: seal.sealed_at.clone(),
                    horizon: seal.horizon.clone(),
                    version: audit_log_tree::FORMAT_VERSION.into(),
                    cluster: seal.cluster.to_string(),
                },
                audit_log_tree::tree::leaf_hash(&seal.leaf_data()),
            ),
            (Some(event_id), _) => {
                let fields = row.event_fields();
                if fields[0].is_none() {
                    ereport!(
                        ERROR,
                        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                        format!("sealed event {event_id} (leaf {index}) is gone: no complete proof can be made"),
                        "Run audit_log.verify()."
                    );
                }
                let body_hash = event_body_hash(&fields);
                let header = leaf::HEADER.map(|tag| fields[usize::from(tag) - 1]);
                let text = |tag: u8| {
                    fields[usize::from(tag) - 1].map(|b| String::from_utf8_lossy(b).into_owned())
                };
                (
                    RevealedLeaf::Event {
                        leaf: index as u64,
                        id: text(1),
                        occurred_at: text(2),
                        tx_id: text(3),
                        actor: text(4),
                        db_user: text(5),
                        entity: text(8),
                        entity_id: text(9),
                        action: text(10),
                        body_hash: B64(body_hash),
                    },
                    header_leaf_hash(&header, &body_hash),
                )
            }
            (None, None) => damaged(index as u64),
        };
        if hash != stored {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                format!(
                    "leaf {index} no longer matches what it sealed: no complete proof can be made"
                ),
                "Run audit_log.verify(): it names the event."
            );
        }
        size_so_far += 400;
        if size_so_far >= MAX_PROOF_BYTES {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "a complete proof of this period would reveal {} leaves, more than 1 GB",
                    end - first
                ),
                "Prove a shorter period."
            );
        }
        hashes.push((index as u64, hash));
        revealed.push(leaf);
        Ok(())
    })?;
    if expected != end {
        damaged(expected as u64);
    }
    Ok((
        Stretch {
            first: first as u64,
            end: end as u64,
            open,
            leaves: revealed,
        },
        hashes,
    ))
}

/// `audit_log.consistency_proof()`.
#[pg_extern(sql = false)]
fn audit_log_consistency_proof(old_size: Option<i64>, new_size: Option<i64>) -> String {
    let old_size = old_size.unwrap_or_else(|| {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "old_size must not be NULL"
        );
    });
    Spi::connect(|client| {
        let tree = latest_tree(client)?;
        let new_size = new_size.unwrap_or(tree.size as i64);
        if old_size < 0 || new_size < old_size || new_size as u64 > tree.size {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "no consistency proof from tree size {old_size} to {new_size}: sizes go from 0 to the tree's {}, the old one first",
                    tree.size
                )
            );
        }
        let subtrees = consistency_subtrees(old_size as u64, new_size as u64).unwrap_or_default();
        let hashes = subtree_hashes(client, &subtrees)?;
        let proof = ConsistencyProof {
            format: CONSISTENCY_PROOF_FORMAT.into(),
            origin: tree.origin,
            old_size: old_size as u64,
            new_size: new_size as u64,
            hashes: hashes.into_iter().map(B64).collect(),
        };
        Ok(serde_json::to_string(&proof).unwrap_or_default())
    })
    .unwrap_or_else(|e: pgrx::spi::SpiError| error!("audit_log.consistency_proof(): {e}"))
}

/// `audit_log.add_signature()`: keeps the signature lines of a signed copy
/// of a checkpoint this log gave. The signatures are not checked here (the
/// database holds no one's keys): whoever reads them checks them.
#[pg_extern(sql = false)]
fn audit_log_add_signature(checkpoint: Option<&str>) {
    let text = checkpoint.unwrap_or_else(|| {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "the checkpoint must not be NULL"
        );
    });
    let note = Note::parse(text).unwrap_or_else(|message| {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            format!("malformed signed checkpoint: {message}")
        );
    });
    let signed = parse_checkpoint(&note.body);
    if note.signatures.is_empty() {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "the checkpoint carries no signature",
            "Sign it first, for instance with: audit-log sign --key NAME.key"
        );
    }
    Spi::connect_mut(|client| {
        let found = client
            .select(
                "SELECT audit_log.checkpoint_text(s.tree_size, s.root) FROM audit_log.tree_seals s \
                  WHERE s.tree_size = $1 \
                 UNION ALL \
                 SELECT audit_log.checkpoint_text(0, pg_catalog.sha256(''::bytea)) WHERE $1 = 0",
                None,
                &[(signed.size as i64).into()],
            )?
            .first();
        let ours: Option<String> = if found.is_empty() {
            None
        } else {
            found.get_one()?
        };
        if ours.as_deref() != Some(note.body.as_str()) {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "this log gave no such checkpoint (audit_log/{} at tree size {})",
                    signed.log_id, signed.size
                ),
                "add_signature() keeps signatures of this log's own checkpoints: see audit_log.seals."
            );
        }
        for signature in &note.signatures {
            client.update(
                "INSERT INTO audit_log.tree_signatures (tree_size, signature) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                None,
                &[(signed.size as i64).into(), signature.text().into()],
            )?;
        }
        Ok(())
    })
    .unwrap_or_else(|e: pgrx::spi::SpiError| error!("audit_log.add_signature(): {e}"))
}
