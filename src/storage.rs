//! Appending events to `audit_log.events` and reading the tracking configuration.
//!
//! Events are written below SQL, straight into the heap and its indexes: no
//! parsing or planning per event, no privilege check (the writer needs no right
//! on the log, which is written with the extension's authority), no search_path
//! and no trigger on the log in the way.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::backend::BackendLocal;
use crate::ddl;
use crate::ffi::{attributes, nextval_internal};
use crate::settings;

/// The extension's own relations, looked up once per backend.
#[derive(Clone, Copy)]
pub struct Objects {
    pub events: pg_sys::Oid,
    pub events_seq: pg_sys::Oid,
    pub tracked: pg_sys::Oid,
    pub tracked_pkey: pg_sys::Oid,
}

impl Objects {
    fn oids(&self) -> [pg_sys::Oid; 4] {
        [
            self.events,
            self.events_seq,
            self.tracked,
            self.tracked_pkey,
        ]
    }
}

static OBJECTS: BackendLocal<Cell<Option<Objects>>> = BackendLocal::new(Cell::new(None));

pub fn objects() -> Objects {
    if let Some(objects) = OBJECTS.get().get() {
        return objects;
    }
    let objects = unsafe {
        let schema = pg_sys::get_namespace_oid(c"audit_log".as_ptr(), true);
        let find = |name: &CStr| {
            if schema == pg_sys::InvalidOid {
                return pg_sys::InvalidOid;
            }
            pg_sys::get_relname_relid(name.as_ptr(), schema)
        };
        Objects {
            events: find(c"events"),
            events_seq: find(c"events_id_seq"),
            tracked: find(c"tracked"),
            tracked_pkey: find(c"tracked_pkey"),
        }
    };
    if objects.oids().contains(&pg_sys::InvalidOid) {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "the audit_log extension is not installed in this database, or its tables are missing"
        );
    }
    OBJECTS.get().set(Some(objects));
    objects
}

/// Forget the cached OIDs when one of them may have changed (DROP/CREATE EXTENSION).
pub fn invalidate(relid: pg_sys::Oid) {
    if let Some(objects) = OBJECTS.get().get() {
        if relid == pg_sys::InvalidOid || objects.oids().contains(&relid) {
            OBJECTS.get().set(None);
        }
    }
}

/// Options of a tracked table.
pub struct TrackOptions {
    pub exclude_columns: Vec<CString>,
    pub redact_columns: Vec<CString>,
}

/// The row of `audit_log.tracked` for `relid`, read with the latest snapshot so
/// that a table tracked by a transaction that committed after ours started is
/// seen together with the triggers that made us look.
pub fn tracked_options(relid: pg_sys::Oid) -> Option<TrackOptions> {
    let objects = objects();
    unsafe {
        let rel = pg_sys::table_open(objects.tracked, pg_sys::AccessShareLock as _);
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut key,
            1,
            pg_sys::BTEqualStrategyNumber as _,
            pg_sys::Oid::from(pg_sys::F_OIDEQ),
            pg_sys::Datum::from(relid),
        );
        let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
        let scan =
            pg_sys::systable_beginscan(rel, objects.tracked_pkey, true, snapshot, 1, &mut key);
        let tuple = pg_sys::systable_getnext(scan);
        let options = (!tuple.is_null()).then(|| {
            let desc = (*rel).rd_att;
            TrackOptions {
                exclude_columns: text_array_attr(tuple, desc, 2),
                redact_columns: text_array_attr(tuple, desc, 3),
            }
        });
        pg_sys::systable_endscan(scan);
        pg_sys::UnregisterSnapshot(snapshot);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as _);
        options
    }
}

unsafe fn text_array_attr(
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    attnum: i32,
) -> Vec<CString> {
    let mut isnull = false;
    let datum = pg_sys::heap_getattr(tuple, attnum, desc, &mut isnull);
    if isnull {
        return Vec::new();
    }
    crate::text::array_items(datum)
}

