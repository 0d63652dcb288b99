//! Progress on stderr, for pulls (`registry::progress`) and layer unpacks ([`UnpackReporter`]):
//! on a terminal one line redrawn in place (bytes done of the total, rate), otherwise plain
//! lines when something starts and ends, nothing per chunk. Hand-written: a bar is twenty
//! lines, indicatif would be thousands and a thread.

use std::io::Write;
use std::time::{Duration, Instant};

use super::Digest;
use super::store::LayerInfo;

/// How often a redrawn line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);

/// `sha256:` and 12 hex digits.
pub fn short(d: &Digest) -> String {
    format!("sha256:{}", d.short())
}

/// One line of progress on stderr, redrawn in place on a terminal.
pub struct Line {
    tty: bool,
    started: Instant,
    from: u64,
    last: Option<Instant>,
    drawn: bool,
}

impl Line {
    /// `tty`: stderr is a terminal (redraw); otherwise the caller prints plain lines.
    pub fn new(tty: bool) -> Line {
        Line {
            tty,
            started: Instant::now(),
            from: 0,
            last: None,
            drawn: false,
        }
    }

    /// Whether lines are redrawn.
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// Something starts, `from` bytes already done (a resumed download): the rate counts from
    /// here.
    pub fn start(&mut self, from: u64) {
        self.started = Instant::now();
        self.from = from;
        self.last = None;
    }

    /// Time since [`Line::start`].
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Redraw `label done / size rate/s` now (a terminal only).
    pub fn draw(&mut self, label: &str, done: u64, size: u64) {
        if !self.tty {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done.saturating_sub(self.from) as f64 / secs;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{label} {} / {} {}/s",
            super::human_size(done),
            super::human_size(size),
            super::human_size(rate as u64)
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// [`Line::draw`], at most every 100 ms.
    pub fn tick(&mut self, label: &str, done: u64, size: u64) {
        if !self.tty {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < REDRAW) {
            return;
        }
        self.last = Some(now);
        self.draw(label, done, size);
    }

    /// Replace a redrawn line by `text` for good; without one, print `text` as a plain line.
    pub fn done(&mut self, text: &str) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
        eprintln!("{text}");
    }

    /// End a redrawn line (before an error message).
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

/// What a layer unpack reports, as it goes.
pub trait Unpacking {
    /// Layer `nth.0` of `nth.1` (its diff_id, its blob's size) starts unpacking (a layer
    /// already unpacked reports nothing).
    fn layer_start(&mut self, _nth: (usize, usize), _diff_id: &Digest, _size: u64) {}
    /// `done` bytes of the blob are read (between tar entries).
    fn layer_progress(&mut self, _diff_id: &Digest, _done: u64, _size: u64) {}
    /// The layer is unpacked.
    fn layer_done(&mut self, _diff_id: &Digest, _info: &LayerInfo) {}
    /// The unpack stopped (an error follows, or the cancel message).
    fn layer_failed(&mut self) {}
    /// A `tar` root's archive (`size` bytes) starts being extracted into the store; progress
    /// and the end follow as for a layer.
    fn archive_start(&mut self, _archive: &std::path::Path, _size: u64) {}
    /// Slow work is about to start (a pull, an import): the start becomes stoppable then, not
    /// before (a cached image's start makes no record).
    fn work_starts(&mut self) {}
}

/// An [`Unpacking`] that reports nothing.
pub struct Quiet;
impl Unpacking for Quiet {}

/// Layer unpacks on stderr: `unpacking sha256:… (layer 1/2, 40.0 MiB)` then `unpacked …` as
/// plain lines, or one line redrawn with bytes and rate on a terminal.
pub struct UnpackReporter {
    line: Line,
    label: String,
}

impl UnpackReporter {
    /// `tty`: stderr is a terminal.
    pub fn new(tty: bool) -> UnpackReporter {
        UnpackReporter {
            line: Line::new(tty),
            label: String::new(),
        }
    }

    /// For stderr as it is.
    pub fn stderr() -> UnpackReporter {
        use std::io::IsTerminal;
        UnpackReporter::new(std::io::stderr().is_terminal())
    }
}

impl Unpacking for UnpackReporter {
    fn layer_start(&mut self, nth: (usize, usize), diff_id: &Digest, size: u64) {
        self.line.start(0);
        self.label = format!("{} (layer {}/{})", short(diff_id), nth.0, nth.1);
        if self.line.tty() {
            let label = format!("unpacking {}", self.label);
            self.line.draw(&label, 0, size);
        } else {
            eprintln!(
                "unpacking {} (layer {}/{}, {})",
                short(diff_id),
                nth.0,
                nth.1,
                super::human_size(size)
            );
        }
    }

    fn layer_progress(&mut self, _diff_id: &Digest, done: u64, size: u64) {
        let label = format!("unpacking {}", self.label);
        self.line.tick(&label, done, size);
    }

    fn layer_done(&mut self, _diff_id: &Digest, info: &LayerInfo) {
        let text = format!(
            "unpacked {}: {} in {} entries, {:.2} s",
            self.label,
            super::human_size(info.bytes),
            info.entries,
            self.line.elapsed().as_secs_f64()
        );
        self.line.done(&text);
    }

    fn layer_failed(&mut self) {
        self.line.finish();
    }

    fn archive_start(&mut self, archive: &std::path::Path, size: u64) {
        self.line.start(0);
        self.label = archive.display().to_string();
        if self.line.tty() {
            let label = format!("extracting {}", self.label);
            self.line.draw(&label, 0, size);
        } else {
            eprintln!(
                "extracting {} ({}) into the store",
                self.label,
                super::human_size(size)
            );
        }
    }
}
