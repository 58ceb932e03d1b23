//! The events that retention writes about the log itself (API section 8):
//! `HOLD` and `RELEASE` of a legal hold, `ARCHIVE` of a month that left the
//! database. They go through the same writer as captured changes, with the
//! same actor, context and transaction, and are sealed like any event.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::ffi::function_info_v1;
use crate::settings;
use crate::storage::{self, Event};
use crate::text;

/// What retention events are about: the log as a whole.
const LOG: &std::ffi::CStr = c"audit_log.events";

function_info_v1!(pg_finfo_audit_log_record_retention);

/// `audit_log.record_retention(action text, entity_id jsonb, old_values jsonb,
/// new_values jsonb)`. Not granted to anyone: only the extension's SECURITY
/// DEFINER functions (legal_hold(), release_hold(), drop_archived()) call it,
/// after their own checks.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_retention(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let action = pgrx::fcinfo::pg_getarg_datum(fcinfo, 0).map(|datum| text::from_datum(datum));
    let action = match action.as_ref().map(|a| a.to_bytes()) {
        Some(b"HOLD") => c"HOLD",
        Some(b"RELEASE") => c"RELEASE",
        Some(b"ARCHIVE") => c"ARCHIVE",
        _ => {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "record_retention() records only HOLD, RELEASE and ARCHIVE events"
            );
        }
    };
    settings::enforce_actor(LOG);
    storage::append(&Event {
        entity_id: pgrx::fcinfo::pg_getarg_datum(fcinfo, 1),
        old_values: pgrx::fcinfo::pg_getarg_datum(fcinfo, 2),
        new_values: pgrx::fcinfo::pg_getarg_datum(fcinfo, 3),
        ..Event::about(LOG, action)
    });
    pgrx::fcinfo::pg_return_void()
}
