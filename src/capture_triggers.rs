//! The capture triggers belong to the extension. A table's owner may create
//! and replace triggers on it, so without a guard the owner could redefine a
//! capture trigger in place (`CREATE OR REPLACE TRIGGER ... WHEN (false)`
//! keeps its OID, name and enabled state: no DDL event would see it), add a
//! second one (every row recorded twice), or make one depend on an extension
//! whose DROP then removes it without a trace.
//!
//! Two locks on that door:
//! - at ddl_command_start, `guard_capture_triggers()` refuses any CREATE
//!   TRIGGER calling a capture function unless it is exactly what track()
//!   creates, on a tracked table that has none yet, and gives it the
//!   canonical name (`audit_log_row_<tracked table OID>`), which a restore
//!   needs too: pg_dump writes the trigger with the OID of the table it was
//!   dumped from. It also refuses CREATE OR REPLACE of a capture trigger and
//!   ALTER TRIGGER ... DEPENDS ON EXTENSION on one;
//! - at capture time, the capture functions refuse to run from any trigger
//!   but the table's one capture trigger of that kind (one made before this
//!   guard existed, say); track() drops and recreates them all.
//!
//! Renaming, disabling or dropping a capture trigger stays possible and is
//! recorded (sql/ddl.sql).

use std::cell::RefCell;
use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::catalog::{self, TableInfo};
use crate::ddl;
use crate::ffi::function_info_v1;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Row,
    Truncate,
}

impl Kind {
    fn function(self) -> &'static str {
        match self {
            Kind::Row => "capture_row",
            Kind::Truncate => "capture_truncate",
        }
    }

    fn signature(self) -> &'static CStr {
        match self {
            Kind::Row => c"audit_log.capture_row()",
            Kind::Truncate => c"audit_log.capture_truncate()",
        }
    }

    /// pg_trigger.tgtype of what track() creates: AFTER INSERT OR UPDATE OR
    /// DELETE FOR EACH ROW, AFTER TRUNCATE FOR EACH STATEMENT.
    fn tgtype(self) -> u32 {
        match self {
            Kind::Row => {
                pg_sys::TRIGGER_TYPE_ROW
                    | pg_sys::TRIGGER_TYPE_INSERT
                    | pg_sys::TRIGGER_TYPE_UPDATE
                    | pg_sys::TRIGGER_TYPE_DELETE
            }
            Kind::Truncate => pg_sys::TRIGGER_TYPE_TRUNCATE,
        }
    }

    /// Named after the tracked table, so that a partition tracked on its own
    /// never collides with the clone of its parent's trigger.
    pub fn canonical_name(self, root: pg_sys::Oid) -> CString {
        let kind = match self {
            Kind::Row => "row",
            Kind::Truncate => "truncate",
        };
        CString::new(format!("audit_log_{kind}_{}", root.to_u32())).expect("no NUL byte")
    }
}

/// The two capture functions' OIDs, looked up once per command.
struct CaptureFunctions([(Kind, Option<pg_sys::Oid>); 2]);

impl CaptureFunctions {
    unsafe fn lookup() -> Self {
        CaptureFunctions(
            [Kind::Row, Kind::Truncate].map(|kind| (kind, ddl::lookup_function(kind.signature()))),
        )
    }

    fn kind_of(&self, function: pg_sys::Oid) -> Option<Kind> {
        self.0
            .iter()
            .find(|(_, oid)| *oid == Some(function))
            .map(|(kind, _)| *kind)
    }
}

/// A trigger shaped as track() makes it: no condition, column list,
/// argument or transition table, not a constraint trigger.
unsafe fn is_canonical_shape(trigger: &pg_sys::Trigger, kind: Kind) -> bool {
    trigger.tgtype as u32 == kind.tgtype()
        && trigger.tgqual.is_null()
        && trigger.tgnattr == 0
        && trigger.tgnargs == 0
        && trigger.tgoldtable.is_null()
        && trigger.tgnewtable.is_null()
        && trigger.tgconstraint == pg_sys::InvalidOid
}

unsafe fn triggers<'a>(rel: pg_sys::Relation) -> &'a [pg_sys::Trigger] {
    let desc = (*rel).trigdesc;
    if desc.is_null() || (*desc).numtriggers == 0 {
        return &[];
    }
    std::slice::from_raw_parts((*desc).triggers, (*desc).numtriggers as usize)
}

