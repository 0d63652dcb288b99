//! SIGINT/SIGTERM during a pull: the handler only records the signal; the download loop checks
//! it between reads and stops, keeping the partial file for a resume. The handlers are
//! installed without SA_RESTART so a body read blocked on a stalled server returns EINTR at
//! once; while ureq connects or waits for headers it restarts the call (up to its timeouts), so
//! a second signal there ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(sig: libc::c_int) {
    // A second signal while the first is being acted on (ureq restarts reads interrupted while
    // it waits for a response's headers or a connection, up to their timeouts): die of it at
    // once. What is on disk is only ever a partial file, which the next pull resumes.
    if SIGNAL.swap(sig, Ordering::SeqCst) != 0 {
        // SAFETY: signal(2) and raise(3) are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// Install the handlers (the CLI does, before pulling). Failure leaves the default action
/// (the process dies, the partial file stays): nothing to report.
pub fn install() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(record),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: `record` only stores into an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// The signal that asked to stop, if any.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
