//! Building an event's JSONB values in memory, without a text round trip.

use std::ffi::CStr;
use std::ptr::null_mut;

use pgrx::pg_sys;
use pgrx::pg_sys::JsonbIteratorToken::*;

pub const REDACTED: &CStr = c"[REDACTED]";

/// `to_jsonb(row)` for one row type, called through fmgr. `to_jsonb` asks its
/// call expression for the argument's type, so the FmgrInfo carries a FuncExpr
/// whose only argument is a constant of that row type.
pub struct RowRenderer {
    flinfo: *mut pg_sys::FmgrInfo,
}

impl RowRenderer {
    /// # Safety
    /// `mcxt` must outlive the renderer.
    pub unsafe fn new(rowtype: pg_sys::Oid, mcxt: pg_sys::MemoryContext) -> Self {
        let old = pg_sys::MemoryContextSwitchTo(mcxt);
        let to_jsonb = pg_sys::Oid::from(pg_sys::F_TO_JSONB);
        let flinfo = pg_sys::palloc0(size_of::<pg_sys::FmgrInfo>()).cast::<pg_sys::FmgrInfo>();
        pg_sys::fmgr_info_cxt(to_jsonb, flinfo, mcxt);
        let row = pg_sys::makeConst(
            rowtype,
            -1,
            pg_sys::InvalidOid,
            -1,
            pg_sys::Datum::from(0),
            true,
            false,
        );
        let args = pg_sys::lappend(null_mut(), row.cast());
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
        Self { flinfo }
    }

    /// # Safety
    /// `tuple` must be a valid tuple of `desc`, whose row type is the renderer's.
    pub unsafe fn render(
        &self,
        tuple: pg_sys::HeapTuple,
        desc: pg_sys::TupleDesc,
    ) -> *mut pg_sys::Jsonb {
        let row = pg_sys::heap_copy_tuple_as_datum(tuple, desc);
        pg_sys::FunctionCall1Coll(self.flinfo, pg_sys::InvalidOid, row).cast_mut_ptr()
    }
}

/// What happens to one key of a row object.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyPolicy {
    Keep,
    Drop,
    Redact,
}

/// A copy of the object `jb` with some keys dropped and some values replaced by
/// the string `"[REDACTED]"`, as `policy` decides for each key.
///
/// # Safety
/// `jb` must point to a detoasted jsonb object.
pub unsafe fn filter_object(
    jb: *mut pg_sys::Jsonb,
    policy: impl Fn(&[u8]) -> KeyPolicy,
) -> *mut pg_sys::Jsonb {
    let mut it = pg_sys::JsonbIteratorInit(&mut (*jb).root);
    let mut state: *mut pg_sys::JsonbParseState = null_mut();
    let mut value: pg_sys::JsonbValue = std::mem::zeroed();
    let mut result = null_mut();
    let mut pending = KeyPolicy::Keep;
    loop {
        let token = pg_sys::JsonbIteratorNext(&mut it, &mut value, true);
        match token {
            WJB_DONE => break,
            WJB_KEY => {
                pending = policy(string_bytes(&value));
                if pending == KeyPolicy::Drop {
                    continue;
                }
                result = pg_sys::pushJsonbValue(&mut state, token, &mut value);
            }
            WJB_VALUE => match std::mem::replace(&mut pending, KeyPolicy::Keep) {
                KeyPolicy::Drop => {}
                KeyPolicy::Redact => {
                    let mut redacted = string_value(REDACTED);
                    result = pg_sys::pushJsonbValue(&mut state, token, &mut redacted);
                }
                KeyPolicy::Keep => {
                    result = pg_sys::pushJsonbValue(&mut state, token, &mut value);
                }
            },
            _ => {
                let scalar = if token < WJB_BEGIN_ARRAY {
                    &mut value as *mut _
                } else {
                    null_mut()
                };
                result = pg_sys::pushJsonbValue(&mut state, token, scalar);
            }
        }
    }
    pg_sys::JsonbValueToJsonb(result)
}

/// `{"key": value, ...}` of the named keys of `jb` (absent keys are left out),
/// or None when there are no keys to pick.
///
/// # Safety
/// `jb` must point to a detoasted jsonb object.
pub unsafe fn pick_keys<'a>(
    jb: *mut pg_sys::Jsonb,
    keys: impl ExactSizeIterator<Item = &'a CStr>,
) -> Option<*mut pg_sys::Jsonb> {
    if keys.len() == 0 {
        return None;
    }
    let mut state: *mut pg_sys::JsonbParseState = null_mut();
    pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_OBJECT, null_mut());
    for key in keys {
        let bytes = key.to_bytes();
        let found = pg_sys::getKeyJsonValueFromContainer(
            &mut (*jb).root,
            key.as_ptr(),
            bytes.len() as i32,
            null_mut(),
        );
        if found.is_null() {
            continue;
        }
        let mut name = string_value(key);
        pg_sys::pushJsonbValue(&mut state, WJB_KEY, &mut name);
        pg_sys::pushJsonbValue(&mut state, WJB_VALUE, found);
    }
    let object = pg_sys::pushJsonbValue(&mut state, WJB_END_OBJECT, null_mut());
    Some(pg_sys::JsonbValueToJsonb(object))
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

fn string_value(s: &CStr) -> pg_sys::JsonbValue {
    pg_sys::JsonbValue {
        type_: pg_sys::jbvType::jbvString,
        val: pg_sys::JsonbValue__bindgen_ty_1 {
            string: pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 {
                len: s.to_bytes().len() as i32,
                val: s.as_ptr().cast_mut(),
            },
        },
    }
}

unsafe fn string_bytes(value: &pg_sys::JsonbValue) -> &[u8] {
    let s = value.val.string;
    std::slice::from_raw_parts(s.val.cast::<u8>(), s.len as usize)
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

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
    fn filter_drops_and_redacts_keys_and_keeps_nested_values() {
        unsafe {
            let row = parse(cr#"{"id": 1, "pw": "s3cret", "tags": ["a", {"b": 2}], "ssn": "123", "note": null}"#);
            let filtered = filter_object(row, |key| match key {
                b"pw" => KeyPolicy::Drop,
                b"ssn" => KeyPolicy::Redact,
                _ => KeyPolicy::Keep,
            });
            assert_eq!(
                print(filtered),
                r#"{"id": 1, "ssn": "[REDACTED]", "note": null, "tags": ["a", {"b": 2}]}"#
            );
        }
    }

    #[pg_test]
    fn pick_keys_builds_the_entity_id_and_skips_absent_keys() {
        unsafe {
            let row = parse(cr#"{"org": 1, "code": "X", "name": "n"}"#);
            let keys = [c"org", c"code", c"missing"];
            let picked = pick_keys(row, keys.into_iter()).unwrap();
            assert_eq!(print(picked), r#"{"org": 1, "code": "X"}"#);
            assert!(pick_keys(row, std::iter::empty::<&CStr>()).is_none());
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