/// One event, as capture or tracking built it. Datums must stay valid until
/// `append` returns.
pub struct Event<'a> {
    /// NULL only for an application's event about nothing in particular, or
    /// a sign-in (log_event(), track_logins).
    pub entity: Option<&'a CStr>,
    pub action: &'a CStr,
    pub entity_id: Option<pg_sys::Datum>,
    pub old_values: Option<pg_sys::Datum>,
    pub new_values: Option<pg_sys::Datum>,
    pub changed_fields: Option<pg_sys::Datum>,
}

impl<'a> Event<'a> {
    /// An event about a whole table (TRUNCATE, TRACK, UNTRACK, DDL).
    pub fn about(entity: &'a CStr, action: &'a CStr) -> Self {
        Event {
            entity: Some(entity),
            action,
            entity_id: None,
            old_values: None,
            new_values: None,
            changed_fields: None,
        }
    }
}

const EVENT_COLUMNS: [&str; 14] = [
    "id",
    "occurred_at",
    "tx_id",
    "actor",
    "db_user",
    "application_name",
    "client_addr",
    "context",
    "entity",
    "entity_id",
    "action",
    "old_values",
    "new_values",
    "changed_fields",
];

/// The log opened for writing: relation, indexes, executor state and slot,
/// kept from one event to the next so that a statement changing a million
/// rows opens them once, not a million times. Opened under the transaction's
/// resource owner, so that subtransactions (savepoints, PL/pgSQL exception
/// blocks) can come and go, in a memory context of its own below the
/// transaction's, deleted when it closes: a transaction that opens it again
/// and again (a DDL event per statement of a long migration) does not pile up
/// what opening allocates. Closed when the statement's own executor ends
/// (see executor_ending), before a utility command, before commit, or
/// forgotten on abort, whose cleanup releases what it held.
///
/// When the log is partitioned, the writer holds the one partition that takes
/// events of the statement's start time (every event of a statement has it),
/// found from the partition bounds, never through executor tuple routing.
#[derive(Clone, Copy)]
struct Writer {
    memory: pg_sys::MemoryContext,
    rel: pg_sys::Relation,
    estate: *mut pg_sys::EState,
    result_rel: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    /// The occurred_at values `rel` takes: [from, to).
    takes: (i64, i64),
}

static WRITER: BackendLocal<Cell<Option<Writer>>> = BackendLocal::new(Cell::new(None));

fn writer(occurred_at: i64) -> Writer {
    if let Some(writer) = WRITER.get().get() {
        if writer.takes.0 <= occurred_at && occurred_at < writer.takes.1 {
            return writer;
        }
        close_writer();
    }
    let objects = objects();
    // Made here, before the writer's own resource owner and memory are in
    // place: making a partition runs SQL.
    unsafe { make_partition_if_missing(objects.events, occurred_at) };
    let writer = unsafe {
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::CurrentResourceOwner = pg_sys::TopTransactionResourceOwner;
        let writer_memory = pg_sys::AllocSetContextCreateExtended(
            pg_sys::TopTransactionContext,
            c"audit_log writer".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as _,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as _,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as _,
        );
        let memory = pg_sys::MemoryContextSwitchTo(writer_memory);
        let (target, takes) = partition_for(objects.events, occurred_at);
        let rel = pg_sys::table_open(target, pg_sys::RowExclusiveLock as _);
        check_shape((*rel).rd_att);
        let estate = pg_sys::CreateExecutorState();
        let result_rel =
            pg_sys::palloc0(size_of::<pg_sys::ResultRelInfo>()).cast::<pg_sys::ResultRelInfo>();
        (*result_rel).type_ = pg_sys::NodeTag::T_ResultRelInfo;
        pg_sys::InitResultRelInfo(result_rel, rel, 1, std::ptr::null_mut(), 0);
        pg_sys::ExecOpenIndices(result_rel, false);
        let slot = pg_sys::MakeSingleTupleTableSlot((*rel).rd_att, &pg_sys::TTSOpsHeapTuple);
        pg_sys::MemoryContextSwitchTo(memory);
        pg_sys::CurrentResourceOwner = owner;
        Writer {
            memory: writer_memory,
            rel,
            estate,
            result_rel,
            slot,
            takes,
        }
    };
    WRITER.get().set(Some(writer));
    writer
}

