//! The CSV of an export, read one record at a time: what
//! `\copy (SELECT * FROM audit_log.export(...)) TO 'f.csv' WITH (FORMAT csv,
//! HEADER)` writes, and what `psql -XAtc "SELECT audit_log.export_csv(...)"`
//! writes (the same bytes). NULL is an empty unquoted field and an empty
//! string is `""`: the two hash differently, so they must not be confused.
//!
//! Memory does not grow with the file: input goes through a fixed buffer,
//! and only the record being read is held (a field may still be large, such
//! as a row's JSON).

use std::io::{ErrorKind, Read};

use csv_core::{ReadFieldResult, Reader, ReaderBuilder, Terminator};

/// The columns of `audit_log.export()`, in order: the header line.
pub const COLUMNS: [&str; 14] = [
    "id",
    "occurred_at",
    "tx_id",
    "actor",
    "db_user",
    "application_name",
    "client_addr",
    "entity",
    "entity_id",
    "action",
    "changed_fields",
    "old_values",
    "new_values",
    "context",
];

const INPUT_BUFFER_BYTES: usize = 64 * 1024;
const OUTPUT_BUFFER_BYTES: usize = 64 * 1024;
const UTF8_BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// One record: `fields[i]` is column `COLUMNS[i]`, `None` for NULL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvRow {
    /// The line where the record starts (1-based; the header is line 1).
    pub line: u64,
    pub fields: [Option<Vec<u8>>; 14],
}

pub struct CsvRows<R: Read> {
    source: R,
    source_exhausted: bool,
    parser: Reader,
    input: Box<[u8]>,
    input_start: usize,
    input_end: usize,
    output: Box<[u8]>,
    bytes_parsed: u64,
    newlines_parsed: u64,
    last_two_parsed: [u8; 2],
}

/// A record as parsed, before its shape is checked.
struct Record {
    line: u64,
    field_count: usize,
    /// The first 14 fields; more are counted, not kept.
    fields: [Option<Vec<u8>>; 14],
}

impl<R: Read> CsvRows<R> {
    /// Reads and checks the header line.
    pub fn new(source: R) -> Result<Self, String> {
        let mut rows = CsvRows {
            source,
            source_exhausted: false,
            // PostgreSQL ends lines with LF only; with csv_core's default
            // (CR, LF or CRLF) a CR could end a record unnoticed.
            parser: ReaderBuilder::new()
                .terminator(Terminator::Any(b'\n'))
                .build(),
            input: vec![0; INPUT_BUFFER_BYTES].into_boxed_slice(),
            input_start: 0,
            input_end: 0,
            output: vec![0; OUTPUT_BUFFER_BYTES].into_boxed_slice(),
            bytes_parsed: 0,
            newlines_parsed: 0,
            last_two_parsed: [0; 2],
        };
        rows.refuse_byte_order_mark()?;
        let Some(header) = rows.next_record()? else {
            return Err(format!(
                "the file is empty; an export begins with the header line {}",
                COLUMNS.join(",")
            ));
        };
        let names_match = header.field_count == COLUMNS.len()
            && header
                .fields
                .iter()
                .zip(COLUMNS)
                .all(|(field, name)| field.as_deref() == Some(name.as_bytes()));
        if !names_match {
            let found: Vec<String> = header
                .fields
                .iter()
                .take(header.field_count)
                .map(|field| {
                    String::from_utf8_lossy(field.as_deref().unwrap_or_default()).into_owned()
                })
                .collect();
            let more = header.field_count.saturating_sub(COLUMNS.len());
            let more = if more > 0 {
                format!(" and {more} more fields")
            } else {
                String::new()
            };
            return Err(format!(
                "line 1: the header must be {}; found {}{more}",
                COLUMNS.join(","),
                found.join(",")
            ));
        }
        Ok(rows)
    }

