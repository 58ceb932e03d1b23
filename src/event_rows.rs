//! Reading many rows of a cursor fast: seal() and verify() hash every event,
//! and going through pgrx's per-column conversions (a String per field,
//! UTF-8 checks, a vector per row) would cost more than the hashing. Here a
//! batch's tuples are deformed once, text is read in place, and what
//! detoasting allocates, and the batch itself, are freed batch by batch.

use pgrx::pg_sys;
use pgrx::spi::{SpiCursor, SpiResult};
use pgrx::PgMemoryContexts;

/// Rows fetched at a time.
const BATCH: i64 = 10_000;

/// One row's columns, 0-based.
pub struct Row<'a> {
    values: &'a [pg_sys::Datum],
    nulls: &'a [bool],
}

impl Row<'_> {
    /// A text or bytea column's bytes, None for NULL.
    pub fn bytes(&self, column: usize) -> Option<&[u8]> {
        if self.nulls[column] {
            return None;
        }
        // SAFETY: the query gives a varlena here; a packed or toasted one is
        // expanded into the batch's memory context, which outlives the row.
        unsafe {
            let varlena = pg_sys::pg_detoast_datum_packed(self.values[column].cast_mut_ptr());
            Some(std::slice::from_raw_parts(
                pgrx::varlena::vardata_any(varlena) as *const u8,
                pgrx::varlena::varsize_any_exhdr(varlena),
            ))
        }
    }

    /// A bigint, xid8 or timestamptz column (all 8 bytes, by value).
    pub fn int8(&self, column: usize) -> Option<i64> {
        (!self.nulls[column]).then(|| self.values[column].value() as i64)
    }

    /// The 14 text fields of `export()` in columns 0 to 13.
    pub fn event_fields(&self) -> [Option<&[u8]>; 14] {
        std::array::from_fn(|i| self.bytes(i))
    }
}

/// Calls `each` with every row the cursor gives.
pub fn for_each_row(
    cursor: &mut SpiCursor<'_>,
    mut each: impl FnMut(&Row<'_>) -> SpiResult<()>,
) -> SpiResult<()> {
    let mut batch_memory = PgMemoryContexts::new("audit_log rows");
    loop {
        let table = cursor.fetch(BATCH)?;
        if table.is_empty() {
            break;
        }
        // SAFETY: SPI_tuptable is the result of the fetch just made, kept
        // alive by `table` until the end of this iteration.
        unsafe {
            let tuptable = pg_sys::SPI_tuptable;
            let desc = (*tuptable).tupdesc;
            let natts = (*desc).natts as usize;
            let mut values = vec![pg_sys::Datum::from(0); natts];
            let mut nulls = vec![false; natts];
            let result = batch_memory.switch_to(|_| -> SpiResult<()> {
                for i in 0..table.len() {
                    pg_sys::heap_deform_tuple(
                        *(*tuptable).vals.add(i),
                        desc,
                        values.as_mut_ptr(),
                        nulls.as_mut_ptr(),
                    );
                    each(&Row {
                        values: &values,
                        nulls: &nulls,
                    })?;
                }
                Ok(())
            });
            batch_memory.reset();
            // SPI keeps every fetched batch until SPI_finish() (pgrx never
            // frees one): free it now, or a cursor over millions of rows
            // would hold them all. (`table` is not read again.)
            pg_sys::SPI_freetuptable(tuptable);
            result?;
        }
    }
    Ok(())
}
