//! `audit_log.verify()` (API section 6.3): recompute every sealed leaf from
//! the events, the tree from the leaves, and compare with what the seals
//! stored and with the auditor's checkpoint.
//!
//! No lock: the seals are read first, and only the leaves they cover are
//! looked at, so a seal that commits meanwhile changes nothing here (the
//! events it takes look unsealed, and lie above the last watermark read).

use audit_log_tree::tree::leaf_hash;
use audit_log_tree::{event_leaf_hash, Checkpoint, Frontier, Hash, SealLeaf};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};

use crate::archives::ArchivedLeaves;
use crate::event_rows::for_each_row;
use crate::sealing::{cluster, iso, last_restored_event, log_id, parse_xid8, EVENT_FIELDS};
use crate::tree_store::is_stored_height;

struct Seal {
    tree_size: i64,
    seal_leaf_index: i64,
    watermark: u64,
    sealed_at: i64,
    horizon: i64,
    cluster: i64,
    restored_through: i64,
    root: Vec<u8>,
    frontier: Vec<u8>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Problem {
    leaf_index: Option<i64>,
    event_id: Option<i64>,
    problem: &'static str,
    detail: String,
}

/// `audit_log.verify(checkpoint text)`.
#[pg_extern(sql = false)]
#[allow(clippy::type_complexity)]
fn audit_log_verify(
    checkpoint: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(problem, String),
        name!(event_id, Option<i64>),
        name!(leaf_index, Option<i64>),
        name!(detail, String),
    ),
> {
    let checkpoint = checkpoint.map(|text| {
        // psql's backquotes and most copy-and-paste drop the last newline.
        let text = if text.ends_with('\n') {
            text.to_string()
        } else {
            format!("{text}\n")
        };
        Checkpoint::parse(&text).unwrap_or_else(|message| {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("malformed checkpoint: {message}"),
                "A checkpoint is three lines: audit_log/<log id>, the tree size, the root in base64 (signature lines may follow a blank line)."
            );
        })
    });
    let mut problems = Spi::connect(|client| verify_with(client, checkpoint.as_ref()))
        .unwrap_or_else(|e| error!("audit_log.verify(): {e}"));
    problems.sort_by(|a, b| {
        (a.leaf_index.is_none(), a.leaf_index, a.event_id, a.problem).cmp(&(
            b.leaf_index.is_none(),
            b.leaf_index,
            b.event_id,
            b.problem,
        ))
    });
    TableIterator::new(
        problems
            .into_iter()
            .map(|p| (p.problem.to_string(), p.event_id, p.leaf_index, p.detail)),
    )
}

fn read_seals(client: &SpiClient<'_>) -> SpiResult<Vec<Seal>> {
    let mut seals = Vec::new();
    for row in client.select(
        "SELECT tree_size, seal_leaf_index, watermark::text, sealed_at, horizon, cluster, \
                restored_through, root, frontier \
           FROM audit_log.tree_seals ORDER BY tree_size",
        None,
        &[],
    )? {
        seals.push(Seal {
            tree_size: row.get(1)?.unwrap_or(0),
            seal_leaf_index: row.get(2)?.unwrap_or(0),
            watermark: parse_xid8(row.get::<String>(3)?.as_deref()),
            sealed_at: row
                .get::<TimestampWithTimeZone>(4)?
                .map_or(0, |t| t.into_inner()),
            horizon: row
                .get::<TimestampWithTimeZone>(5)?
                .map_or(0, |t| t.into_inner()),
            cluster: row.get(6)?.unwrap_or(0),
            restored_through: row.get(7)?.unwrap_or(0),
            root: row.get(8)?.unwrap_or_default(),
            frontier: row.get(9)?.unwrap_or_default(),
        });
    }
    Ok(seals)
}

