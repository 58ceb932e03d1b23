//! Capture cannot be switched off quietly. Two event triggers (sql/guards.sql)
//! bracket every ALTER TABLE, ALTER TRIGGER and DROP TRIGGER: at
//! ddl_command_start they note the state of the capture triggers (and of the
//! log's own guards), at ddl_command_end they record what changed.
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
use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::backend::BackendLocal;
use crate::ffi::function_info_v1;

/// Trigger states noted at ddl_command_start, one per command under way (a
/// command can run others, through a function), with the subtransaction
/// level it started at: a command that failed inside a savepoint never
/// reaches ddl_command_end, and its entry is dropped by the next one that does.
struct Noted {
    nest_level: i32,
    states: pg_sys::Datum,
}

static NOTED: BackendLocal<RefCell<Vec<Noted>>> = BackendLocal::new(RefCell::new(Vec::new()));

function_info_v1!(pg_finfo_audit_log_note_trigger_states);

/// `audit_log.note_trigger_states()`: event trigger ON ddl_command_start.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_note_trigger_states(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    check_event_trigger(fcinfo, "note_trigger_states");
    // The extension's own scripts (CREATE/ALTER EXTENSION) set up the guards.
    if pg_sys::creating_extension {
        return pg_sys::Datum::from(0);
    }
    let states = pg_sys::OidFunctionCall0Coll(
        function_oid(c"audit_log.watched_trigger_states()"),
        pg_sys::InvalidOid,
    );
    let states = copy_to_transaction_memory(states);
    NOTED.get().borrow_mut().push(Noted {
        nest_level: pg_sys::GetCurrentTransactionNestLevel(),
        states,
    });
    pg_sys::Datum::from(0)
}

function_info_v1!(pg_finfo_audit_log_record_trigger_changes);

/// `audit_log.record_trigger_changes()`: event trigger ON ddl_command_end.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_trigger_changes(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = check_event_trigger(fcinfo, "record_trigger_changes");
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
        function_oid(c"audit_log.record_trigger_changes(pg_catalog.jsonb,pg_catalog.text)"),
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
