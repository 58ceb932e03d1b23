//! The capture triggers: one event per changed row, one per TRUNCATE statement.

use std::cell::Cell;
use std::ffi::CStr;
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::backend::BackendLocal;
use crate::capture_triggers::{self, Kind};
use crate::catalog::{self, Column, TableInfo};
use crate::ffi::{datum_image_eq, find_all_inheritors, function_info_v1};
use crate::jsonb::{self, KeyPolicy};
use crate::moves;
use crate::settings;
use crate::storage::{self, Event};
use crate::text;

// Plain fmgr functions rather than #[pg_trigger]: a direct call (not as a
// trigger) must be a clean error, and the capture path wants no wrapper.

function_info_v1!(pg_finfo_audit_log_capture_row);

/// `audit_log.capture_row()`: AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_capture_row(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = trigger_data(fcinfo, "capture_row");
    let event = data.tg_event;
    if !is_after(event) || !is_row(event) || is_truncate(event) {
        misfired(
            "capture_row",
            "AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW",
        );
    }
    capture_row_change(data, (*(*fcinfo).flinfo).fn_oid);
    pg_sys::Datum::from(0)
}

/// Renders and records under the server's output settings (see
/// jsonb::begin_server_style).
unsafe fn in_server_style(table: &TableInfo, record: impl FnOnce()) {
    let style = jsonb::begin_server_style(table.renders_money);
    record();
    jsonb::end_server_style(style);
}

function_info_v1!(pg_finfo_audit_log_capture_truncate);

/// `audit_log.capture_truncate()`: AFTER TRUNCATE ... FOR EACH STATEMENT.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_capture_truncate(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let data = trigger_data(fcinfo, "capture_truncate");
    let event = data.tg_event;
    if !is_after(event) || is_row(event) || !is_truncate(event) {
        misfired("capture_truncate", "AFTER TRUNCATE ... FOR EACH STATEMENT");
    }
    capture_truncation(data, (*(*fcinfo).flinfo).fn_oid);
    pg_sys::Datum::from(0)
}

unsafe fn trigger_data<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
) -> &'a pg_sys::TriggerData {
    let context = (*fcinfo).context;
    if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_TriggerData {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("audit_log.{function}() can only be called as a trigger"),
            "Capture triggers are created by audit_log.track()."
        );
    }
    &*context.cast::<pg_sys::TriggerData>()
}

fn is_after(event: u32) -> bool {
    event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_AFTER
}

fn is_row(event: u32) -> bool {
    event & pg_sys::TRIGGER_EVENT_ROW != 0
}

fn is_truncate(event: u32) -> bool {
    event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_TRUNCATE
}

fn misfired(function: &str, expected: &str) -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        format!("audit_log.{function}() must be fired {expected}"),
        "Capture triggers are created by audit_log.track(); do not create them by hand."
    );
}

unsafe fn capture_row_change(data: &pg_sys::TriggerData, function: pg_sys::Oid) {
    let rel = data.tg_relation;
    let Some(table) = catalog::table_info(rel) else {
        return;
    };
    capture_triggers::check_fired_by_capture_trigger(data, &table, function, Kind::Row);
    settings::enforce_actor(&table.entity);
    in_server_style(&table, || record_row_change(data, &table));
}

