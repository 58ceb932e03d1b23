//! Where `verify-export` reads the CSV from: the file as `\copy` wrote it, or
//! compressed with zstd as `audit-log archive` writes it (recognised by the
//! zstd frame's magic number, whatever the file is called).

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A reader that counts the bytes it hands out, for a progress bar.
pub struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> Counted<R> {
    pub fn new(inner: R, count: Rc<Cell<u64>>) -> Self {
        Counted { inner, count }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The CSV's bytes, decompressed when they are a zstd stream.
pub fn open<R: Read + 'static>(source: R) -> io::Result<Box<dyn Read>> {
    let mut buffered = BufReader::with_capacity(1 << 20, source);
    let compressed = buffered.fill_buf()?.starts_with(&ZSTD_MAGIC);
    Ok(if compressed {
        Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)
    } else {
        Box::new(buffered)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        open(io::Cursor::new(bytes))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn plain_bytes_pass_through_and_zstd_is_decompressed() {
        let csv = b"id,occurred_at\n1,2026-01-01T00:00:00.000000Z\n".repeat(1000);
        assert_eq!(read_all(csv.clone()), csv);
        let compressed = zstd::encode_all(&csv[..], 3).unwrap();
        assert!(compressed.len() < csv.len());
        assert_eq!(read_all(compressed), csv);
    }

    #[test]
    fn a_damaged_zstd_stream_is_an_error_not_a_short_file() {
        let csv = b"id\n1\n".repeat(10_000);
        let mut compressed = zstd::encode_all(&csv[..], 3).unwrap();
        let middle = compressed.len() / 2;
        compressed.truncate(middle);
        let mut out = Vec::new();
        assert!(open(io::Cursor::new(compressed))
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
    }
}
