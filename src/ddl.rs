//! What DDL does to tracked tables is recorded (sql/ddl.sql). Two event
//! triggers bracket every command that can change a tracked table or its
//! capture: at ddl_command_start they note the command id the command starts
//! at; while it runs, the relcache invalidations it causes say which relations
//! it changed; at ddl_command_end the tracked tables among those are read as
//! they were at the start (the catalogs under a snapshot of that command id)
//! and compared with what they are now.
//!
//! A command pays for what it touches, not for what the database tracks: a
//! CREATE TABLE beside 10,000 tracked tables looks at one relation. And
//! nothing is kept between commands: no copy of any state waits for the end
//! of the transaction.
//!
//! Invalidations rather than the parse tree: every way of changing a table's
//! row, columns or triggers (ALTER through any of its tags, recursion to
//! partitions and inheritance children, DROP ... CASCADE, DROP OWNED, DDL run
//! by a function or an extension script) goes through them, so there is no
//! list of statement shapes to keep complete. Only a schema rename changes no
//! relation: it is read from the parse tree.
//!
//! Event triggers rather than a ProcessUtility hook: they are part of the
//! database, so they fire in every session, including the first statement of
//! a session that has not loaded this library yet (the invalidation callback
//! is registered when the library loads, which the start trigger does).
//!
//! The SQL functions doing the work are called straight through fmgr, which
//! checks no EXECUTE right: they are SECURITY DEFINER and granted to nobody,
//! so a table owner who disables a trigger gets the event recorded without
//! being able to call them.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::backend::BackendLocal;
use crate::ffi::function_info_v1;
use crate::settings;
use crate::storage::{self, Event};

/// One command under way (a command can run others, through a function),
/// with the subtransaction level it started at: a command that failed inside
/// a savepoint never reaches ddl_command_end, and its entry is dropped by the
/// next one that does.
struct Noted {
    nest_level: i32,
    /// The catalogs as this command found them: what a snapshot taken with
    /// this command id sees.
    command_id: pg_sys::CommandId,
    /// Relations whose relcache entries were invalidated while this command
    /// was the innermost one under way.
    invalidated: BTreeSet<u32>,
    /// A cache reset (sinval overflow) says nothing of what changed.
    everything: bool,
    /// ALTER SCHEMA ... RENAME TO: the old and the new name.
    renamed_schema: Option<(CString, CString)>,
    /// The command's own text: what the DDL event's `statement` holds.
    statement: Option<CString>,
    /// Under 0.2.0's schema (the library updated, ALTER EXTENSION audit_log
    /// UPDATE not run yet): the whole watch state that version's
    /// record_ddl() compares with, as its jsonb bytes.
    legacy_state: Option<Vec<u8>>,
}

const WATCH_ROOTS: &CStr =
    c"audit_log.ddl_watch_roots(pg_catalog.oid[],pg_catalog.oid[],pg_catalog.bool)";
const WATCH_STATE: &CStr = c"audit_log.ddl_watch_state(pg_catalog.oid[],pg_catalog.bool)";
const RECORD_DDL: &CStr =
    c"audit_log.record_ddl(pg_catalog.jsonb,pg_catalog.text,pg_catalog.oid[])";
const FOLLOW_NEW_TABLES: &CStr = c"audit_log.follow_new_tables()";
const FOLLOW_TABLES: &CStr = c"audit_log.follow_tables(pg_catalog.oid[])";
const FOLLOW_SCHEMA_RENAME: &CStr =
    c"audit_log.follow_schema_rename(pg_catalog.text,pg_catalog.text)";
const RECORD_CONCURRENT_DETACH: &CStr =
    c"audit_log.record_concurrent_detach(pg_catalog.oid,pg_catalog.oid,pg_catalog.text)";
const RECORD_CASCADED_DROPS: &CStr =
    c"audit_log.record_cascaded_drops(pg_catalog.text,pg_catalog.bool)";

