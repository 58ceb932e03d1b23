//! Reading the stored tree back for proofs: the hash of any subtree from the
//! stored leaves and interior nodes.
//!
//! A proof about last week's events on a trail of years needs the hashes of
//! huge subtrees around them. Rehashing their leaves would read the whole
//! tree for every proof, so seals also store the interior nodes whose height
//! is a multiple of `STORED_EVERY` (one row per 16 leaves, all told): any
//! perfect subtree's hash then comes from at most 2^(STORED_EVERY - 1)
//! stored hashes. Nodes missing (a trail sealed before 0.4.0) are recomputed
//! from the level below, down to the leaves, so a proof never depends on
//! them being there.

use std::collections::HashMap;

use audit_log_tree::proof::{combine, perfect_pieces, Subtree};
use audit_log_tree::tree::node_hash;
use audit_log_tree::Hash;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};

/// Interior nodes whose height is a multiple of this are stored.
pub const STORED_EVERY: u32 = 4;

/// Whether a seal stores the node of this height.
pub fn is_stored_height(height: u32) -> bool {
    height > 0 && height.is_multiple_of(STORED_EVERY)
}

/// Appends interior nodes (height, index, hash) as one statement; like the
/// leaves, their hashes travel as one bytea.
pub fn insert_nodes(client: &mut SpiClient<'_>, nodes: &[(u32, u64, Hash)]) -> SpiResult<()> {
    for batch in nodes.chunks(10_000) {
        let heights: Vec<i16> = batch.iter().map(|(h, _, _)| *h as i16).collect();
        let indexes: Vec<i64> = batch.iter().map(|(_, i, _)| *i as i64).collect();
        let hashes: Vec<u8> = batch.iter().flat_map(|(_, _, hash)| *hash).collect();
        client.update(
            "INSERT INTO audit_log.tree_nodes (height, node_index, hash) \
             SELECT $1[i + 1], $2[i + 1], substring($3 FROM i * 32 + 1 FOR 32) \
               FROM generate_series(0, $4::integer - 1) AS i \
             ON CONFLICT DO NOTHING",
            None,
            &[
                heights.into(),
                indexes.into(),
                hashes.into(),
                (batch.len() as i64).into(),
            ],
        )?;
    }
    Ok(())
}

/// Subtrees hashed at a time: the stored hashes read for them (up to
/// 2^(STORED_EVERY - 1) each) are kept only while they are combined.
const SUBTREES_AT_A_TIME: usize = 4096;

/// The RFC 9162 hashes of these subtrees, in order.
pub fn subtree_hashes(client: &SpiClient<'_>, subtrees: &[Subtree]) -> SpiResult<Vec<Hash>> {
    let mut hashes = Vec::with_capacity(subtrees.len());
    for batch in subtrees.chunks(SUBTREES_AT_A_TIME) {
        hashes.extend(batch_hashes(client, batch)?);
    }
    Ok(hashes)
}

fn batch_hashes(client: &SpiClient<'_>, subtrees: &[Subtree]) -> SpiResult<Vec<Hash>> {
    let pieces: Vec<Vec<(u32, u64)>> = subtrees
        .iter()
        .map(|&(start, end)| perfect_pieces(start, end))
        .collect();
    let all: Vec<(u32, u64)> = pieces.iter().flatten().copied().collect();
    let hashes = perfect_hashes(client, &all, u32::MAX)?;
    let mut next = hashes.into_iter();
    Ok(pieces
        .iter()
        .map(|p| {
            let these: Vec<Hash> = next.by_ref().take(p.len()).collect();
            combine(&these)
        })
        .collect())
}

/// The root of the tree's first `size` leaves.
pub fn root_at(client: &SpiClient<'_>, size: u64) -> SpiResult<Hash> {
    if size == 0 {
        return Ok(audit_log_tree::Frontier::new().root());
    }
    Ok(subtree_hashes(client, &[(0, size)])?[0])
}

