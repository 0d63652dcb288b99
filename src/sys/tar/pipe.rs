//! Reading, hashing and decompressing an archive in a thread of its own, ahead of extraction.
//!
//! GNU tar runs gzip(1) or zstd(1) as a separate process, so decompression and file creation use
//! two CPUs at once. Extraction here is bound by the system calls that create files; reading the
//! archive, hashing it (a layer's two digests) and decompressing it were done in the same thread
//! between those calls, and `.tar.zst` unpacked at 0.74× GNU tar's speed. [`Pipe`] moves that
//! work to a producer thread, which fills chunks of [`CHUNK`] bytes and hands them over a
//! bounded channel: at most [`DEPTH`] chunks wait (plus one being filled and one being read), so
//! memory stays bounded however large the archive.
//!
//! The thread ends when the stream ends, fails, or its reader is dropped (a send to a dropped
//! receiver fails); dropping the [`Pipe`] joins it, so no thread outlives an extraction: the
//! launcher is single-threaded again before it clones the container (src/sys/clone.rs).

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

/// Bytes per chunk handed from the producer to the extractor.
const CHUNK: usize = 256 * 1024;
/// Chunks that may wait in the channel.
const DEPTH: usize = 4;

/// What the producer sends: a filled chunk and its length (0: the end of the stream), or the
/// error that stopped it.
type Msg = io::Result<(Vec<u8>, usize)>;

/// The consumer end: a [`Read`] of what the producer thread reads from its source.
pub(super) struct Pipe {
    rx: Option<Receiver<Msg>>,
    /// Empty chunks given back to the producer, so the stream is not one allocation per chunk.
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    len: usize,
    pos: usize,
    /// The stream ended (`Some(true)`) or failed (`Some(false)`).
    ended: Option<bool>,
    thread: Option<JoinHandle<()>>,
}

/// Start a thread reading `source` ahead (the error is the thread's creation).
pub(super) fn spawn<R: Read + Send + 'static>(mut source: R) -> io::Result<Pipe> {
    let (tx, rx) = sync_channel::<Msg>(DEPTH);
    let (back, spare) = sync_channel::<Vec<u8>>(DEPTH + 2);
    let thread = std::thread::Builder::new()
        .name("launch-unpack".into())
        .spawn(move || {
            loop {
                let mut buf = match spare.try_recv() {
                    Ok(buf) => buf,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => vec![0; CHUNK],
                };
                let (n, err) = fill(&mut source, &mut buf);
                if n > 0 && tx.send(Ok((buf, n))).is_err() {
                    return; // the reader is gone
                }
                match err {
                    Some(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    None if n < CHUNK => {
                        let _ = tx.send(Ok((Vec::new(), 0)));
                        return;
                    }
                    None => {}
                }
            }
        })?;
    Ok(Pipe {
        rx: Some(rx),
        back,
        cur: Vec::new(),
        len: 0,
        pos: 0,
        ended: None,
        thread: Some(thread),
    })
}

/// Read into `buf` until it is full, the stream ends or fails: the bytes read, and the error.
fn fill(source: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

impl Read for Pipe {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.len {
            match self.ended {
                Some(true) => return Ok(0),
                Some(false) => return Err(io::Error::other("the archive's stream failed before")),
                None => {}
            }
            let used = std::mem::take(&mut self.cur);
            if used.capacity() > 0 {
                let _ = self.back.try_send(used);
            }
            let got = match &self.rx {
                Some(rx) => rx.recv(),
                None => return Ok(0),
            };
            match got {
                Ok(Ok((_, 0))) => self.ended = Some(true),
                Ok(Ok((buf, n))) => {
                    self.cur = buf;
                    self.len = n;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.ended = Some(false);
                    return Err(e);
                }
                // Only if the thread died without a word (a panic; release builds abort).
                Err(_) => {
                    self.ended = Some(false);
                    return Err(io::Error::other("the archive's reading thread stopped"));
                }
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // A producer blocked on a full channel fails its send once the receiver is gone.
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dribble {
        data: Vec<u8>,
        at: usize,
        fail_at: Option<usize>,
    }

    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.at >= f) {
                return Err(io::Error::other("broken source"));
            }
            let n = buf.len().min(7919).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn passes_every_byte_in_order() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK * DEPTH + 12345] {
            let want = data(len);
            let mut pipe = spawn(Dribble {
                data: want.clone(),
                at: 0,
                fail_at: None,
            })
            .unwrap();
            let mut got = Vec::new();
            pipe.read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "bytes differ for length {len}");
            assert_eq!(pipe.read(&mut [0; 4]).unwrap(), 0);
        }
    }

    #[test]
    fn a_source_error_comes_after_the_bytes_before_it() {
        let want = data(CHUNK + 5000);
        let mut pipe = spawn(Dribble {
            data: want.clone(),
            at: 0,
            fail_at: Some(CHUNK + 4000),
        })
        .unwrap();
        let mut got = Vec::new();
        let err = pipe.read_to_end(&mut got).unwrap_err();
        assert_eq!(err.to_string(), "broken source");
        assert!(got.len() >= CHUNK && want.starts_with(&got));
        assert!(pipe.read(&mut [0; 4]).is_err());
    }

    #[test]
    fn dropping_the_reader_early_stops_the_thread() {
        // A source far larger than what the channel holds: the drop must not wait for it.
        let mut pipe = spawn(io::repeat(7).take(1 << 40)).unwrap();
        let mut buf = [0; 100];
        pipe.read_exact(&mut buf).unwrap();
        drop(pipe);
    }
}