/// The tags the DDL watch follows (sql/ddl.sql): what they drop is recorded
/// by the watch, not again by the sql_drop trigger.
const WATCHED_TAGS: [&[u8]; 14] = [
    b"ALTER TABLE",
    b"ALTER TRIGGER",
    b"DROP TRIGGER",
    b"DROP TABLE",
    b"ALTER SCHEMA",
    b"DROP SCHEMA",
    b"DROP OWNED",
    b"CREATE TABLE",
    b"CREATE TABLE AS",
    b"SELECT INTO",
    b"ALTER VIEW",
    b"ALTER MATERIALIZED VIEW",
    b"ALTER INDEX",
    b"ALTER FOREIGN TABLE",
];
const LEGACY_WATCH_STATE: &CStr = c"audit_log.ddl_watch_state()";
const LEGACY_RECORD_DDL: &CStr = c"audit_log.record_ddl(pg_catalog.jsonb,pg_catalog.text)";

static NOTED: BackendLocal<RefCell<Vec<Noted>>> = BackendLocal::new(RefCell::new(Vec::new()));

/// Relcache invalidation callback: `relid` changed (InvalidOid: anything may
/// have). Runs inside PostgreSQL's invalidation processing: it must not fail.
pub fn note_invalidated(relid: pg_sys::Oid) {
    let Ok(mut noted) = NOTED.get().try_borrow_mut() else {
        return;
    };
    if let Some(command) = noted.last_mut() {
        if relid == pg_sys::InvalidOid {
            command.everything = true;
        } else {
            command.invalidated.insert(relid.to_u32());
        }
    }
}

function_info_v1!(pg_finfo_audit_log_note_ddl_watch_state);

/// `audit_log.note_ddl_watch_state()`: event trigger ON ddl_command_start.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_note_ddl_watch_state(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = check_event_trigger(fcinfo, "note_ddl_watch_state");
    if building_this_extension() {
        return pg_sys::Datum::from(0);
    }
    // What earlier commands did must be below the noted command id, and
    // their pending invalidations processed before collecting this one's.
    pg_sys::CommandCounterIncrement();
    let renamed_schema = renamed_schema(data.parsetree);
    let statement = command_text(data.parsetree);
    let legacy_state = match lookup_function(WATCH_ROOTS) {
        Some(_) => None,
        None => Some(legacy_watch_state()),
    };
    NOTED.get().borrow_mut().push(Noted {
        nest_level: pg_sys::GetCurrentTransactionNestLevel(),
        command_id: pg_sys::GetCurrentCommandId(false),
        invalidated: BTreeSet::new(),
        everything: false,
        renamed_schema,
        statement,
        legacy_state,
    });
    pg_sys::Datum::from(0)
}

/// 0.2.0's protocol, so that DDL keeps working, and being recorded, between
/// installing this library and ALTER EXTENSION audit_log UPDATE.
unsafe fn legacy_watch_state() -> Vec<u8> {
    let state = pg_sys::OidFunctionCall0Coll(function_oid(LEGACY_WATCH_STATE), pg_sys::InvalidOid);
    let varlena = pg_sys::pg_detoast_datum_packed(state.cast_mut_ptr());
    let len = pgrx::varsize_any(varlena);
    std::slice::from_raw_parts(varlena.cast::<u8>(), len).to_vec()
}

unsafe fn record_legacy(state: &[u8], command_tag: &CStr) {
    let copy = pg_sys::palloc(state.len());
    std::ptr::copy_nonoverlapping(state.as_ptr(), copy.cast::<u8>(), state.len());
    pg_sys::OidFunctionCall2Coll(
        function_oid(LEGACY_RECORD_DDL),
        pg_sys::InvalidOid,
        pg_sys::Datum::from(copy),
        pg_sys::Datum::from(pg_sys::cstring_to_text(command_tag.as_ptr())),
    );
}

function_info_v1!(pg_finfo_audit_log_record_ddl);

