//! Automatic sealing: `audit_log.seal_interval` and `audit_log.seal_databases`.
//!
//! With `shared_preload_libraries = 'audit_log'`, a launcher wakes every
//! interval and, one database at a time, starts a short-lived worker that
//! connects to it and calls `audit_log.seal()`. A worker connects to a
//! single database for its whole life, hence one per database and round;
//! one at a time, so that sealing never takes more than one worker slot.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, SignalWakeFlags,
};
use pgrx::pg_sys;
use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

static SEAL_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(10_000);
static SEAL_DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// How long the launcher sleeps while sealing is off, between looks at its
/// signals.
const IDLE: Duration = Duration::from_secs(1);

/// A crashed launcher comes back after this long rather than at once, so
/// that a persistent failure does not spin.
const LAUNCHER_RESTART: Duration = Duration::from_secs(5);

const LIBRARY: &str = "audit_log";
const LAUNCHER_TYPE: &str = "audit_log seal launcher";
const WORKER_TYPE: &str = "audit_log seal worker";

/// Whether a function of this database is the extension's own, not merely a
/// function of that name: the worker runs it as a superuser.
fn installed(signature: &str) -> String {
    format!(
        "SELECT EXISTS ( \
           SELECT 1 FROM pg_catalog.pg_depend d \
             JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid \
            WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass \
              AND d.objid = pg_catalog.to_regprocedure('{signature}')::pg_catalog.oid \
              AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass \
              AND d.deptype = 'e' \
              AND x.extname = 'audit_log')"
    )
}

/// Must run before anything reserves the `audit_log` prefix
/// (`MarkGUCPrefixReserved`), which throws away the values the server's
/// configuration gave these settings before the library was loaded.
pub fn define_settings() {
    GucRegistry::define_int_guc(
        c"audit_log.seal_interval",
        c"How often the background worker seals the trails of audit_log.seal_databases.",
        c"0 turns automatic sealing off. Takes effect only with shared_preload_libraries = 'audit_log'.",
        &SEAL_INTERVAL_MS,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"audit_log.seal_databases",
        c"The databases whose audit trails the background worker seals.",
        c"A comma-separated list of database names; empty seals none. Databases without the extension are skipped.",
        &SEAL_DATABASES,
        GucContext::Sighup,
        GucFlags::default(),
    );
}

/// Static workers can only be registered by the postmaster, while it loads
/// `shared_preload_libraries`; a library loaded later by a backend has no
/// launcher, and sealing stays manual.
pub fn register_launcher() {
    // SAFETY: a flag the postmaster sets before loading preloaded libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    BackgroundWorkerBuilder::new(LAUNCHER_TYPE)
        .set_type(LAUNCHER_TYPE)
        .set_library(LIBRARY)
        .set_function("audit_log_seal_launcher_main")
        // A connection to the shared catalogs only, to look databases up;
        // this also delays the start until recovery has finished, since a
        // standby cannot seal.
        .enable_spi_access()
        .set_restart_time(Some(LAUNCHER_RESTART))
        .load();
}

fn interval() -> Option<Duration> {
    let ms = SEAL_INTERVAL_MS.get();
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn audit_log_seal_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    let mut reported = Reported::default();
    let mut last_round = Instant::now();
    loop {
        let wait = match interval() {
            Some(interval) => interval.saturating_sub(last_round.elapsed()),
            None => IDLE,
        };
        if !BackgroundWorker::wait_latch(Some(wait)) {
            break;
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: the launcher's main loop, outside any transaction.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            reported = Reported::default();
        }
        let Some(interval) = interval() else {
            continue;
        };
        if last_round.elapsed() < interval {
            continue;
        }
        last_round = Instant::now();
        if !seal_round(&mut reported) {
            break;
        }
    }
}

/// What the launcher last said about the listed databases: a problem is
/// reported when it appears (and again after a reload), not every round.
#[derive(Default)]
struct Reported {
    /// Entries of the setting that cannot name a database.
    invalid: HashSet<String>,
    /// Whether each database could be connected to when last looked up.
    open: HashMap<String, bool>,
}

fn shutdown_requested() -> bool {
    // SAFETY: a flag set by the SIGTERM handler.
    unsafe { std::ptr::read_volatile(&raw const pg_sys::ShutdownRequestPending) != 0 }
}