/// Partitions are made ahead of need (prepare_partitions()); when none takes
/// an event all the same (a clock that jumped months ahead, a log whose
/// months nobody prepared), the writer makes it, in the writing transaction,
/// rather than fail the change it records.
unsafe fn make_partition_if_missing(events: pg_sys::Oid, occurred_at: i64) {
    if find_partition(events, occurred_at).is_some() {
        return;
    }
    let make = ddl::function_oid(c"audit_log.make_partition_for(timestamptz)");
    // Through fmgr, which runs it as SECURITY DEFINER says (with the
    // extension's rights, whoever writes).
    pg_sys::OidFunctionCall1Coll(make, pg_sys::InvalidOid, pg_sys::Datum::from(occurred_at));
}

/// The relation that takes an event of `occurred_at`: the log itself, or
/// the partition whose bounds hold it (else the default partition, while
/// there is one), with the range of values it takes.
pub(crate) unsafe fn partition_for(
    events: pg_sys::Oid,
    occurred_at: i64,
) -> (pg_sys::Oid, (i64, i64)) {
    match find_partition(events, occurred_at) {
        Some(found) => found,
        None => {
            let at = CStr::from_ptr(pg_sys::timestamptz_to_str(occurred_at)).to_string_lossy();
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("audit_log.events has no partition for events written at {at}"),
                "audit_log.prepare_partitions() makes the months ahead."
            );
        }
    }
}

/// partition_for(), None when no partition takes the event. The log stays
/// locked as an INSERT through it would lock it, so that partitions are
/// attached and detached around writers as around any INSERT.
unsafe fn find_partition(
    events: pg_sys::Oid,
    occurred_at: i64,
) -> Option<(pg_sys::Oid, (i64, i64))> {
    use pg_sys::PartitionRangeDatumKind::*;
    let log = pg_sys::table_open(events, pg_sys::RowExclusiveLock as _);
    if (*(*log).rd_rel).relkind as u8 != pg_sys::RELKIND_PARTITIONED_TABLE {
        pg_sys::table_close(log, pg_sys::NoLock as _);
        return Some((events, (i64::MIN, i64::MAX)));
    }
    let partitions = pg_sys::RelationGetPartitionDesc(log, true);
    let bounds = (*partitions).boundinfo;
    // 'r': PARTITION_STRATEGY_RANGE, a constant on 15 and an enum from 16 on.
    let found = (!bounds.is_null() && (*bounds).strategy as u8 == b'r')
        .then(|| {
            let count = (*bounds).ndatums as usize;
            // Range bounds are sorted; a partition's lower bound is the
            // previous bound, its upper bound the next one.
            let bound = |i: usize| match **(*bounds).kind.add(i) {
                PARTITION_RANGE_DATUM_MINVALUE => i64::MIN,
                PARTITION_RANGE_DATUM_MAXVALUE => i64::MAX,
                _ => (**(*bounds).datums.add(i)).value() as i64,
            };
            let (mut low, mut high) = (0, count);
            while low < high {
                let middle = (low + high) / 2;
                if bound(middle) <= occurred_at {
                    low = middle + 1;
                } else {
                    high = middle;
                }
            }
            let above = low;
            let index = match *(*bounds).indexes.add(above) {
                index if index >= 0 => index,
                _ => (*bounds).default_index,
            };
            let from = if above > 0 {
                bound(above - 1)
            } else {
                i64::MIN
            };
            let to = if above < count {
                bound(above)
            } else {
                i64::MAX
            };
            (index >= 0 && *(*partitions).is_leaf.add(index as usize))
                .then(|| (*(*partitions).oids.add(index as usize), (from, to)))
        })
        .flatten();
    pg_sys::table_close(log, pg_sys::NoLock as _);
    found
}

