//! Building an event's JSONB values in memory, exactly as `to_jsonb(row)`
//! renders them, without a text round trip.
//!
//! `to_jsonb` looks up each column's type category on every call and turns
//! every number into text and back. Capture knows the columns in advance: each
//! gets a `ValueKind` once, the common types are converted directly (integers,
//! numeric, boolean, text, dates and times, jsonb, as PostgreSQL's
//! datum_to_jsonb does), and every other type goes through `to_jsonb` itself,
//! so that arrays, composites, enums, json, casts to json and the rest render
//! exactly as PostgreSQL renders them.

use std::ffi::CStr;
use std::ptr::null_mut;

use pgrx::pg_sys;
use pgrx::pg_sys::JsonbIteratorToken::*;
use pgrx::prelude::*;

use crate::ffi;

pub const REDACTED: &CStr = c"[REDACTED]";

/// What happens to one column of a row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyPolicy {
    Keep,
    Drop,
    Redact,
}

/// How one column's values become JSONB.
#[derive(Clone, Copy, Debug)]
pub enum ValueKind {
    Int2,
    Int4,
    Int8,
    Numeric,
    Bool,
    Text,
    DateTime(pg_sys::Oid),
    Jsonb,
    /// `to_jsonb` called through fmgr for this type.
    Other(*mut pg_sys::FmgrInfo),
}

impl ValueKind {
    /// # Safety
    /// `mcxt` must outlive the returned kind.
    pub unsafe fn of(typid: pg_sys::Oid, mcxt: pg_sys::MemoryContext) -> Self {
        // to_jsonb categorizes a domain by its base type.
        match pg_sys::getBaseType(typid) {
            pg_sys::INT2OID => Self::Int2,
            pg_sys::INT4OID => Self::Int4,
            pg_sys::INT8OID => Self::Int8,
            pg_sys::NUMERICOID => Self::Numeric,
            pg_sys::BOOLOID => Self::Bool,
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Self::Text,
            base @ (pg_sys::DATEOID | pg_sys::TIMESTAMPOID | pg_sys::TIMESTAMPTZOID) => {
                Self::DateTime(base)
            }
            pg_sys::JSONBOID => Self::Jsonb,
            _ => Self::Other(to_jsonb_of(typid, mcxt)),
        }
    }

    /// The JSONB value of one non-NULL datum of this kind.
    ///
    /// # Safety
    /// `datum` must be a valid value of the kind's type.
    pub unsafe fn value(self, datum: pg_sys::Datum) -> pg_sys::JsonbValue {
        match self {
            Self::Int2 => numeric_value(pg_sys::int64_to_numeric(i64::from(datum.value() as i16))),
            Self::Int4 => numeric_value(pg_sys::int64_to_numeric(i64::from(datum.value() as i32))),
            Self::Int8 => numeric_value(pg_sys::int64_to_numeric(datum.value() as i64)),
            Self::Numeric => {
                let numeric = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()).cast();
                if pg_sys::numeric_is_nan(numeric) || pg_sys::numeric_is_inf(numeric) {
                    // Not a JSON number: to_jsonb writes "NaN", "Infinity", "-Infinity".
                    let text =
                        pgrx::direct_function_call_as_datum(pg_sys::numeric_out, &[Some(datum)])
                            .unwrap();
                    let text = CStr::from_ptr(text.cast_mut_ptr());
                    string_value(text.as_ptr(), text.to_bytes().len())
                } else {
                    numeric_value(numeric)
                }
            }
            Self::Bool => pg_sys::JsonbValue {
                type_: pg_sys::jbvType::jbvBool,
                val: pg_sys::JsonbValue__bindgen_ty_1 {
                    boolean: datum.value() != 0,
                },
            },
            Self::Text => {
                let text = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
                let len = pgrx::varlena::varsize_any_exhdr(text);
                check_string_length(len);
                string_value(pgrx::varlena::vardata_any(text), len)
            }
            Self::DateTime(typid) => {
                let text = pg_sys::JsonEncodeDateTime(null_mut(), datum, typid, std::ptr::null());
                string_value(text, CStr::from_ptr(text).to_bytes().len())
            }
            Self::Jsonb => binary_value(pg_sys::pg_detoast_datum(datum.cast_mut_ptr()).cast()),
            Self::Other(to_jsonb) => binary_value(
                pg_sys::FunctionCall1Coll(to_jsonb, pg_sys::InvalidOid, datum).cast_mut_ptr(),
            ),
        }
    }
}

/// One key of an object under construction, and its value.
pub struct Field<'a> {
    pub key: &'a CStr,
    pub value: pg_sys::JsonbValue,
}

