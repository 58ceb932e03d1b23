//! Proofs for auditors (API section 7): `export_proof()`,
//! `consistency_proof()` and `add_signature()`.
//!
//! A proof is built from what the tree stores (leaf hashes, interior nodes,
//! seals) and checked against the stored root before it is returned: a
//! damaged tree gives an error here, never a proof that fails in the
//! auditor's hands for a reason the database could have said.

use audit_log_tree::format::{
    Consistency, ConsistencyProof, EntityFilter, EntitySegment, ExportProofWriter, Filters,
    RevealedLeaf, B64, CONSISTENCY_PROOF_FORMAT,
};
use audit_log_tree::note::Note;
use audit_log_tree::proof::{consistency_subtrees, inclusion_subtrees_of, root_from_inclusion_of};
use audit_log_tree::{event_body_hash, header_leaf_hash, leaf, Checkpoint, Hash, SealLeaf};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::fcinfo::pg_getarg;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};

use crate::archives::ArchivedLeaves;
use crate::event_rows::for_each_row;
use crate::ffi::function_info_v1;
use crate::sealing::{iso, last_seal, log_id, parse_xid8, EVENT_FIELDS};
use crate::text::TextBuilder;
use crate::tree_store::{root_at, subtree_hashes};

/// A proof is returned as one text value, which PostgreSQL caps at 1 GB.
const MAX_PROOF_BYTES: usize = 1 << 30;

function_info_v1!(pg_finfo_audit_log_export_proof_wrapper);

/// `audit_log.export_proof()`. A plain fmgr function rather than a
/// `#[pg_extern]`: the proof is written as the rows are read, straight into
/// the text value returned (`TextBuilder`), so that the backend holds the
/// proof once and, besides it, a few bytes per proven leaf.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_export_proof_wrapper(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let since: Option<TimestampWithTimeZone> = pg_getarg(fcinfo, 0);
    let until: Option<TimestampWithTimeZone> = pg_getarg(fcinfo, 1);
    let actor: Option<&str> = pg_getarg(fcinfo, 2);
    let entity: Option<&str> = pg_getarg(fcinfo, 3);
    let action: Option<&str> = pg_getarg(fcinfo, 4);
    let complete: Option<bool> = pg_getarg(fcinfo, 5);
    let checkpoint: Option<&str> = pg_getarg(fcinfo, 6);
    let kept = checkpoint.map(parse_checkpoint);
    let complete = complete.unwrap_or(false);
    // In the function's own memory context: SPI's goes at Spi::connect's end.
    let out = TextBuilder::new(1 << 16, MAX_PROOF_BYTES);
    Spi::connect(|client| {
        export_proof_with(
            client,
            [since, until],
            actor,
            entity,
            action,
            complete,
            kept,
            out,
        )
    })
    .unwrap_or_else(|e| error!("audit_log.export_proof(): {e}"))
    .into_datum()
}

fn too_big<T>(_: std::io::Error) -> T {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        "the proof would exceed 1 GB",
        "Prove a shorter period, or narrow the filters."
    );
}

/// A leaf the proof includes, in 16 bytes: its index, and where its hash is,
/// the offset of its base64 text in the proof written so far (an exported
/// event), or with `REVEALED` its place among the revealed leaves' hashes.
#[derive(Clone, Copy)]
struct KnownLeaf {
    leaf: u64,
    at: u32,
}

const REVEALED: u32 = 1 << 31;

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

