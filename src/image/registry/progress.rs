//! `launch pull`'s report on stderr: one redrawn line per blob (bytes, rate) on a terminal,
//! one line per blob otherwise. Hand-written: a bar is twenty lines, indicatif would be
//! thousands and a thread.

use std::io::Write;
use std::time::{Duration, Instant};

use super::Progress;
use crate::image::reference::Digest;

/// Writes progress to stderr.
pub struct Reporter {
    tty: bool,
    started: Instant,
    from: u64,
    last: Option<Instant>,
    drawn: bool,
}

/// `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    crate::image::human_size(n)
}

fn short(d: &Digest) -> String {
    format!("sha256:{}", &d.hex()[..12])
}

impl Reporter {
    /// `tty`: redraw one line; otherwise plain lines.
    pub fn new(tty: bool) -> Reporter {
        Reporter {
            tty,
            started: Instant::now(),
            from: 0,
            last: None,
            drawn: false,
        }
    }

    /// End a redrawn line (before an error message).
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }

    fn draw(&mut self, d: &Digest, done: u64, size: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (done.saturating_sub(self.from)) as f64 / secs;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{} {} / {} {}/s",
            short(d),
            bytes(done),
            bytes(size),
            bytes(rate as u64)
        );
        let _ = err.flush();
        self.drawn = true;
    }
}

impl Progress for Reporter {
    fn resolved(&mut self, manifest: &Digest, layers: usize) {
        let s = if layers == 1 { "" } else { "s" };
        eprintln!("resolved {manifest} ({layers} layer{s})");
    }

    fn blob_start(&mut self, d: &Digest, size: u64, from: u64) {
        self.started = Instant::now();
        self.from = from;
        self.last = None;
        if self.tty {
            self.draw(d, from, size);
        } else if from > 0 {
            eprintln!(
                "{} resuming at {} of {}",
                short(d),
                bytes(from),
                bytes(size)
            );
        } else {
            eprintln!("{} downloading {}", short(d), bytes(size));
        }
    }

    fn blob_progress(&mut self, d: &Digest, done: u64, size: u64) {
        if !self.tty {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        self.draw(d, done, size);
    }

    fn blob_done(&mut self, d: &Digest, size: u64, cached: bool) {
        if cached {
            if !self.tty {
                eprintln!("{} already in the store", short(d));
            }
            return;
        }
        if self.tty {
            self.draw(d, size, size);
            self.finish();
        } else {
            eprintln!("{} done ({})", short(d), bytes(size));
        }
    }
}
