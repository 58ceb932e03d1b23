//! `audit_log.seal()` and `audit_log.seal_status()` (API section 6): append
//! the events of ended transactions to the tree, in `(tx_id, id)` order,
//! after a seal leaf that says when and up to where.
//!
//! Order is everything here. Event ids are not commit order, so a seal takes
//! only what lies below the watermark W, the oldest transaction id still
//! running: everything below it has ended, so no later seal will ever find
//! an event there that this one missed. Within one cluster's generation the
//! events of a seal are exactly those with `tx_id` in `[previous W, W)`,
//! which one index range gives without looking at what is already sealed.

use std::cell::Cell;

use audit_log_tree::{event_leaf_hash, Checkpoint, Frontier, Hash, SealLeaf};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};

use crate::event_rows::for_each_row;
use crate::reading::format_utc_micros;
use crate::tree_store::{fill_missing_nodes, insert_nodes, is_stored_height};

thread_local! {
    static SEALING: Cell<bool> = const { Cell::new(false) };
}

/// Rows fetched from the events at a time, and leaves written per INSERT.
const BATCH: i64 = 10_000;

/// The 14 text fields of an event exactly as `export()` writes them (keep in
/// step with sql/export.sql; the test vectors recompute leaves from export()).
pub const EVENT_FIELDS: &str = "e.id::text, audit_log.iso_utc(e.occurred_at), e.tx_id::text, \
     e.actor, e.db_user, e.application_name, e.client_addr::text, e.entity, \
     e.entity_id::text, e.action, audit_log.json_text_array(e.changed_fields), \
     e.old_values::text, e.new_values::text, e.context::text";

/// `audit_log.sealing()`: whether this backend is appending to the tree, for
/// the guard that refuses every other INSERT into it.
#[pg_extern(sql = false)]
fn audit_log_sealing() -> bool {
    SEALING.with(Cell::get)
}

/// The cluster's system identifier as `pg_control_system()` prints it.
pub fn cluster() -> i64 {
    // SAFETY: reads a value set at startup.
    unsafe { pg_sys::GetSystemIdentifier() as i64 }
}

/// A time written like `occurred_at` in `export()`.
pub fn iso(at: i64) -> String {
    match at {
        i64::MIN => "-infinity".into(),
        i64::MAX => "infinity".into(),
        _ => format_utc_micros(at),
    }
}

/// The last seal: where the tree is, and the generation it belongs to.
pub struct LastSeal {
    pub tree_size: i64,
    pub watermark: u64,
    pub cluster: i64,
    pub restored_through: i64,
    pub frontier: Frontier,
    pub root: Hash,
}

pub fn last_seal(client: &SpiClient<'_>) -> SpiResult<Option<LastSeal>> {
    let rows = client.select(
        "SELECT tree_size, watermark::text, cluster, restored_through, frontier, root \
           FROM audit_log.tree_seals ORDER BY tree_size DESC LIMIT 1",
        None,
        &[],
    )?;
    if let Some(row) = rows.into_iter().next() {
        let tree_size: i64 = row.get(1)?.unwrap_or(0);
        let frontier_bytes: Vec<u8> = row.get(5)?.unwrap_or_default();
        let subtrees: Vec<Hash> = frontier_bytes
            .chunks(32)
            .filter_map(|chunk| chunk.try_into().ok())
            .collect();
        let frontier = Frontier::from_parts(tree_size as u64, subtrees).unwrap_or_else(|message| {
            error!("audit_log.tree_seals holds a damaged frontier at tree size {tree_size}: {message}; run audit_log.verify()")
        });
        let root: Vec<u8> = row.get(6)?.unwrap_or_default();
        return Ok(Some(LastSeal {
            tree_size,
            watermark: parse_xid8(row.get::<String>(2)?.as_deref()),
            cluster: row.get(3)?.unwrap_or(0),
            restored_through: row.get(4)?.unwrap_or(0),
            frontier,
            root: root.try_into().unwrap_or([0; 32]),
        }));
    }
    Ok(None)
}

pub fn parse_xid8(text: Option<&str>) -> u64 {
    text.and_then(|t| t.parse().ok()).unwrap_or(0)
}

pub fn log_id(client: &SpiClient<'_>) -> SpiResult<String> {
    let id: Option<String> = client
        .select(
            "SELECT (SELECT log_id::text FROM audit_log.log_identity LIMIT 1)",
            None,
            &[],
        )?
        .first()
        .get_one()?;
    Ok(id.unwrap_or_else(|| {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            "audit_log.log_identity is empty: the log has no id"
        );
    }))
}

