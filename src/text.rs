//! Text as PostgreSQL holds it: bytes in the database's encoding. Column
//! names, actors and entities go through here rather than through Rust
//! strings, which must be UTF-8: in a LATIN1 database pgrx's `String`
//! conversions panic on the first accented name, and `CStr::to_str` turns it
//! into nothing.

use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::{FromDatum, IntoDatum};

/// A `text` datum's bytes.
///
/// # Safety
/// `datum` must be a non-null `text` value.
pub unsafe fn from_datum(datum: pg_sys::Datum) -> CString {
    let cstring = pg_sys::text_to_cstring(datum.cast_mut_ptr());
    let owned = CStr::from_ptr(cstring).to_owned();
    pg_sys::pfree(cstring.cast());
    owned
}

/// A `text[]` of these names, in this order.
///
/// # Safety
/// Allocates in the current memory context.
pub unsafe fn array(items: &[&CStr]) -> pg_sys::Datum {
    let mut elements: Vec<pg_sys::Datum> = items
        .iter()
        .map(|item| pg_sys::Datum::from(pg_sys::cstring_to_text(item.as_ptr())))
        .collect();
    let array = pg_sys::construct_array(
        elements.as_mut_ptr(),
        elements.len() as _,
        pg_sys::TEXTOID,
        -1,
        false,
        pg_sys::TYPALIGN_INT as _,
    );
    pg_sys::Datum::from(array)
}

/// The non-null elements of a `text[]` datum.
///
/// # Safety
/// `datum` must be a non-null `text[]` value.
pub unsafe fn array_items(datum: pg_sys::Datum) -> Vec<CString> {
    DbTextArray::from_polymorphic_datum(datum, false, pg_sys::TEXTARRAYOID)
        .map(|array| array.0)
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|bytes| CString::new(bytes).unwrap_or_default())
        .collect()
}

/// A `text` argument or result as its bytes, in the database's encoding,
/// for SQL functions that must work whatever that encoding is.
pub struct DbText(pub Vec<u8>);

/// A `text[]` argument or result, element by element (None for NULL).
pub struct DbTextArray(pub Vec<Option<Vec<u8>>>);

pgrx::pgrx_sql_entity_graph::impl_sql_translatable!(DbText, "text");
pgrx::pgrx_sql_entity_graph::impl_sql_translatable!(DbTextArray, "text[]");

unsafe fn varlena_bytes(datum: pg_sys::Datum) -> Vec<u8> {
    let varlena = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
    pgrx::varlena::varlena_to_byte_slice(varlena).to_vec()
}

unsafe fn bytes_to_text(bytes: &[u8]) -> pg_sys::Datum {
    pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
        bytes.as_ptr().cast(),
        bytes.len() as _,
    ))
}

impl FromDatum for DbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        (!is_null).then(|| DbText(varlena_bytes(datum)))
    }
}

impl IntoDatum for DbText {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(unsafe { bytes_to_text(&self.0) })
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::TEXTOID
    }
}

impl FromDatum for DbTextArray {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()).cast::<pg_sys::ArrayType>();
        let mut elements: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut nulls: *mut bool = std::ptr::null_mut();
        let mut count = 0;
        pg_sys::deconstruct_array(
            array,
            pg_sys::TEXTOID,
            -1,
            false,
            pg_sys::TYPALIGN_INT as _,
            &mut elements,
            &mut nulls,
            &mut count,
        );
        if count == 0 {
            return Some(DbTextArray(Vec::new()));
        }
        let elements = std::slice::from_raw_parts(elements, count as usize);
        let nulls = std::slice::from_raw_parts(nulls, count as usize);
        Some(DbTextArray(
            elements
                .iter()
                .zip(nulls)
                .map(|(element, null)| (!*null).then(|| varlena_bytes(*element)))
                .collect(),
        ))
    }
}

