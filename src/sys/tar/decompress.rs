//! gzip and zstd streams for rootfs archives, with checksums verified.

use std::io::{self, BufRead, Read};

use flate2::bufread::GzDecoder;
use zstd::zstd_safe::{self, DCtx, DParameter, InBuffer, OutBuffer};

/// The largest zstd window accepted, as a power of two: 2^27 = 128 MiB. A frame's header names
/// its window and the decoder allocates a buffer that large, so a hostile layer could ask for
/// gigabytes (the format allows 3.75 TiB). 27 is libzstd's own default limit and zstd(1)'s
/// without `--long` or `--memory` (so GNU tar refuses the same layers), and the limit ruzstd
/// had here before; `zstd -19` and `--ultra -22` stay within it, only `--long=28` and above
/// (which need the same flag to decompress) go past it.
const WINDOW_LOG_MAX: u32 = 27;

/// A gzip or zstd stream read member by member (frame by frame): concatenated members (pigz,
/// pzstd, `cat a.gz b.gz`) read as one stream, each member's checksum is verified, and zero
/// padding after the last one (tape-style blocking) is accepted like gzip(1) does.
pub(super) enum Decompress<R: BufRead> {
    /// The gzip member being read; `None` once the stream ended.
    Gzip(Option<GzDecoder<R>>),
    Zstd(Zstd<R>),
}

/// A decoder's verdict on the compressed bytes (a corrupt block, a checksum mismatch, a window
/// over the limit). Its message is the decoder's own and quotes nothing of the archive, so
/// errors show it (`extract::read_error`).
#[derive(Debug)]
pub(super) struct Corrupt(pub(super) String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Corrupt {}

fn corrupt(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, Corrupt(msg))
}

impl<R: BufRead> Decompress<R> {
    /// Start decompressing `source`: zstd, or gzip. The error is the zstd decoder's creation.
    pub(super) fn new(source: R, zstd: bool) -> io::Result<Decompress<R>> {
        Ok(match zstd {
            true => Decompress::Zstd(Zstd::new(source)?),
            false => Decompress::Gzip(Some(GzDecoder::new(source))),
        })
    }
}

impl<R: BufRead> Read for Decompress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompress::Gzip(member) => read_gzip(member, buf),
            Decompress::Zstd(zstd) => zstd.read(buf),
        }
    }
}

/// flate2 checks each member's CRC and length itself, and stops at the member's end.
fn read_gzip<R: BufRead>(member: &mut Option<GzDecoder<R>>, buf: &mut [u8]) -> io::Result<usize> {
    while let Some(gz) = member.as_mut() {
        let n = gz.read(buf).map_err(|e| match e.raw_os_error() {
            Some(_) => e,
            None => corrupt(e.kind(), format!("gzip: {e}")),
        })?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let Some(done) = member.take() else {
            break;
        };
        let mut source = done.into_inner();
        match source.fill_buf()?.first() {
            None => break,
            Some(0) => skip_zeros(&mut source)?,
            Some(_) => *member = Some(GzDecoder::new(source)),
        }
    }
    Ok(0)
}

/// C libzstd's streaming decoder over `source`. It reads concatenated frames as one stream,
/// skips skippable frames and verifies every frame's content checksum (the frames that carry
/// one; zstd(1) writes it by default); this adds the zero padding after the last frame.
pub(super) struct Zstd<R> {
    source: R,
    dctx: DCtx<'static>,
    at: At,
}

/// Where a zstd stream is, between calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before the first frame: the stream must have one.
    Start,
    /// Inside a frame: its end has not been decoded and flushed yet.
    Frame,
    /// Right after a frame's end: more frames, zero padding or the end may follow.
    Between,
    /// The stream ended.
    End,
}

impl<R: BufRead> Zstd<R> {
    fn new(source: R) -> io::Result<Zstd<R>> {
        let mut dctx =
            DCtx::try_create().ok_or_else(|| io::Error::other("ZSTD_createDCtx: out of memory"))?;
        dctx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
            .map_err(|code| {
                io::Error::other(format!(
                    "ZSTD_DCtx_setParameter(windowLogMax, {WINDOW_LOG_MAX}): {}",
                    zstd_safe::get_error_name(code)
                ))
            })?;
        Ok(Zstd {
            source,
            dctx,
            at: At::Start,
        })
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let eof = io::ErrorKind::UnexpectedEof;
        loop {
            let input = self.source.fill_buf()?;
            match (self.at, input.first()) {
                (At::End, _) | (At::Between, None) => {
                    self.at = At::End;
                    return Ok(0);
                }
                (At::Between, Some(0)) => {
                    skip_zeros(&mut self.source)?;
                    self.at = At::End;
                    return Ok(0);
                }
                (At::Start, None) => {
                    return Err(corrupt(eof, "zstd: the stream is empty".into()));
                }
                (At::Frame, None) => {
                    return Err(corrupt(eof, "zstd: the stream ends inside a frame".into()));
                }
                (At::Start | At::Frame | At::Between, Some(_)) => {}
            }
            let mut src = InBuffer::around(input);
            let mut dst = OutBuffer::around(&mut *buf);
            // 0: a frame (or a skippable frame) ended and all of it was written out.
            let left = self
                .dctx
                .decompress_stream(&mut dst, &mut src)
                .map_err(|code| {
                    let why = zstd_safe::get_error_name(code);
                    corrupt(io::ErrorKind::InvalidData, format!("zstd: {why}"))
                })?;
            let (used, made) = (src.pos(), dst.pos());
            self.source.consume(used);
            self.at = match left {
                0 => At::Between,
                _ => At::Frame,
            };
            if made > 0 {
                return Ok(made);
            }
        }
    }
}