/// One round: each listed database in turn. False when the launcher must
/// stop.
fn seal_round(reported: &mut Reported) -> bool {
    for name in listed_databases(&mut reported.invalid) {
        if shutdown_requested() {
            return false;
        }
        let open = database_open(&name);
        let key = name.to_string_lossy().into_owned();
        let news = reported.open.insert(key, open) != Some(open);
        if !open {
            if news {
                warning!(
                    "audit_log.seal_databases: database \"{}\" does not exist or accepts no connections; not sealed",
                    name.to_string_lossy()
                );
            }
            continue;
        }
        if !seal_database(&name, news) {
            return false;
        }
    }
    true
}

/// The names in `audit_log.seal_databases`. Entries that cannot name a
/// database are reported and left out.
fn listed_databases(invalid: &mut HashSet<String>) -> Vec<CString> {
    let Some(setting) = SEAL_DATABASES.get() else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in setting.as_bytes().split(|&b| b == b',') {
        let entry = entry.trim_ascii();
        if entry.is_empty() {
            continue;
        }
        // The worker gets the name as UTF-8 in its `bgw_extra`, which must
        // keep a terminating NUL; a database's name is shorter anyway.
        let usable =
            std::str::from_utf8(entry).is_ok() && entry.len() < pg_sys::NAMEDATALEN as usize;
        if usable {
            names.extend(CString::new(entry).ok());
        } else if invalid.insert(String::from_utf8_lossy(entry).into_owned()) {
            warning!(
                "audit_log.seal_databases: \"{}\" is not a valid database name; ignored",
                String::from_utf8_lossy(entry)
            );
        }
    }
    names
}

/// Whether a worker can connect to the database: it exists, is not half
/// dropped, and accepts connections.
fn database_open(name: &CStr) -> bool {
    // Scans the table like the autovacuum launcher: with no database
    // selected, only the shared catalogs themselves can be opened, not
    // their indexes (nor the syscaches built on them).
    // SAFETY: the launcher is between transactions; the tuples are read
    // while the scan holds them.
    unsafe {
        pg_sys::StartTransactionCommand();
        let catalog = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as _);
        let scan = pg_sys::table_beginscan_catalog(catalog, 0, std::ptr::null_mut());
        let mut open = false;
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let database = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            if CStr::from_ptr(database.datname.data.as_ptr()) == name {
                // A datconnlimit of -2 marks a database whose DROP was
                // interrupted.
                open = database.datallowconn && database.datconnlimit != -2;
                break;
            }
        }
        pg_sys::heap_endscan(scan);
        pg_sys::table_close(catalog, pg_sys::AccessShareLock as _);
        pg_sys::CommitTransactionCommand();
        open
    }
}

/// Runs a worker in the database and waits for it to end, however it ends:
/// it reports its own problems. False if the postmaster died meanwhile.
fn seal_database(name: &CStr, announce: bool) -> bool {
    // Checked UTF-8 by listed_databases().
    let name = name.to_str().unwrap_or_default();
    let worker = BackgroundWorkerBuilder::new(&format!("{WORKER_TYPE} for {name}"))
        .set_type(WORKER_TYPE)
        .set_library(LIBRARY)
        .set_function("audit_log_seal_worker_main")
        .enable_spi_access()
        .set_restart_time(None)
        .set_extra(name)
        .set_argument(Some(pg_sys::Datum::from(announce)))
        // SAFETY: this process's pid, set at its start.
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic();
    let Ok(worker) = worker else {
        warning!(
            "audit_log: no background worker slot free to seal database \"{name}\"; will retry next round"
        );
        return true;
    };
    !matches!(
        worker.wait_for_shutdown(),
        Err(BackgroundWorkerStatus::PostmasterDied)
    )
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn audit_log_seal_worker_main(arg: pg_sys::Datum) {
    let announce = arg.value() != 0;
    // A backend's handler rather than the background worker's default: the
    // worker ends at the next interrupt check instead of inside the signal
    // handler, and DROP DATABASE or a shutdown need not wait for its seal.
    // SAFETY: installs PostgreSQL's own handler before signals are unblocked.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(backend_die));
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(backend_die));
    }
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::empty());
    let name = BackgroundWorker::get_extra().to_owned();
    // A database that no longer exists ends this worker here with a FATAL.
    BackgroundWorker::connect_worker_to_spi(Some(&name), None);
    set_session_option(c"application_name", c"audit_log seal worker");
    // seal() refuses to run at REPEATABLE READ or above, which the server's
    // or the database's default_transaction_isolation may ask for.
    set_session_option(c"default_transaction_isolation", c"read committed");
    // Sealing is background work: on a busy machine the writers it would
    // slow down come first (nice 10). It still gets its share, and nothing
    // waits for it: capture never takes the seal's lock.
    // SAFETY: changes only this process's scheduling priority.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }

    let outcome = PgTryBuilder::new(|| Ok(in_transaction(seal_if_installed)))
        .catch_others(|error| {
            // As after an error in a backend: release what the failed
            // transaction held, so the worker can report and exit cleanly.
            // SAFETY: the error is caught and flushed; nothing of the
            // transaction is used afterwards.
            unsafe { pg_sys::AbortCurrentTransaction() };
            Err(Box::new(error))
        })
        .execute();
    // The log's months ahead, in a transaction of their own (seal() wants
    // one that has written nothing).
    let prepared = PgTryBuilder::new(|| {
        in_transaction(prepare_partitions_if_installed);
        Ok(())
    })
    .catch_others(|error| {
        // SAFETY: as above.
        unsafe { pg_sys::AbortCurrentTransaction() };
        Err(Box::new(error))
    })
    .execute();
    if let Err(error) = prepared {
        report_failure(&name, "make the next partitions of the log of", *error);
    }
    match outcome {
        Ok(Some(result)) => debug1!("audit_log: sealed database \"{name}\": {result}"),
        Ok(None) if announce => warning!(
            "audit_log.seal_databases: database \"{name}\" has no audit_log.seal(); not sealed"
        ),
        Ok(None) => {}
        Err(error) => report_failure(&name, "seal", *error),
    }
}