pub fn checkpoint_text(log_id: String, size: i64, root: Hash) -> String {
    Checkpoint {
        log_id,
        size: size as u64,
        root,
    }
    .text()
}

fn refuse_unless_sealable() {
    // SAFETY: plain reads of backend state.
    unsafe {
        if pg_sys::GetDatabaseEncoding() != pg_sys::pg_enc::PG_UTF8 as i32 {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "sealing requires a UTF8 database",
                "Leaves hash the export's text as UTF-8; this database's encoding is not UTF8."
            );
        }
        if pg_sys::RecoveryInProgress() {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
                "cannot seal on a standby",
                "Seal on the primary: the tree it writes replicates here."
            );
        }
        if pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_TRANSACTION_STATE,
                "audit_log.seal() cannot run at REPEATABLE READ or SERIALIZABLE",
                "A seal needs fresh snapshots: call it at READ COMMITTED, outside a transaction block if you can."
            );
        }
        if pg_sys::GetTopTransactionIdIfAny() != pg_sys::InvalidTransactionId {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_TRANSACTION_STATE,
                "audit_log.seal() cannot run in a transaction that has already written",
                "Its own events could never be sealed by it: call seal() in a transaction of its own."
            );
        }
    }
}

/// What the backends of this database say about the time no later event can
/// precede, read after `sealed_at` and before the snapshot.
struct Activity {
    /// A transaction of this database is prepared, or some backend's start
    /// times cannot be read: nothing can be promised.
    unbounded: bool,
    /// The earliest transaction or top-level statement start of a backend of
    /// this database inside a transaction.
    earliest: Option<i64>,
}

fn read_activity(client: &mut SpiClient<'_>) -> SpiResult<Activity> {
    client.update("SELECT pg_catalog.pg_stat_clear_snapshot()", None, &[])?;
    let row = client
        .update(
            "SELECT coalesce(bool_or(a.state = 'disabled'), false) \
                    OR EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts p \
                                WHERE p.database = pg_catalog.current_database()), \
                    min(LEAST(a.xact_start, a.query_start)) FILTER (WHERE a.xact_start IS NOT NULL) \
               FROM pg_catalog.pg_stat_activity a \
              WHERE a.datid = (SELECT d.oid FROM pg_catalog.pg_database d \
                                WHERE d.datname = pg_catalog.current_database())",
            None,
            &[],
        )?
        .first();
    let (unbounded, earliest) = row.get_two::<bool, TimestampWithTimeZone>()?;
    Ok(Activity {
        unbounded: unbounded.unwrap_or(true),
        earliest: earliest.map(|t| t.into_inner()),
    })
}

/// Which events a seal may take, beyond `tx_id < W`.
struct Generation {
    /// The last watermark used before this seal (in its generation, or the
    /// previous generation's last one when this seal starts a new one).
    previous_watermark: u64,
    /// Events with an id up to here were restored: sealed at a generation's
    /// start whatever their transaction ids, never after.
    restored_through: i64,
    /// This seal starts a generation: the first in this cluster.
    starts: bool,
}

/// The last event id the latest restore into this cluster brought, if any.
pub fn last_restored_event(client: &SpiClient<'_>) -> SpiResult<Option<i64>> {
    client
        .select(
            "SELECT (SELECT last_event_id FROM audit_log.restored_trails \
              WHERE cluster = $1 ORDER BY restored_at DESC LIMIT 1)",
            None,
            &[cluster().into()],
        )?
        .first()
        .get_one()
}

fn generation(client: &SpiClient<'_>, last: Option<&LastSeal>) -> SpiResult<Generation> {
    let here = cluster();
    match last {
        Some(last) if last.cluster == here => Ok(Generation {
            previous_watermark: last.watermark,
            restored_through: last.restored_through,
            starts: false,
        }),
        _ => {
            let restored = last_restored_event(client)?;
            Ok(Generation {
                previous_watermark: last.map_or(0, |l| l.watermark),
                restored_through: restored.unwrap_or(0),
                starts: true,
            })
        }
    }
}