/// Executors running now, innermost last, by operation (SELECT, UPDATE,
/// MERGE...), and how many were running when each open subtransaction began
/// (an error skips ExecutorEnd: the abort puts the count back).
struct ExecutorNesting {
    running: Vec<pg_sys::CmdType::Type>,
    at_subtransaction_start: Vec<usize>,
}

static NESTING: BackendLocal<RefCell<ExecutorNesting>> =
    BackendLocal::new(RefCell::new(ExecutorNesting {
        running: Vec::new(),
        at_subtransaction_start: Vec::new(),
    }));

pub fn executor_starting(operation: pg_sys::CmdType::Type) {
    NESTING.get().borrow_mut().running.push(operation);
}

/// How many executors are running, and the innermost one's operation: a
/// trigger fired at the end of a statement runs inside its executor.
pub fn executor_running() -> (usize, Option<pg_sys::CmdType::Type>) {
    let nesting = NESTING.get().borrow();
    (nesting.running.len(), nesting.running.last().copied())
}

/// An executor ends: the statement's own closes the log. One nested in it
/// (the query a foreign key's trigger runs between two captured rows, a
/// function's statement) leaves it open: closing there reopened the log,
/// and allocated what opening allocates, for every row.
pub fn executor_ending() {
    let outermost = {
        let mut nesting = NESTING.get().borrow_mut();
        nesting.running.pop();
        nesting.running.is_empty()
    };
    if outermost {
        close_writer();
    }
}

pub fn subtransaction_started() {
    let mut nesting = NESTING.get().borrow_mut();
    let depth = nesting.running.len();
    nesting.at_subtransaction_start.push(depth);
}

pub fn subtransaction_ended(aborted: bool) {
    let mut nesting = NESTING.get().borrow_mut();
    if let Some(depth) = nesting.at_subtransaction_start.pop() {
        if aborted {
            nesting.running.truncate(depth);
        }
    }
}

pub fn transaction_ended() {
    let mut nesting = NESTING.get().borrow_mut();
    nesting.running.clear();
    nesting.at_subtransaction_start.clear();
}

/// Closes the log after a statement, or before commit.
pub fn close_writer() {
    let Some(writer) = WRITER.get().take() else {
        return;
    };
    unsafe {
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::CurrentResourceOwner = pg_sys::TopTransactionResourceOwner;
        pg_sys::ExecDropSingleTupleTableSlot(writer.slot);
        pg_sys::ExecCloseIndices(writer.result_rel);
        pg_sys::table_close(writer.rel, pg_sys::NoLock as _);
        pg_sys::FreeExecutorState(writer.estate);
        pg_sys::MemoryContextDelete(writer.memory);
        pg_sys::CurrentResourceOwner = owner;
    }
}

/// On abort: the transaction's cleanup releases the relation and its memory.
pub fn forget_writer() {
    WRITER.get().set(None);
}

/// Append one event in the current transaction.
/// Writes one event and returns its id.
pub fn append(event: &Event) -> i64 {
    let occurred_at = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    let writer = writer(occurred_at);
    unsafe {
        let desc = (*writer.rel).rd_att;
        let text = |s: &CStr| Some(pg_sys::Datum::from(pg_sys::cstring_to_text(s.as_ptr())));
        let id = nextval_internal(objects().events_seq, false);
        let mut columns: [Option<pg_sys::Datum>; 14] = [
            Some(pg_sys::Datum::from(id)),
            Some(pg_sys::Datum::from(occurred_at)),
            Some(pg_sys::Datum::from(pg_sys::GetTopFullTransactionId().value)),
            settings::actor().and_then(text),
            text(&session_user()),
            application_name().and_then(text),
            client_addr(),
            settings::context_jsonb(),
            event.entity.and_then(text),
            event.entity_id,
            text(event.action),
            event.old_values,
            event.new_values,
            event.changed_fields,
        ];
        let natts = (*desc).natts as usize;
        let mut values = vec![pg_sys::Datum::from(0); natts];
        let mut nulls = vec![true; natts];
        for (i, column) in columns.iter_mut().enumerate() {
            if let Some(datum) = column.take() {
                values[i] = datum;
                nulls[i] = false;
            }
        }
        let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        insert_with_indexes(&writer, tuple);
        id
    }
}

