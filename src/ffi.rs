//! Postgres functions that pgrx's bindings leave out (their headers are not in
//! its binding set). `#[pg_guard]` on an extern block expects this module to
//! provide `pg_guard_ffi_boundary`, which turns a Postgres error into a Rust panic.

use pgrx::pg_sys;
use pgrx::prelude::*;

pub use pgrx::pg_sys::ffi::pg_guard_ffi_boundary;

/// Declares a plain fmgr (version-1) C function to Postgres, for functions
/// whose SQL signature is written by hand in sql/*.sql.
macro_rules! function_info_v1 {
    ($finfo:ident) => {
        #[no_mangle]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1_API: pgrx::pg_sys::Pg_finfo_record =
                pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1_API
        }
    };
}
pub(crate) use function_info_v1;

/// The attributes of a tuple descriptor, in order. Read through pgrx, which
/// knows where each version keeps them (PG18 moved them behind
/// TupleDescAttr()); they live as long as the descriptor.
pub unsafe fn attributes<'a>(desc: pg_sys::TupleDesc) -> Vec<&'a pg_sys::FormData_pg_attribute> {
    let wrapped = pgrx::PgTupleDesc::from_pg_unchecked(desc);
    wrapped
        .iter()
        .map(|attr| &*(attr as *const pg_sys::FormData_pg_attribute))
        .collect()
}

unsafe extern "C" {
    /// utils/bytea.h: the bytea_output setting (BYTEA_OUTPUT_HEX is 1).
    pub static mut bytea_output: std::ffi::c_int;
    /// utils/pg_locale.h: the lc_monetary setting.
    pub static mut locale_monetary: *mut std::ffi::c_char;
}

#[pg_guard]
unsafe extern "C-unwind" {
    /// catalog/pg_inherits.h: a table and all its partitions and children.
    pub fn find_all_inheritors(
        relid: pg_sys::Oid,
        lockmode: pg_sys::LOCKMODE,
        numparents: *mut *mut pg_sys::List,
    ) -> *mut pg_sys::List;
    /// catalog/partition.h: ancestors of a partition, immediate parent first.
    pub fn get_partition_ancestors(relid: pg_sys::Oid) -> *mut pg_sys::List;
    /// catalog/partition.h: a partition's parent.
    pub fn get_partition_parent(relid: pg_sys::Oid, even_if_detached: bool) -> pg_sys::Oid;
    /// commands/sequence.h: nextval() without the caller's privilege check.
    pub fn nextval_internal(relid: pg_sys::Oid, check_permissions: bool) -> i64;
    /// utils/datum.h: are two values stored identically (detoasting if needed)?
    pub fn datum_image_eq(
        value1: pg_sys::Datum,
        value2: pg_sys::Datum,
        typbyval: bool,
        typlen: i32,
    ) -> bool;
}

/// Functions whose C names clippy would have us rename.
#[allow(non_snake_case)]
mod c_names {
    use super::*;

    #[pg_guard]
    unsafe extern "C-unwind" {
        /// utils/datum.h: a copy of a value in the current memory context.
        pub fn datumCopy(value: pg_sys::Datum, typbyval: bool, typlen: i32) -> pg_sys::Datum;
    }
}
pub use c_names::datumCopy;