/// The sealable events, in tree order: in a generation, the range
/// `[previous W, W)` of transaction ids above what a restore brought; at its
/// start, every restored event not sealed yet (but those below the previous
/// watermark, which only a forger can have put there), then the new
/// cluster's events below W: transaction ids of two clusters do not compare,
/// and what was written after the restore comes after what it restored.
fn sealable_query(generation: &Generation) -> String {
    if generation.starts {
        format!(
            "SELECT {EVENT_FIELDS}, e.id \
               FROM audit_log.events e \
              WHERE NOT EXISTS (SELECT 1 FROM audit_log.tree_leaves l WHERE l.event_id = e.id) \
                AND ((e.id <= $3 AND e.tx_id >= $1::xid8) \
                     OR (e.id > $3 AND e.tx_id < $2::xid8 AND ($3 > 0 OR e.tx_id >= $1::xid8))) \
              ORDER BY e.id > $3, e.tx_id, e.id"
        )
    } else {
        format!(
            "SELECT {EVENT_FIELDS}, e.id \
               FROM audit_log.events e \
              WHERE e.tx_id >= $1::xid8 AND e.tx_id < $2::xid8 AND e.id > $3 \
              ORDER BY e.tx_id, e.id"
        )
    }
}

/// `audit_log.seal()`.
#[pg_extern(sql = false)]
fn audit_log_seal() -> String {
    refuse_unless_sealable();
    let result = PgTryBuilder::new(|| {
        SEALING.with(|s| s.set(true));
        Spi::connect_mut(seal_with).unwrap_or_else(|e| error!("audit_log.seal(): {e}"))
    })
    .finally(|| SEALING.with(|s| s.set(false)))
    .execute();
    result
}

