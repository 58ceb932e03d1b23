//! `track()` and `track_schema()` check their caller's right to read what
//! they are asked to track: a tracked table's values all become readable in
//! the trail, by every reader of it. The work itself is done by SECURITY
//! DEFINER functions (sql/tracking.sql) granted to nobody, reached from here
//! through fmgr, which checks no EXECUTE right. Only C can do this: inside a
//! SECURITY DEFINER function the caller is no longer known.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::ddl::function_oid;
use crate::ffi::function_info_v1;

const TRACK_AS_OWNER: &CStr =
    c"audit_log.track_as_owner(pg_catalog.regclass,pg_catalog.text[],pg_catalog.text[],pg_catalog.bool)";
const TRACK_SCHEMA_AS_OWNER: &CStr =
    c"audit_log.track_schema_as_owner(pg_catalog.oid,pg_catalog.name,pg_catalog.text[],pg_catalog.bool,pg_catalog.bool)";
/// Before 0.5.0 (no baseline): what this library finds between the install
/// of its files and ALTER EXTENSION ... UPDATE, told apart by how many
/// arguments the schema's track() passes.
const TRACK_AS_OWNER_0_4: &CStr =
    c"audit_log.track_as_owner(pg_catalog.regclass,pg_catalog.text[],pg_catalog.text[])";
const TRACK_SCHEMA_AS_OWNER_0_4: &CStr =
    c"audit_log.track_schema_as_owner(pg_catalog.oid,pg_catalog.name,pg_catalog.text[],pg_catalog.bool)";

function_info_v1!(pg_finfo_audit_log_track);

/// `audit_log.track(target regclass, exclude_columns text[], redact_columns text[], baseline boolean)`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_track(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let args = arguments(fcinfo);
    if !args[0].isnull {
        let target = pg_sys::Oid::from_datum(args[0].value, false).expect("not null");
        if pg_sys::pg_class_aclcheck(target, pg_sys::GetUserId(), pg_sys::ACL_SELECT as _)
            != pg_sys::AclResult::ACLCHECK_OK
        {
            let name = CStr::from_ptr(pg_sys::quote_qualified_identifier(
                pg_sys::get_namespace_name(pg_sys::get_rel_namespace(target)),
                pg_sys::get_rel_name(target),
            ))
            .to_string_lossy();
            pgrx::pg_sys::panic::ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("permission denied to track table {name}"),
                function_name!(),
            )
            .set_detail("Tracking a table makes every value it takes readable in the trail: it needs the right to read the table.")
            .set_hint("Ask its owner for SELECT on it, or a superuser to track it.")
            .report(PgLogLevel::ERROR);
        }
    }
    let signature = if args.len() == 3 {
        TRACK_AS_OWNER_0_4
    } else {
        TRACK_AS_OWNER
    };
    call_as_owner(fcinfo, signature, &args)
}

function_info_v1!(pg_finfo_audit_log_track_schema);

/// `audit_log.track_schema(schema_name name, exclude_tables text[], follow_new_tables boolean,
/// baseline boolean)`:
/// the caller is passed on, table by table its rights are checked there.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_track_schema(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let caller = pg_sys::NullableDatum {
        value: pg_sys::Datum::from(pg_sys::GetUserId()),
        isnull: false,
    };
    let mut args = vec![caller];
    args.extend(arguments(fcinfo));
    let signature = if args.len() == 4 {
        TRACK_SCHEMA_AS_OWNER_0_4
    } else {
        TRACK_SCHEMA_AS_OWNER
    };
    call_as_owner(fcinfo, signature, &args)
}

unsafe fn arguments(fcinfo: pg_sys::FunctionCallInfo) -> Vec<pg_sys::NullableDatum> {
    let count = (*fcinfo).nargs as usize;
    (*fcinfo).args.as_slice(count).to_vec()
}

/// Calls `signature` with `args` (NULLs included) and returns its result,
/// NULL included, as the result of `fcinfo`'s call.
unsafe fn call_as_owner(
    fcinfo: pg_sys::FunctionCallInfo,
    signature: &CStr,
    args: &[pg_sys::NullableDatum],
) -> pg_sys::Datum {
    let function = function_oid(signature);
    let mut flinfo: pg_sys::FmgrInfo = std::mem::zeroed();
    pg_sys::fmgr_info(function, &mut flinfo);
    // FunctionCallInfoBaseData ends with a flexible array of arguments.
    let size =
        std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>() + std::mem::size_of_val(args);
    let call = pg_sys::palloc0(size).cast::<pg_sys::FunctionCallInfoBaseData>();
    (*call).flinfo = &mut flinfo;
    (*call).nargs = args.len() as _;
    (*call).fncollation = (*fcinfo).fncollation;
    (*call).args.as_mut_slice(args.len()).copy_from_slice(args);
    let result = (flinfo.fn_addr.expect("a function has an address"))(call);
    (*fcinfo).isnull = (*call).isnull;
    result
}
