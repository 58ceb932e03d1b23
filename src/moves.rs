//! Rows moved to another partition by an UPDATE (or MERGE) of the partition key.
//!
//! PostgreSQL runs such an UPDATE as a DELETE from the partition the row leaves
//! and an INSERT into the one it joins, queues their AFTER ROW events one
//! after the other, and fires them in that order at the end of the
//! statement. Recorded as they fire, the record would look deleted. The
//! DELETE's old tuple tells that the row moved (its t_ctid carries the "moved
//! partitions" mark) and its cmax is the statement's command id, which the
//! new tuple carries as its cmin: the departure waits for the arrival with
//! the same tracked table and command, and the pair becomes one UPDATE event.
//!
//! A departure whose arrival never comes (a BEFORE INSERT trigger of the new
//! partition may skip the row) is recorded as the DELETE it then is: before
//! the next event of the same statement, at the latest when the statement's
//! executor ends. Events of other statements in between (run by other
//! triggers, whose queries nest inside the statement's executor) neither
//! flush it nor, when their savepoint is rolled back, take it with them.
//!
//! MERGE is the one statement that both moves and inserts rows: an arrival
//! right after a departure may then be a new row, when the moved row's
//! INSERT was skipped. Where a partition of the table has a BEFORE INSERT
//! trigger that could skip it, a MERGE's departure and arrival are recorded
//! as the DELETE and INSERT they may be, never paired on a guess.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::pg_sys;

use crate::backend::BackendLocal;
use crate::capture;
use crate::catalog::TableInfo;
use crate::ffi::find_all_inheritors;
use crate::storage;

/// A row that left its partition, copied into transaction memory.
pub struct Departed {
    pub table: Rc<TableInfo>,
    pub desc: pg_sys::TupleDesc,
    pub tuple: pg_sys::HeapTuple,
    command: pg_sys::CommandId,
    /// Executors running when it left: its statement's is the innermost.
    depth: usize,
    /// The subtransaction it left in: rolled back, the move never happened.
    nest_level: i32,
    by_merge: bool,
}

impl Departed {
    pub unsafe fn release(self) {
        pg_sys::heap_freetuple(self.tuple);
        pg_sys::FreeTupleDesc(self.desc);
    }
}

static PENDING: BackendLocal<RefCell<Vec<Departed>>> = BackendLocal::new(RefCell::new(Vec::new()));

/// At a DELETE: keeps the row and returns true when it is moving to another
/// partition.
pub unsafe fn departure(
    table: &Rc<TableInfo>,
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
) -> bool {
    let header = (*tuple).t_data;
    if !moved_to_another_partition(&(*header).t_ctid) {
        return false;
    }
    let command = pg_sys::HeapTupleHeaderGetCmax(header);
    let (depth, operation) = storage::executor_running();
    let memory = pg_sys::MemoryContextSwitchTo(pg_sys::TopTransactionContext);
    let departed = Departed {
        table: Rc::clone(table),
        // With its constraints: a column added with a default since the row
        // was written reads that default from the descriptor, not the tuple.
        desc: pg_sys::CreateTupleDescCopyConstr(desc),
        tuple: pg_sys::heap_copytuple(tuple),
        command,
        depth,
        nest_level: pg_sys::GetCurrentTransactionNestLevel(),
        by_merge: operation == Some(pg_sys::CmdType::CMD_MERGE),
    };
    pg_sys::MemoryContextSwitchTo(memory);
    PENDING.get().borrow_mut().push(departed);
    true
}

/// At an INSERT: the departed row this one is, if any.
pub unsafe fn arrival(table: &TableInfo, tuple: pg_sys::HeapTuple) -> Option<Departed> {
    let command = pg_sys::HeapTupleHeaderGetCmin((*tuple).t_data);
    let (position, by_merge) = {
        let pending = PENDING.get().borrow();
        let position = pending
            .iter()
            .rposition(|d| d.table.root == table.root && d.command == command)?;
        (position, pending[position].by_merge)
    };
    if by_merge && inserts_may_be_skipped(table.root) {
        return None;
    }
    Some(PENDING.get().borrow_mut().remove(position))
}

/// Before another event of the statement with this command id: its
/// departures still waiting were deleted rows.
pub fn flush_before(command: pg_sys::CommandId) {
    flush_where(|d| d.command == command);
}

/// Before commit: every departure still waiting was a deleted row.
pub fn flush() {
    flush_where(|_| true);
}

/// The innermost executor ends: the arrivals of its statement (and of any
/// statement nested in it) have all fired.
pub fn flush_at_statement_end() {
    let (depth, _) = storage::executor_running();
    flush_where(|d| d.depth >= depth);
}

fn flush_where(ended: impl Fn(&Departed) -> bool) {
    // Taken out one at a time: recording runs PostgreSQL code, which must
    // find no borrow held.
    loop {
        let next = {
            let mut pending = PENDING.get().borrow_mut();
            pending
                .iter()
                .position(&ended)
                .map(|position| pending.remove(position))
        };
        match next {
            Some(departed) => unsafe { capture::record_departure_as_delete(departed) },
            None => break,
        }
    }
}

/// A savepoint rolled back: the moves that began inside it are undone.
pub fn forget_subtransaction() {
    let level = unsafe { pg_sys::GetCurrentTransactionNestLevel() };
    let forgotten: Vec<Departed> = {
        let mut pending = PENDING.get().borrow_mut();
        let (forgotten, kept) = pending.drain(..).partition(|d| d.nest_level >= level);
        *pending = kept;
        forgotten
    };
    for departed in forgotten {
        unsafe { departed.release() };
    }
}

/// On abort: the copies went with the transaction's memory.
pub fn forget() {
    drop(std::mem::take(&mut *PENDING.get().borrow_mut()));
}

/// Does a partition of the tracked table (or the table) have a BEFORE INSERT
/// row trigger, which may skip a moved row's INSERT?
unsafe fn inserts_may_be_skipped(root: pg_sys::Oid) -> bool {
    let members = find_all_inheritors(root, pg_sys::AccessShareLock as _, std::ptr::null_mut());
    let members = pgrx::PgList::<pg_sys::Oid>::from_pg(members);
    let may_skip = members.iter_oid().any(|relid| {
        let rel = pg_sys::relation_open(relid, pg_sys::NoLock as _);
        let triggers = (*rel).trigdesc;
        let may_skip = !triggers.is_null() && (*triggers).trig_insert_before_row;
        pg_sys::relation_close(rel, pg_sys::NoLock as _);
        may_skip
    });
    may_skip
}

/// ItemPointerIndicatesMovedPartitions(): what heap_delete() leaves in t_ctid
/// when the row moves to another partition.
fn moved_to_another_partition(ctid: &pg_sys::ItemPointerData) -> bool {
    ctid.ip_posid as u32 == pg_sys::MovedPartitionsOffsetNumber
        && ctid.ip_blkid.bi_hi == u16::MAX
        && ctid.ip_blkid.bi_lo == u16::MAX
}