impl IntoDatum for DbTextArray {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        unsafe {
            let mut elements: Vec<pg_sys::Datum> = Vec::with_capacity(self.0.len());
            let mut nulls: Vec<bool> = Vec::with_capacity(self.0.len());
            for item in &self.0 {
                match item {
                    Some(bytes) => {
                        elements.push(bytes_to_text(bytes));
                        nulls.push(false);
                    }
                    None => {
                        elements.push(pg_sys::Datum::from(0));
                        nulls.push(true);
                    }
                }
            }
            let mut dims = [elements.len() as std::ffi::c_int];
            let mut lower_bounds = [1];
            let array = pg_sys::construct_md_array(
                elements.as_mut_ptr(),
                nulls.as_mut_ptr(),
                1,
                dims.as_mut_ptr(),
                lower_bounds.as_mut_ptr(),
                pg_sys::TEXTOID,
                -1,
                false,
                pg_sys::TYPALIGN_INT as _,
            );
            Some(pg_sys::Datum::from(array))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::TEXTARRAYOID
    }
}

macro_rules! passed_as_datums {
    ($($ty:ty),*) => {$(
        unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for $ty {
            unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                arg.unbox_arg_using_from_datum()
                    .unwrap_or_else(|| panic!("argument {index} must not be null"))
            }
        }

        unsafe impl pgrx::callconv::BoxRet for $ty {
            unsafe fn box_into<'fcx>(
                self,
                fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
            ) -> pgrx::datum::Datum<'fcx> {
                let datum = self.into_datum().expect("never NULL");
                fcinfo.return_raw_datum(datum)
            }
        }
    )*};
}

passed_as_datums!(DbText, DbTextArray);

/// utils/memutils.h: the most one palloc() gives.
const MAX_ALLOC_SIZE: usize = 0x3fff_ffff;

/// A `text` value written through `io::Write` straight into palloc'd memory,
/// so that a large result (a proof) exists once, as the value returned,
/// rather than once in Rust and again as its `text` copy.
///
/// The memory belongs to the context current when the builder is made (the
/// function's result context: make it before `Spi::connect`); an error
/// frees it with that context.
pub struct TextBuilder {
    value: *mut u8,
    len: usize,
    capacity: usize,
    limit: usize,
}

impl TextBuilder {
    /// A builder room for `capacity` bytes, never more than `limit` (below
    /// 1 GB, PostgreSQL's cap for one value); beyond it writes fail.
    ///
    /// # Safety
    /// Allocates in the current memory context, which must outlive the
    /// builder and the datum it gives.
    pub unsafe fn new(capacity: usize, limit: usize) -> TextBuilder {
        let limit = limit.min(MAX_ALLOC_SIZE - pg_sys::VARHDRSZ);
        let capacity = capacity.clamp(64, limit);
        TextBuilder {
            value: pg_sys::palloc(pg_sys::VARHDRSZ + capacity).cast(),
            len: 0,
            capacity,
            limit,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes after the header were written.
        unsafe { std::slice::from_raw_parts(self.value.add(pg_sys::VARHDRSZ), self.len) }
    }

    /// The `text` datum, in the builder's memory context.
    pub fn into_datum(self) -> pg_sys::Datum {
        // SAFETY: the value holds its header and `len` bytes.
        unsafe {
            pgrx::varlena::set_varsize_4b(self.value.cast(), (pg_sys::VARHDRSZ + self.len) as i32);
        }
        pg_sys::Datum::from(self.value)
    }
}

impl std::io::Write for TextBuilder {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let needed = self.len + bytes.len();
        if needed > self.limit {
            return Err(std::io::Error::other(
                "the text value would exceed its limit",
            ));
        }
        if needed > self.capacity {
            // Doubling: a large chunk is realloc()ed, by remapping its pages
            // rather than copying them.
            let capacity = needed.max(self.capacity * 2).min(self.limit);
            // SAFETY: the value was palloc'd by new(), in a live context.
            self.value =
                unsafe { pg_sys::repalloc(self.value.cast(), pg_sys::VARHDRSZ + capacity).cast() };
            self.capacity = capacity;
        }
        // SAFETY: room for `bytes` after `len` was just made.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.value.add(pg_sys::VARHDRSZ + self.len),
                bytes.len(),
            );
        }
        self.len = needed;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