/// Consume zero padding to the end; anything else after the last member is an error.
fn skip_zeros(source: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = source.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.iter().any(|b| *b != 0) {
            let why = "data after the last compressed member";
            return Err(corrupt(io::ErrorKind::InvalidData, why.into()));
        }
        let n = chunk.len();
        source.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        // Compressible, but not trivially: a byte pattern with a long period.
        (0..len).map(|i| ((i * 7 + i / 1000) % 251) as u8).collect()
    }

    fn frame(bytes: &[u8], checksum: bool) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.include_checksum(checksum).unwrap();
        c.compress(bytes).unwrap()
    }

    /// A skippable frame (magic 0x184D2A5?, little-endian length, payload), as pzstd writes
    /// before each frame.
    fn skippable(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x50, 0x2a, 0x4d, 0x18];
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// An empty frame whose header asks for a window of 2^`log` bytes: no content size, no
    /// checksum, one empty last raw block.
    fn window_frame(log: u8) -> Vec<u8> {
        vec![
            0x28,
            0xb5,
            0x2f,
            0xfd,
            0x00,
            (log - 10) << 3,
            0x01,
            0x00,
            0x00,
        ]
    }

    fn decode(stream: &[u8], read: usize) -> io::Result<Vec<u8>> {
        let mut d = Decompress::new(io::BufReader::with_capacity(4096, stream), true)?;
        let mut out = Vec::new();
        let mut buf = vec![0; read];
        loop {
            match d.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn message(stream: &[u8]) -> String {
        let err = decode(stream, 64 * 1024).unwrap_err();
        let corrupt = err.get_ref().and_then(|e| e.downcast_ref::<Corrupt>());
        assert!(corrupt.is_some(), "not a decoder's verdict: {err:?}");
        err.to_string()
    }

    #[test]
    fn frames_skippable_frames_and_padding_read_as_one_stream() {
        let (a, b) = (data(300_000), data(5_000));
        let stream = [
            skippable(b"pzstd"),
            frame(&a, true),
            skippable(&[]),
            frame(&b, false),
            frame(&[], true),
            vec![0; 1000],
        ]
        .concat();
        let want = [&a[..], &b[..]].concat();
        for read in [1, 4095, 64 * 1024, 1 << 20] {
            assert!(decode(&stream, read).unwrap() == want, "read size {read}");
        }
    }

    #[test]
    fn a_wrong_content_checksum_is_an_error() {
        let mut bad = frame(&data(100_000), true);
        assert!(decode(&bad, 8192).is_ok());
        let last = bad.len() - 1; // the checksum is the frame's last 4 bytes
        bad[last] ^= 1;
        let err = message(&bad);
        assert!(err.contains("zstd") && err.contains("checksum"), "{err}");
        // In a later frame too.
        let two = [frame(b"first", true), bad].concat();
        assert!(message(&two).contains("checksum"));
    }

    #[test]
    fn windows_over_the_limit_are_refused() {
        assert!(
            decode(&window_frame(WINDOW_LOG_MAX as u8), 100)
                .unwrap()
                .is_empty()
        );
        let err = message(&window_frame(WINDOW_LOG_MAX as u8 + 1));
        assert!(err.contains("zstd") && err.contains("memory"), "{err}");
    }

    #[test]
    fn empty_truncated_and_trailing_garbage_are_errors() {
        let whole = frame(&data(200_000), true);
        for (what, stream) in [
            ("empty", Vec::new()),
            ("zeros only", vec![0; 100]),
            ("truncated", whole[..whole.len() / 2].to_vec()),
            ("no checksum", whole[..whole.len() - 4].to_vec()),
            ("garbage after", [&whole[..], b"garbage"].concat()),
            (
                "garbage after padding",
                [&whole[..], &[0; 10], b"x"].concat(),
            ),
        ] {
            let err = message(&stream);
            assert!(!err.is_empty(), "{what}");
        }
    }
}
