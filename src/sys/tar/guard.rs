//! Bounds on what the tar crate reads into memory: it buffers a GNU long name or long link
//! (`L`, `K`) and a PAX header (`x`, `g`) whole, whatever size its header claims, before it
//! yields the entry they describe. A 2.4 KB archive claiming a 64 MiB long name drove the
//! launcher to 451 MiB. [`Guard`] sits between the (decompressed) archive and the tar crate,
//! follows the headers as they stream past, and fails the read of a header that claims more
//! than [`PATH_MAX`] for a name or [`MAX_PAX`] for PAX records, before a byte of its data is
//! buffered.
//!
//! It follows the stream as the crate does: a 512-byte header, its data rounded up to 512, the
//! next header; a PAX `size` record replaces the size of the next entry that is not itself an
//! extension header; GNU sparse headers may be followed by extension blocks. A header it cannot
//! parse is left for the crate to refuse.

use std::io::{self, Read};

use super::PATH_MAX;

/// The most PAX records one header may carry (xattrs included): far above what images hold.
pub(super) const MAX_PAX: u64 = 1 << 20;

const BLOCK: u64 = 512;

/// A header claiming more than the bounds allow; its message quotes nothing of the archive.
#[derive(Debug)]
pub(super) struct Bounded(pub(super) String);

impl std::fmt::Display for Bounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Bounded {}

/// What the bytes at the current stream position are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// A header block (or a sparse extension block), being collected.
    Header {
        /// Whether it is a GNU sparse extension block, not an entry header.
        sparse_ext: bool,
    },
    /// Entry data: this many bytes (padding included) before the next header.
    Data {
        left: u64,
        /// PAX records are captured, to find a `size` record.
        capture: bool,
    },
}

/// The reader the tar crate reads from.
pub(super) struct Guard<R> {
    inner: R,
    at: At,
    block: Vec<u8>,
    pax: Vec<u8>,
    /// The size the last PAX header gave the next entry.
    pax_size: Option<u64>,
    /// The data size of the entry whose sparse extension blocks are being read.
    sparse_data: u64,
    /// The length of the PAX records being captured (the rest of their blocks is padding).
    pax_len: usize,
}

impl<R: Read> Guard<R> {
    pub(super) fn new(inner: R) -> Guard<R> {
        Guard {
            inner,
            at: At::Header { sparse_ext: false },
            block: Vec::with_capacity(BLOCK as usize),
            pax: Vec::new(),
            pax_size: None,
            sparse_data: 0,
            pax_len: 0,
        }
    }

    /// Follow `bytes`, which the tar crate is about to read.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.at {
                At::Data { left, capture } => {
                    let n = left.min(bytes.len() as u64) as usize;
                    if capture {
                        self.pax.extend_from_slice(&bytes[..n]);
                    }
                    bytes = &bytes[n..];
                    let left = left - n as u64;
                    self.at = At::Data { left, capture };
                    if left == 0 {
                        if capture {
                            self.pax.truncate(self.pax_len);
                            self.pax_size = pax_size(&self.pax);
                            self.pax.clear();
                        }
                        self.at = At::Header { sparse_ext: false };
                    }
                }
                At::Header { sparse_ext } => {
                    let n = (BLOCK as usize - self.block.len()).min(bytes.len());
                    self.block.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.block.len() == BLOCK as usize {
                        let block = std::mem::take(&mut self.block);
                        self.at = match sparse_ext {
                            true => self.after_sparse_ext(&block),
                            false => self.after_header(&block)?,
                        };
                        self.block = block;
                        self.block.clear();
                    }
                }
            }
        }
        Ok(())
    }

    /// Where the stream goes after the header `h`; an error for a claim over the bounds.
    fn after_header(&mut self, h: &[u8]) -> io::Result<At> {
        if h.iter().all(|b| *b == 0) {
            return Ok(At::Header { sparse_ext: false });
        }
        let Some(size) = header_size(&h[124..136]) else {
            // The crate refuses this header itself, with its own message.
            return Ok(At::Header { sparse_ext: false });
        };
        let kind = h[156];
        let too_big = |what: &str, max: u64| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                Bounded(format!(
                    "a {what} entry claims {size} bytes, over {max}: refused before reading it"
                )),
            )
        };
        let extension = matches!(kind, b'L' | b'K' | b'x' | b'g');
        match kind {
            // The name and its NUL.
            b'L' | b'K' if size > PATH_MAX as u64 + 1 => {
                return Err(too_big("GNU long name", PATH_MAX as u64 + 1));
            }
            b'x' | b'g' if size > MAX_PAX => return Err(too_big("PAX header", MAX_PAX)),
            _ => {}
        }
        let size = match extension {
            true => size,
            false => self.pax_size.take().unwrap_or(size),
        };
        // A GNU sparse header with extension blocks: those come before the data.
        if kind == b'S' && h[482] != 0 {
            self.sparse_data = size;
            return Ok(At::Header { sparse_ext: true });
        }
        if kind == b'x' {
            // Bounded by MAX_PAX above.
            self.pax_len = size as usize;
        }
        Ok(data(size, kind == b'x'))
    }

    fn after_sparse_ext(&mut self, block: &[u8]) -> At {
        match block[504] {
            0 => data(self.sparse_data, false),
            _ => At::Header { sparse_ext: true },
        }
    }
}