unsafe extern "C-unwind" {
    /// tcop/tcopprot.h: a backend's SIGTERM handler. pgrx binds it only as a
    /// guarded wrapper, whose address is no signal handler.
    #[link_name = "die"]
    fn backend_die(postgres_signal_arg: std::ffi::c_int);
}

fn set_session_option(name: &CStr, value: &CStr) {
    // SAFETY: a connected session, outside any transaction.
    unsafe {
        pg_sys::SetConfigOption(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
    }
}

/// Like `BackgroundWorker::transaction`, which commits even after an error
/// it lets through; this one leaves the failed transaction to the caller.
fn in_transaction<R>(body: impl FnOnce() -> R) -> R {
    // SAFETY: the worker is connected and between transactions.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = body();
    // SAFETY: pops the snapshot pushed above and ends the transaction.
    unsafe {
        pg_sys::PopActiveSnapshot();
        pg_sys::CommitTransactionCommand();
    }
    result
}

/// What `audit_log.seal()` said, or None when this database has no such
/// function: no extension, or a version from before sealing.
fn seal_if_installed() -> Option<String> {
    // Read-only SPI throughout: a read-write connection takes a transaction
    // id at once, and seal() refuses a transaction that has one.
    Spi::connect(|client| {
        let installed = client
            .select(&installed("audit_log.seal()"), Some(1), &[])?
            .first()
            .get_one::<bool>()?;
        if installed != Some(true) {
            return Ok(None);
        }
        let result = client
            .select("SELECT audit_log.seal()", Some(1), &[])?
            .first()
            .get_one::<String>()?;
        Ok(Some(result.unwrap_or_default()))
    })
    .unwrap_or_else(|e: pgrx::spi::SpiError| error!("audit_log: sealing failed: {e}"))
}

/// Makes the log's months ahead (`audit_log.prepare_partitions()`), where
/// this database's extension has partitions.
fn prepare_partitions_if_installed() {
    Spi::connect_mut(|client| {
        let installed = client
            .select(&installed("audit_log.prepare_partitions()"), Some(1), &[])?
            .first()
            .get_one::<bool>()?;
        if installed == Some(true) {
            client.update(
                "SELECT count(*) FROM audit_log.prepare_partitions()",
                None,
                &[],
            )?;
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .unwrap_or_else(|e| error!("audit_log: making the log's next partitions failed: {e}"))
}

/// Reports a failed seal as a WARNING that keeps the error's code, detail
/// and hint: the worker is done either way, and the server carries on.
fn report_failure(name: &str, doing: &str, error: CaughtError) {
    let (CaughtError::PostgresError(cause)
    | CaughtError::ErrorReport(cause)
    | CaughtError::RustPanic { ereport: cause, .. }) = error;
    let mut report = ErrorReport::new(
        cause.sql_error_code(),
        format!(
            "audit_log: could not {doing} database \"{name}\": {}",
            cause.message()
        ),
        pg_sys::function_name!(),
    );
    if let Some(detail) = cause.detail() {
        report = report.set_detail(detail);
    }
    if let Some(hint) = cause.hint() {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::WARNING);
}