/// Which trigger of a tracked relation may run a capture function, by
/// function: computed once per relation (a trigger change invalidates the
/// relation, and with it the TableInfo holding this).
#[derive(Default)]
pub struct Allowed(RefCell<Vec<(pg_sys::Oid, Option<pg_sys::Oid>)>>);

impl Allowed {
    unsafe fn trigger_for(
        &self,
        rel: pg_sys::Relation,
        table: &TableInfo,
        function: pg_sys::Oid,
        kind: Kind,
    ) -> Option<pg_sys::Oid> {
        if let Some((_, allowed)) = self.0.borrow().iter().find(|(f, _)| *f == function) {
            return *allowed;
        }
        // The one with the canonical name; else the only one, which a
        // restore or a rename by hand (recorded) may have named otherwise.
        let name = kind.canonical_name(table.root);
        let candidates: Vec<&pg_sys::Trigger> = triggers(rel)
            .iter()
            .filter(|t| t.tgfoid == function && is_canonical_shape(t, kind))
            .collect();
        let allowed = candidates
            .iter()
            .find(|t| CStr::from_ptr(t.tgname) == name.as_c_str())
            .or(match candidates.as_slice() {
                [only] => Some(only),
                _ => None,
            })
            .map(|t| t.tgoid);
        self.0.borrow_mut().push((function, allowed));
        allowed
    }
}

/// Refuses to capture from a trigger that track() did not create.
///
/// # Safety
/// `data` is the TriggerData of the running capture function `function`.
pub unsafe fn check_fired_by_capture_trigger(
    data: &pg_sys::TriggerData,
    table: &TableInfo,
    function: pg_sys::Oid,
    kind: Kind,
) {
    let trigger = &*data.tg_trigger;
    let allowed = table
        .allowed_triggers
        .trigger_for(data.tg_relation, table, function, kind);
    if allowed == Some(trigger.tgoid) {
        return;
    }
    let name = CStr::from_ptr(trigger.tgname).to_string_lossy();
    report(
        PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        format!(
            "audit_log.{}() was fired by trigger \"{name}\" on {}, which audit_log.track() did not create",
            kind.function(),
            catalog::qualified_name(data.tg_relation).to_string_lossy()
        ),
        "Only the table's own capture trigger records its changes; another would hide or double them.",
        &format!(
            "Drop that trigger, or call audit_log.track('{}') again: it recreates the table's capture triggers.",
            table.entity.to_string_lossy()
        ),
    );
}

function_info_v1!(pg_finfo_audit_log_guard_capture_triggers);

/// `audit_log.guard_capture_triggers()`: event trigger ON ddl_command_start
/// for CREATE TRIGGER and ALTER TRIGGER.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_guard_capture_triggers(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = ddl::check_event_trigger(fcinfo, "guard_capture_triggers");
    let tree = data.parsetree;
    if !tree.is_null() {
        match (*tree).type_ {
            pg_sys::NodeTag::T_CreateTrigStmt => {
                guard_create(&mut *tree.cast::<pg_sys::CreateTrigStmt>())
            }
            pg_sys::NodeTag::T_AlterObjectDependsStmt => {
                guard_depends(&*tree.cast::<pg_sys::AlterObjectDependsStmt>())
            }
            _ => {}
        }
    }
    pg_sys::Datum::from(0)
}