#[allow(clippy::too_many_arguments)]
fn export_proof_with(
    client: &SpiClient<'_>,
    [since, until]: [Option<TimestampWithTimeZone>; 2],
    actor: Option<&str>,
    entity: Option<&str>,
    action: Option<&str>,
    complete: bool,
    kept: Option<Checkpoint>,
    out: TextBuilder,
) -> SpiResult<TextBuilder> {
    let tree = latest_tree(client)?;
    let filters = resolve_filters(client, since, until, actor, entity, action)?;
    let mut proof =
        ExportProofWriter::begin(out, &tree.checkpoint, &filters, complete).unwrap_or_else(too_big);

    // The selection, in the export's order, with the leaf of each sealed
    // event: export() itself, so that the proof covers what it exports.
    let mut known: Vec<KnownLeaf> = Vec::new();
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
        if let Some((at, previous_id)) = &mut previous {
            if (at.as_slice(), *previous_id) > (occurred_at, id) {
                error!("audit_log.export_proof(): the selection came out of export() order");
            }
            at.clear();
            at.extend_from_slice(occurred_at);
            *previous_id = id;
        } else {
            previous = Some((occurred_at.to_vec(), id));
        }
        match (row.int8(1), row.bytes(2)) {
            (Some(leaf), Some(hash)) => {
                let hash: Hash = hash.try_into().unwrap_or_else(|_| damaged(leaf as u64));
                let at = proof.event(id, leaf as u64, &hash).unwrap_or_else(too_big);
                known.push(KnownLeaf {
                    leaf: leaf as u64,
                    at: at as u32,
                });
            }
            _ => unsealed.push(id),
        }
        Ok(())
    })?;
    drop(cursor);
    proof.unsealed(&unsealed).unwrap_or_else(too_big);
    drop(unsealed);

    known.sort_unstable_by_key(|k| k.leaf);
    if let Some(pair) = known.windows(2).find(|pair| pair[0].leaf == pair[1].leaf) {
        damaged(pair[0].leaf);
    }

    let mut revealed: Vec<Hash> = Vec::new();
    if complete {
        refuse_archived_period(client, [since, until])?;
        for (leaf, hash) in reveal_stretch(client, &tree, [since, until], &known, &mut proof)? {
            known.push(KnownLeaf {
                leaf,
                at: REVEALED | revealed.len() as u32,
            });
            revealed.push(hash);
        }
        known.sort_unstable_by_key(|k| k.leaf);
    }

    let subtrees = inclusion_subtrees_of(tree.size, &known, |k| k.leaf)
        .unwrap_or_else(|message| error!("audit_log.export_proof(): {message}"));
    let hashes = subtree_hashes(client, &subtrees)?;
    drop(subtrees);
    if !known.is_empty() {
        let written = proof.get_ref().as_bytes();
        let hash_of = |k: &KnownLeaf| {
            if k.at & REVEALED != 0 {
                revealed[(k.at & !REVEALED) as usize]
            } else {
                let at = k.at as usize;
                written
                    .get(at..at + 44)
                    .and_then(B64::decode)
                    .map_or([0; 32], |hash| hash.0)
            }
        };
        if root_from_inclusion_of(tree.size, &known, |k| k.leaf, hash_of, &hashes).ok()
            != Some(tree.root)
        {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                "the stored tree does not give its own root: no proof can be made",
                "Run audit_log.verify()."
            );
        }
    }
    drop(known);
    drop(revealed);

    let consistency = match kept {
        Some(kept) => Some(consistency_from(client, &tree, &kept)?),
        None => None,
    };
    Ok(proof
        .finish(&hashes, consistency.as_ref())
        .unwrap_or_else(too_big))
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

/// A complete proof of a period that overlaps an archived partition would
/// have to show that partition's events, which left the log: refused,
/// naming the archive that proves them.
fn refuse_archived_period(
    client: &SpiClient<'_>,
    [since, until]: [Option<TimestampWithTimeZone>; 2],
) -> SpiResult<()> {
    let overlapping = client.select(
        "SELECT e.entity_id ->> 'partition', coalesce(e.new_values ->> 'from', '-infinity'), \
                e.new_values ->> 'to' \
           FROM audit_log.events e \
          WHERE e.action = 'ARCHIVE' \
            AND coalesce((e.new_values ->> 'from')::timestamptz, '-infinity') < coalesce($2, 'infinity') \
            AND (e.new_values ->> 'to')::timestamptz > coalesce($1, '-infinity') \
          ORDER BY e.id LIMIT 1",
        None,
        &[since.into(), until.into()],
    )?;
    if let Some(row) = overlapping.into_iter().next() {
        let partition: String = row.get(1)?.unwrap_or_default();
        let from: String = row.get(2)?.unwrap_or_default();
        let to: String = row.get(3)?.unwrap_or_default();
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "a complete proof of this period needs the events archived with partition {partition} ({from} to {to})"
            ),
            "Its archive (the .csv.zst, .proof and .manifest.json that audit-log archive wrote) proves them complete; prove only periods after it here."
        );
    }
    Ok(())
}

