//! Helpers of the reading and export functions (sql/reading.sql).

use pgrx::prelude::*;

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

fn push_csv_field(line: &mut Vec<u8>, field: &[u8]) {
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