/// `{"key": value, ...}`. Keys are sorted by PostgreSQL as for any jsonb.
///
/// # Safety
/// The values must stay valid until the call returns.
/// Settings whose session value changes what `to_jsonb` writes for the types
/// left to it (floats, bytea, intervals, money, and arrays or composites of
/// them), with the value every event is rendered under: the trail must not
/// say 100000 for 149999.999 because a session asked for fewer float digits,
/// and sealing hashes these bytes. The types rendered here directly read no
/// setting (dates and times are always ISO 8601 in JSON).
const OUTPUT_STYLE: [(&CStr, &CStr); 3] = [
    (c"extra_float_digits", c"1"),
    (c"bytea_output", c"hex"),
    (c"intervalstyle", c"postgres"),
];
/// Only for tables with money values: checking a locale is not free.
const MONEY_STYLE: (&CStr, &CStr) = (c"lc_monetary", c"C");
const BYTEA_OUTPUT_HEX: i32 = 1;

/// Puts the output settings back to the server's defaults for rendering one
/// row, when the session changed them (a session that did not pays one
/// comparison per setting). Returns the GUC nest level to pop with
/// `end_server_style()`; an error on the way pops it with the
/// (sub)transaction.
pub unsafe fn begin_server_style(money: bool) -> Option<i32> {
    let differs = pg_sys::extra_float_digits != 1
        || ffi::bytea_output != BYTEA_OUTPUT_HEX
        || pg_sys::IntervalStyle != pg_sys::INTSTYLE_POSTGRES as i32
        || (money
            && (ffi::locale_monetary.is_null()
                || CStr::from_ptr(ffi::locale_monetary) != MONEY_STYLE.1));
    if !differs {
        return None;
    }
    let level = pg_sys::NewGUCNestLevel();
    let money_style = money.then_some(MONEY_STYLE);
    for (name, value) in OUTPUT_STYLE.into_iter().chain(money_style) {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
    Some(level)
}

pub unsafe fn end_server_style(level: Option<i32>) {
    if let Some(level) = level {
        pg_sys::AtEOXact_GUC(true, level);
    }
}

pub unsafe fn object<'a>(fields: impl Iterator<Item = Field<'a>>) -> *mut pg_sys::Jsonb {
    let mut state: *mut pg_sys::JsonbParseState = null_mut();
    pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_OBJECT, null_mut());
    for mut field in fields {
        let mut key = string_value(field.key.as_ptr(), field.key.to_bytes().len());
        pg_sys::pushJsonbValue(&mut state, WJB_KEY, &mut key);
        pg_sys::pushJsonbValue(&mut state, WJB_VALUE, &mut field.value);
    }
    let object = pg_sys::pushJsonbValue(&mut state, WJB_END_OBJECT, null_mut());
    pg_sys::JsonbValueToJsonb(object)
}

pub fn null_value() -> pg_sys::JsonbValue {
    pg_sys::JsonbValue {
        type_: pg_sys::jbvType::jbvNull,
        val: pg_sys::JsonbValue__bindgen_ty_1 { boolean: false },
    }
}

pub fn redacted_value() -> pg_sys::JsonbValue {
    string_value(REDACTED.as_ptr(), REDACTED.to_bytes().len())
}

/// `to_jsonb(value)` for values of one type, callable through fmgr: to_jsonb
/// asks its call expression for the argument's type, so the FmgrInfo carries
/// a FuncExpr whose only argument is a constant of that type.
unsafe fn to_jsonb_of(typid: pg_sys::Oid, mcxt: pg_sys::MemoryContext) -> *mut pg_sys::FmgrInfo {
    let old = pg_sys::MemoryContextSwitchTo(mcxt);
    let to_jsonb = pg_sys::Oid::from(pg_sys::F_TO_JSONB);
    let flinfo = pg_sys::palloc0(size_of::<pg_sys::FmgrInfo>()).cast::<pg_sys::FmgrInfo>();
    pg_sys::fmgr_info_cxt(to_jsonb, flinfo, mcxt);
    let argument = pg_sys::makeConst(
        typid,
        -1,
        pg_sys::InvalidOid,
        -1,
        pg_sys::Datum::from(0),
        true,
        false,
    );
    let args = pg_sys::lappend(null_mut(), argument.cast());
    let call = pg_sys::makeFuncExpr(
        to_jsonb,
        pg_sys::JSONBOID,
        args,
        pg_sys::InvalidOid,
        pg_sys::InvalidOid,
        pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
    );
    (*flinfo).fn_expr = call.cast();
    pg_sys::MemoryContextSwitchTo(old);
    flinfo
}

