//! Helpers of the reading and export functions (sql/reading.sql), and
//! export_csv() (sql/export.sql).

use std::ffi::{c_char, CStr, CString};

use pgrx::prelude::*;
use pgrx::{pg_sys, PgMemoryContexts};

use crate::ffi::function_info_v1;
use crate::text::{DbText, DbTextArray};

/// Splits a table name as users type it into its parts, keeping case:
/// `public.trainings` → {public, trainings}; `trainings` → {trainings};
/// `"Sales Dept"."Learners"` → {Sales Dept, Learners}; `Learners` → {Learners}.
/// Unlike SQL, unquoted names are not folded to lower case: the filter is
/// case-sensitive, with or without quotes. Stored entities parse the same way.
///
/// These helpers work on bytes in the database's encoding (see text.rs):
/// quotes, dots, commas and line ends are ASCII, and no byte of a multibyte
/// character in a server encoding is.
#[pg_extern(immutable, strict, parallel_safe)]
fn entity_parts(entity: DbText) -> DbTextArray {
    let parts = split_qualified_name(&entity.0).unwrap_or_else(|problem| {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_NAME,
            format!(
                "invalid table name \"{}\": {problem}",
                String::from_utf8_lossy(&entity.0)
            ),
            "Write schema.table or table, with double quotes around a part that contains dots or quotes."
        );
    });
    DbTextArray(parts.into_iter().map(Some).collect())
}

/// One CSV record (RFC 4180), exactly as COPY ... (FORMAT csv) writes it: a
/// NULL is an empty field, an empty string is `""`, and a field holding a comma,
/// a double quote, CR or LF is quoted with its quotes doubled.
#[pg_extern(immutable, strict, parallel_safe)]
fn csv_line(fields: DbTextArray) -> DbText {
    let mut line = Vec::new();
    for (i, field) in fields.0.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        if let Some(field) = field {
            push_csv_field(&mut line, field);
        }
    }
    DbText(line)
}

pub(crate) fn push_csv_field(line: &mut Vec<u8>, field: &[u8]) {
    if field.is_empty()
        || field
            .iter()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        line.push(b'"');
        for &b in field {
            if b == b'"' {
                line.push(b'"');
            }
            line.push(b);
        }
        line.push(b'"');
    } else {
        line.extend_from_slice(field);
    }
}

/// The first line of export_csv(): export()'s column names.
pub(crate) const CSV_HEADER: &[u8] =
    b"id,occurred_at,tx_id,actor,db_user,application_name,client_addr,\
entity,entity_id,action,changed_fields,old_values,new_values,context";

/// What export_csv() reads: export() itself, so that the selection, the
/// text of every field and the errors of bad filters are export()'s. Every
/// name is qualified and there is no operator: the caller's search_path
/// plays no part.
const EXPORT_QUERY: &CStr = c"SELECT * FROM audit_log.export($1, $2, $3, $4, $5)";

/// Rows fetched at a time, at most; fewer when rows are large, so that a
/// batch holds about BATCH_BYTES of CSV (and as much in fetched tuples).
const MAX_BATCH: usize = 1000;
const BATCH_BYTES: usize = 1 << 20;

/// Called in FROM, export_csv() must hand over a tuplestore: it keeps this
/// much in memory at most, the rest goes to a temporary file.
const MATERIALIZE_KB: i32 = 1024;

/// The SPI calls that plan and run export()'s query, declared without pgrx's
/// guard: an error there (a bad filter, a missing right, a cancel) reaches
/// the caller as Postgres raised it. pgrx would catch it and raise a copy
/// without its CONTEXT, its text made UTF-8 whatever the database encoding.
/// They are only called from frames that hold nothing to drop (see
/// audit_log_export_csv), which such an error unwinds by longjmp.
mod unguarded {
    use pgrx::pg_sys;
    use std::ffi::{c_char, c_int, c_long};

    unsafe extern "C-unwind" {
        pub fn SPI_connect() -> c_int;
        pub fn SPI_cursor_open_with_args(
            name: *const c_char,
            src: *const c_char,
            nargs: c_int,
            argtypes: *mut pg_sys::Oid,
            values: *mut pg_sys::Datum,
            nulls: *const c_char,
            read_only: bool,
            cursor_options: c_int,
        ) -> pg_sys::Portal;
        pub fn SPI_cursor_find(name: *const c_char) -> pg_sys::Portal;
        pub fn SPI_cursor_fetch(portal: pg_sys::Portal, forward: bool, count: c_long);
    }
}

