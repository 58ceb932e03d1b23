//! Archives (API section 8): what drop_archived() checks a manifest against,
//! and the leaves that archived partitions took with them, which verify()
//! and export_proof() account for through their ARCHIVE events.

use audit_log_tree::leaf::{self, event_body_hash};
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};
use sha2::{Digest, Sha256};

use crate::event_rows::for_each_row;
use crate::reading::{push_csv_field, CSV_HEADER};
use crate::sealing::EVENT_FIELDS;

/// `audit_log.partition_csv_sha256(partition regclass)`: SHA-256 (hex) of the
/// CSV that `\copy` of export() writes for the partition's events (header,
/// then one line per event in export()'s order), hashed as it is formed: a
/// month of events is never held in memory.
#[pg_extern(sql = false)]
fn audit_log_partition_csv_sha256(partition: pg_sys::Oid) -> String {
    Spi::connect(|client| -> SpiResult<String> {
        let name: String = client
            .select(
                "SELECT $1::pg_catalog.regclass::text",
                None,
                &[partition.into()],
            )?
            .first()
            .get_one()?
            .unwrap_or_default();
        let mut csv = Sha256::new();
        csv.update(CSV_HEADER);
        csv.update(b"\n");
        let mut line = Vec::new();
        let query = format!("SELECT {EVENT_FIELDS} FROM {name} e ORDER BY e.occurred_at, e.id");
        let mut cursor = client.open_cursor(&query, &[]);
        for_each_row(&mut cursor, |row| {
            line.clear();
            for (i, field) in row.event_fields().iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                if let Some(field) = field {
                    push_csv_field(&mut line, field);
                }
            }
            line.push(b'\n');
            csv.update(&line);
            Ok(())
        })?;
        Ok(csv
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect())
    })
    .unwrap_or_else(|e| error!("audit_log.partition_csv_sha256(): {e}"))
}

/// The leaf indexes each ARCHIVE event says its partition's events had.
pub struct ArchivedLeaves {
    /// (first, last, partition), sorted by first leaf; runs never overlap.
    runs: Vec<(i64, i64, String)>,
}

impl ArchivedLeaves {
    pub fn load(client: &SpiClient<'_>) -> SpiResult<Self> {
        let mut runs = Vec::new();
        for row in client.select(
            "SELECT (r.run ->> 0)::int8, (r.run ->> 1)::int8, e.entity_id ->> 'partition' \
               FROM audit_log.events e \
              CROSS JOIN LATERAL jsonb_array_elements(e.new_values -> 'leaf_ranges') AS r(run) \
              WHERE e.action = 'ARCHIVE' AND jsonb_typeof(e.new_values -> 'leaf_ranges') = 'array' \
              ORDER BY 1",
            None,
            &[],
        )? {
            if let (Some(first), Some(last), Some(partition)) = (
                row.get::<i64>(1)?,
                row.get::<i64>(2)?,
                row.get::<String>(3)?,
            ) {
                runs.push((first, last, partition));
            }
        }
        Ok(Self { runs })
    }

    /// The partition an archived leaf left the log with, if it did.
    pub fn archive_of(&self, leaf: i64) -> Option<&str> {
        let after = self.runs.partition_point(|(first, _, _)| *first <= leaf);
        let (_, last, partition) = self.runs.get(after.checked_sub(1)?)?;
        (leaf <= *last).then_some(partition.as_str())
    }
}

/// Header rows inserted at a time.
const HEADER_BATCH: usize = 1000;

/// `audit_log.keep_archived_headers(partition regclass, after_leaf bigint)`:
/// keeps, in audit_log.archived_headers, the header fields and body hash of
/// the partition's events sealed at leaves after `after_leaf` (the seal leaf
/// of the last seal before the partition's period ended). Those leaves lie in
/// the stretch a complete proof of a later period reveals; without them no
/// later month could be proven complete, nor archived. Returns how many.
#[pg_extern(sql = false)]
fn audit_log_keep_archived_headers(partition: pg_sys::Oid, after_leaf: i64) -> i64 {
    Spi::connect_mut(|client| -> SpiResult<i64> {
        let name: String = client
            .select(
                "SELECT $1::pg_catalog.regclass::text",
                None,
                &[partition.into()],
            )?
            .first()
            .get_one()?
            .unwrap_or_default();
        // A batch at a time, in leaf order, so that memory holds one batch.
        let query = format!(
            "SELECT {EVENT_FIELDS}, l.leaf_index \
               FROM {name} e JOIN audit_log.tree_leaves l ON l.event_id = e.id \
              WHERE l.leaf_index > $1 ORDER BY l.leaf_index LIMIT {HEADER_BATCH}"
        );
        let mut after = after_leaf;
        let mut kept = 0;
        loop {
            let mut batch: Vec<(i64, [Option<String>; 8], Vec<u8>)> = Vec::new();
            {
                let mut cursor = client.open_cursor(&query, &[after.into()]);
                for_each_row(&mut cursor, |row| {
                    let fields = row.event_fields();
                    let header = leaf::HEADER.map(|tag| {
                        fields[usize::from(tag) - 1]
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                    });
                    batch.push((
                        row.int8(14).unwrap_or(i64::MAX),
                        header,
                        event_body_hash(&fields).to_vec(),
                    ));
                    Ok(())
                })?;
            }
            let Some(&(last, _, _)) = batch.last() else {
                break;
            };
            let leaves: Vec<i64> = batch.iter().map(|(leaf, _, _)| *leaf).collect();
            let column = |i: usize| -> Vec<Option<String>> {
                batch
                    .iter()
                    .map(|(_, header, _)| header[i].clone())
                    .collect()
            };
            let bodies: Vec<Vec<u8>> = batch.iter().map(|(_, _, body)| body.clone()).collect();
            client.update(
                "INSERT INTO audit_log.archived_headers (leaf_index, header, body_hash) \
                 SELECT h.leaf, ARRAY[h.c1, h.c2, h.c3, h.c4, h.c5, h.c6, h.c7, h.c8], h.body \
                   FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], \
                               $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[]) \
                        AS h(leaf, c1, c2, c3, c4, c5, c6, c7, c8, body)",
                None,
                &[
                    leaves.into(),
                    column(0).into(),
                    column(1).into(),
                    column(2).into(),
                    column(3).into(),
                    column(4).into(),
                    column(5).into(),
                    column(6).into(),
                    column(7).into(),
                    bodies.into(),
                ],
            )?;
            kept += batch.len() as i64;
            after = last;
        }
        Ok(kept)
    })
    .unwrap_or_else(|e| error!("audit_log.keep_archived_headers(): {e}"))
}
