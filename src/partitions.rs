//! Each partition of the log carries the log's guards (append-only, no
//! truncate, no forged event, the restored-events note) as statement
//! triggers of its own: a statement naming a partition fires none of the
//! log's statement triggers. They are internal triggers, created here
//! whenever a partition joins the log (made by the extension, or attached by
//! a restore before its rows are loaded), so that pg_dump never writes them
//! and a restore never creates them twice.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::ddl::function_oid;

/// The guards, as the log's own statement triggers (sql/schema.sql, sql/integrity.sql).
const GUARDS: [(&CStr, &CStr, u32, u32); 4] = [
    (
        c"events_append_only",
        c"audit_log.refuse_event_change()",
        pg_sys::TRIGGER_TYPE_BEFORE,
        pg_sys::TRIGGER_TYPE_UPDATE | pg_sys::TRIGGER_TYPE_DELETE,
    ),
    (
        c"events_no_truncate",
        c"audit_log.refuse_event_change()",
        pg_sys::TRIGGER_TYPE_BEFORE,
        pg_sys::TRIGGER_TYPE_TRUNCATE,
    ),
    (
        c"events_no_forgery",
        c"audit_log.refuse_forged_event()",
        pg_sys::TRIGGER_TYPE_BEFORE,
        pg_sys::TRIGGER_TYPE_INSERT,
    ),
    (
        c"events_restored",
        c"audit_log.note_restored_events()",
        pg_sys::TRIGGER_TYPE_AFTER,
        pg_sys::TRIGGER_TYPE_INSERT,
    ),
];

/// `audit_log.guard_partition(partition regclass)`: gives a partition of the
/// log the guards it lacks, enabled ALWAYS (also under
/// session_replication_role = replica). Not granted to anyone.
#[pg_extern(sql = false)]
fn audit_log_guard_partition(partition: pg_sys::Oid) {
    let fail = |e: pgrx::spi::SpiError| -> ! { error!("audit_log.guard_partition(): {e}") };
    for (name, function, timing, events) in GUARDS {
        let function = unsafe { function_oid(function) };
        let tgtype = (timing | events) as i16;
        let present = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t \
                             WHERE t.tgrelid = $1 AND t.tgisinternal \
                               AND t.tgfoid = $2 AND t.tgtype = $3)",
            &[partition.into(), function.into(), tgtype.into()],
        )
        .unwrap_or_else(|e| fail(e));
        if present == Some(true) {
            continue;
        }
        let trigger = unsafe { create_internal_trigger(partition, name, function, tgtype) };
        let enable = Spi::get_one_with_args::<String>(
            "SELECT pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', \
                                      t.tgrelid::pg_catalog.regclass, t.tgname) \
               FROM pg_catalog.pg_trigger t WHERE t.oid = $1",
            &[trigger.into()],
        )
        .unwrap_or_else(|e| fail(e))
        .expect("the trigger just created");
        Spi::run(&enable).unwrap_or_else(|e| fail(e));
    }
}

/// A statement-level trigger that only the extension makes: CreateTrigger
/// with isInternal, which names it `<name>_<oid>`. Returns its OID.
unsafe fn create_internal_trigger(
    partition: pg_sys::Oid,
    name: &CStr,
    function: pg_sys::Oid,
    tgtype: i16,
) -> pg_sys::Oid {
    let stmt =
        pg_sys::palloc0(size_of::<pg_sys::CreateTrigStmt>()).cast::<pg_sys::CreateTrigStmt>();
    (*stmt).type_ = pg_sys::NodeTag::T_CreateTrigStmt;
    (*stmt).trigname = pg_sys::pstrdup(name.as_ptr());
    (*stmt).relation = pg_sys::makeRangeVar(
        pg_sys::get_namespace_name(pg_sys::get_rel_namespace(partition)),
        pg_sys::get_rel_name(partition),
        -1,
    );
    (*stmt).row = false;
    (*stmt).timing = tgtype & (pg_sys::TRIGGER_TYPE_BEFORE as i16);
    (*stmt).events = tgtype & !(pg_sys::TRIGGER_TYPE_BEFORE as i16);
    let address = pg_sys::CreateTrigger(
        stmt,
        std::ptr::null(),
        partition,
        pg_sys::InvalidOid,
        pg_sys::InvalidOid,
        pg_sys::InvalidOid,
        function,
        pg_sys::InvalidOid,
        std::ptr::null_mut(),
        true,
        false,
    );
    pg_sys::CommandCounterIncrement();
    address.objectId
}
