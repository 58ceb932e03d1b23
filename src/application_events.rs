//! Application events and sign-ins (API section 10): what no row change
//! shows, written by the application (`log_event()`) or, on PostgreSQL 17
//! and later, by the login event trigger (`track_logins`). They go through
//! the capture writer, with the same actor, context and transaction rules.

use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::ffi::function_info_v1;
use crate::jsonb;
use crate::settings;
use crate::storage::{self, Event};
use crate::text;

/// Actions the capture and the extension write themselves: an application
/// may not pass its events off as theirs.
const RESERVED: [&str; 12] = [
    "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRACK", "UNTRACK", "DDL", "BASELINE", "HOLD",
    "RELEASE", "ARCHIVE", "LOGIN",
];

const ACTION_RULE: &str = "An action is an upper-case word of at most 63 letters, digits and underscores, starting with a letter (SIGN_IN, EXPORT, ROLE_GRANTED), other than the capture's and the extension's own: INSERT, UPDATE, DELETE, TRUNCATE, TRACK, UNTRACK, DDL, BASELINE, HOLD, RELEASE, ARCHIVE, LOGIN.";

fn refuse(message: String, hint: Option<&str>) -> ! {
    let mut report = pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message,
        function_name!(),
    );
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!()
}

fn well_formed(action: &[u8]) -> bool {
    !action.is_empty()
        && action.len() <= 63
        && action[0].is_ascii_uppercase()
        && action
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
}

/// A jsonb argument that must be an object when given.
unsafe fn object_argument(
    fcinfo: pg_sys::FunctionCallInfo,
    n: usize,
    name: &str,
) -> Option<pg_sys::Datum> {
    let datum = pgrx::fcinfo::pg_getarg_datum(fcinfo, n)?;
    let detoasted = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()).cast::<pg_sys::Jsonb>();
    if !jsonb::is_object(detoasted) {
        refuse(
            format!("audit_log.log_event(): {name} must be a JSON object"),
            Some(if name == "entity_id" {
                "Name the thing the event is about as a key, like {\"id\": 42}."
            } else {
                "Pass the event's details as an object, like {\"browser\": \"Firefox\", \"ip\": \"203.0.113.7\"}."
            }),
        );
    }
    Some(pg_sys::Datum::from(detoasted))
}

function_info_v1!(pg_finfo_audit_log_log_event);

/// `audit_log.log_event(action text, entity text, entity_id jsonb, details
/// jsonb) RETURNS bigint`: the event's id.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_log_event(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let Some(action) = pgrx::fcinfo::pg_getarg_datum(fcinfo, 0).map(|d| text::from_datum(d)) else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "audit_log.log_event(): action must not be NULL"
        );
    };
    let spelled = action.to_string_lossy();
    if !well_formed(action.to_bytes()) {
        refuse(
            format!("audit_log.log_event(): \"{spelled}\" is not an action"),
            Some(ACTION_RULE),
        );
    }
    if RESERVED.contains(&&*spelled) {
        refuse(
            format!("audit_log.log_event(): {spelled} is written by audit_log itself"),
            Some(ACTION_RULE),
        );
    }
    let entity: Option<CString> =
        pgrx::fcinfo::pg_getarg_datum(fcinfo, 1).map(|d| text::from_datum(d));
    if entity
        .as_ref()
        .is_some_and(|e| e.as_bytes().iter().all(u8::is_ascii_whitespace))
    {
        refuse(
            "audit_log.log_event(): entity must not be blank".into(),
            Some("Leave it NULL for an event about nothing in particular (a sign-in), or name what it is about: public.trainings, invoice."),
        );
    }
    let entity_id = object_argument(fcinfo, 2, "entity_id");
    let details = object_argument(fcinfo, 3, "details");
    settings::enforce_actor(entity.as_deref().unwrap_or(c"application events"));
    let id = storage::append(&Event {
        entity: entity.as_deref(),
        action: &action,
        entity_id,
        old_values: None,
        new_values: details,
        changed_fields: None,
    });
    pg_sys::Datum::from(id)
}

function_info_v1!(pg_finfo_audit_log_record_login);

/// `audit_log.record_login()`: the LOGIN event of this connection, written
/// by the login event trigger's function (sql/application_events.sql), which
/// alone may call it. require_actor does not apply: no one has had a chance
/// to say who acts yet.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_login(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    const LOGIN: &CStr = c"LOGIN";
    storage::append(&Event {
        entity: None,
        action: LOGIN,
        entity_id: None,
        old_values: None,
        new_values: None,
        changed_fields: None,
    });
    pg_sys::Datum::from(0)
}

#[cfg(test)]
mod unit {
    #[test]
    fn actions_are_upper_case_words() {
        for good in ["SIGN_IN", "A", "EXPORT2", &"X".repeat(63)] {
            assert!(super::well_formed(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            "sign_in",
            "2FA",
            "SIGN IN",
            "SIGN-IN",
            &"X".repeat(64),
            "É",
        ] {
            assert!(!super::well_formed(bad.as_bytes()), "{bad}");
        }
    }
}