unsafe fn record_row_change(data: &pg_sys::TriggerData, table: &Rc<TableInfo>) {
    let desc = (*data.tg_relation).rd_att;
    let event = match data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK {
        pg_sys::TRIGGER_EVENT_INSERT => {
            if let Some(moved) = moves::arrival(table, data.tg_trigtuple) {
                return record_move(moved, table, data.tg_trigtuple, desc);
            }
            moves::flush_before(inserted_by(data.tg_trigtuple));
            let new = Row::deform(data.tg_trigtuple, desc, table);
            Event {
                entity_id: new.entity_id(table),
                new_values: Some(new.render(table)),
                ..Event::about(&table.entity, c"INSERT")
            }
        }
        pg_sys::TRIGGER_EVENT_DELETE => {
            moves::flush_before(pg_sys::HeapTupleHeaderGetCmax((*data.tg_trigtuple).t_data));
            if moves::departure(table, data.tg_trigtuple, desc) {
                return;
            }
            let old = Row::deform(data.tg_trigtuple, desc, table);
            Event {
                entity_id: old.entity_id(table),
                old_values: Some(old.render(table)),
                ..Event::about(&table.entity, c"DELETE")
            }
        }
        _ => {
            moves::flush_before(inserted_by(data.tg_newtuple));
            let old = Row::deform(data.tg_trigtuple, desc, table);
            let new = Row::deform(data.tg_newtuple, desc, table);
            let changed = changed_fields(table, &old, table, &new);
            if changed.is_empty() {
                return;
            }
            Event {
                entity_id: new.entity_id(table),
                old_values: Some(old.render(table)),
                new_values: Some(new.render(table)),
                changed_fields: Some(text::array(&changed)),
                ..Event::about(&table.entity, c"UPDATE")
            }
        }
    };
    storage::append(&event);
}

/// The command that wrote a row version.
unsafe fn inserted_by(tuple: pg_sys::HeapTuple) -> pg_sys::CommandId {
    pg_sys::HeapTupleHeaderGetCmin((*tuple).t_data)
}

/// A row moved to another partition by an UPDATE of the partition key is one
/// UPDATE event, as if it had stayed: old values from the partition it left,
/// new values and key from the one it joined.
unsafe fn record_move(
    moved: moves::Departed,
    table: &TableInfo,
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
) {
    let old = Row::deform(moved.tuple, moved.desc, &moved.table);
    let new = Row::deform(tuple, desc, table);
    let changed = changed_fields(&moved.table, &old, table, &new);
    storage::append(&Event {
        entity_id: new.entity_id(table),
        old_values: Some(old.render(&moved.table)),
        new_values: Some(new.render(table)),
        changed_fields: Some(text::array(&changed)),
        ..Event::about(&table.entity, c"UPDATE")
    });
    moved.release();
}

/// A departure whose arrival never came: the row was deleted after all.
pub unsafe fn record_departure_as_delete(departed: moves::Departed) {
    in_server_style(&departed.table, || {
        let old = Row::deform(departed.tuple, departed.desc, &departed.table);
        storage::append(&Event {
            entity_id: old.entity_id(&departed.table),
            old_values: Some(old.render(&departed.table)),
            ..Event::about(&departed.table.entity, c"DELETE")
        });
    });
    departed.release();
}

/// A row's values, by attribute number of the table that fired the trigger.
struct Row {
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl Row {
    /// `table` is the TableInfo of the relation the tuple belongs to.
    unsafe fn deform(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, table: &TableInfo) -> Self {
        let natts = (*desc).natts as usize;
        let mut row = Row {
            values: vec![pg_sys::Datum::from(0); natts],
            nulls: vec![true; natts],
        };
        pg_sys::heap_deform_tuple(tuple, desc, row.values.as_mut_ptr(), row.nulls.as_mut_ptr());
        if let Some(columns) = &table.virtual_columns {
            columns.compute(tuple, &mut row.values, &mut row.nulls);
        }
        row
    }

    /// The column's value as recorded: excluded columns have none, redacted
    /// ones are masked, the others are rendered as to_jsonb renders them.
    unsafe fn field<'a>(&self, column: &'a Column) -> Option<jsonb::Field<'a>> {
        let i = column.attnum as usize - 1;
        let value = match column.policy {
            KeyPolicy::Drop => return None,
            KeyPolicy::Redact => jsonb::redacted_value(),
            KeyPolicy::Keep if self.nulls[i] => jsonb::null_value(),
            KeyPolicy::Keep => column.kind.value(self.values[i]),
        };
        Some(jsonb::Field {
            key: &column.name,
            value,
        })
    }

    unsafe fn render(&self, table: &TableInfo) -> pg_sys::Datum {
        let fields = table
            .render_order
            .iter()
            .filter_map(|&i| self.field(&table.columns[i]));
        pg_sys::Datum::from(jsonb::object(fields))
    }

    /// `{"id": 42}` from the primary key, or None for a table without one.
    unsafe fn entity_id(&self, table: &TableInfo) -> Option<pg_sys::Datum> {
        if table.keys.is_empty() {
            return None;
        }
        let fields = table
            .keys
            .iter()
            .filter_map(|&i| self.field(&table.columns[i]));
        Some(pg_sys::Datum::from(jsonb::object(fields)))
    }
}