fn seal_with(client: &mut SpiClient<'_>) -> SpiResult<String> {
    // Concurrent seals wait for each other; capture and readers do not.
    client.update(
        "LOCK TABLE audit_log.tree_seals IN SHARE ROW EXCLUSIVE MODE",
        None,
        &[],
    )?;
    // SAFETY: reads the clock.
    let sealed_at = unsafe { pg_sys::GetCurrentTimestamp() };
    let activity = read_activity(client)?;
    // A fresh snapshot (each statement of a read-write SPI connection takes
    // one at READ COMMITTED), taken after the running transactions were read.
    let watermark = parse_xid8(
        client
            .update(
                "SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text",
                None,
                &[],
            )?
            .first()
            .get_one::<String>()?
            .as_deref(),
    );
    let last = last_seal(client)?;
    let generation = generation(client, last.as_ref())?;
    let log_id = log_id(client)?;
    let (tree_size, mut frontier, root) = match &last {
        Some(l) => (l.tree_size, l.frontier.clone(), l.root),
        None => (0, Frontier::new(), Frontier::new().root()),
    };
    if !generation.starts && watermark <= generation.previous_watermark {
        return unchanged_checkpoint(client, tree_size, root);
    }

    let args = [
        generation.previous_watermark.to_string().into(),
        watermark.to_string().into(),
        generation.restored_through.into(),
    ];
    let mut cursor = client.open_cursor(sealable_query(&generation).as_str(), &args);
    let mut hashes: Vec<Hash> = Vec::new();
    let mut event_ids: Vec<i64> = Vec::new();
    for_each_row(&mut cursor, |row| {
        hashes.push(event_leaf_hash(&row.event_fields()));
        event_ids.push(row.int8(14).expect("an event has an id"));
        Ok(())
    })?;
    drop(cursor);
    if hashes.is_empty() {
        return unchanged_checkpoint(client, tree_size, root);
    }

    // The horizon: no event sealed later can precede it.
    let horizon = if activity.unbounded {
        i64::MIN
    } else {
        let left_unsealed: Option<TimestampWithTimeZone> = client
            .update(
                "SELECT min(e.occurred_at) FROM audit_log.events e \
                  WHERE e.tx_id >= $1::xid8 AND e.id > $2",
                None,
                &[
                    watermark.to_string().into(),
                    generation.restored_through.into(),
                ],
            )?
            .first()
            .get_one()?;
        [
            Some(sealed_at),
            activity.earliest,
            left_unsealed.map(|t| t.into_inner()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(sealed_at)
    };

    let here = cluster();
    let seal_leaf = SealLeaf {
        watermark,
        sealed_at: iso(sealed_at),
        horizon: iso(horizon),
        cluster: here,
    };
    let seal_leaf_index = tree_size;
    let seal_hash = audit_log_tree::tree::leaf_hash(&seal_leaf.leaf_data());
    let leaves: Vec<(Hash, Option<i64>)> = std::iter::once((seal_hash, None))
        .chain(
            hashes
                .iter()
                .copied()
                .zip(event_ids.iter().map(|id| Some(*id))),
        )
        .collect();
    let mut nodes = Vec::new();
    for (hash, _) in &leaves {
        frontier.push_with(*hash, |height, index, node| {
            if is_stored_height(height) {
                nodes.push((height, index, *node));
            }
        });
    }
    let mut next_index = tree_size;
    for batch in leaves.chunks(BATCH as usize) {
        insert_leaves(client, next_index, batch)?;
        next_index += batch.len() as i64;
    }

    if proofs_schema(client)? {
        fill_missing_nodes(client, tree_size as u64)?;
        insert_nodes(client, &nodes)?;
    }

    let new_size = next_index;
    let new_root = frontier.root();
    let frontier_bytes: Vec<u8> = frontier.subtrees().concat();
    client.update(
        "INSERT INTO audit_log.tree_seals (tree_size, seal_leaf_index, watermark, sealed_at, \
                                           horizon, cluster, restored_through, root, frontier) \
         VALUES ($1, $2, $3::xid8, $4, $5, $6, $7, $8, $9)",
        None,
        &[
            new_size.into(),
            seal_leaf_index.into(),
            watermark.to_string().into(),
            micros_to_timestamptz(sealed_at).into(),
            micros_to_timestamptz(horizon).into(),
            here.into(),
            generation.restored_through.into(),
            new_root.to_vec().into(),
            frontier_bytes.into(),
        ],
    )?;
    Ok(checkpoint_text(log_id, new_size, new_root))
}

/// Whether the schema is 0.4.0's or later (the library is replaced before
/// ALTER EXTENSION UPDATE runs, and seals in between must still work).
pub fn proofs_schema(client: &SpiClient<'_>) -> SpiResult<bool> {
    Ok(client
        .select(
            "SELECT pg_catalog.to_regclass('audit_log.tree_nodes') IS NOT NULL",
            None,
            &[],
        )?
        .first()
        .get_one::<bool>()?
        .unwrap_or(false))
}

/// Nothing to seal: the latest checkpoint again, with the signatures kept
/// for it since.
fn unchanged_checkpoint(client: &SpiClient<'_>, tree_size: i64, root: Hash) -> SpiResult<String> {
    let function = if proofs_schema(client)? {
        "signed_checkpoint"
    } else {
        "checkpoint_text"
    };
    Ok(client
        .select(
            &format!("SELECT audit_log.{function}($1, $2)"),
            None,
            &[tree_size.into(), root.to_vec().into()],
        )?
        .first()
        .get_one::<String>()?
        .unwrap_or_default())
}

fn micros_to_timestamptz(micros: i64) -> TimestampWithTimeZone {
    // SAFETY: any i64 is a valid TimestampTz (the extremes are the infinities).
    unsafe {
        TimestampWithTimeZone::from_datum(pg_sys::Datum::from(micros), false).expect("not null")
    }
}

/// Appends a batch of leaves from `first_index` on. The hashes travel as one
/// bytea (32 bytes each) rather than an array of them: one value to build
/// instead of one per leaf.
fn insert_leaves(
    client: &mut SpiClient<'_>,
    first_index: i64,
    leaves: &[(Hash, Option<i64>)],
) -> SpiResult<()> {
    let hashes: Vec<u8> = leaves.iter().flat_map(|(hash, _)| *hash).collect();
    let events: Vec<Option<i64>> = leaves.iter().map(|(_, event)| *event).collect();
    client.update(
        "INSERT INTO audit_log.tree_leaves (leaf_index, leaf_hash, event_id) \
         SELECT $1 + i, substring($2 FROM i * 32 + 1 FOR 32), $3[i + 1] \
           FROM generate_series(0, $4::integer - 1) AS i",
        None,
        &[
            first_index.into(),
            hashes.into(),
            events.into(),
            (leaves.len() as i64).into(),
        ],
    )?;
    Ok(())
}

/// The events of `relation` the next seal would consider, as a FROM clause
/// taking `Generation::unsealed_arguments()`: at a generation's start every
/// event not in the tree, afterwards the range above the watermark.
fn unsealed_events(relation: &str, generation: &Generation) -> String {
    if generation.starts {
        format!(
            "FROM {relation} e \
              WHERE NOT EXISTS (SELECT 1 FROM audit_log.tree_leaves l WHERE l.event_id = e.id) \
                AND (e.tx_id >= $1::xid8 OR ($2 > 0 AND e.id > $2))"
        )
    } else {
        format!("FROM {relation} e WHERE e.tx_id >= $1::xid8 AND e.id > $2")
    }
}

impl Generation {
    fn unsealed_arguments(&self) -> [pgrx::datum::DatumWithOid<'static>; 2] {
        [
            self.previous_watermark.to_string().into(),
            self.restored_through.into(),
        ]
    }
}

/// `audit_log.partition_sealed(partition regclass)`: whether every event of
/// one partition of the log is sealed (the `sealed` column of
/// audit_log.partitions), read through the partition's (tx_id, id) index.
#[pg_extern(sql = false)]
fn audit_log_partition_sealed(partition: pg_sys::Oid) -> bool {
    Spi::connect(|client| -> SpiResult<bool> {
        let name: String = client
            .select(
                "SELECT $1::pg_catalog.regclass::text",
                None,
                &[partition.into()],
            )?
            .first()
            .get_one()?
            .unwrap_or_default();
        let last = last_seal(client)?;
        let generation = generation(client, last.as_ref())?;
        let unsealed = unsealed_events(&name, &generation);
        Ok(client
            .select(
                &format!("SELECT NOT EXISTS (SELECT 1 {unsealed})"),
                None,
                &generation.unsealed_arguments(),
            )?
            .first()
            .get_one::<bool>()?
            .unwrap_or(false))
    })
    .unwrap_or_else(|e| error!("audit_log.partition_sealed(): {e}"))
}

/// `audit_log.seal_status()`.
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn audit_log_seal_status() -> TableIterator<
    'static,
    (
        name!(tree_size, i64),
        name!(last_sealed_at, Option<TimestampWithTimeZone>),
        name!(unsealed_events, i64),
        name!(oldest_unsealed_at, Option<TimestampWithTimeZone>),
        name!(waiting_for, Option<String>),
    ),
> {
    // Read-only, as a reader expects: no transaction id taken, so that a
    // seal() may follow in the same transaction and a standby can answer.
    let row = Spi::connect(|client| -> SpiResult<_> {
        client.select("SELECT pg_catalog.pg_stat_clear_snapshot()", None, &[])?;
        let last = last_seal(client)?;
        let generation = generation(client, last.as_ref())?;
        let last_sealed_at: Option<TimestampWithTimeZone> = client
            .select(
                "SELECT max(sealed_at) FROM audit_log.tree_seals",
                None,
                &[],
            )?
            .first()
            .get_one()?;
        let unsealed = unsealed_events("audit_log.events", &generation);
        let args = generation.unsealed_arguments();
        let counts = client
            .select(
                &format!(
                    "SELECT count(*), min(e.occurred_at), max(e.tx_id)::text {unsealed}"
                ),
                None,
                &args,
            )?
            .first();
        let count: i64 = counts.get(1)?.unwrap_or(0);
        let oldest: Option<TimestampWithTimeZone> = counts.get(2)?;
        let newest_tx: Option<String> = counts.get(3)?;
        // Who holds the watermark below the unsealed events: transactions
        // older than the newest of them, and prepared transactions of this
        // database, whose own events nobody else can see yet.
        let waiting_for: Option<String> = client
            .select(
                "SELECT string_agg(w, ', ' ORDER BY o, w) FROM ( \
                   SELECT pg_catalog.format('prepared transaction %L', p.gid) AS w, 0 AS o \
                     FROM pg_catalog.pg_prepared_xacts p \
                    WHERE p.database = pg_catalog.current_database() \
                       OR ($1::xid8 IS NOT NULL \
                           AND pg_catalog.age(p.transaction) > pg_catalog.age(pg_catalog.xid($1::xid8))) \
                   UNION ALL \
                   SELECT pg_catalog.format('pid %s', a.pid), 1 \
                     FROM pg_catalog.pg_stat_activity a \
                    WHERE $1::xid8 IS NOT NULL AND a.backend_xid IS NOT NULL \
                      AND pg_catalog.age(a.backend_xid) > pg_catalog.age(pg_catalog.xid($1::xid8)) \
                 ) holders",
                None,
                &[newest_tx.into()],
            )?
            .first()
            .get_one()?;
        let tree_size = last.as_ref().map_or(0, |l| l.tree_size);
        Ok((tree_size, last_sealed_at, count, oldest, waiting_for))
    })
    .unwrap_or_else(|e| error!("audit_log.seal_status(): {e}"));
    TableIterator::once(row)
}
