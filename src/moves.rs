//! Rows moved to another partition by an UPDATE of the partition key.
//!
//! PostgreSQL runs such an UPDATE as a DELETE from the partition the row leaves
//! and an INSERT into the one it joins, and fires their AFTER ROW triggers one
//! after the other. Recorded as they fire, the record would look deleted. The
//! DELETE's old tuple tells that the row moved (its t_ctid carries the "moved
//! partitions" mark) and its cmax is the UPDATE's command id, which the new
//! tuple carries as its cmin: the departure waits for the arrival with the
//! same tracked table and command, and the pair becomes one UPDATE event.
//!
//! A departure whose arrival never comes (a BEFORE INSERT trigger of the new
//! partition may skip the row) is recorded as the DELETE it then is, before
//! any other event and at the latest when its statement ends.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::pg_sys;

use crate::backend::BackendLocal;
use crate::capture;
use crate::catalog::TableInfo;

/// A row that left its partition, copied into transaction memory.
pub struct Departed {
    pub table: Rc<TableInfo>,
    pub desc: pg_sys::TupleDesc,
    pub tuple: pg_sys::HeapTuple,
    command: pg_sys::CommandId,
}

impl Departed {
    pub unsafe fn release(self) {
        pg_sys::heap_freetuple(self.tuple);
        pg_sys::FreeTupleDesc(self.desc);
    }
}

static PENDING: BackendLocal<RefCell<Option<Departed>>> = BackendLocal::new(RefCell::new(None));

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
    let memory = pg_sys::MemoryContextSwitchTo(pg_sys::TopTransactionContext);
    let departed = Departed {
        table: Rc::clone(table),
        desc: pg_sys::CreateTupleDescCopy(desc),
        tuple: pg_sys::heap_copytuple(tuple),
        command: pg_sys::HeapTupleHeaderGetCmax(header),
    };
    pg_sys::MemoryContextSwitchTo(memory);
    PENDING.get().replace(Some(departed));
    true
}

/// At an INSERT: the departed row this one is, if any.
pub unsafe fn arrival(table: &TableInfo, tuple: pg_sys::HeapTuple) -> Option<Departed> {
    let mut pending = PENDING.get().borrow_mut();
    if pending.as_ref().is_some_and(|departed| {
        departed.table.root == table.root
            && departed.command == pg_sys::HeapTupleHeaderGetCmin((*tuple).t_data)
    }) {
        pending.take()
    } else {
        None
    }
}

/// Records a departure still waiting as a DELETE.
pub fn flush() {
    let departed = PENDING.get().borrow_mut().take();
    if let Some(departed) = departed {
        unsafe { capture::record_departure_as_delete(departed) };
    }
}

/// The statement with this command id is over: its arrivals have all fired.
pub fn flush_at_statement_end(command: pg_sys::CommandId) {
    let ended = PENDING
        .get()
        .borrow()
        .as_ref()
        .is_some_and(|departed| departed.command == command);
    if ended {
        flush();
    }
}

/// On abort: the copies went with the transaction's memory.
pub fn forget() {
    drop(PENDING.get().borrow_mut().take());
}

/// ItemPointerIndicatesMovedPartitions(): what heap_delete() leaves in t_ctid
/// when the row moves to another partition.
fn moved_to_another_partition(ctid: &pg_sys::ItemPointerData) -> bool {
    ctid.ip_posid as u32 == pg_sys::MovedPartitionsOffsetNumber
        && ctid.ip_blkid.bi_hi == u16::MAX
        && ctid.ip_blkid.bi_lo == u16::MAX
}