fn verify_with(client: &SpiClient<'_>, checkpoint: Option<&Checkpoint>) -> SpiResult<Vec<Problem>> {
    let seals = read_seals(client)?;
    let size = seals.last().map_or(0, |s| s.tree_size);
    let mut problems = Vec::new();

    if let Some(checkpoint) = checkpoint {
        let ours = log_id(client)?;
        if checkpoint.log_id != ours {
            problems.push(Problem {
                leaf_index: None,
                event_id: None,
                problem: "checkpoint",
                detail: format!(
                    "the checkpoint is of another log (audit_log/{}), this one is audit_log/{ours}",
                    checkpoint.log_id
                ),
            });
        } else if checkpoint.size > size as u64 {
            problems.push(Problem {
                leaf_index: None,
                event_id: None,
                problem: "checkpoint",
                detail: format!(
                    "the checkpoint's tree has {} leaves, this tree only {size}: sealed events are gone",
                    checkpoint.size
                ),
            });
        }
    }
    let checkpoint_to_compare = checkpoint
        .filter(|c| problems.is_empty() && c.size <= size as u64)
        .cloned();

    check_tree(client, &seals, size, checkpoint_to_compare, &mut problems)?;
    check_events(client, &seals, size, &mut problems)?;
    Ok(problems)
}

/// The leaves against the seals: contiguous, seal leaves where seals say,
/// and every stored root and frontier what the leaves give.
fn check_tree(
    client: &SpiClient<'_>,
    seals: &[Seal],
    size: i64,
    checkpoint: Option<Checkpoint>,
    problems: &mut Vec<Problem>,
) -> SpiResult<()> {
    fn tree_problem(leaf_index: Option<i64>, detail: String) -> Problem {
        Problem {
            leaf_index,
            event_id: None,
            problem: "tree",
            detail,
        }
    }
    let mut frontier = Frontier::new();
    let mut seal_iter = seals.iter().peekable();
    let mut broken = false;
    let mut checkpoint = checkpoint;
    let check_roots = |frontier: &Frontier,
                       seal_iter: &mut std::iter::Peekable<std::slice::Iter<'_, Seal>>,
                       checkpoint: &mut Option<Checkpoint>,
                       problems: &mut Vec<Problem>,
                       broken: bool| {
        let at = frontier.size() as i64;
        if let Some(c) = checkpoint.as_ref().filter(|c| c.size as i64 == at) {
            if broken || c.root != frontier.root() {
                problems.push(Problem {
                    leaf_index: None,
                    event_id: None,
                    problem: "checkpoint",
                    detail: format!(
                        "the checkpoint's root at tree size {at} is not this tree's: the sealed trail was rewritten"
                    ),
                });
            }
            *checkpoint = None;
        }
        while let Some(seal) = seal_iter.peek().filter(|s| s.tree_size <= at) {
            if !broken
                && (seal.tree_size != at
                    || seal.root != frontier.root()
                    || seal.frontier != frontier.subtrees().concat())
            {
                problems.push(tree_problem(
                    None,
                    format!(
                        "the seal at tree size {} stored a root its leaves do not give",
                        seal.tree_size
                    ),
                ));
            }
            seal_iter.next();
        }
    };
    check_roots(&frontier, &mut seal_iter, &mut checkpoint, problems, broken);

    let seal_leaves: std::collections::HashMap<i64, &Seal> =
        seals.iter().map(|s| (s.seal_leaf_index, s)).collect();
    let mut cursor = client.open_cursor(
        "SELECT leaf_index, leaf_hash, event_id FROM audit_log.tree_leaves \
          WHERE leaf_index < $1 ORDER BY leaf_index",
        &[size.into()],
    );
    let mut expected: i64 = 0;
    // The interior nodes seals stored for proofs, against the leaves.
    let with_nodes = crate::sealing::proofs_schema(client)?;
    let mut nodes: Vec<(u32, u64, Hash)> = Vec::new();
    for_each_row(&mut cursor, |row| {
        {
            let index: i64 = row.int8(0).unwrap_or(-1);
            let stored: &[u8] = row.bytes(1).unwrap_or_default();
            let event_id: Option<i64> = row.int8(2);
            if index != expected {
                if !broken {
                    problems.push(tree_problem(
                        Some(expected),
                        if index < expected {
                            format!("leaf {index} is stored twice")
                        } else {
                            format!("leaves {expected} to {} are gone", index - 1)
                        },
                    ));
                }
                broken = true;
            }
            expected = index + 1;
            match (seal_leaves.get(&index), event_id) {
                (Some(seal), None) => {
                    let recomputed = leaf_hash(
                        &SealLeaf {
                            watermark: seal.watermark,
                            sealed_at: iso(seal.sealed_at),
                            horizon: iso(seal.horizon),
                            cluster: seal.cluster,
                        }
                        .leaf_data(),
                    );
                    if recomputed.as_slice() != stored {
                        problems.push(Problem {
                            leaf_index: Some(index),
                            event_id: None,
                            problem: "modified",
                            detail: format!(
                                "the seal leaf of the seal at tree size {} no longer matches it",
                                seal.tree_size
                            ),
                        });
                    }
                }
                (Some(_), Some(id)) => problems.push(tree_problem(
                    Some(index),
                    format!("leaf {index} should be a seal leaf, it names event {id}"),
                )),
                (None, None) => problems.push(tree_problem(
                    Some(index),
                    format!("leaf {index} names no event and no seal"),
                )),
                (None, Some(_)) => {}
            }
            let hash: Hash = stored.try_into().unwrap_or([0; 32]);
            if !broken {
                frontier.push_with(hash, |height, index, node| {
                    if with_nodes && is_stored_height(height) {
                        nodes.push((height, index, *node));
                    }
                });
                check_roots(&frontier, &mut seal_iter, &mut checkpoint, problems, broken);
                if nodes.len() >= 10_000 {
                    check_nodes(client, &nodes, problems)?;
                    nodes.clear();
                }
            }
        }
        Ok(())
    })?;
    if !broken {
        check_nodes(client, &nodes, problems)?;
    }
    if expected != size && !broken {
        problems.push(tree_problem(
            Some(expected),
            format!("leaves {expected} to {} are gone", size - 1),
        ));
        broken = true;
    }
    if broken {
        let at = frontier.size();
        let mut rest = seal_iter;
        while rest.next().is_some() {}
        if let Some(c) = checkpoint.take().filter(|c| c.size >= at) {
            problems.push(Problem {
                leaf_index: None,
                event_id: None,
                problem: "checkpoint",
                detail: format!(
                    "the tree is damaged before tree size {}: the checkpoint cannot be this tree's",
                    c.size
                ),
            });
        }
    }
    Ok(())
}