function_info_v1!(pg_finfo_audit_log_export_csv);

/// `audit_log.export_csv(since, until, actor, entity, action) RETURNS SETOF text`:
/// the header, then export()'s rows as CSV lines, exactly as COPY ... (FORMAT
/// csv) writes them.
///
/// It used to be a SQL function (the header UNION ALL csv_line() over
/// export()), inlined when called in FROM. Called in the SELECT list, as in
/// `psql -XAtc "SELECT audit_log.export_csv()"`, it is not: PostgreSQL 15
/// (as every version before 18) plans its body once, for any argument, and
/// for unknown bounds picks a bitmap scan and a sort of the whole selection,
/// whose memory grows with it (the sort's work_mem, as much again for the
/// bitmap, then temporary files); PostgreSQL 18 plans it for the arguments,
/// for all rows, and sorts a selection of a million events of ten as COPY of
/// export() does. Here
/// export() is read through a cursor planned for the arguments given and for
/// its first rows (the index scan in export()'s order, nothing sorted), in
/// batches, and each call returns one line: memory does not depend on the
/// number of events.
///
/// Not SECURITY DEFINER: the cursor runs with the caller's rights, as export()
/// would, and reads with the caller's snapshot, as a STABLE function does.
///
/// No `#[pg_guard]` here: this frame holds nothing to drop, only pointers,
/// so that the unguarded SPI calls may raise through it; the Rust work is
/// done in guarded functions, which have returned when those calls are made.
#[no_mangle]
pub unsafe extern "C-unwind" fn audit_log_export_csv(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    if export_materializes(fcinfo) {
        let export = materialize_begin(fcinfo);
        open_export(fcinfo, export);
        loop {
            materialize_batch(fcinfo, export);
            let cursor = cursor_to_read(export);
            if cursor.is_null() {
                break;
            }
            fetch(cursor, export);
            take_batch(export);
        }
        return materialize_end(fcinfo);
    }
    if (*(*fcinfo).flinfo).fn_extra.is_null() {
        let export = per_call_begin(fcinfo);
        open_export(fcinfo, export);
        return per_call_line(fcinfo, export);
    }
    let export = per_call_state(fcinfo);
    let cursor = cursor_to_read(export);
    if !cursor.is_null() {
        fetch(cursor, export);
        take_batch(export);
    }
    per_call_line(fcinfo, export)
}

/// An export being read: the cursor's name (None once closed), the rows to
/// ask for next, and the current batch as CSV lines end to end (the header
/// is the first batch).
struct CsvExport {
    cursor: Option<CString>,
    batch: usize,
    lines: Vec<u8>,
    ends: Vec<usize>,
    next: usize,
    /// Of a SELECT-list call: the expression context it registered
    /// close_export_cursor() with.
    econtext: *mut pg_sys::ExprContext,
}

impl CsvExport {
    fn new() -> CsvExport {
        CsvExport {
            cursor: None,
            batch: MAX_BATCH,
            lines: CSV_HEADER.to_vec(),
            ends: vec![CSV_HEADER.len()],
            next: 0,
            econtext: std::ptr::null_mut(),
        }
    }

    fn next_line(&mut self) -> Option<&[u8]> {
        let end = *self.ends.get(self.next)?;
        let start = match self.next {
            0 => 0,
            n => self.ends[n - 1],
        };
        self.next += 1;
        Some(&self.lines[start..end])
    }

    fn forget_batch(&mut self) {
        self.lines = Vec::new();
        self.ends = Vec::new();
        self.next = 0;
    }
}

/// Which protocol: materialize when the executor prefers it (export_csv()
/// in FROM, where it stores every row in a tuplestore whatever we do), else
/// value per call (the SELECT list, rows going out one by one).
#[pg_guard]
unsafe extern "C-unwind" fn export_materializes(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    use pg_sys::SetFunctionReturnMode::*;
    if (*fcinfo).nargs != 5 {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_FUNCTION_DEFINITION,
            "audit_log_export_csv takes export()'s five arguments"
        );
    }
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    if rsinfo.is_null() || !pgrx::is_a(rsinfo.cast(), pg_sys::NodeTag::T_ReturnSetInfo) {
        cannot_accept_a_set();
    }
    let modes = (*rsinfo).allowedModes as u32;
    if modes & SFRM_Materialize != 0
        && modes & SFRM_Materialize_Preferred != 0
        && !(*rsinfo).expectedDesc.is_null()
    {
        return true;
    }
    if modes & SFRM_ValuePerCall == 0 {
        cannot_accept_a_set();
    }
    false
}

