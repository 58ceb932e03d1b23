//! Who is acting: `audit_log.actor`, `audit_log.context`, `audit_log.require_actor`
//! and `audit_log.set_actor()`.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::backend::BackendLocal;

static ACTOR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static CONTEXT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static REQUIRE_ACTOR: GucSetting<bool> = GucSetting::<bool>::new(false);
static DROP_WITH_EVENTS: GucSetting<bool> = GucSetting::<bool>::new(false);
static TRACK_LOGINS: GucSetting<bool> = GucSetting::<bool>::new(false);
static PARTITION_MAINTENANCE: GucSetting<bool> = GucSetting::<bool>::new(false);

/// How long a partition of the log is: what prepare_partitions() makes
/// (sql/partitions.sql reads the setting by name).
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PartitionWidth {
    #[name = c"month"]
    Month,
    #[name = c"week"]
    Week,
    #[name = c"day"]
    Day,
}
static PARTITION_WIDTH: GucSetting<PartitionWidth> =
    GucSetting::<PartitionWidth>::new(PartitionWidth::Month);

/// The current `audit_log.context` as a flat jsonb, parsed once when it was set.
/// It is the setting's "extra", allocated for and owned by the GUC machinery, which
/// hands it back to the assign hook on every change, rollback and reset.
static CONTEXT_JSONB: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// The most bytes an actor and a context may hold (API section 1): more is
/// refused where it is given, never at write time.
const ACTOR_MAX_BYTES: usize = 1024;
const CONTEXT_MAX_BYTES: usize = 8192;

/// Whether `audit_log.require_actor` holds its built-in default, as opposed to
/// a value someone allowed to set it gave (a superuser, a role granted SET on
/// it, ALTER ROLE/DATABASE ... SET, the server's configuration). Kept in the
/// setting's "extra", which PostgreSQL hands back with every value it
/// restores.
static REQUIRE_ACTOR_IS_DEFAULT: AtomicBool = AtomicBool::new(true);

pub fn define() {
    // SAFETY: all hooks are #[pg_guard]ed.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"audit_log.actor",
            c"The application user recorded as the actor of each change.",
            c"An e-mail, user id or name, at most 1,024 bytes. Empty or blank means unset (NULL). Use SET LOCAL or audit_log.set_actor() behind a transaction-pooling pooler.",
            &ACTOR,
            GucContext::Userset,
            GucFlags::default(),
            Some(check_actor),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"audit_log.context",
            c"A JSON object of extra facts recorded with each change.",
            c"For example a request id, the end user's IP address or a reason. Must be a JSON object; empty means unset (NULL).",
            &CONTEXT,
            GucContext::Userset,
            GucFlags::default(),
            Some(check_context),
            Some(assign_context),
            None,
        );
    }
    unsafe {
        GucRegistry::define_bool_guc_with_hooks(
            c"audit_log.require_actor",
            c"Refuse writes to tracked tables when no actor is set.",
            c"Only superusers, ALTER DATABASE ... SET and ALTER ROLE ... SET can change it.",
            &REQUIRE_ACTOR,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_require_actor),
            Some(assign_require_actor),
            None,
        );
    }
    unsafe {
        GucRegistry::define_bool_guc_with_hooks(
            c"audit_log.track_logins",
            c"Record every successful connection as a LOGIN event (PostgreSQL 17 and later).",
            c"Superusers only (ALTER DATABASE ... SET for one database). A login event trigger records it; it never stops a login.",
            &TRACK_LOGINS,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_track_logins),
            None,
            None,
        );
    }
    GucRegistry::define_bool_guc(
        c"audit_log.drop_with_events",
        c"Let DROP EXTENSION audit_log destroy a trail that holds events.",
        c"Superusers only. Export the trail first: dropping the extension drops audit_log.events.",
        &DROP_WITH_EVENTS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"audit_log.partition_maintenance",
        c"Let this session attach, detach or drop partitions of audit_log.events.",
        c"Superusers only. Set by the extension's own functions while they do it; by hand, a partition can leave the log without its archive.",
        &PARTITION_MAINTENANCE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"audit_log.partition_width",
        c"How long the partitions of audit_log.events that prepare_partitions() makes are: month, week or day.",
        c"Superusers only (ALTER DATABASE ... SET for one database). Partitions already made keep their width.",
        &PARTITION_WIDTH,
        GucContext::Suset,
        GucFlags::default(),
    );
    // Typos such as audit_log.actr become errors instead of silent placeholders.
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    unsafe {
        pg_sys::MarkGUCPrefixReserved(c"audit_log".as_ptr());
    }
}