/// The stretch of leaves section 6.1 bounds for the period: from the last
/// seal leaf sealed at or before `since` (nothing before it can be of the
/// period: its events ended before it was sealed), through the block of the
/// first seal leaf whose horizon is at or after `until` and the seal leaf
/// that closes that block. Every leaf of it not exported is revealed (seal
/// leaves whole, events by header and body hash) into the proof. Returns the
/// revealed leaves' hashes.
fn reveal_stretch(
    client: &SpiClient<'_>,
    tree: &Tree,
    [since, until]: [Option<TimestampWithTimeZone>; 2],
    exported: &[KnownLeaf],
    proof: &mut ExportProofWriter<TextBuilder>,
) -> SpiResult<Vec<(u64, Hash)>> {
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

    proof
        .stretch_begin(first as u64, end as u64, open)
        .unwrap_or_else(too_big);
    let mut hashes = Vec::new();
    let query = format!(
        "SELECT {EVENT_FIELDS}, l.leaf_index, l.leaf_hash, l.event_id, \
                h.header[1], h.header[2], h.header[3], h.header[4], \
                h.header[5], h.header[6], h.header[7], h.header[8], h.body_hash \
           FROM audit_log.tree_leaves l LEFT JOIN audit_log.events e ON e.id = l.event_id \
           LEFT JOIN audit_log.archived_headers h ON h.leaf_index = l.leaf_index \
          WHERE l.leaf_index >= $1 AND l.leaf_index < $2 ORDER BY l.leaf_index"
    );
    let archived = ArchivedLeaves::load(client)?;
    let mut cursor = client.open_cursor(&query, &[first.into(), end.into()]);
    let mut expected = first;
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
            .binary_search_by_key(&(index as u64), |k| k.leaf)
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
                let kept_body: Option<Hash> = row.bytes(25).and_then(|b| b.try_into().ok());
                let (header, body_hash): ([Option<&[u8]>; 8], Hash) = if fields[0].is_some() {
                    (
                        leaf::HEADER.map(|tag| fields[usize::from(tag) - 1]),
                        event_body_hash(&fields),
                    )
                } else if let Some(body_hash) = kept_body {
                    // Archived, its header kept for the periods after its month.
                    (std::array::from_fn(|i| row.bytes(17 + i)), body_hash)
                } else if let Some(partition) = archived.archive_of(index) {
                    ereport!(
                        ERROR,
                        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        format!(
                            "a complete proof of this period needs event {event_id} (leaf {index}), archived with partition {partition}"
                        ),
                        "Its archive (the .csv.zst, .proof and .manifest.json that audit-log archive wrote) proves that period; prove only periods after it here."
                    );
                } else {
                    ereport!(
                        ERROR,
                        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                        format!("sealed event {event_id} (leaf {index}) is gone: no complete proof can be made"),
                        "Run audit_log.verify()."
                    );
                };
                let text = |i: usize| header[i].map(|b| String::from_utf8_lossy(b).into_owned());
                (
                    RevealedLeaf::Event {
                        leaf: index as u64,
                        id: text(0),
                        occurred_at: text(1),
                        tx_id: text(2),
                        actor: text(3),
                        db_user: text(4),
                        entity: text(5),
                        entity_id: text(6),
                        action: text(7),
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
        proof.stretch_leaf(&leaf).unwrap_or_else(too_big);
        hashes.push((index as u64, hash));
        Ok(())
    })?;
    if expected != end {
        damaged(expected as u64);
    }
    proof.stretch_end().unwrap_or_else(too_big);
    Ok(hashes)
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
