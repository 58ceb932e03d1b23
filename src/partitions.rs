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

use crate::ddl::{self, function_oid};
use crate::ffi::function_info_v1;
use crate::settings;

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

function_info_v1!(pg_finfo_audit_log_guard_log_partitions);

/// `audit_log.guard_log_partitions()`: event trigger ON ddl_command_start for
/// ALTER TABLE, DROP TABLE and CREATE TABLE. The log's partitions are the
/// extension's: a partition attached by hand could bring forged events, one
/// detached or dropped by hand takes events away without their archive. A
/// restore may attach an empty table of the log's schema (pg_dump writes each
/// partition as a table, attaches it, then loads it).
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_guard_log_partitions(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = ddl::check_event_trigger(fcinfo, "guard_log_partitions");
    let tree = data.parsetree;
    if tree.is_null() || settings::partition_maintenance() || ddl::building_this_extension() {
        return pg_sys::Datum::from(0);
    }
    let schema = pg_sys::get_namespace_oid(c"audit_log".as_ptr(), true);
    let log = pg_sys::get_relname_relid(c"events".as_ptr(), schema);
    if schema == pg_sys::InvalidOid || log == pg_sys::InvalidOid {
        return pg_sys::Datum::from(0);
    }
    match (*tree).type_ {
        pg_sys::NodeTag::T_AlterTableStmt => {
            let stmt = &*tree.cast::<pg_sys::AlterTableStmt>();
            if relid_of(stmt.relation) != log {
                return pg_sys::Datum::from(0);
            }
            for cmd in list_items(stmt.cmds) {
                let cmd = &*cmd.cast::<pg_sys::AlterTableCmd>();
                let partition = || relid_of((*cmd.def.cast::<pg_sys::PartitionCmd>()).name);
                match cmd.subtype {
                    pg_sys::AlterTableType::AT_AttachPartition => {
                        let attached = partition();
                        if !restored_partition(attached, schema) {
                            refuse("attached to");
                        }
                    }
                    // audit-log archive's detach, once the archive is
                    // written: note_detaching() refuses a partition that could
                    // not be archived, and records the period of one that can.
                    pg_sys::AlterTableType::AT_DetachPartition
                        if (*cmd.def.cast::<pg_sys::PartitionCmd>()).concurrent =>
                    {
                        let detached = partition();
                        if let Err(e) = Spi::run_with_args(
                            "SELECT audit_log.note_detaching($1)",
                            &[detached.into()],
                        ) {
                            error!("{e}");
                        }
                    }
                    pg_sys::AlterTableType::AT_DetachPartitionFinalize
                        if detached_for_archiving(partition()) => {}
                    pg_sys::AlterTableType::AT_DetachPartition
                    | pg_sys::AlterTableType::AT_DetachPartitionFinalize => refuse("detached from"),
                    _ => {}
                }
            }
        }
        pg_sys::NodeTag::T_DropStmt => {
            let stmt = &*tree.cast::<pg_sys::DropStmt>();
            if stmt.removeType != pg_sys::ObjectType::OBJECT_TABLE {
                return pg_sys::Datum::from(0);
            }
            for names in list_items(stmt.objects) {
                let relid = relid_of(pg_sys::makeRangeVarFromNameList(names.cast()));
                if relid != pg_sys::InvalidOid
                    && ((pg_sys::get_rel_relispartition(relid)
                        && crate::ffi::get_partition_parent(relid, true) == log)
                        || detached_for_archiving(relid))
                {
                    refuse("dropped from");
                }
            }
        }
        pg_sys::NodeTag::T_CreateStmt => {
            let stmt = &*tree.cast::<pg_sys::CreateStmt>();
            if !stmt.partbound.is_null()
                && list_items(stmt.inhRelations).any(|parent| relid_of(parent.cast()) == log)
            {
                refuse("created in");
            }
        }
        _ => {}
    }
    pg_sys::Datum::from(0)
}

