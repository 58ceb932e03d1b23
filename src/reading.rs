//! Helpers of the reading and export functions (sql/reading.sql).

use pgrx::prelude::*;

/// Splits a table name as users type it into its parts, keeping case:
/// `public.trainings` → {public, trainings}; `trainings` → {trainings};
/// `"Sales Dept"."Learners"` → {Sales Dept, Learners}; `Learners` → {Learners}.
/// Unlike SQL, unquoted names are not folded to lower case: the filter is
/// case-sensitive, with or without quotes. Stored entities parse the same way.
#[pg_extern(immutable, strict, parallel_safe)]
fn entity_parts(entity: &str) -> Vec<String> {
    split_qualified_name(entity).unwrap_or_else(|problem| {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_NAME,
            format!("invalid table name \"{entity}\": {problem}"),
            "Write schema.table or table, with double quotes around a part that contains dots or quotes."
        );
    })
}

/// One CSV record (RFC 4180), exactly as COPY ... (FORMAT csv) writes it: a
/// NULL is an empty field, an empty string is `""`, and a field holding a comma,
/// a double quote, CR or LF is quoted with its quotes doubled.
#[pg_extern(immutable, strict, parallel_safe)]
fn csv_line(fields: Array<&str>) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if let Some(field) = field {
            push_csv_field(&mut line, field);
        }
    }
    line
}

fn push_csv_field(line: &mut String, field: &str) {
    if field.is_empty() || field.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&field.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(field);
    }
}

fn split_qualified_name(input: &str) -> Result<Vec<String>, &'static str> {
    let mut parts = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err("unterminated quoted identifier"),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if c == '"' {
                    return Err("a double quote inside an unquoted name");
                }
                part.push(c);
                chars.next();
            }
        }
        if part.is_empty() {
            return Err("empty name");
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => continue,
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
    use super::split_qualified_name as split;

    fn csv(field: &str) -> String {
        let mut line = String::new();
        push_csv_field(&mut line, field);
        line
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