/// `audit_log.record_ddl()`: event trigger ON ddl_command_end.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_ddl(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = check_event_trigger(fcinfo, "record_ddl");
    if building_this_extension() {
        return pg_sys::Datum::from(0);
    }
    let level = pg_sys::GetCurrentTransactionNestLevel();
    let noted = {
        let mut noted = NOTED.get().borrow_mut();
        while noted.last().is_some_and(|n| n.nest_level > level) {
            noted.pop();
        }
        noted.pop()
    };
    let command_tag = CStr::from_ptr(pg_sys::GetCommandTagName(data.tag));
    let Some(noted) = noted else {
        // DETACH PARTITION ... CONCURRENTLY commits half-way: what its
        // start noted went with the first transaction.
        if let Some((parent, partition)) = detached_concurrently(data.parsetree) {
            STATEMENT.get().replace(command_text(data.parsetree));
            pg_sys::OidFunctionCall3Coll(
                function_oid(RECORD_CONCURRENT_DETACH),
                pg_sys::InvalidOid,
                pg_sys::Datum::from(parent),
                pg_sys::Datum::from(partition),
                pg_sys::Datum::from(pg_sys::cstring_to_text(command_tag.as_ptr())),
            );
            STATEMENT.get().replace(None);
        }
        return pg_sys::Datum::from(0);
    };

    // The locks our lookups take belong to the transaction, not to the
    // statement's portal: past 15 locks, dropping a portal walks every lock
    // the transaction holds, and a migration that created a thousand tables
    // holds thousands (each DDL statement would cost what the migration did
    // so far). On error, (sub)transaction abort restores the owner.
    let statement_owner = pg_sys::CurrentResourceOwner;
    pg_sys::CurrentResourceOwner = pg_sys::CurTransactionResourceOwner;
    match &noted.legacy_state {
        Some(state) => record_legacy(state, command_tag),
        None => record_changes(&noted, command_tag, data.parsetree),
    }
    pg_sys::CurrentResourceOwner = statement_owner;
    pg_sys::Datum::from(0)
}

/// Finds the tracked tables `noted`'s command may have changed, and records
/// what it did to them.
unsafe fn record_changes(noted: &Noted, command_tag: &CStr, parsetree: *mut pg_sys::Node) {
    // Tables that may enter a schema tracked with follow_new_tables: created
    // there, or moved there (ALTER TABLE ... SET SCHEMA).
    let brings_tables = matches!(
        command_tag.to_bytes(),
        b"CREATE TABLE" | b"CREATE TABLE AS" | b"SELECT INTO"
    ) || moves_a_table(parsetree);
    if let Some((old, new)) = &noted.renamed_schema {
        // The follow_new_tables setting goes with its schema.
        pg_sys::OidFunctionCall2Coll(
            function_oid(FOLLOW_SCHEMA_RENAME),
            pg_sys::InvalidOid,
            pg_sys::Datum::from(pg_sys::cstring_to_text(old.as_ptr())),
            pg_sys::Datum::from(pg_sys::cstring_to_text(new.as_ptr())),
        );
    }
    let schemas: Vec<pg_sys::Oid> = noted
        .renamed_schema
        .iter()
        .map(|(_, name)| pg_sys::get_namespace_oid(name.as_ptr(), true))
        .filter(|oid| *oid != pg_sys::InvalidOid)
        .collect();
    let relids: Vec<pg_sys::Oid> = noted
        .invalidated
        .iter()
        .map(|oid| pg_sys::Oid::from(*oid))
        .collect();
    // The log and the sealed tree live in the log's schema, guarded by
    // triggers that must stay as they are. Found by name: the log itself
    // may be missing for a moment (renamed to become a partition).
    let log_schema = pg_sys::get_namespace_oid(c"audit_log".as_ptr(), true);
    let guards_touched = log_schema != pg_sys::InvalidOid
        && noted
            .invalidated
            .iter()
            .any(|oid| pg_sys::get_rel_namespace(pg_sys::Oid::from(*oid)) == log_schema);
    let watch_roots = function_oid(WATCH_ROOTS);
    let roots_under = |command_id| {
        datum_oids(under_snapshot(command_id, || {
            pg_sys::OidFunctionCall3Coll(
                watch_roots,
                pg_sys::InvalidOid,
                oid_array(&relids),
                oid_array(&schemas),
                pg_sys::Datum::from(noted.everything),
            )
        }))
    };
    // Now: the tables the command worked on, renamed, attached or created as
    // partitions; a tracked table whose tree changed is invalidated itself.
    // Before: only needed for what the command dropped, which is gone now.
    let mut roots = roots_under(pg_sys::GetCurrentCommandId(false));
    if noted.everything || relids.iter().any(|relid| !relation_exists(*relid)) {
        roots.extend(roots_under(noted.command_id));
    }

    if !roots.is_empty() || guards_touched {
        let roots: Vec<pg_sys::Oid> = roots.into_iter().map(pg_sys::Oid::from).collect();
        let roots = oid_array(&roots);
        let before = under_snapshot(noted.command_id, || {
            pg_sys::OidFunctionCall2Coll(
                function_oid(WATCH_STATE),
                pg_sys::InvalidOid,
                roots,
                pg_sys::Datum::from(guards_touched),
            )
        });
        STATEMENT.get().replace(noted.statement.clone());
        pg_sys::OidFunctionCall3Coll(
            function_oid(RECORD_DDL),
            pg_sys::InvalidOid,
            before,
            pg_sys::Datum::from(pg_sys::cstring_to_text(command_tag.as_ptr())),
            roots,
        );
        STATEMENT.get().replace(None);
    }
    if brings_tables {
        pg_sys::OidFunctionCall0Coll(function_oid(FOLLOW_NEW_TABLES), pg_sys::InvalidOid);
    }
}