/// Columns whose stored value changed, in the tracked table's order. Excluded
/// columns never count; redacted ones do. The two rows may come from two
/// partitions (a move): both tables list the tracked table's columns in its
/// order, each with its own attribute numbers.
unsafe fn changed_fields<'a>(
    old_table: &TableInfo,
    old: &Row,
    new_table: &'a TableInfo,
    new: &Row,
) -> Vec<&'a CStr> {
    old_table
        .columns
        .iter()
        .zip(&new_table.columns)
        .filter(|(_, column)| column.policy != KeyPolicy::Drop)
        .filter(|(old_column, new_column)| {
            let (i, j) = (
                old_column.attnum as usize - 1,
                new_column.attnum as usize - 1,
            );
            match (old.nulls[i], new.nulls[j]) {
                (true, true) => false,
                (false, false) => {
                    !(same_toast_pointer(old.values[i], new.values[j], new_column.len)
                        || datum_image_eq(
                            old.values[i],
                            new.values[j],
                            new_column.byval,
                            new_column.len.into(),
                        ))
                }
                _ => true,
            }
        })
        .map(|(_, column)| column.name.as_c_str())
        .collect()
}

/// An UPDATE that leaves a large value alone keeps its TOAST pointer: the
/// same pointer is the same value, with no need to fetch and compare the
/// value's chunks (which rendering it fetches anyway).
unsafe fn same_toast_pointer(old: pg_sys::Datum, new: pg_sys::Datum, len: i16) -> bool {
    use pgrx::varlena::{varatt_is_1b_e, varsize_external, vartag_external};
    if len != -1 {
        return false;
    }
    let (old, new) = (
        old.cast_mut_ptr::<pg_sys::varlena>(),
        new.cast_mut_ptr::<pg_sys::varlena>(),
    );
    let on_disk = |value: *mut pg_sys::varlena| {
        varatt_is_1b_e(value)
            && vartag_external(value) as u32 == pg_sys::vartag_external::VARTAG_ONDISK
    };
    if !on_disk(old) || !on_disk(new) {
        return false;
    }
    let size = varsize_external(old);
    size == varsize_external(new)
        && std::slice::from_raw_parts(old.cast::<u8>(), size)
            == std::slice::from_raw_parts(new.cast::<u8>(), size)
}

/// One TRUNCATE event per tracked table per statement. A TRUNCATE of a
/// partitioned table fires the trigger of the parent and of every partition;
/// they all name the same tracked table, the same transaction and the same
/// command, and only the first is recorded.
unsafe fn capture_truncation(data: &pg_sys::TriggerData, function: pg_sys::Oid) {
    static LAST: BackendLocal<Cell<Option<(pg_sys::Oid, u64, u32)>>> =
        BackendLocal::new(Cell::new(None));
    let Some(table) = catalog::table_info(data.tg_relation) else {
        return;
    };
    capture_triggers::check_fired_by_capture_trigger(data, &table, function, Kind::Truncate);
    settings::enforce_actor(&table.entity);
    let statement = (
        table.root,
        pg_sys::GetTopFullTransactionId().value,
        pg_sys::GetCurrentCommandId(false),
    );
    if LAST.get().get() == Some(statement) {
        return;
    }
    storage::append(&Event::about(&table.entity, c"TRUNCATE"));
    LAST.get().set(Some(statement));
}

function_info_v1!(pg_finfo_audit_log_record_tracking);