fn cannot_accept_a_set() -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        "set-valued function called in context that cannot accept a set"
    );
}

/// Opens the cursor over export() with export_csv()'s arguments: bad filters
/// fail here, before any line goes out, with export()'s errors. Unguarded
/// (see `unguarded`): nothing here needs dropping.
unsafe fn open_export(fcinfo: pg_sys::FunctionCallInfo, export: *mut CsvExport) {
    let mut types = [
        pg_sys::TIMESTAMPTZOID,
        pg_sys::TIMESTAMPTZOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
    ];
    let mut values = [pg_sys::Datum::from(0); 5];
    let mut nulls = [b'n' as c_char; 5];
    let args = (*fcinfo).args.as_slice(5).iter();
    for ((arg, value), null) in args.zip(&mut values).zip(&mut nulls) {
        if !arg.isnull {
            *value = arg.value;
            *null = b' ' as c_char;
        }
    }
    unguarded::SPI_connect();
    // read_only: the caller's snapshot, no command counter increment. Planned
    // as DECLARE plans a cursor, for its first rows (cursor_tuple_fraction):
    // the index scan in export()'s order rather than a bitmap scan and a sort
    // of the whole selection, which a plan for all rows prefers for some
    // (COPY of export() sorts a million events of ten). NO SCROLL: nothing
    // kept to read backwards.
    let portal = unguarded::SPI_cursor_open_with_args(
        std::ptr::null(),
        EXPORT_QUERY.as_ptr(),
        5,
        types.as_mut_ptr(),
        values.as_mut_ptr(),
        nulls.as_ptr(),
        true,
        (pg_sys::CURSOR_OPT_FAST_PLAN | pg_sys::CURSOR_OPT_NO_SCROLL) as _,
    );
    cursor_opened(export, portal);
}

#[pg_guard]
unsafe extern "C-unwind" fn cursor_opened(export: *mut CsvExport, portal: pg_sys::Portal) {
    (*export).cursor = Some(CStr::from_ptr((*portal).name).to_owned());
    pg_sys::SPI_finish();
}

/// The open cursor's name once the batch is read, null at the end.
#[pg_guard]
unsafe extern "C-unwind" fn cursor_to_read(export: *mut CsvExport) -> *const c_char {
    match &(*export).cursor {
        Some(name) if (*export).next == (*export).ends.len() => name.as_ptr(),
        _ => std::ptr::null(),
    }
}

/// Fetches the next rows into SPI_tuptable, leaving SPI connected for
/// take_batch(). Unguarded (see `unguarded`): errors of export()'s query
/// surface here.
unsafe fn fetch(cursor: *const c_char, export: *mut CsvExport) {
    unguarded::SPI_connect();
    let portal = unguarded::SPI_cursor_find(cursor);
    if portal.is_null() {
        cursor_gone();
    }
    unguarded::SPI_cursor_fetch(portal, true, batch_size(export));
}

#[pg_guard]
unsafe extern "C-unwind" fn batch_size(export: *mut CsvExport) -> std::ffi::c_long {
    (*export).batch as _
}

#[pg_guard]
unsafe extern "C-unwind" fn cursor_gone() {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_INVALID_CURSOR_STATE,
        "audit_log.export_csv(): its cursor was closed"
    );
}

