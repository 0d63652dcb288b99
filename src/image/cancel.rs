//! SIGINT and SIGTERM while the launcher brings an image into the store (an image root resolved
//! before validation, `launch import`): the signal is recorded, the work stops at its next check
//! (between tar entries, between layers, between chunks of a blob being stored; a running
//! `launch-registry` pull gets the signal and stops itself), what was half written is removed,
//! and the caller exits 128+N. Nothing is started.
//!
//! The handlers live only as long as a [`Scope`]: dropping it puts back the dispositions it
//! found, so what runs afterwards (the executor installs its own) sees the process as before.
//! They are installed without `SA_RESTART`: a wait for a lock another process holds, or for the
//! pull helper, returns `EINTR` and notices the cancel at once.
//!
//! A pull helper is in the launcher's process group: a Ctrl-C typed at the terminal reaches it
//! directly, so only signals sent by a process (`kill`, `launch stop`) are passed on to it, and
//! it never gets one twice (a second signal would end it at once, see
//! [`super::registry::cancel`]).

use std::sync::atomic::{AtomicI32, Ordering};

/// The first signal that asked to stop, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The pull helper's pid while it runs, or 0.
static CHILD: AtomicI32 = AtomicI32::new(0);

const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

extern "C" fn record(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let _ = SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    let child = CHILD.load(Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let from_tty = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if child > 0 && !from_tty {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(child, sig) };
    }
}

/// The handlers, installed while this lives.
pub struct Scope {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Scope {
    /// Install the handlers (and forget any earlier signal). Failure to install one leaves its
    /// default action: the process dies of the signal, and what it leaves is only ever what a
    /// crash leaves (temporary files the store removes, a start record `launch gc` removes).
    pub fn install() -> Scope {
        SIGNAL.store(0, Ordering::SeqCst);
        CHILD.store(0, Ordering::SeqCst);
        let mut previous = Vec::new();
        for sig in SIGNALS {
            // SAFETY: a zeroed sigaction with a valid handler and an empty mask is well-formed;
            // `record` only touches atomics and calls kill(2), both async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = record as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut old) == 0 {
                    previous.push((sig, old));
                }
            }
        }
        Scope { previous }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        for (sig, old) in &self.previous {
            // SAFETY: `old` is what sigaction(2) returned for this signal.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
        CHILD.store(0, Ordering::SeqCst);
    }
}

/// The signal that asked to stop, if one did (it stays recorded after the [`Scope`] ends, until
/// the next one starts).
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Whether a signal asked to stop (for the store's checks, which take a plain `fn`).
pub fn is_cancelled() -> bool {
    requested().is_some()
}

/// The pull helper `pid` runs from now on: pass it the signals sent to us. A signal that came
/// before it was known is passed on now.
pub fn set_child(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    if let Some(sig) = requested() {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, sig) };
    }
}

/// The pull helper has ended (call before reaping it: its pid may then be reused).
pub fn clear_child() {
    CHILD.store(0, Ordering::SeqCst);
}

/// `SIGINT`, `SIGTERM`, ... for messages.
pub fn name(sig: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(sig).map_or("a signal", |s| s.as_str())
}