/// What COPY does for one row: heap insert, then every index of the log.
unsafe fn insert_with_indexes(writer: &Writer, tuple: pg_sys::HeapTuple) {
    pg_sys::ExecStoreHeapTuple(tuple, writer.slot, false);
    pg_sys::simple_table_tuple_insert(writer.rel, writer.slot);
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    pg_sys::ExecInsertIndexTuples(
        writer.result_rel,
        writer.slot,
        writer.estate,
        false,
        false,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    pg_sys::ExecInsertIndexTuples(
        writer.result_rel,
        writer.slot,
        writer.estate,
        false,
        false,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        false,
    );
    pg_sys::ExecClearTuple(writer.slot);
    // Index expressions, if any, were evaluated in the per-tuple context.
    let per_tuple = (*writer.estate).es_per_tuple_exprcontext;
    if !per_tuple.is_null() {
        pg_sys::MemoryContextReset((*per_tuple).ecxt_per_tuple_memory);
    }
}

/// Events are built by position: refuse to write into a log whose columns were
/// altered rather than put values in the wrong place.
unsafe fn check_shape(desc: pg_sys::TupleDesc) {
    let attrs = attributes(desc);
    let matches = attrs.len() >= EVENT_COLUMNS.len()
        && EVENT_COLUMNS.iter().zip(&attrs).all(|(name, attr)| {
            !attr.attisdropped
                && CStr::from_ptr(attr.attname.data.as_ptr()).to_bytes() == name.as_bytes()
        })
        && attrs[EVENT_COLUMNS.len()..]
            .iter()
            .all(|attr| attr.attisdropped || !attr.attnotnull);
    if !matches {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "audit_log.events does not have the columns capture writes",
            "Its first columns must be, in order: id, occurred_at, tx_id, actor, db_user, application_name, client_addr, context, entity, entity_id, action, old_values, new_values, changed_fields."
        );
    }
}

/// `session_user`, cached per session user.
fn session_user() -> CString {
    static CACHE: BackendLocal<RefCell<Option<(pg_sys::Oid, CString)>>> =
        BackendLocal::new(RefCell::new(None));
    let oid = unsafe { pg_sys::GetSessionUserId() };
    if let Some((cached, name)) = CACHE.get().borrow().as_ref() {
        if *cached == oid {
            return name.clone();
        }
    }
    let name = unsafe { CStr::from_ptr(pg_sys::GetUserNameFromId(oid, false)).to_owned() };
    *CACHE.get().borrow_mut() = Some((oid, name.clone()));
    name
}

fn application_name() -> Option<&'static CStr> {
    let raw = unsafe { pg_sys::application_name };
    if raw.is_null() {
        return None;
    }
    let name = unsafe { CStr::from_ptr(raw) };
    (!name.is_empty()).then_some(name)
}

/// `inet_client_addr()`, computed once per backend (it cannot change) and kept
/// in TopMemoryContext.
fn client_addr() -> Option<pg_sys::Datum> {
    static CACHE: BackendLocal<Cell<Option<Option<pg_sys::Datum>>>> =
        BackendLocal::new(Cell::new(None));
    if let Some(addr) = CACHE.get().get() {
        return addr;
    }
    let addr = unsafe {
        pgrx::PgMemoryContexts::TopMemoryContext
            .switch_to(|_| pgrx::direct_function_call_as_datum(pg_sys::inet_client_addr, &[]))
    };
    CACHE.get().set(Some(addr));
    addr
}