/// Hashes of perfect subtrees (height, index), each from the stored level
/// just below or at its height (no higher than `ceiling`).
fn perfect_hashes(
    client: &SpiClient<'_>,
    pieces: &[(u32, u64)],
    ceiling: u32,
) -> SpiResult<Vec<Hash>> {
    // Which stored level each piece is built from, and the range there.
    let base_of = |height: u32| (height / STORED_EVERY * STORED_EVERY).min(ceiling);
    let mut wanted: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
    for &(height, index) in pieces {
        let base = base_of(height);
        let width = height - base;
        wanted
            .entry(base)
            .or_default()
            .push((index << width, (index + 1) << width));
    }
    let mut found: HashMap<(u32, u64), Hash> = HashMap::new();
    for (&base, ranges) in &wanted {
        let mut rows = read_level(client, base, ranges)?;
        // Stored nodes missing at this level: from the level below.
        if base > 0 {
            let mut missing = vec![];
            for &(start, end) in ranges {
                for index in start..end {
                    if !rows.contains_key(&index) {
                        missing.push((base, index));
                    }
                }
            }
            missing.sort_unstable();
            missing.dedup();
            if !missing.is_empty() {
                let computed = perfect_hashes(client, &missing, base - STORED_EVERY)?;
                for ((_, index), hash) in missing.into_iter().zip(computed) {
                    rows.insert(index, hash);
                }
            }
        }
        for (index, hash) in rows {
            found.insert((base, index), hash);
        }
    }
    pieces
        .iter()
        .map(|&(height, index)| {
            let base = base_of(height);
            let width = height - base;
            let mut level: Vec<Hash> = ((index << width)..((index + 1) << width))
                .map(|i| {
                    found.get(&(base, i)).copied().ok_or(i).unwrap_or_else(|i| {
                        ereport!(
                            ERROR,
                            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                            format!(
                                "audit_log.tree_leaves has no leaf {}: the tree is damaged",
                                i
                            ),
                            "Run audit_log.verify()."
                        );
                    })
                })
                .collect();
            while level.len() > 1 {
                level = level
                    .chunks(2)
                    .map(|pair| node_hash(&pair[0], &pair[1]))
                    .collect();
            }
            Ok(level[0])
        })
        .collect()
}

/// The stored hashes of one level (0: the leaves) in these index ranges.
/// Asked for by index (`= ANY`), never by range: a join on ranges is planned
/// for unknown ranges, and for a few of them may scan a whole level.
fn read_level(
    client: &SpiClient<'_>,
    height: u32,
    ranges: &[(u64, u64)],
) -> SpiResult<HashMap<u64, Hash>> {
    let mut indexes: Vec<i64> = ranges
        .iter()
        .flat_map(|&(start, end)| (start as i64)..(end as i64))
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    let query = if height == 0 {
        "SELECT l.leaf_index, l.leaf_hash FROM audit_log.tree_leaves l \
          WHERE l.leaf_index = ANY ($1::bigint[])"
    } else {
        "SELECT n.node_index, n.hash FROM audit_log.tree_nodes n \
          WHERE n.height = $2 AND n.node_index = ANY ($1::bigint[])"
    };
    let mut out = HashMap::with_capacity(indexes.len());
    let mut cursor = client.open_cursor(query, &[indexes.into(), (height as i16).into()]);
    crate::event_rows::for_each_row(&mut cursor, |row| {
        if let (Some(index), Some(hash)) = (row.int8(0), row.bytes(1)) {
            if let Ok(hash) = Hash::try_from(hash) {
                out.insert(index as u64, hash);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Stores the nodes a tree sealed before 0.4.0 lacks, from its leaves: the
/// first seal after the update reads the tree once, so that no proof has to.
pub fn fill_missing_nodes(client: &mut SpiClient<'_>, size: u64) -> SpiResult<()> {
    // Seals store every node as it completes, so nodes can only be missing
    // from the start of the tree: its first and last lowest nodes tell.
    let lowest = size >> STORED_EVERY;
    if lowest == 0 {
        return Ok(());
    }
    let present: i64 = client
        .select(
            "SELECT count(*) FROM audit_log.tree_nodes WHERE height = $1 AND node_index IN (0, $2)",
            None,
            &[(STORED_EVERY as i16).into(), (lowest as i64 - 1).into()],
        )?
        .first()
        .get_one()?
        .unwrap_or(0);
    if present == if lowest == 1 { 1 } else { 2 } {
        return Ok(());
    }
    let mut frontier = audit_log_tree::Frontier::new();
    let mut nodes = Vec::new();
    {
        let mut cursor = client.open_cursor(
            "SELECT leaf_hash FROM audit_log.tree_leaves WHERE leaf_index < $1 ORDER BY leaf_index",
            &[(size as i64).into()],
        );
        crate::event_rows::for_each_row(&mut cursor, |row| {
            let hash: Hash = row
                .bytes(0)
                .and_then(|h| h.try_into().ok())
                .unwrap_or([0; 32]);
            frontier.push_with(hash, |height, index, node| {
                if is_stored_height(height) {
                    nodes.push((height, index, *node));
                }
            });
            Ok(())
        })?;
    }
    if frontier.size() != size {
        {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                format!(
                    "audit_log.tree_leaves holds {} leaves below {size}",
                    frontier.size()
                ),
                "Run audit_log.verify()."
            );
        }
    }
    insert_nodes(client, &nodes)
}