/// Data of `size` bytes, padded to a block, then the next header.
fn data(size: u64, capture: bool) -> At {
    let padded = size.div_ceil(BLOCK).saturating_mul(BLOCK);
    match padded {
        0 => {
            // A PAX header without records still ends the records it would have carried.
            At::Header { sparse_ext: false }
        }
        left => At::Data { left, capture },
    }
}

/// A header's size field: octal, or GNU's base-256 (high bit of the first byte set).
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        // Base-256: big-endian in the bytes after the marker; only the last 8 can fit a u64.
        if field[1..field.len() - 8].iter().any(|b| *b != 0) || field[0] != 0x80 {
            return None;
        }
        let mut n = 0u64;
        for b in &field[field.len() - 8..] {
            n = (n << 8) | u64::from(*b);
        }
        return Some(n);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    match text {
        "" => Some(0),
        t => u64::from_str_radix(t, 8).ok(),
    }
}

/// The `size` record of PAX records (`LEN key=value\n` each), if they hold one.
fn pax_size(records: &[u8]) -> Option<u64> {
    let mut rest = records;
    let mut found = None;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|b| *b == b' ') else {
            return found;
        };
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            return found;
        };
        if len <= space || len > rest.len() {
            return found;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(v) = record.strip_prefix(b"size=") {
            found = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
        }
        rest = &rest[len..];
    }
    found
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.follow(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u8, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[0] = b'a';
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        h
    }

    fn stream(parts: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, data) in parts {
            out.extend(header(*kind, data.len() as u64));
            out.extend(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend([0u8; 1024]);
        out
    }

    /// Read all of `bytes` through a guard in reads of `chunk` bytes.
    fn read_through(bytes: &[u8], chunk: usize) -> io::Result<usize> {
        let mut g = Guard::new(bytes);
        let mut buf = vec![0u8; chunk];
        let mut total = 0;
        loop {
            match g.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    #[test]
    fn ordinary_archives_pass_in_any_read_size() {
        let s = stream(&[
            (b'0', vec![b'x'; 1000]),
            (b'L', vec![b'n'; 300]),
            (b'0', vec![b'y'; 10]),
            (b'x', b"12 size=513\n".to_vec()),
            // The PAX size governs: 513 bytes of data where the header says 0.
            (b'0', vec![]),
        ]);
        // Hand-fix the last entry's data to the PAX size: 513 bytes, padded.
        let mut s = s;
        let end = s.len() - 1024;
        s.truncate(end);
        // The 513 bytes look like a header claiming 2048 bytes of data: a guard that missed
        // the PAX size would skip the real headers after them, the huge one below included.
        let mut fake = header(b'0', 2048);
        fake.push(b'z');
        s.extend(fake);
        s.resize(s.len().div_ceil(512) * 512, 0);
        s.extend(header(b'0', 5));
        s.extend(vec![b'w'; 512]);
        let body = s.clone();
        s.extend([0u8; 1024]);
        for chunk in [1, 7, 512, 4096, 1 << 20] {
            assert_eq!(read_through(&s, chunk).unwrap(), s.len(), "chunk {chunk}");
        }
        // The guard is where the crate is: a huge long name after all of that is caught (had
        // it lost its place, it would take the header for data, or data for a header).
        let mut evil = body;
        evil.extend(header(b'L', 64 << 20));
        for chunk in [1, 7, 512, 4096] {
            assert!(read_through(&evil, chunk).is_err(), "chunk {chunk}");
        }
    }

    #[test]
    fn a_huge_long_name_or_pax_header_is_refused_unread() {
        let name = PATH_MAX as u64 + 1;
        for (kind, max) in [(b'L', name), (b'K', name), (b'x', MAX_PAX)] {
            // Only the header: the claimed data is never there, and never needed.
            let mut s = header(kind, max + 1);
            s.extend([0u8; 512]);
            let err = read_through(&s, 512).unwrap_err();
            assert!(
                err.to_string().contains("refused before reading it"),
                "{err}"
            );
            let mut ok = header(kind, max);
            ok.extend(vec![0u8; max.div_ceil(512) as usize * 512]);
            assert!(read_through(&ok, 4096).is_ok());
        }
    }

    #[test]
    fn sizes_in_octal_and_base_256() {
        assert_eq!(header_size(b"00000001750\0"), Some(1000));
        assert_eq!(header_size(b"\0\0\0\0\0\0\0\0\0\0\0\0"), Some(0));
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 0x01;
        b256[10] = 0x02;
        assert_eq!(header_size(&b256), Some(0x0201));
        assert_eq!(header_size(b"zzzzzzzzzzz\0"), None);
        assert_eq!(pax_size(b"12 size=513\n10 a=bcde\n"), Some(513));
        assert_eq!(pax_size(b"10 a=bcde\n"), None);
    }
}