/// Stored interior nodes (where there are: a tree sealed before 0.4.0 may
/// lack some until its next seal) against the ones the leaves give.
fn check_nodes(
    client: &SpiClient<'_>,
    computed: &[(u32, u64, Hash)],
    problems: &mut Vec<Problem>,
) -> SpiResult<()> {
    if computed.is_empty() {
        return Ok(());
    }
    let heights: Vec<i16> = computed.iter().map(|(h, _, _)| *h as i16).collect();
    let indexes: Vec<i64> = computed.iter().map(|(_, i, _)| *i as i64).collect();
    let expected: std::collections::HashMap<(i16, i64), Hash> = computed
        .iter()
        .map(|(h, i, hash)| ((*h as i16, *i as i64), *hash))
        .collect();
    let stored_nodes = client.select(
        "SELECT n.height, n.node_index, n.hash \
           FROM unnest($1::int2[], $2::int8[]) AS k(height, node_index) \
           JOIN audit_log.tree_nodes n ON n.height = k.height AND n.node_index = k.node_index",
        None,
        &[heights.into(), indexes.into()],
    )?;
    for row in stored_nodes {
        let height: i16 = row.get(1)?.unwrap_or(0);
        let index: i64 = row.get(2)?.unwrap_or(0);
        let stored: Vec<u8> = row.get(3)?.unwrap_or_default();
        if expected.get(&(height, index)).map(|h| h.as_slice()) != Some(stored.as_slice()) {
            problems.push(Problem {
                leaf_index: Some(index << height),
                event_id: None,
                problem: "tree",
                detail: format!(
                    "the stored node of height {height} over leaves {} to {} is not what they give",
                    index << height,
                    ((index + 1) << height) - 1
                ),
            });
        }
    }
    // SPI keeps every result until the function returns (pgrx frees none):
    // one of these per 10,000 stored nodes would add up to hundreds of MB
    // over a trail of millions of events. Nothing has run through SPI since.
    // SAFETY: SPI_tuptable is this select's result, no longer read.
    unsafe { pg_sys::SPI_freetuptable(pg_sys::SPI_tuptable) };
    Ok(())
}