/// At transaction end nothing noted is still wanted.
pub fn forget_noted_states() {
    NOTED.get().borrow_mut().clear();
    STATEMENT.get().replace(None);
}

/// `ALTER TABLE parent DETACH PARTITION partition CONCURRENTLY`: the two tables.
unsafe fn detached_concurrently(
    parsetree: *mut pg_sys::Node,
) -> Option<(pg_sys::Oid, pg_sys::Oid)> {
    if parsetree.is_null() || (*parsetree).type_ != pg_sys::NodeTag::T_AlterTableStmt {
        return None;
    }
    let stmt = &*parsetree.cast::<pg_sys::AlterTableStmt>();
    let commands = pgrx::PgList::<pg_sys::AlterTableCmd>::from_pg(stmt.cmds);
    let partition = commands.iter_ptr().find_map(|cmd| {
        let def = (*cmd).def;
        ((*cmd).subtype == pg_sys::AlterTableType::AT_DetachPartition
            && !def.is_null()
            && (*def).type_ == pg_sys::NodeTag::T_PartitionCmd
            && (*def.cast::<pg_sys::PartitionCmd>()).concurrent)
            .then(|| (*def.cast::<pg_sys::PartitionCmd>()).name)
    })?;
    let lookup = |name: *mut pg_sys::RangeVar| {
        pg_sys::RangeVarGetRelidExtended(
            name,
            pg_sys::NoLock as _,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        )
    };
    let (parent, partition) = (lookup(stmt.relation), lookup(partition));
    (parent != pg_sys::InvalidOid && partition != pg_sys::InvalidOid).then_some((parent, partition))
}

function_info_v1!(pg_finfo_audit_log_record_drops);

/// `audit_log.record_drops()`: event trigger ON sql_drop. A command the DDL
/// watch does not follow can still drop a tracked table or part of one
/// through CASCADE: DROP TYPE, DOMAIN, FUNCTION, EXTENSION... (sql/ddl.sql).
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_drops(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = check_event_trigger(fcinfo, "record_drops");
    if building_this_extension() {
        return pg_sys::Datum::from(0);
    }
    let command_tag = CStr::from_ptr(pg_sys::GetCommandTagName(data.tag));
    let watched = WATCHED_TAGS.contains(&command_tag.to_bytes());
    // Of the watched commands, only these drop schemas, whose follow
    // settings go with them: a DROP TABLE pays nothing here.
    if watched && !matches!(command_tag.to_bytes(), b"DROP SCHEMA" | b"DROP OWNED") {
        return pg_sys::Datum::from(0);
    }
    STATEMENT.get().replace(command_text(data.parsetree));
    pg_sys::OidFunctionCall2Coll(
        function_oid(RECORD_CASCADED_DROPS),
        pg_sys::InvalidOid,
        pg_sys::Datum::from(pg_sys::cstring_to_text(command_tag.as_ptr())),
        pg_sys::Datum::from(watched),
    );
    STATEMENT.get().replace(None);
    pg_sys::Datum::from(0)
}

