//! What DDL does to tracked tables is recorded (sql/ddl.sql). Two event
//! triggers bracket every command that can change a tracked table or its
//! capture: at ddl_command_start they note the state of the tracked tables,
//! their capture triggers and the log's own guards, at ddl_command_end they
//! record what changed.
//!
//! Event triggers rather than a ProcessUtility hook: they are part of the
//! database, so they fire in every session, including the first statement of
//! a session that has not loaded this library yet.
//!
//! The SQL functions doing the work are called straight through fmgr, which
//! checks no EXECUTE right: they are SECURITY DEFINER and granted to nobody,
//! so a table owner who disables a trigger gets the event recorded without
//! being able to call them.

use std::cell::RefCell;
use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::backend::BackendLocal;
use crate::ffi::function_info_v1;
use crate::settings;
use crate::storage::{self, Event};

/// States noted at ddl_command_start, one per command under way (a
/// command can run others, through a function), with the subtransaction
/// level it started at: a command that failed inside a savepoint never
/// reaches ddl_command_end, and its entry is dropped by the next one that does.
struct Noted {
    nest_level: i32,
    states: pg_sys::Datum,
}

static NOTED: BackendLocal<RefCell<Vec<Noted>>> = BackendLocal::new(RefCell::new(Vec::new()));

function_info_v1!(pg_finfo_audit_log_note_ddl_watch_state);

/// `audit_log.note_ddl_watch_state()`: event trigger ON ddl_command_start.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_note_ddl_watch_state(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    check_event_trigger(fcinfo, "note_ddl_watch_state");
    // The extension's own scripts (CREATE/ALTER EXTENSION) set up the guards.
    if pg_sys::creating_extension {
        return pg_sys::Datum::from(0);
    }
    let states = pg_sys::OidFunctionCall0Coll(
        function_oid(c"audit_log.ddl_watch_state()"),
        pg_sys::InvalidOid,
    );
    let states = copy_to_transaction_memory(states);
    NOTED.get().borrow_mut().push(Noted {
        nest_level: pg_sys::GetCurrentTransactionNestLevel(),
        states,
    });
    pg_sys::Datum::from(0)
}

function_info_v1!(pg_finfo_audit_log_record_ddl);

/// `audit_log.record_ddl()`: event trigger ON ddl_command_end.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_ddl(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = check_event_trigger(fcinfo, "record_ddl");
    if pg_sys::creating_extension {
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
    let Some(noted) = noted else {
        return pg_sys::Datum::from(0);
    };
    let command_tag = pg_sys::GetCommandTagName(data.tag);
    pg_sys::OidFunctionCall2Coll(
        function_oid(c"audit_log.record_ddl(pg_catalog.jsonb,pg_catalog.text)"),
        pg_sys::InvalidOid,
        noted.states,
        pg_sys::Datum::from(pg_sys::cstring_to_text(command_tag)),
    );
    pg_sys::Datum::from(0)
}

/// At transaction end nothing noted is still wanted.
pub fn forget_noted_states() {
    NOTED.get().borrow_mut().clear();
}

unsafe fn check_event_trigger<'a>(
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
unsafe fn function_oid(signature: &CStr) -> pg_sys::Oid {
    let text = pg_sys::cstring_to_text(signature.as_ptr());
    pgrx::direct_function_call::<pg_sys::Oid>(
        pg_sys::to_regprocedure,
        &[Some(pg_sys::Datum::from(text))],
    )
    .unwrap_or_else(|| {
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

/// The noted states must outlive the command's memory until ddl_command_end.
unsafe fn copy_to_transaction_memory(datum: pg_sys::Datum) -> pg_sys::Datum {
    let varlena = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
    let len = pgrx::varsize_any(varlena);
    let copy = pg_sys::MemoryContextAlloc(pg_sys::TopTransactionContext, len);
    std::ptr::copy_nonoverlapping(varlena.cast::<u8>(), copy.cast::<u8>(), len);
    pg_sys::Datum::from(copy)
}

function_info_v1!(pg_finfo_audit_log_record_ddl_event);

/// `audit_log.record_ddl_event(entity text, details jsonb)`: a DDL event about
/// a table that may already be gone, so named rather than opened.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_ddl_event(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let entity: Option<String> = pgrx::fcinfo::pg_getarg(fcinfo, 0);
    let details = pgrx::fcinfo::pg_getarg_datum(fcinfo, 1);
    let Some(entity) = entity else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "entity must not be NULL"
        );
    };
    let entity = CString::new(entity).expect("text has no NUL byte");
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