/// Every event against its leaf: recomputed, present, in order in time; and
/// every event without a leaf that a seal should have taken.
fn check_events(
    client: &SpiClient<'_>,
    seals: &[Seal],
    size: i64,
    problems: &mut Vec<Problem>,
) -> SpiResult<()> {
    // The time no event of a block may precede: the latest horizon of the
    // seals before it. Blocks start at their seal leaves.
    let mut floors: Vec<(i64, i64)> = Vec::with_capacity(seals.len());
    let mut floor = i64::MIN;
    for seal in seals {
        floors.push((seal.seal_leaf_index, floor));
        floor = floor.max(seal.horizon);
    }
    let floor_at = |leaf_index: i64| -> i64 {
        match floors.partition_point(|(start, _)| *start <= leaf_index) {
            0 => i64::MIN,
            n => floors[n - 1].1,
        }
    };

    // Which unsealed events a seal should have taken (see src/sealing.rs).
    let last = seals.last();
    let judged_through: i64 = match last {
        Some(last) if last.cluster != cluster() => last_restored_event(client)?.unwrap_or(i64::MAX),
        _ => i64::MAX,
    };

    let query = format!(
        "SELECT {EVENT_FIELDS}, e.id, e.tx_id, e.occurred_at, \
                l.leaf_index, l.leaf_hash, l.event_id \
           FROM audit_log.events e \
           FULL JOIN (SELECT * FROM audit_log.tree_leaves \
                       WHERE leaf_index < $1 AND event_id IS NOT NULL) l ON l.event_id = e.id"
    );
    // Leaves whose events left with an archive: their ARCHIVE event accounts for them.
    let archived = ArchivedLeaves::load(client)?;
    let mut cursor = client.open_cursor(query.as_str(), &[size.into()]);
    for_each_row(&mut cursor, |row| {
        let id = row.int8(14);
        let leaf_index = row.int8(17);
        let Some(id) = id else {
            if leaf_index.is_some_and(|leaf| archived.archive_of(leaf).is_some()) {
                return Ok(());
            }
            problems.push(Problem {
                leaf_index,
                event_id: row.int8(19),
                problem: "missing",
                detail: "a sealed event is gone from audit_log.events".into(),
            });
            return Ok(());
        };
        let Some(leaf_index) = leaf_index else {
            let tx_id = row.int8(15).unwrap_or(0) as u64;
            if let Some(last) = last {
                if id <= judged_through && (id <= last.restored_through || tx_id < last.watermark) {
                    problems.push(Problem {
                        leaf_index: None,
                        event_id: Some(id),
                        problem: "inserted",
                        detail: format!(
                            "an event of transaction {tx_id}, below watermark {} of the seal at tree size {}, that no seal took",
                            last.watermark, last.tree_size
                        ),
                    });
                }
            }
            return Ok(());
        };
        if event_leaf_hash(&row.event_fields()).as_slice() != row.bytes(18).unwrap_or_default() {
            problems.push(Problem {
                leaf_index: Some(leaf_index),
                event_id: Some(id),
                problem: "modified",
                detail: "the event no longer matches its sealed leaf".into(),
            });
        }
        let occurred_at = row.int8(16).unwrap_or(i64::MIN);
        let floor = floor_at(leaf_index);
        if occurred_at < floor {
            problems.push(Problem {
                leaf_index: Some(leaf_index),
                event_id: Some(id),
                problem: "horizon",
                detail: format!(
                    "occurred at {}, before {}, the horizon of an earlier seal",
                    iso(occurred_at),
                    iso(floor)
                ),
            });
        }
        Ok(())
    })?;
    drop(cursor);

    // Two events under one id: one of them was put there by hand. Each
    // partition's id index is unique, so only neighbours in id order across
    // partitions can share one: compared as they stream by (a GROUP BY held
    // a hash table of every id, 14 MB of 200,000 events).
    for row in client.select(
        "SELECT DISTINCT d.id \
           FROM (SELECT e.id, lag(e.id) OVER (ORDER BY e.id) AS previous FROM audit_log.events e) AS d \
          WHERE d.id = d.previous",
        None,
        &[],
    )? {
        problems.push(Problem {
            leaf_index: None,
            event_id: row.get(1)?,
            problem: "inserted",
            detail: "several events have this id".into(),
        });
    }
    Ok(())
}