    /// The next record, `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<CsvRow>, String> {
        let Some(record) = self.next_record()? else {
            return Ok(None);
        };
        if record.field_count != COLUMNS.len() {
            return Err(format!(
                "line {}: {} fields where an export has {}",
                record.line,
                record.field_count,
                COLUMNS.len()
            ));
        }
        for (field, name) in record.fields.iter().zip(COLUMNS) {
            if let Some(bytes) = field {
                if std::str::from_utf8(bytes).is_err() {
                    return Err(format!("line {}: {name} is not valid UTF-8", record.line));
                }
            }
        }
        Ok(Some(CsvRow {
            line: record.line,
            fields: record.fields,
        }))
    }

    /// The bytes of the file parsed so far: at the end, the file's size.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_parsed
    }

    /// csv_core strips a byte order mark only when it arrives whole in one
    /// read, and takes a file of exactly those 3 bytes for an empty one;
    /// PostgreSQL never writes one, so its presence means another program
    /// rewrote the file.
    fn refuse_byte_order_mark(&mut self) -> Result<(), String> {
        while self.input_end < UTF8_BYTE_ORDER_MARK.len() && !self.source_exhausted {
            self.read_more()?;
        }
        if self.input[..self.input_end].starts_with(UTF8_BYTE_ORDER_MARK) {
            return Err("the file begins with a UTF-8 byte order mark, which PostgreSQL does not write: use the file as exported".into());
        }
        Ok(())
    }

    fn next_record(&mut self) -> Result<Option<Record>, String> {
        let line = self.newlines_parsed + 1;
        self.fill_input()?;
        // csv_core skips empty lines silently, and a line it skipped would
        // also throw off line numbers and the NULL test below.
        if self.input[self.input_start..self.input_end].first() == Some(&b'\n') {
            return Err(format!(
                "line {line} is empty; an export has no empty lines"
            ));
        }
        let mut record = Record {
            line,
            field_count: 0,
            fields: Default::default(),
        };
        let mut value = Vec::new();
        let mut value_input_bytes = 0u64;
        loop {
            self.fill_input()?;
            let input = &self.input[self.input_start..self.input_end];
            let (result, read, written) = self.parser.read_field(input, &mut self.output);
            self.note_parsed(read);
            value_input_bytes += read as u64;
            if record.field_count < COLUMNS.len() {
                value.extend_from_slice(&self.output[..written]);
            }
            match result {
                ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull => continue,
                ReadFieldResult::End => {
                    return Ok((record.field_count > 0).then_some(record));
                }
                ReadFieldResult::Field { record_end } => {
                    // csv_core counts the delimiter (or line end) with the
                    // field it ends: an unquoted empty field took at most
                    // that one byte, while `""` took at least two.
                    let is_null = value.is_empty() && value_input_bytes <= 1;
                    if record.field_count < COLUMNS.len() {
                        record.fields[record.field_count] =
                            (!is_null).then(|| std::mem::take(&mut value));
                    }
                    value.clear();
                    value_input_bytes = 0;
                    record.field_count += 1;
                    if record_end {
                        // A CR before the line end can only be a CRLF line
                        // end: PostgreSQL quotes a value holding a CR.
                        if self.last_two_parsed == *b"\r\n" {
                            return Err(format!(
                                "line {}: the line ends with CR LF; PostgreSQL writes LF alone, so the file was converted",
                                self.newlines_parsed
                            ));
                        }
                        return Ok(Some(record));
                    }
                }
            }
        }
    }

    /// Makes sure input is buffered unless the source is exhausted: csv_core
    /// takes an empty input for the end of the file.
    fn fill_input(&mut self) -> Result<(), String> {
        if self.input_start == self.input_end && !self.source_exhausted {
            self.input_start = 0;
            self.input_end = 0;
            self.read_more()?;
        }
        Ok(())
    }

    fn read_more(&mut self) -> Result<(), String> {
        loop {
            match self.source.read(&mut self.input[self.input_end..]) {
                Ok(0) => {
                    self.source_exhausted = true;
                    return Ok(());
                }
                Ok(read) => {
                    self.input_end += read;
                    return Ok(());
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) => return Err(format!("cannot read the CSV: {error}")),
            }
        }
    }

    fn note_parsed(&mut self, count: usize) {
        let parsed = &self.input[self.input_start..self.input_start + count];
        self.input_start += count;
        self.bytes_parsed += count as u64;
        self.newlines_parsed += parsed.iter().filter(|&&b| b == b'\n').count() as u64;
        match parsed {
            [] => {}
            [only] => self.last_two_parsed = [self.last_two_parsed[1], *only],
            [.., before_last, last] => self.last_two_parsed = [*before_last, *last],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "id,occurred_at,tx_id,actor,db_user,application_name,client_addr,entity,entity_id,action,changed_fields,old_values,new_values,context\n";

    /// Reads `source` through reads of at most `chunk` bytes, so that
    /// fields and line ends straddle buffer refills.
    struct Trickle<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let count = self.chunk.min(buf.len()).min(self.bytes.len());
            buf[..count].copy_from_slice(&self.bytes[..count]);
            self.bytes = &self.bytes[count..];
            Ok(count)
        }
    }

    fn read_all(text: &[u8], chunk: usize) -> Result<Vec<CsvRow>, String> {
        let mut rows = CsvRows::new(Trickle { bytes: text, chunk })?;
        let mut all = Vec::new();
        while let Some(row) = rows.next_row()? {
            all.push(row);
        }
        assert_eq!(rows.bytes_read(), text.len() as u64);
        Ok(all)
    }

    /// Every chunk size gives the same rows (or the same error).
    fn read(text: &[u8]) -> Result<Vec<CsvRow>, String> {
        let whole = read_all(text, usize::MAX);
        for chunk in [1, 2, 3, 7] {
            assert_eq!(read_all(text, chunk), whole, "chunk {chunk}");
        }
        whole
    }

    fn field(text: &str) -> Option<Vec<u8>> {
        Some(text.as_bytes().to_vec())
    }

    #[test]
    fn null_and_empty_string_are_told_apart() {
        let text = format!("{HEADER}1,,\"\",a,,,,,,,,,,\"\"\n");
        let rows = read(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        let fields = &rows[0].fields;
        assert_eq!(fields[0], field("1"));
        assert_eq!(fields[1], None);
        assert_eq!(fields[2], field(""));
        assert_eq!(fields[3], field("a"));
        assert!(fields[4..13].iter().all(Option::is_none));
        assert_eq!(fields[13], field(""));
    }

    /// The bytes PostgreSQL 15 wrote for `\copy (SELECT * FROM t) TO
    /// 'out.csv' WITH (FORMAT csv, HEADER)`, t having export()'s 14 text
    /// columns: NULLs, empty strings, and values that need quoting.
    #[test]
    fn postgresql_copy_output_reads_back_exactly() {
        let copied = concat!(
            "id,occurred_at,tx_id,actor,db_user,application_name,client_addr,entity,entity_id,action,changed_fields,old_values,new_values,context\n",
            "1,2024-01-01T00:00:00.000000Z,7,,\"\",\"a,b\",\"say \"\"hi\"\"\",\"line1\n",
            "line2\",\"cr\rhere\",\"crlf\r\n",
            "x\",\"[\"\"a\"\", \"\"b\"\"]\",\"{\"\"k\"\": \"\"v, w\"\", \"\"q\"\": \"\"\\\"\"x\\\"\"\"\"}\",,\"\"\n",
            "2,,, lead,trail ,\\N,\"\"\"\",\",\",é ü,#x,\\,\"\",\"\"\"\"\"\",\n",
        );
        let rows = read(copied.as_bytes()).unwrap();
        let expected: [[Option<&str>; 14]; 2] = [
            [
                Some("1"),
                Some("2024-01-01T00:00:00.000000Z"),
                Some("7"),
                None,
                Some(""),
                Some("a,b"),
                Some("say \"hi\""),
                Some("line1\nline2"),
                Some("cr\rhere"),
                Some("crlf\r\nx"),
                Some(r#"["a", "b"]"#),
                Some(r#"{"k": "v, w", "q": "\"x\""}"#),
                None,
                Some(""),
            ],
            [
                Some("2"),
                None,
                None,
                Some(" lead"),
                Some("trail "),
                Some("\\N"),
                Some("\""),
                Some(","),
                Some("é ü"),
                Some("#x"),
                Some("\\"),
                Some(""),
                Some("\"\""),
                None,
            ],
        ];
        assert_eq!(rows.len(), 2);
        for (row, expected) in rows.iter().zip(expected) {
            let expected = expected.map(|value| value.map(|text| text.as_bytes().to_vec()));
            assert_eq!(row.fields, expected, "line {}", row.line);
        }
        assert_eq!((rows[0].line, rows[1].line), (2, 5));
    }

    #[test]
    fn a_missing_final_newline_is_tolerated() {
        for (last, expected) in [("", None), ("\"\"", field("")), ("x", field("x"))] {
            let text = format!("{HEADER}1,,,,,,,,,,,,,{last}");
            let rows = read(text.as_bytes()).unwrap();
            assert_eq!(rows[0].fields[13], expected, "{last:?}");
        }
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_line_ends() {
        let json = r#"{"a": "x,y", "b": "say \"hi\""}"#;
        let quoted_json = json.replace('"', "\"\"");
        let text = format!(
            "{HEADER}1,2,3,\"a,b\",\"multi\nline\r\nvalue\",,,,,,,,\"{quoted_json}\",\n2,,,,,,,,,,,,,\n"
        );
        let rows = read(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].fields[3], field("a,b"));
        assert_eq!(rows[0].fields[4], field("multi\nline\r\nvalue"));
        assert_eq!(rows[0].fields[12], field(json));
        assert_eq!(rows[0].fields[13], None);
        assert_eq!(rows[1].line, 5, "the quoted newlines count");
        assert_eq!(rows[1].fields[0], field("2"));
    }

    #[test]
    fn a_header_only_file_has_no_rows() {
        assert_eq!(read(HEADER.as_bytes()).unwrap(), vec![]);
        assert_eq!(read(HEADER.trim_end().as_bytes()).unwrap(), vec![]);
    }

    #[test]
    fn the_header_is_checked() {
        let error = read(b"").unwrap_err();
        assert!(error.contains("empty"), "{error}");
        let error = read(b"id,occurred_at\n1,2\n").unwrap_err();
        assert!(error.contains("found id,occurred_at"), "{error}");
        let swapped = HEADER.replace("actor,db_user", "db_user,actor");
        let error = read(swapped.as_bytes()).unwrap_err();
        assert!(
            error.starts_with("line 1:")
                && error.contains("found id,occurred_at,tx_id,db_user,actor"),
            "{error}"
        );
        let longer = HEADER.replace("context", "context,extra,more");
        let error = read(longer.as_bytes()).unwrap_err();
        assert!(error.contains("and 2 more fields"), "{error}");
        let error = read(format!("\u{feff}{HEADER}").as_bytes()).unwrap_err();
        assert!(error.contains("byte order mark"), "{error}");
    }

    #[test]
    fn errors_name_the_line() {
        let text = format!("{HEADER}1,,,,,,,,,,,,,\n\"a\nb\",,,\n");
        let error = read(text.as_bytes()).unwrap_err();
        assert_eq!(error, "line 3: 4 fields where an export has 14");

        let text = format!("{HEADER}1,,,,,,,,,,,,,,\n");
        let error = read(text.as_bytes()).unwrap_err();
        assert_eq!(error, "line 2: 15 fields where an export has 14");

        let mut text = format!("{HEADER}1,,,,,,,,,,,,,\n2,,,x").into_bytes();
        text.push(0xff);
        text.extend_from_slice(b",,,,,,,,,,\n");
        let error = read(&text).unwrap_err();
        assert_eq!(error, "line 3: actor is not valid UTF-8");

        let text = format!("{HEADER}1,,,,,,,,,,,,,\n\n2,,,,,,,,,,,,,\n");
        let error = read(text.as_bytes()).unwrap_err();
        assert_eq!(error, "line 3 is empty; an export has no empty lines");
    }

    #[test]
    fn crlf_line_ends_are_refused() {
        for text in [
            HEADER.replace('\n', "\r\n"),
            format!("{HEADER}1,,,,,,,,,,,,,\r\n"),
            format!("{HEADER}1,,,,,,,,,,,,,\"{{}}\"\r\n"),
        ] {
            let error = read(text.as_bytes()).unwrap_err();
            assert!(error.contains("CR LF"), "{text:?}: {error}");
        }
    }

    /// A field larger than both buffers arrives whole; memory is one
    /// record's.
    #[test]
    fn a_field_larger_than_the_buffers_is_read_whole() {
        let big = "\"\"x,".repeat(3 * INPUT_BUFFER_BYTES / 4 + 1);
        let text = format!("{HEADER}1,,,,,,,,,,,,\"{big}\",\n");
        let rows = read_all(text.as_bytes(), usize::MAX).unwrap();
        let expected = big.replace("\"\"", "\"");
        assert_eq!(rows[0].fields[12].as_deref(), Some(expected.as_bytes()));
        assert!(expected.len() > OUTPUT_BUFFER_BYTES);
        assert_eq!(read_all(text.as_bytes(), 4096).unwrap(), rows);
    }

    #[test]
    fn read_errors_are_reported() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let error = CsvRows::new(Broken).err().unwrap();
        assert!(error.contains("disk on fire"), "{error}");
    }
}
