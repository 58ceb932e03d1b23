//! Virtual generated columns (PostgreSQL 18's default kind of generated
//! column) are computed when read and never stored: in a trigger's tuple they
//! are NULL. Capture records them as a query would read them, computed from
//! the row with the column's expression, compiled once per table.

use pgrx::pg_sys;

/// The compiled expressions of a relation's virtual generated columns.
pub struct VirtualColumns {
    /// (attribute number in the relation, its expression, its type's
    /// by-value flag and length).
    columns: Vec<(i16, *mut pg_sys::ExprState, bool, i16)>,
    context: *mut pg_sys::ExprContext,
    slot: *mut pg_sys::TupleTableSlot,
}

impl VirtualColumns {
    /// Compiles the expressions of `rel`'s virtual generated columns in the
    /// current memory context, which must outlive the result. None when it
    /// has none (always, before PostgreSQL 18).
    ///
    /// # Safety
    /// `rel` must be an open relation.
    #[cfg(feature = "pg18")]
    pub unsafe fn of(rel: pg_sys::Relation) -> Option<Self> {
        let columns: Vec<_> = crate::ffi::attributes((*rel).rd_att)
            .into_iter()
            .filter(|attr| {
                !attr.attisdropped && attr.attgenerated as u8 == pg_sys::ATTRIBUTE_GENERATED_VIRTUAL
            })
            .map(|attr| {
                let expr = pg_sys::build_generation_expression(rel, attr.attnum.into());
                let planned = pg_sys::expression_planner(expr.cast());
                (
                    attr.attnum,
                    pg_sys::ExecInitExpr(planned, std::ptr::null_mut()),
                    attr.attbyval,
                    attr.attlen,
                )
            })
            .collect();
        if columns.is_empty() {
            return None;
        }
        // A copy, not the relcache's descriptor: a slot pins a counted
        // descriptor for the current resource owner, which this outlives.
        let desc = pg_sys::CreateTupleDescCopy((*rel).rd_att);
        Some(VirtualColumns {
            columns,
            context: pg_sys::CreateStandaloneExprContext(),
            slot: pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsHeapTuple),
        })
    }

    #[cfg(not(feature = "pg18"))]
    pub unsafe fn of(_rel: pg_sys::Relation) -> Option<Self> {
        None
    }

    /// Fills in the virtual columns of `tuple`, deformed into `values` and
    /// `nulls` (by attribute number), with what a query would read. The
    /// values are copied into the current memory context.
    ///
    /// # Safety
    /// `tuple` must be a row of the relation these were compiled for.
    pub unsafe fn compute(
        &self,
        tuple: pg_sys::HeapTuple,
        values: &mut [pg_sys::Datum],
        nulls: &mut [bool],
    ) {
        pg_sys::ExecStoreHeapTuple(tuple, self.slot, false);
        (*self.context).ecxt_scantuple = self.slot;
        let caller = pg_sys::CurrentMemoryContext;
        for &(attnum, state, byval, len) in &self.columns {
            pg_sys::MemoryContextReset((*self.context).ecxt_per_tuple_memory);
            let mut isnull = false;
            // ExecEvalExprSwitchContext(), which is inline in C.
            pg_sys::MemoryContextSwitchTo((*self.context).ecxt_per_tuple_memory);
            let evaluate = (*state)
                .evalfunc
                .expect("a compiled expression has an evaluator");
            let value = evaluate(state, self.context, &mut isnull);
            pg_sys::MemoryContextSwitchTo(caller);
            let i = attnum as usize - 1;
            nulls[i] = isnull;
            values[i] = if isnull {
                pg_sys::Datum::from(0)
            } else {
                crate::ffi::datumCopy(value, byval, len.into())
            };
        }
        pg_sys::ExecClearTuple(self.slot);
    }
}