/// Whether the extension's own functions (or a superuser) are managing the
/// log's partitions.
pub fn partition_maintenance() -> bool {
    PARTITION_MAINTENANCE.get()
}

/// Whether a superuser asked to drop the extension with its events.
pub fn drop_with_events() -> bool {
    DROP_WITH_EVENTS.get()
}

/// The acting user, or None when unset, empty or blank. Borrowed from the
/// GUC's own storage: valid until the setting next changes.
pub fn actor() -> Option<&'static CStr> {
    let raw = unsafe { *ACTOR.as_ptr() };
    if raw.is_null() {
        return None;
    }
    let value = unsafe { CStr::from_ptr(raw) };
    let blank = value.to_bytes().iter().all(|b| b.is_ascii_whitespace());
    (!blank).then_some(value)
}

/// The context as a jsonb datum, or None when unset.
pub fn context_jsonb() -> Option<pg_sys::Datum> {
    let jsonb = CONTEXT_JSONB.load(Ordering::Relaxed);
    (!jsonb.is_null()).then(|| pg_sys::Datum::from(jsonb))
}

/// Is an actor required for this session's writes? The setting says so,
/// unless it holds its default only because a value that a non-superuser
/// gave at connection (PGOPTIONS) displaced the role's or the database's:
/// PostgreSQL keeps one value per source, checks a placeholder's value only
/// when the library loads, and then drops it, leaving the default. So when
/// the default is all there is, the role's and the database's settings are
/// read from the catalog (once per session).
fn actor_required() -> bool {
    if REQUIRE_ACTOR.get() {
        return true;
    }
    if !REQUIRE_ACTOR_IS_DEFAULT.load(Ordering::Relaxed) {
        return false;
    }
    static BY_ROLE_OR_DATABASE: BackendLocal<Cell<Option<bool>>> =
        BackendLocal::new(Cell::new(None));
    if let Some(required) = BY_ROLE_OR_DATABASE.get().get() {
        return required;
    }
    let required = required_by_role_or_database();
    BY_ROLE_OR_DATABASE.get().set(Some(required));
    required
}

/// `audit_log.require_actor` as ALTER ROLE/DATABASE ... SET left it for this
/// session's user and database, the most specific first, as PostgreSQL
/// applies them at connection. Read by key, below SQL: nothing the writer's
/// session set (search_path, functions of its own) has a say.
fn required_by_role_or_database() -> bool {
    // pg_db_role_setting and its (setdatabase, setrole) index: fixed OIDs.
    const DB_ROLE_SETTING: u32 = 2964;
    const DB_ROLE_SETTING_INDEX: u32 = 2965;
    const PREFIX: &[u8] = b"audit_log.require_actor=";
    unsafe {
        let (database, role) = (pg_sys::MyDatabaseId, pg_sys::GetSessionUserId());
        let none = pg_sys::InvalidOid;
        let rel = pg_sys::table_open(DB_ROLE_SETTING.into(), pg_sys::AccessShareLock as _);
        let mut required = None;
        for (setdatabase, setrole) in [
            (database, role),
            (none, role),
            (database, none),
            (none, none),
        ] {
            let mut keys: [pg_sys::ScanKeyData; 2] = std::mem::zeroed();
            for (key, (attnum, value)) in keys.iter_mut().zip([(1, setdatabase), (2, setrole)]) {
                pg_sys::ScanKeyInit(
                    key,
                    attnum,
                    pg_sys::BTEqualStrategyNumber as _,
                    pg_sys::Oid::from(pg_sys::F_OIDEQ),
                    pg_sys::Datum::from(value),
                );
            }
            let scan = pg_sys::systable_beginscan(
                rel,
                DB_ROLE_SETTING_INDEX.into(),
                true,
                std::ptr::null_mut(),
                2,
                keys.as_mut_ptr(),
            );
            let tuple = pg_sys::systable_getnext(scan);
            if !tuple.is_null() {
                let mut isnull = false;
                let config = pg_sys::heap_getattr(tuple, 3, (*rel).rd_att, &mut isnull);
                if !isnull {
                    required = crate::text::array_items(config)
                        .iter()
                        .filter_map(|item| item.to_bytes().strip_prefix(PREFIX))
                        .map(|value| {
                            let value = CString::new(value).unwrap_or_default();
                            let mut parsed = false;
                            pg_sys::parse_bool(value.as_ptr(), &mut parsed) && parsed
                        })
                        .next_back();
                }
            }
            pg_sys::systable_endscan(scan);
            if required.is_some() {
                break;
            }
        }
        pg_sys::table_close(rel, pg_sys::AccessShareLock as _);
        required.unwrap_or(false)
    }
}