unsafe fn guard_create(stmt: &mut pg_sys::CreateTrigStmt) {
    let functions = CaptureFunctions::lookup();
    let Some(rel) = open_named(stmt.relation) else {
        return; // PostgreSQL says what is wrong with the name.
    };
    let table = catalog::qualified_name(rel).to_string_lossy().into_owned();
    let trigname = CStr::from_ptr(stmt.trigname).to_string_lossy().into_owned();
    if stmt.replace {
        let replaced = triggers(rel)
            .iter()
            .find(|t| CStr::from_ptr(t.tgname).to_bytes() == trigname.as_bytes());
        if replaced.is_some_and(|t| functions.kind_of(t.tgfoid).is_some()) {
            refuse(
                format!("capture trigger \"{trigname}\" on {table} cannot be replaced"),
                "Replacing it would change what is captured without leaving a trace.",
                "audit_log.untrack() stops capture and records that it did.",
            );
        }
    }
    let function = pg_sys::LookupFuncName(stmt.funcname, 0, std::ptr::null(), true);
    let Some(kind) = functions.kind_of(function) else {
        pg_sys::relation_close(rel, pg_sys::AccessShareLock as _);
        return;
    };
    let hint = format!("Call audit_log.track('{table}'): it creates the capture triggers.");
    let Some(root) = catalog::tracked_root(rel) else {
        refuse(
            format!(
                "audit_log.{}() runs only in the capture triggers that audit_log.track() creates",
                kind.function()
            ),
            &format!("{table} is not tracked."),
            &hint,
        );
    };
    let shaped = match kind {
        Kind::Row => stmt.row && stmt.events as u32 == kind.tgtype() & !pg_sys::TRIGGER_TYPE_ROW,
        Kind::Truncate => !stmt.row && stmt.events as u32 == kind.tgtype(),
    } && stmt.timing as u32 == pg_sys::TRIGGER_TYPE_AFTER
        && !stmt.replace
        && !stmt.isconstraint
        && stmt.columns.is_null()
        && stmt.whenClause.is_null()
        && stmt.args.is_null()
        && stmt.transitionRels.is_null();
    if !shaped {
        refuse(
            format!(
                "audit_log.{}() runs only in the capture triggers that audit_log.track() creates",
                kind.function()
            ),
            "A capture trigger has no condition, column list or argument, and fires AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW (capture_row) or AFTER TRUNCATE FOR EACH STATEMENT (capture_truncate).",
            &hint,
        );
    }
    if let Some(existing) = triggers(rel).iter().find(|t| t.tgfoid == function) {
        let existing = CStr::from_ptr(existing.tgname).to_string_lossy();
        report(
            PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            format!("{table} already has capture trigger \"{existing}\""),
            "A second one would record every change twice.",
            &hint,
        );
    }
    // What track() creates carries this name already; a restored trigger
    // carries the OID of the table it was dumped from.
    let name = kind.canonical_name(root);
    stmt.trigname = pg_sys::MemoryContextStrdup(
        pg_sys::GetMemoryChunkContext((stmt as *mut pg_sys::CreateTrigStmt).cast()),
        name.as_ptr(),
    );
    pg_sys::relation_close(rel, pg_sys::AccessShareLock as _);
}

/// ALTER TRIGGER ... DEPENDS ON EXTENSION: dropping that extension would
/// drop the trigger with it, recording nothing.
unsafe fn guard_depends(stmt: &pg_sys::AlterObjectDependsStmt) {
    if stmt.objectType != pg_sys::ObjectType::OBJECT_TRIGGER || stmt.remove {
        return;
    }
    let names = pgrx::PgList::<pg_sys::Node>::from_pg(stmt.object.cast());
    let Some(name) = names.get_ptr(names.len().wrapping_sub(1)) else {
        return;
    };
    if (*name).type_ != pg_sys::NodeTag::T_String {
        return;
    }
    let trigname = CStr::from_ptr((*name.cast::<pg_sys::String>()).sval);
    let Some(rel) = open_named(stmt.relation) else {
        return;
    };
    let functions = CaptureFunctions::lookup();
    let capture = triggers(rel)
        .iter()
        .any(|t| CStr::from_ptr(t.tgname) == trigname && functions.kind_of(t.tgfoid).is_some());
    if capture {
        refuse(
            format!(
                "capture trigger \"{}\" on {} cannot depend on an extension",
                trigname.to_string_lossy(),
                catalog::qualified_name(rel).to_string_lossy()
            ),
            "Dropping the extension would drop the trigger and stop capture without a trace.",
            "audit_log.untrack() stops capture and records that it did.",
        );
    }
    pg_sys::relation_close(rel, pg_sys::AccessShareLock as _);
}

/// The relation a statement names, if it exists. Only AccessShareLock: the
/// command takes its own lock after its own permission check.
unsafe fn open_named(relation: *mut pg_sys::RangeVar) -> Option<pg_sys::Relation> {
    if relation.is_null() {
        return None;
    }
    let relid = pg_sys::RangeVarGetRelidExtended(
        relation,
        pg_sys::NoLock as _,
        pg_sys::RVROption::RVR_MISSING_OK,
        None,
        std::ptr::null_mut(),
    );
    if relid == pg_sys::InvalidOid {
        return None;
    }
    let rel = pg_sys::try_relation_open(relid, pg_sys::AccessShareLock as _);
    (!rel.is_null()).then_some(rel)
}

fn refuse(message: String, detail: &str, hint: &str) -> ! {
    report(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        message,
        detail,
        hint,
    )
}

fn report(code: PgSqlErrorCode, message: String, detail: &str, hint: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(code, message, function_name!())
        .set_detail(detail)
        .set_hint(hint)
        .report(PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}
