//! audit_log: a compliance-grade audit trail for PostgreSQL.
//!
//! This file only wires the modules together; see README.md for the design.

use pgrx::pg_sys;
use pgrx::prelude::*;

mod application_events;
mod archives;
mod backend;
mod capture;
mod capture_triggers;
mod catalog;
mod ddl;
mod event_rows;
mod ffi;
mod generated;
mod jsonb;
mod moves;
mod partitions;
mod proofs;
mod reading;
mod retention;
mod seal_worker;
mod sealing;
mod settings;
mod storage;
mod text;
mod tracking;
mod tree_store;
mod verification;

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
extension_sql_file!("../sql/ddl.sql", name = "ddl", requires = ["tracking"]);
extension_sql_file!(
    "../sql/integrity.sql",
    name = "integrity",
    requires = ["export"]
);
extension_sql_file!(
    "../sql/proofs.sql",
    name = "proofs",
    requires = ["integrity"]
);
extension_sql_file!(
    "../sql/partitions.sql",
    name = "partitions",
    requires = ["integrity", "ddl"]
);
extension_sql_file!(
    "../sql/retention.sql",
    name = "retention",
    requires = ["schema"]
);
extension_sql_file!(
    "../sql/archives.sql",
    name = "archives",
    requires = ["partitions", "retention"]
);
extension_sql_file!(
    "../sql/time_travel.sql",
    name = "time_travel",
    requires = ["reading", "tracking", "export"]
);
extension_sql_file!(
    "../sql/application_events.sql",
    name = "application_events",
    requires = ["schema", "settings"]
);
extension_sql_file!("../sql/privileges.sql", name = "privileges", finalize);

static mut PREVIOUS_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_EXECUTOR_END: pg_sys::ExecutorEnd_hook_type = None;
#[cfg(not(feature = "pg13"))]
static mut PREVIOUS_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    seal_worker::define_settings();
    settings::define();
    seal_worker::register_launcher();
    unsafe {
        PREVIOUS_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(on_executor_start);
        PREVIOUS_EXECUTOR_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(on_executor_end);
        #[cfg(not(feature = "pg13"))]
        {
            PREVIOUS_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
            pg_sys::ProcessUtility_hook = Some(on_utility);
        }
        pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction_end), std::ptr::null_mut());
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
    ddl::note_invalidated(relid);
}

#[pg_guard]
unsafe extern "C-unwind" fn on_executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: i32) {
    storage::executor_starting((*query_desc).operation);
    match PREVIOUS_EXECUTOR_START {
        Some(previous) => previous(query_desc, eflags),
        None => pg_sys::standard_ExecutorStart(query_desc, eflags),
    }
}

/// The statement is over: close the log it wrote events to.
#[pg_guard]
unsafe extern "C-unwind" fn on_executor_end(query_desc: *mut pg_sys::QueryDesc) {
    moves::flush_at_statement_end();
    storage::executor_ending();
    match PREVIOUS_EXECUTOR_END {
        Some(previous) => previous(query_desc),
        None => pg_sys::standard_ExecutorEnd(query_desc),
    }
}

/// COPY FROM ends without ExecutorEnd, so the log may still be open when the
/// next statement is a utility one, such as DROP EXTENSION or ALTER TABLE on
/// the log, which would find it in use: close it first.
#[cfg(not(feature = "pg13"))]
#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn on_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    storage::close_writer();
    // The command's own text, for its DDL event (src/ddl.rs).
    ddl::utility_starting(query_string, (*pstmt).stmt_location, (*pstmt).stmt_len);
    PgTryBuilder::new(|| match PREVIOUS_PROCESS_UTILITY {
        Some(previous) => previous(
            pstmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        ),
        None => pg_sys::standard_ProcessUtility(
            pstmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        ),
    })
    .finally(ddl::utility_ended)
    .execute();
    ddl::after_explain((*pstmt).utilityStmt);
}

/// Close before commit whatever is still open (after a COPY FROM, say).
#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PARALLEL_PRE_COMMIT | XACT_EVENT_PRE_PREPARE => {
            moves::flush();
            storage::close_writer()
        }
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => {
            moves::forget();
            storage::forget_writer();
            storage::transaction_ended();
            ddl::forget_noted_states();
        }
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => {
            storage::transaction_ended();
            ddl::forget_noted_states()
        }
        _ => {}
    }
}

/// A statement that failed inside a savepoint may leave a row half-moved
/// between partitions: its DELETE seen, its INSERT rolled back with it; and
/// the executors it started never ended. A savepoint rolled back by a
/// trigger between the two halves leaves the row's move alone.
#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction_end(
    event: pg_sys::SubXactEvent::Type,
    _subxid: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_START_SUB => storage::subtransaction_started(),
        SUBXACT_EVENT_COMMIT_SUB => storage::subtransaction_ended(false),
        SUBXACT_EVENT_ABORT_SUB => {
            moves::forget_subtransaction();
            storage::subtransaction_ended(true);
        }
        _ => {}
    }
}

/// A renamed schema renames the entities of its tables. Only those: CREATE
/// SCHEMA, or a GRANT on one, must not empty the cache of every session.
#[pg_guard]
unsafe extern "C-unwind" fn on_schema_invalidation(_arg: pg_sys::Datum, _cache_id: i32, hash: u32) {
    catalog::invalidate_schema(hash);
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