/// Strict mode: refuse the write when nobody is named as its actor.
pub fn enforce_actor(entity: &CStr) {
    if actor().is_none() && actor_required() {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!(
                "audit_log.require_actor is on and no actor is set for this write to {}",
                entity.to_string_lossy()
            ),
            function_name!(),
        )
        .set_hint("Set audit_log.actor (SET or SET LOCAL), or call audit_log.set_actor() inside the transaction.")
        .report(PgLogLevel::ERROR);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_actor(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let value = *newval;
    if value.is_null() || CStr::from_ptr(value).to_bytes().len() <= ACTOR_MAX_BYTES {
        return true;
    }
    reject(&format!(
        "An actor holds at most {ACTOR_MAX_BYTES} bytes; this one has {}.",
        CStr::from_ptr(value).to_bytes().len()
    ))
}

#[pg_guard]
unsafe extern "C-unwind" fn check_require_actor(
    _newval: *mut bool,
    extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // Whoever got past PostgreSQL's own check of this superuser-only setting
    // may set it: only its default is not a decision.
    let flag = guc_extra_alloc(1).cast::<bool>();
    if flag.is_null() {
        pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY as i32);
        return false;
    }
    *flag = source == pg_sys::GucSource::PGC_S_DEFAULT;
    *extra = flag.cast();
    true
}

/// Login event triggers came with PostgreSQL 17: before, turning this on
/// would record nothing, so it is refused.
#[pg_guard]
unsafe extern "C-unwind" fn check_track_logins(
    newval: *mut bool,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    if *newval && pg_sys::PG_VERSION_NUM < 170000 {
        pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED as i32);
        let detail = c"Logins are recorded by a login event trigger, which PostgreSQL 17 and later have; this server is older.";
        pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr());
        return false;
    }
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_require_actor(_newval: bool, extra: *mut c_void) {
    let is_default = extra.is_null() || *extra.cast::<bool>();
    REQUIRE_ACTOR_IS_DEFAULT.store(is_default, Ordering::Relaxed);
}

#[pg_guard]
unsafe extern "C-unwind" fn check_context(
    newval: *mut *mut c_char,
    extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let value = *newval;
    if value.is_null() || *value == 0 {
        return true;
    }
    let length = CStr::from_ptr(value).to_bytes().len();
    if length > CONTEXT_MAX_BYTES {
        return reject(&format!(
            "A context holds at most {CONTEXT_MAX_BYTES} bytes of JSON text; this one has {length}."
        ));
    }
    // jsonb_in is the parser the value will meet when stored; catching its error
    // is safe because it only allocates memory.
    let parsed = PgTryBuilder::new(|| {
        Ok(pgrx::direct_function_call_as_datum(
            pg_sys::jsonb_in,
            &[Some(pg_sys::Datum::from(value))],
        ))
    })
    .catch_others(|caught| match caught {
        pg_sys::panic::CaughtError::PostgresError(report)
        | pg_sys::panic::CaughtError::ErrorReport(report)
        | pg_sys::panic::CaughtError::RustPanic {
            ereport: report, ..
        } => Err(report.message().to_string()),
    })
    .execute();

    let jsonb = match parsed {
        Ok(Some(datum)) => datum.cast_mut_ptr::<pg_sys::Jsonb>(),
        Ok(None) => return reject_context("It is not valid JSON."),
        Err(message) => return reject_context(&format!("It is not valid JSON: {message}.")),
    };
    if !crate::jsonb::is_object(jsonb) {
        return reject_context("It must be a JSON object, such as {\"request_id\": \"r-42\"}.");
    }
    let size = crate::jsonb::varsize(jsonb.cast());
    let copy = guc_extra_alloc(size);
    if copy.is_null() {
        pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY as i32);
        return false;
    }
    std::ptr::copy_nonoverlapping(jsonb.cast::<u8>(), copy.cast::<u8>(), size);
    *extra = copy;
    true
}

unsafe fn reject_context(detail: &str) -> bool {
    reject(detail)
}

/// A check hook's refusal: SQLSTATE 22023 (invalid_parameter_value), with
/// this detail.
unsafe fn reject(detail: &str) -> bool {
    let detail = CString::new(detail.replace('\0', "")).unwrap_or_default();
    pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE as i32);
    pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr());
    false
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_context(_newval: *const c_char, extra: *mut c_void) {
    CONTEXT_JSONB.store(extra, Ordering::Relaxed);
}

crate::ffi::function_info_v1!(pg_finfo_audit_log_set_actor);

