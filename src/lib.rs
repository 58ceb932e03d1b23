//! audit_log: a compliance-grade audit trail for PostgreSQL.
//!
//! This file only wires the modules together; see README.md for the design.

use pgrx::pg_sys;
use pgrx::prelude::*;

mod backend;
mod capture;
mod catalog;
mod ffi;
mod jsonb;
mod reading;
mod settings;
mod storage;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!(
    "../sql/settings.sql",
    name = "settings",
    requires = ["schema"]
);
extension_sql_file!(
    "../sql/tracking.sql",
    name = "tracking",
    requires = ["schema"]
);
extension_sql_file!(
    "../sql/reading.sql",
    name = "reading",
    requires = ["schema", reading::entity_parts]
);
extension_sql_file!(
    "../sql/export.sql",
    name = "export",
    requires = [
        "reading",
        reading::csv_line,
        reading::iso_utc,
        reading::json_text_array
    ]
);
extension_sql_file!("../sql/privileges.sql", name = "privileges", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::define();
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(on_relcache_invalidation),
            pg_sys::Datum::from(0),
        );
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as _,
            Some(on_schema_invalidation),
            pg_sys::Datum::from(0),
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    catalog::invalidate(relid);
    storage::invalidate(relid);
}

/// A renamed schema renames the entities of its tables.
#[pg_guard]
unsafe extern "C-unwind" fn on_schema_invalidation(
    _arg: pg_sys::Datum,
    _cache_id: i32,
    _hash: u32,
) {
    catalog::invalidate_all();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