/// The text of each utility command under way, innermost last, pushed and
/// popped by the ProcessUtility hook (src/lib.rs).
static UTILITIES: BackendLocal<RefCell<Vec<CString>>> = BackendLocal::new(RefCell::new(Vec::new()));

/// The statement record_ddl() is recording: `audit_log.ddl_statement()`.
static STATEMENT: BackendLocal<RefCell<Option<CString>>> = BackendLocal::new(RefCell::new(None));

/// A utility command begins: `query` is the text it came in, of which it
/// is the `len` bytes at `location` (-1: all of it; 0 bytes: to the end).
///
/// # Safety
/// `query` is a NUL-terminated string.
pub unsafe fn utility_starting(query: *const std::ffi::c_char, location: i32, len: i32) {
    let text = if query.is_null() {
        CString::default()
    } else {
        own_text(CStr::from_ptr(query).to_bytes(), location, len)
    };
    UTILITIES.get().borrow_mut().push(text);
}

pub fn utility_ended() {
    UTILITIES.get().borrow_mut().pop();
}

fn own_text(query: &[u8], location: i32, len: i32) -> CString {
    let start = usize::try_from(location).unwrap_or(0).min(query.len());
    let end = match usize::try_from(len) {
        Ok(len) if location >= 0 && len > 0 => (start + len).min(query.len()),
        _ => query.len(),
    };
    let text = query[start..end].trim_ascii();
    CString::new(text).unwrap_or_default()
}

/// The command's own text, never the other statements of the message it
/// came in (an INSERT of a secret, an ALTER ROLE ... PASSWORD beside it).
/// From the ProcessUtility hook; for a session's first command, which ran
/// before this library was loaded and its hook installed, from the message,
/// when only one of its statements is of the command's kind. Otherwise
/// nothing: better no text than someone else's.
unsafe fn command_text(parsetree: *mut pg_sys::Node) -> Option<CString> {
    if let Some(text) = UTILITIES.get().borrow().last() {
        return Some(text.clone());
    }
    let query = pg_sys::debug_query_string;
    if query.is_null() || parsetree.is_null() {
        return None;
    }
    let statements = pgrx::PgList::<pg_sys::RawStmt>::from_pg(pg_sys::pg_parse_query(query));
    let mut same_kind = statements
        .iter_ptr()
        .filter(|raw| !(**raw).stmt.is_null() && (*(**raw).stmt).type_ == (*parsetree).type_);
    match (same_kind.next(), same_kind.next()) {
        (Some(raw), None) => Some(own_text(
            CStr::from_ptr(query).to_bytes(),
            (*raw).stmt_location,
            (*raw).stmt_len,
        )),
        _ => None,
    }
}

function_info_v1!(pg_finfo_audit_log_ddl_statement);

/// `audit_log.ddl_statement()`: the text of the command whose DDL event
/// record_ddl() writes.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_ddl_statement(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    match STATEMENT.get().borrow().as_ref() {
        Some(text) => pg_sys::Datum::from(pg_sys::cstring_to_text(text.as_ptr())),
        None => pgrx::fcinfo::pg_return_null(fcinfo),
    }
}

/// The extension's own scripts (CREATE/ALTER EXTENSION audit_log) set up the
/// guards and the tracking tables; another extension's script is DDL like
/// any other.
pub(crate) unsafe fn building_this_extension() -> bool {
    pg_sys::creating_extension
        && pg_sys::CurrentExtensionObject == pg_sys::get_extension_oid(c"audit_log".as_ptr(), true)
}