fn numeric_value(numeric: pg_sys::Numeric) -> pg_sys::JsonbValue {
    pg_sys::JsonbValue {
        type_: pg_sys::jbvType::jbvNumeric,
        val: pg_sys::JsonbValue__bindgen_ty_1 { numeric },
    }
}

fn string_value(text: *const std::ffi::c_char, len: usize) -> pg_sys::JsonbValue {
    pg_sys::JsonbValue {
        type_: pg_sys::jbvType::jbvString,
        val: pg_sys::JsonbValue__bindgen_ty_1 {
            string: pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 {
                len: len as i32,
                val: text.cast_mut(),
            },
        },
    }
}

/// A whole jsonb as a value to push: PostgreSQL unpacks it into the object
/// (a scalar jsonb becomes the scalar).
unsafe fn binary_value(jsonb: *mut pg_sys::Jsonb) -> pg_sys::JsonbValue {
    pg_sys::JsonbValue {
        type_: pg_sys::jbvType::jbvBinary,
        val: pg_sys::JsonbValue__bindgen_ty_1 {
            binary: pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_4 {
                len: (pgrx::varlena::varsize(jsonb.cast()) - pg_sys::VARHDRSZ) as i32,
                data: &mut (*jsonb).root,
            },
        },
    }
}

/// The limit of a jsonb string, as checkStringLen enforces it for to_jsonb.
fn check_string_length(len: usize) {
    const JENTRY_OFFLENMASK: usize = 0x0FFF_FFFF;
    if len > JENTRY_OFFLENMASK {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            "string too long to represent as jsonb string",
            format!("Due to an implementation restriction, jsonb strings cannot exceed {JENTRY_OFFLENMASK} bytes.")
        );
    }
}

/// The jsonb as `jsonb_out` prints it.
///
/// # Safety
/// `jsonb` must be a jsonb datum.
pub unsafe fn to_text(jsonb: pg_sys::Datum) -> std::ffi::CString {
    let text = pgrx::direct_function_call_as_datum(pg_sys::jsonb_out, &[Some(jsonb)]).unwrap();
    CStr::from_ptr(text.cast_mut_ptr()).to_owned()
}

/// # Safety
/// `jb` must point to a detoasted jsonb.
pub unsafe fn is_object(jb: *const pg_sys::Jsonb) -> bool {
    const JB_FOBJECT: u32 = 0x2000_0000;
    (*jb).root.header & JB_FOBJECT != 0
}

/// Total size of a plain 4-byte-header varlena such as a freshly built jsonb.
///
/// # Safety
/// `ptr` must point to a varlena with a 4-byte header.
pub unsafe fn varsize(ptr: *const pg_sys::varlena) -> usize {
    pgrx::varsize_4b(ptr)
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    unsafe fn parse(text: &CStr) -> *mut pg_sys::Jsonb {
        pgrx::direct_function_call_as_datum(
            pg_sys::jsonb_in,
            &[Some(pg_sys::Datum::from(text.as_ptr()))],
        )
        .unwrap()
        .cast_mut_ptr()
    }

    unsafe fn print(jb: *mut pg_sys::Jsonb) -> String {
        to_text(pg_sys::Datum::from(jb)).into_string().unwrap()
    }

    #[pg_test]
    fn objects_take_scalars_nested_jsonb_nulls_and_redactions() {
        unsafe {
            let nested = parse(cr#"{"b": [1, 2.50, null]}"#);
            let scalar = parse(c"42");
            let fields = [
                Field {
                    key: c"id",
                    value: ValueKind::Int4.value(pg_sys::Datum::from(7i32)),
                },
                Field {
                    key: c"doc",
                    value: binary_value(nested),
                },
                Field {
                    key: c"n",
                    value: binary_value(scalar),
                },
                Field {
                    key: c"gone",
                    value: null_value(),
                },
                Field {
                    key: c"pw",
                    value: redacted_value(),
                },
                Field {
                    key: c"ok",
                    value: ValueKind::Bool.value(pg_sys::Datum::from(true)),
                },
            ];
            assert_eq!(
                print(object(fields.into_iter())),
                r#"{"n": 42, "id": 7, "ok": true, "pw": "[REDACTED]", "doc": {"b": [1, 2.50, null]}, "gone": null}"#
            );
        }
    }

    #[pg_test]
    fn object_detection() {
        unsafe {
            assert!(is_object(parse(cr#"{"a": 1}"#)));
            assert!(!is_object(parse(c"[1]")));
            assert!(!is_object(parse(c"1")));
        }
    }
}