unsafe fn relid_of(relation: *mut pg_sys::RangeVar) -> pg_sys::Oid {
    if relation.is_null() {
        return pg_sys::InvalidOid;
    }
    pg_sys::RangeVarGetRelidExtended(
        relation,
        pg_sys::NoLock as _,
        pg_sys::RVROption::RVR_MISSING_OK,
        None,
        std::ptr::null_mut(),
    )
}

unsafe fn list_items(list: *mut pg_sys::List) -> impl Iterator<Item = *mut std::ffi::c_void> {
    let length = if list.is_null() {
        0
    } else {
        (*list).length as usize
    };
    (0..length).map(move |i| (*(*list).elements.add(i)).ptr_value)
}

/// A partition audit-log archive detached (or began to), not dropped yet.
unsafe fn detached_for_archiving(relid: pg_sys::Oid) -> bool {
    relid != pg_sys::InvalidOid
        && Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM audit_log.detached_partitions WHERE relid = $1)",
            &[relid.into()],
        )
        .ok()
        .flatten()
            == Some(true)
}

/// What a restore attaches: an empty table of the log's schema.
unsafe fn restored_partition(relid: pg_sys::Oid, schema: pg_sys::Oid) -> bool {
    relid != pg_sys::InvalidOid
        && pg_sys::get_rel_namespace(relid) == schema
        && Spi::get_one_with_args::<bool>(
            &format!("SELECT NOT EXISTS (SELECT 1 FROM {})", relation_name(relid)),
            &[],
        )
        .ok()
        .flatten()
            == Some(true)
}

unsafe fn relation_name(relid: pg_sys::Oid) -> String {
    CStr::from_ptr(pg_sys::quote_qualified_identifier(
        pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid)),
        pg_sys::get_rel_name(relid),
    ))
    .to_string_lossy()
    .into_owned()
}

fn refuse(how: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("partitions of audit_log.events cannot be {how} it by hand"),
        function_name!(),
    )
    .set_detail("The log's partitions are the extension's: a month leaves the log only as a verified archive.")
    .set_hint("audit_log.prepare_partitions() makes the months ahead; audit-log archive archives, detaches and drops closed months.")
    .report(PgLogLevel::ERROR);
    unreachable!()
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn oid(query: &str) -> pg_sys::Oid {
        Spi::get_one::<pg_sys::Oid>(query).unwrap().unwrap()
    }

    /// Microseconds since 2000-01-01 UTC, PostgreSQL's timestamptz.
    fn at(timestamp: &str) -> i64 {
        Spi::get_one::<i64>(&format!(
            "SELECT ((extract(epoch FROM timestamptz '{timestamp}') - 946684800) * 1000000)::bigint"
        ))
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn an_event_goes_to_the_partition_of_its_exact_time() {
        let january = oid("SELECT audit_log.create_partition('2031-01-01 00:00:00+00', '2031-02-01 00:00:00+00')::oid");
        let february = oid("SELECT audit_log.create_partition('2031-02-01 00:00:00+00', '2031-03-01 00:00:00+00')::oid");
        let default = oid("SELECT 'audit_log.events_default'::regclass::oid");
        let log = oid("SELECT 'audit_log.events'::regclass::oid");
        let february_starts = at("2031-02-01 00:00:00+00");
        let route = |time: i64| unsafe { crate::storage::partition_for(log, time) };

        // The last microsecond of January, and the first of February.
        assert_eq!(
            route(february_starts - 1),
            (january, (at("2031-01-01 00:00:00+00"), february_starts))
        );
        assert_eq!(
            route(february_starts),
            (february, (february_starts, at("2031-03-01 00:00:00+00")))
        );
        // Before and after them, the default partition takes what no month
        // takes, up to the next partition's start.
        assert_eq!(route(february_starts + 31 * 86_400_000_000).0, default);
        assert_eq!(
            route(at("2031-03-01 00:00:00+00")).1 .0,
            at("2031-03-01 00:00:00+00")
        );
    }
}