/// `audit_log.set_actor(actor text, context jsonb DEFAULT NULL)`: both settings
/// for the current transaction only, so a pooled connection never carries them
/// over to the next client.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_set_actor(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    if !in_transaction_block() {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_NO_ACTIVE_SQL_TRANSACTION,
            "audit_log.set_actor() only works inside a transaction block",
            function_name!(),
        )
        .set_detail("Outside BEGIN ... COMMIT the transaction ends with this statement, and the actor with it.")
        .set_hint("Call it after BEGIN, or use SET audit_log.actor = '...' for the whole session.")
        .report(PgLogLevel::ERROR);
    }
    let actor =
        pgrx::fcinfo::pg_getarg_datum(fcinfo, 0).map(|datum| crate::text::from_datum(datum));
    let context =
        pgrx::fcinfo::pg_getarg_datum(fcinfo, 1).map(|jsonb| crate::jsonb::to_text(jsonb));
    // text never holds a NUL byte.
    let actor = actor.unwrap_or_default();
    set_local(c"audit_log.actor", &actor);
    set_local(c"audit_log.context", context.as_deref().unwrap_or(c""));
    pgrx::fcinfo::pg_return_void()
}

/// Will a transaction-local setting outlive this statement? Not when the
/// transaction is the statement's own. Inside a subtransaction (a PL/pgSQL
/// EXCEPTION block) Postgres only says "in a block", so the top transaction is
/// judged by its start: one that started with this statement's message is
/// the statement's own, unless that message itself began a block (`BEGIN;
/// DO ...` sent at once).
unsafe fn in_transaction_block() -> bool {
    if !pg_sys::IsTransactionBlock() {
        return false;
    }
    if !pg_sys::IsSubTransaction()
        || pg_sys::GetCurrentTransactionStartTimestamp()
            != pg_sys::GetCurrentStatementStartTimestamp()
    {
        return true;
    }
    message_begins_a_block()
}

/// Does the message being run hold a BEGIN or START TRANSACTION?
unsafe fn message_begins_a_block() -> bool {
    let message = pg_sys::debug_query_string;
    if message.is_null() {
        return false;
    }
    let statements = pgrx::PgList::<pg_sys::RawStmt>::from_pg(pg_sys::pg_parse_query(message));
    let begins = statements.iter_ptr().any(|raw| {
        let stmt = (*raw).stmt;
        !stmt.is_null()
            && (*stmt).type_ == pg_sys::NodeTag::T_TransactionStmt
            && matches!(
                (*stmt.cast::<pg_sys::TransactionStmt>()).kind,
                pg_sys::TransactionStmtKind::TRANS_STMT_BEGIN
                    | pg_sys::TransactionStmtKind::TRANS_STMT_START
            )
    });
    begins
}

unsafe fn set_local(name: &CStr, value: &CStr) {
    pg_sys::set_config_option(
        name.as_ptr(),
        value.as_ptr(),
        pg_sys::GucContext::PGC_USERSET,
        pg_sys::GucSource::PGC_S_SESSION,
        pg_sys::GucAction::GUC_ACTION_LOCAL,
        true,
        PgLogLevel::ERROR as i32,
        false,
    );
}

/// Memory for a GUC "extra", which the GUC machinery frees: with free() up to
/// PG15, with guc_free() since PG16, which expects guc_malloc()'s memory.
unsafe fn guc_extra_alloc(size: usize) -> *mut c_void {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    {
        libc::malloc(size)
    }
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    {
        pg_sys::guc_malloc(pg_sys::LOG as i32, size)
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn empty_actor_counts_as_unset() {
        Spi::run("SET audit_log.actor = ''").unwrap();
        assert!(super::actor().is_none());
        Spi::run("SET audit_log.actor = 'alice@example.org'").unwrap();
        assert_eq!(
            super::actor().unwrap().to_str().unwrap(),
            "alice@example.org"
        );
    }

    #[pg_test]
    fn context_is_parsed_once_into_jsonb() {
        Spi::run(r#"SET audit_log.context = '{"request_id": "r-1", "n": 1.50}'"#).unwrap();
        let datum = super::context_jsonb().expect("context is set");
        let text = unsafe { crate::jsonb::to_text(datum) }
            .into_string()
            .unwrap();
        assert_eq!(text, r#"{"n": 1.50, "request_id": "r-1"}"#);
        Spi::run("SET audit_log.context = ''").unwrap();
        assert!(super::context_jsonb().is_none());
    }

    #[pg_test(error = "invalid value for parameter \"audit_log.context\": \"[1, 2]\"")]
    fn context_must_be_an_object() {
        Spi::run("SET audit_log.context = '[1, 2]'").unwrap();
    }
}