/// ALTER SCHEMA ... RENAME TO changes the names of the tables in it without
/// changing any of them.
unsafe fn renamed_schema(parsetree: *mut pg_sys::Node) -> Option<(CString, CString)> {
    if parsetree.is_null() || (*parsetree).type_ != pg_sys::NodeTag::T_RenameStmt {
        return None;
    }
    let stmt = &*parsetree.cast::<pg_sys::RenameStmt>();
    if stmt.renameType != pg_sys::ObjectType::OBJECT_SCHEMA
        || stmt.newname.is_null()
        || stmt.subname.is_null()
    {
        return None;
    }
    Some((
        CStr::from_ptr(stmt.subname).to_owned(),
        CStr::from_ptr(stmt.newname).to_owned(),
    ))
}

/// ALTER TABLE ... SET SCHEMA.
unsafe fn moves_a_table(parsetree: *mut pg_sys::Node) -> bool {
    !parsetree.is_null()
        && (*parsetree).type_ == pg_sys::NodeTag::T_AlterObjectSchemaStmt
        && (*parsetree.cast::<pg_sys::AlterObjectSchemaStmt>()).objectType
            == pg_sys::ObjectType::OBJECT_TABLE
}

/// EXPLAIN ANALYZE CREATE TABLE ... AS runs the CREATE TABLE AS with no
/// event trigger at all: called by the ProcessUtility hook after an EXPLAIN,
/// it gives the table it created to follow_new_tables.
///
/// # Safety
/// `parsetree` is the utility statement that just ran.
pub unsafe fn after_explain(parsetree: *mut pg_sys::Node) {
    if parsetree.is_null() || (*parsetree).type_ != pg_sys::NodeTag::T_ExplainStmt {
        return;
    }
    let explain = &*parsetree.cast::<pg_sys::ExplainStmt>();
    // Analyzed already: a Query wrapping the utility statement.
    let mut query = explain.query;
    if !query.is_null() && (*query).type_ == pg_sys::NodeTag::T_Query {
        query = (*query.cast::<pg_sys::Query>()).utilityStmt;
    }
    if query.is_null() || (*query).type_ != pg_sys::NodeTag::T_CreateTableAsStmt {
        return;
    }
    let options = pgrx::PgList::<pg_sys::DefElem>::from_pg(explain.options);
    let analyze = options.iter_ptr().any(|option| {
        CStr::from_ptr((*option).defname) == c"analyze" && pg_sys::defGetBoolean(option)
    });
    if !analyze {
        return;
    }
    let create = &*query.cast::<pg_sys::CreateTableAsStmt>();
    if create.objtype != pg_sys::ObjectType::OBJECT_TABLE || create.into.is_null() {
        return;
    }
    let relid = pg_sys::RangeVarGetRelidExtended(
        (*create.into).rel,
        pg_sys::NoLock as _,
        pg_sys::RVROption::RVR_MISSING_OK,
        None,
        std::ptr::null_mut(),
    );
    if relid == pg_sys::InvalidOid || lookup_function(FOLLOW_TABLES).is_none() {
        return;
    }
    pg_sys::OidFunctionCall1Coll(
        function_oid(FOLLOW_TABLES),
        pg_sys::InvalidOid,
        oid_array(&[relid]),
    );
}

/// Runs `read` with the catalogs as a snapshot with `command_id` sees them:
/// what this transaction did before that command, nothing after. The
/// functions it calls are STABLE, so their queries use this snapshot.
unsafe fn under_snapshot<T>(command_id: pg_sys::CommandId, read: impl FnOnce() -> T) -> T {
    pg_sys::PushCopiedSnapshot(pg_sys::GetTransactionSnapshot());
    (*pg_sys::GetActiveSnapshot()).curcid = command_id;
    let result = read();
    pg_sys::PopActiveSnapshot();
    result
}

unsafe fn relation_exists(relid: pg_sys::Oid) -> bool {
    pg_sys::SearchSysCacheExists(
        pg_sys::SysCacheIdentifier::RELOID as _,
        pg_sys::Datum::from(relid),
        pg_sys::Datum::from(0),
        pg_sys::Datum::from(0),
        pg_sys::Datum::from(0),
    )
}