/// The fetched rows as CSV lines, in place of the previous batch; none left:
/// the cursor is closed. Ends the SPI connection fetch() made.
#[pg_guard]
unsafe extern "C-unwind" fn take_batch(export: *mut CsvExport) {
    let export = &mut *export;
    export.lines.clear();
    export.ends.clear();
    export.next = 0;
    let rows = pg_sys::SPI_processed as usize;
    let table = pg_sys::SPI_tuptable;
    if rows == 0 || table.is_null() {
        if let Some(name) = export.cursor.take() {
            let portal = pg_sys::SPI_cursor_find(name.as_ptr());
            if !portal.is_null() {
                pg_sys::SPI_cursor_close(portal);
            }
        }
    } else {
        let desc = (*table).tupdesc;
        let natts = (*desc).natts as usize;
        let mut values = vec![pg_sys::Datum::from(0); natts];
        let mut nulls = vec![false; natts];
        for i in 0..rows {
            pg_sys::heap_deform_tuple(
                *(*table).vals.add(i),
                desc,
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
            );
            for (column, (value, null)) in values.iter().zip(&nulls).enumerate() {
                if column > 0 {
                    export.lines.push(b',');
                }
                if !null {
                    // Detoasted if need be in SPI's memory, which
                    // SPI_finish() frees below.
                    let text = pg_sys::pg_detoast_datum_packed(value.cast_mut_ptr());
                    push_csv_field(
                        &mut export.lines,
                        std::slice::from_raw_parts(
                            pgrx::varlena::vardata_any(text) as *const u8,
                            pgrx::varlena::varsize_any_exhdr(text),
                        ),
                    );
                }
            }
            export.ends.push(export.lines.len());
        }
        // Next time, as many rows as make about BATCH_BYTES.
        let per_row = export.lines.len() / rows + 1;
        export.batch = (BATCH_BYTES / per_row).clamp(1, MAX_BATCH);
    }
    pg_sys::SPI_finish();
    // What a batch of very long lines took is not kept.
    if export.lines.capacity() > 4 * BATCH_BYTES {
        export.lines.shrink_to(BATCH_BYTES);
    }
}

/// A text datum of these bytes, in the current memory context.
unsafe fn text_datum(bytes: &[u8]) -> pg_sys::Datum {
    pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
        bytes.as_ptr().cast(),
        bytes.len() as _,
    ))
}

/// Value per call, first call: the state, kept as long as the query's
/// memory (its buffers are Rust's, freed with it, even after an error);
/// close_export_cursor() closes the cursor if the query stops reading early.
#[pg_guard]
unsafe extern "C-unwind" fn per_call_begin(fcinfo: pg_sys::FunctionCallInfo) -> *mut CsvExport {
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    let econtext = (*rsinfo).econtext;
    let funcctx = pg_sys::init_MultiFuncCall(fcinfo);
    let export = PgMemoryContexts::For((*econtext).ecxt_per_query_memory)
        .leak_and_drop_on_delete(CsvExport::new());
    (*export).econtext = econtext;
    (*funcctx).user_fctx = export.cast();
    pg_sys::RegisterExprContextCallback(
        econtext,
        Some(close_export_cursor),
        pg_sys::Datum::from(export),
    );
    export
}

#[pg_guard]
unsafe extern "C-unwind" fn per_call_state(fcinfo: pg_sys::FunctionCallInfo) -> *mut CsvExport {
    (*pg_sys::per_MultiFuncCall(fcinfo)).user_fctx.cast()
}

/// Value per call: the next line, or the end of the set.
#[pg_guard]
unsafe extern "C-unwind" fn per_call_line(
    fcinfo: pg_sys::FunctionCallInfo,
    export: *mut CsvExport,
) -> pg_sys::Datum {
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    let funcctx = pg_sys::per_MultiFuncCall(fcinfo);
    if let Some(line) = (*export).next_line() {
        (*funcctx).call_cntr += 1;
        (*rsinfo).isDone = pg_sys::ExprDoneCond::ExprMultipleResult;
        return text_datum(line);
    }
    // The cursor is closed (take_batch()): nothing left to do at shutdown.
    pg_sys::UnregisterExprContextCallback(
        (*export).econtext,
        Some(close_export_cursor),
        pg_sys::Datum::from(export),
    );
    (*export).forget_batch();
    pg_sys::end_MultiFuncCall(fcinfo, funcctx);
    (*rsinfo).isDone = pg_sys::ExprDoneCond::ExprEndResult;
    (*fcinfo).isnull = true;
    pg_sys::Datum::from(0)
}

/// The query is done with export_csv() before its end (LIMIT, EXISTS, a
/// rescan): close the cursor now rather than at the end of the transaction,
/// and free the batch. Not called after an error, whose abort closes cursors.
#[pg_guard]
unsafe extern "C-unwind" fn close_export_cursor(arg: pg_sys::Datum) {
    let export = &mut *arg.cast_mut_ptr::<CsvExport>();
    if let Some(name) = export.cursor.take() {
        let portal = pg_sys::SPI_cursor_find(name.as_ptr());
        if !portal.is_null() {
            pg_sys::SPI_cursor_close(portal);
        }
    }
    export.forget_batch();
}

