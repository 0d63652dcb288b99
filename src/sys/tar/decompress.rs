//! gzip and zstd streams for rootfs archives, with checksums verified.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

/// A gzip or zstd stream read member by member (frame by frame): concatenated members (pigz,
/// pzstd, `cat a.gz b.gz`) read as one stream, each member's checksum is verified, and zero
/// padding after the last one (tape-style blocking) is accepted like gzip(1) does.
pub(super) struct Decompress<R: BufRead> {
    pub(super) zstd: bool,
    pub(super) member: Option<Member<R>>,
}

pub(super) enum Member<R: BufRead> {
    Gzip(flate2::bufread::GzDecoder<R>),
    Zstd(Box<StreamingDecoder<R, FrameDecoder>>), // boxed: the frame decoder is large
}

impl<R: BufRead> Member<R> {
    pub(super) fn start(source: R, zstd: bool) -> io::Result<Member<R>> {
        Ok(match zstd {
            true => Member::Zstd(Box::new(
                StreamingDecoder::new(source).map_err(io::Error::other)?,
            )),
            false => Member::Gzip(flate2::bufread::GzDecoder::new(source)),
        })
    }

    /// The source after a finished member. flate2 checks the gzip CRC itself; ruzstd reads the
    /// zstd checksum but leaves comparing it to us.
    fn finish(self) -> io::Result<R> {
        let zstd = match self {
            Member::Gzip(gz) => return Ok(gz.into_inner()),
            Member::Zstd(zstd) => zstd,
        };
        let frame = &zstd.decoder;
        match (
            frame.get_checksum_from_data(),
            frame.get_calculated_checksum(),
        ) {
            (Some(want), Some(got)) if want != got => {
                Err(io::Error::other("zstd content checksum mismatch"))
            }
            _ => Ok(zstd.into_inner()),
        }
    }
}

impl<R: BufRead> Read for Decompress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(member) = self.member.as_mut() {
            let n = match member {
                Member::Gzip(gz) => gz.read(buf)?,
                Member::Zstd(zstd) => zstd.read(buf)?,
            };
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(done) = self.member.take() else {
                break;
            };
            let mut source = done.finish()?;
            match source.fill_buf()?.first() {
                None => break,
                Some(0) => skip_zeros(&mut source)?,
                Some(_) => self.member = Some(Member::start(source, self.zstd)?),
            }
        }
        Ok(0)
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
            return Err(io::Error::other("data after the last compressed member"));
        }
        let n = chunk.len();
        source.consume(n);
    }
}