unsafe fn oid_array(oids: &[pg_sys::Oid]) -> pg_sys::Datum {
    oids.to_vec().into_datum().expect("an array is never NULL")
}

unsafe fn datum_oids(datum: pg_sys::Datum) -> BTreeSet<u32> {
    Vec::<Option<pg_sys::Oid>>::from_datum(datum, false)
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|oid| oid.to_u32())
        .collect()
}

pub(crate) unsafe fn check_event_trigger<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
) -> &'a pg_sys::EventTriggerData {
    let context = (*fcinfo).context;
    if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_EventTriggerData {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED,
            format!("audit_log.{function}() runs only as the extension's event trigger")
        );
    }
    &*context.cast::<pg_sys::EventTriggerData>()
}

/// Types qualified too: a `text` type of the caller's must not make the
/// lookup resolve elsewhere.
pub(crate) unsafe fn lookup_function(signature: &CStr) -> Option<pg_sys::Oid> {
    let text = pg_sys::cstring_to_text(signature.as_ptr());
    pgrx::direct_function_call::<pg_sys::Oid>(
        pg_sys::to_regprocedure,
        &[Some(pg_sys::Datum::from(text))],
    )
}

pub(crate) unsafe fn function_oid(signature: &CStr) -> pg_sys::Oid {
    lookup_function(signature).unwrap_or_else(|| {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
            format!(
                "function {} of the audit_log extension is missing",
                signature.to_string_lossy()
            ),
            "Run ALTER EXTENSION audit_log UPDATE."
        );
    })
}

function_info_v1!(pg_finfo_audit_log_record_ddl_event);

/// `audit_log.record_ddl_event(entity text, details jsonb)`: a DDL event about
/// a table that may already be gone, so named rather than opened.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_ddl_event(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let entity =
        pgrx::fcinfo::pg_getarg_datum(fcinfo, 0).map(|datum| crate::text::from_datum(datum));
    let details = pgrx::fcinfo::pg_getarg_datum(fcinfo, 1);
    let Some(entity) = entity else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "entity must not be NULL"
        );
    };
    storage::append(&Event {
        new_values: details,
        ..Event::about(&entity, c"DDL")
    });
    pgrx::fcinfo::pg_return_void()
}

function_info_v1!(pg_finfo_audit_log_guard_drop);

/// `audit_log.guard_drop()`: event trigger ON ddl_command_start for DROP
/// EXTENSION and DROP SCHEMA. Dropping the extension drops the trail with it,
/// so it is refused while the trail holds events, unless a superuser sets
/// audit_log.drop_with_events.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_guard_drop(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = check_event_trigger(fcinfo, "guard_drop");
    if drops_the_extension(data.parsetree)
        && !settings::drop_with_events()
        && Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM audit_log.events)")
            .ok()
            .flatten()
            .unwrap_or(true)
    {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            "cannot drop the audit_log extension while audit_log.events holds events",
            "Dropping the extension would destroy the audit trail. Export it first (audit_log.export()), then, as a superuser: SET audit_log.drop_with_events = on."
        );
    }
    pg_sys::Datum::from(0)
}

/// DROP EXTENSION audit_log, or DROP SCHEMA audit_log CASCADE.
unsafe fn drops_the_extension(parsetree: *mut pg_sys::Node) -> bool {
    if parsetree.is_null() || (*parsetree).type_ != pg_sys::NodeTag::T_DropStmt {
        return false;
    }
    let stmt = &*parsetree.cast::<pg_sys::DropStmt>();
    let kind = stmt.removeType;
    if kind != pg_sys::ObjectType::OBJECT_EXTENSION && kind != pg_sys::ObjectType::OBJECT_SCHEMA {
        return false;
    }
    let objects = pgrx::PgList::<pg_sys::Node>::from_pg(stmt.objects);
    let named = objects.iter_ptr().any(|object| {
        !object.is_null()
            && (*object).type_ == pg_sys::NodeTag::T_String
            && CStr::from_ptr((*object.cast::<pg_sys::String>()).sval) == c"audit_log"
    });
    named
}
