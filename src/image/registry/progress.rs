//! `launch pull`'s report on stderr: one redrawn line per blob (bytes, rate) on a terminal,
//! one line per blob otherwise. The line itself is [`crate::image::progress::Line`], which
//! layer unpacks share.

use super::Progress;
use crate::image::progress::Line;
use crate::image::reference::Digest;

/// Writes progress to stderr.
pub struct Reporter {
    line: Line,
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
            line: Line::new(tty),
        }
    }

    /// End a redrawn line (before an error message).
    pub fn finish(&mut self) {
        self.line.finish();
    }
}

impl Progress for Reporter {
    fn resolved(&mut self, manifest: &Digest, layers: usize) {
        let s = if layers == 1 { "" } else { "s" };
        eprintln!("resolved {manifest} ({layers} layer{s})");
    }

    fn blob_start(&mut self, d: &Digest, size: u64, from: u64) {
        self.line.start(from);
        if self.line.tty() {
            self.line.draw(&short(d), from, size);
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
        self.line.tick(&short(d), done, size);
    }

    fn blob_done(&mut self, d: &Digest, size: u64, cached: bool) {
        if cached {
            if !self.line.tty() {
                eprintln!("{} already in the store", short(d));
            }
            return;
        }
        if self.line.tty() {
            self.line.draw(&short(d), size, size);
            self.line.finish();
        } else {
            eprintln!("{} done ({})", short(d), bytes(size));
        }
    }
}