/// Materialize: the state, and a tuplestore that keeps at most
/// MATERIALIZE_KB in memory (the executor's would keep up to work_mem), both
/// as long-lived as the query's memory.
#[pg_guard]
unsafe extern "C-unwind" fn materialize_begin(fcinfo: pg_sys::FunctionCallInfo) -> *mut CsvExport {
    use pg_sys::SetFunctionReturnMode::*;
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    let random_access = (*rsinfo).allowedModes as u32 & SFRM_Materialize_Random != 0;
    let mut per_query = PgMemoryContexts::For((*(*rsinfo).econtext).ecxt_per_query_memory);
    per_query.switch_to(|_| {
        (*rsinfo).setDesc = pg_sys::CreateTupleDescCopy((*rsinfo).expectedDesc);
        (*rsinfo).setResult = pg_sys::tuplestore_begin_heap(
            random_access,
            false,
            MATERIALIZE_KB.min(pg_sys::work_mem),
        );
    });
    per_query.leak_and_drop_on_delete(CsvExport::new())
}

/// Materialize: the batch's lines into the tuplestore, which copies them.
#[pg_guard]
unsafe extern "C-unwind" fn materialize_batch(
    fcinfo: pg_sys::FunctionCallInfo,
    export: *mut CsvExport,
) {
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    let mut line_memory = PgMemoryContexts::new("audit_log export_csv line");
    while let Some(line) = (*export).next_line() {
        line_memory.switch_to(|_| {
            // Raw mutable pointers: PostgreSQL 15 declares them so.
            let mut value = text_datum(line);
            let mut null = false;
            pg_sys::tuplestore_putvalues(
                (*rsinfo).setResult,
                (*rsinfo).setDesc,
                &raw mut value,
                &raw mut null,
            );
        });
        line_memory.reset();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn materialize_end(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    (*rsinfo).returnMode = pg_sys::SetFunctionReturnMode::SFRM_Materialize;
    (*fcinfo).isnull = true;
    pg_sys::Datum::from(0)
}

/// `occurred_at` for export: UTC, ISO 8601, always six fractional digits
/// (`2026-11-21T09:30:00.123456Z`), whatever TimeZone and DateStyle say.
/// Formatting the integer timestamp directly is several times faster than
/// to_char(), and export speed is what auditors wait for.
#[pg_extern(immutable, strict, parallel_safe)]
fn iso_utc(at: pgrx::datum::TimestampWithTimeZone) -> String {
    let micros: i64 = at.into_inner();
    match micros {
        i64::MIN => "-infinity".into(),
        i64::MAX => "infinity".into(),
        _ => format_utc_micros(micros),
    }
}

/// Microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's epoch) as ISO 8601.
pub(crate) fn format_utc_micros(micros: i64) -> String {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let days = micros.div_euclid(MICROS_PER_DAY);
    let of_day = micros.rem_euclid(MICROS_PER_DAY);
    // Days since 1970-01-01, then the civil date (Howard Hinnant's algorithm).
    let z = days + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let seconds = of_day / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        of_day % 1_000_000
    )
}

/// A text array as a JSON array of strings (`["price", "stock"]`), as
/// to_jsonb(text[])::text prints it, for changed_fields in export.
#[pg_extern(immutable, strict, parallel_safe)]
fn json_text_array(items: DbTextArray) -> DbText {
    let mut json = vec![b'['];
    for (i, item) in items.0.iter().enumerate() {
        if i > 0 {
            json.extend_from_slice(b", ");
        }
        match item {
            Some(item) => push_json_string(&mut json, item),
            None => json.extend_from_slice(b"null"),
        }
    }
    json.push(b']');
    DbText(json)
}

/// A JSON string literal, escaped as PostgreSQL's escape_json() does.
fn push_json_string(json: &mut Vec<u8>, s: &[u8]) {
    json.push(b'"');
    for &b in s {
        match b {
            b'"' => json.extend_from_slice(b"\\\""),
            b'\\' => json.extend_from_slice(b"\\\\"),
            b'\n' => json.extend_from_slice(b"\\n"),
            b'\r' => json.extend_from_slice(b"\\r"),
            b'\t' => json.extend_from_slice(b"\\t"),
            0x08 => json.extend_from_slice(b"\\b"),
            0x0c => json.extend_from_slice(b"\\f"),
            b if b < 0x20 => json.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => json.push(b),
        }
    }
    json.push(b'"');
}

fn split_qualified_name(input: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut parts = Vec::new();
    let mut bytes = input.iter().copied().peekable();
    loop {
        let mut part = Vec::new();
        if bytes.peek() == Some(&b'"') {
            bytes.next();
            loop {
                match bytes.next() {
                    Some(b'"') if bytes.peek() == Some(&b'"') => {
                        bytes.next();
                        part.push(b'"');
                    }
                    Some(b'"') => break,
                    Some(b) => part.push(b),
                    None => return Err("unterminated quoted identifier"),
                }
            }
        } else {
            while let Some(&b) = bytes.peek() {
                if b == b'.' {
                    break;
                }
                if b == b'"' {
                    return Err("a double quote inside an unquoted name");
                }
                part.push(b);
                bytes.next();
            }
        }
        if part.is_empty() {
            return Err("empty name");
        }
        parts.push(part);
        match bytes.next() {
            None => break,
            Some(b'.') => continue,
            Some(_) => return Err("text after a quoted name"),
        }
    }
    if parts.len() > 2 {
        return Err("more than schema.table");
    }
    Ok(parts)
}

#[cfg(test)]
mod unit_tests {
    use super::push_csv_field;

    fn csv(field: &str) -> String {
        let mut line = Vec::new();
        push_csv_field(&mut line, field.as_bytes());
        String::from_utf8(line).unwrap()
    }

    fn split(name: &str) -> Result<Vec<String>, &'static str> {
        super::split_qualified_name(name.as_bytes()).map(|parts| {
            parts
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect()
        })
    }

    #[test]
    fn formats_utc_instants_with_microseconds() {
        use super::format_utc_micros as iso;
        assert_eq!(iso(0), "2000-01-01T00:00:00.000000Z");
        assert_eq!(iso(-1), "1999-12-31T23:59:59.999999Z");
        // 2026-11-21 09:30:00.123456 UTC
        assert_eq!(iso(848_568_600_123_456), "2026-11-21T09:30:00.123456Z");
        // 2024-02-29, a leap day, and 2100-03-01 after a non-leap February.
        assert_eq!(iso(762_480_000_000_000), "2024-02-29T00:00:00.000000Z");
        assert_eq!(iso(3_160_857_600_000_000), "2100-03-01T00:00:00.000000Z");
    }

    #[test]
    fn escapes_json_strings_as_postgres_does() {
        let mut json = Vec::new();
        super::push_json_string(&mut json, "a\"b\\c\nd\u{1}é🎓".as_bytes());
        assert_eq!(String::from_utf8(json).unwrap(), r#""a\"b\\c\nd\u0001é🎓""#);
        // A LATIN1 byte is a character like any other.
        let mut json = Vec::new();
        super::push_json_string(&mut json, b"caf\xe9");
        assert_eq!(json, b"\"caf\xe9\"");
    }

    #[test]
    fn quotes_csv_fields_as_copy_does() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv(""), "\"\"");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("cr\r"), "\"cr\r\"");
        assert_eq!(csv("back\\slash 🎓"), "back\\slash 🎓");
    }

    #[test]
    fn splits_the_forms_users_type() {
        assert_eq!(split("public.trainings").unwrap(), ["public", "trainings"]);
        assert_eq!(split("trainings").unwrap(), ["trainings"]);
        assert_eq!(
            split("\"Sales Dept\".\"Learners\"").unwrap(),
            ["Sales Dept", "Learners"]
        );
        assert_eq!(split("Learners").unwrap(), ["Learners"]);
        assert_eq!(
            split("\"a.b\".\"say \"\"hi\"\"\"").unwrap(),
            ["a.b", "say \"hi\""]
        );
        assert_eq!(split("Sales.\"Learners\"").unwrap(), ["Sales", "Learners"]);
    }

    #[test]
    fn refuses_what_names_no_table() {
        for bad in [
            "", ".", "a.", ".a", "a.b.c", "\"open", "\"a\"b", "a\"b", "\"\"",
        ] {
            assert!(split(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