/// `audit_log.record_tracking(action text, target regclass, options jsonb)`:
/// the TRACK and UNTRACK events written by track() and untrack(). Not granted
/// to anyone; only the extension's SECURITY DEFINER functions call it.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_tracking(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let action = pgrx::fcinfo::pg_getarg_datum(fcinfo, 0).map(|datum| text::from_datum(datum));
    let target: Option<pg_sys::Oid> = pgrx::fcinfo::pg_getarg(fcinfo, 1);
    let options = pgrx::fcinfo::pg_getarg_datum(fcinfo, 2);
    let action = match action.as_ref().map(|a| a.to_bytes()) {
        Some(b"TRACK") => c"TRACK",
        Some(b"UNTRACK") => c"UNTRACK",
        Some(b"DDL") => c"DDL",
        _ => {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "record_tracking() records only TRACK, UNTRACK and DDL events"
            );
        }
    };
    let Some(target) = target else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "target must not be NULL"
        );
    };
    let rel = pg_sys::relation_open(target, pg_sys::AccessShareLock as _);
    let entity = catalog::qualified_name(rel);
    pg_sys::relation_close(rel, pg_sys::NoLock as _);
    storage::append(&Event {
        new_values: options,
        ..Event::about(&entity, action)
    });
    pgrx::fcinfo::pg_return_void()
}

function_info_v1!(pg_finfo_audit_log_record_baseline);

/// Rows rendered between two resets of the baseline's memory.
const BASELINE_BATCH: u64 = 1000;

/// `audit_log.record_baseline(target regclass) RETURNS bigint`: a BASELINE
/// event for every row of a tracked table (and of its partitions), rendered
/// and written as capture renders and writes a change, in the caller's
/// transaction; returns how many. track() calls it with the table locked
/// against writes. Not granted to anyone.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_record_baseline(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let Some(target) = pgrx::fcinfo::pg_getarg::<pg_sys::Oid>(fcinfo, 0) else {
        return pg_sys::Datum::from(0i64);
    };
    let members = find_all_inheritors(target, pg_sys::AccessShareLock as _, std::ptr::null_mut());
    let members = pgrx::PgList::<pg_sys::Oid>::from_pg(members);
    let mut recorded: u64 = 0;
    let rows_memory = pgrx::PgMemoryContexts::new("audit_log baseline");
    for relid in members.iter_oid() {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as _);
        let table = ((*(*rel).rd_rel).relkind as u8 == pg_sys::RELKIND_RELATION)
            .then(|| catalog::table_info(rel))
            .flatten()
            .filter(|table| table.root == target);
        if let Some(table) = table {
            settings::enforce_actor(&table.entity);
            in_server_style(&table, || {
                let scan = pg_sys::table_beginscan(
                    rel,
                    pg_sys::GetActiveSnapshot(),
                    0,
                    std::ptr::null_mut(),
                );
                let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
                while pg_sys::table_scan_getnextslot(
                    scan,
                    pg_sys::ScanDirection::ForwardScanDirection,
                    slot,
                ) {
                    let mut should_free = false;
                    let tuple = pg_sys::ExecFetchSlotHeapTuple(slot, false, &mut should_free);
                    let memory = pg_sys::MemoryContextSwitchTo(rows_memory.value());
                    let row = Row::deform(tuple, (*rel).rd_att, &table);
                    storage::append(&Event {
                        entity_id: row.entity_id(&table),
                        new_values: Some(row.render(&table)),
                        ..Event::about(&table.entity, c"BASELINE")
                    });
                    pg_sys::MemoryContextSwitchTo(memory);
                    if should_free {
                        pg_sys::heap_freetuple(tuple);
                    }
                    recorded += 1;
                    if recorded.is_multiple_of(BASELINE_BATCH) {
                        pg_sys::MemoryContextReset(rows_memory.value());
                    }
                    pgrx::check_for_interrupts!();
                }
                pg_sys::ExecDropSingleTupleTableSlot(slot);
                pg_sys::table_endscan(scan);
            });
        }
        pg_sys::table_close(rel, pg_sys::NoLock as _);
    }
    pg_sys::Datum::from(recorded as i64)
}
