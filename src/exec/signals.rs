//! Signals received by the launcher: during start-up they cancel it, once the container runs they
//! go to the container's main process.
//!
//! Start-up (from the first step until the container's execve) is cancellable: SIGINT, SIGTERM,
//! SIGHUP and SIGQUIT record the signal, and the executor stops before its next step (or while
//! it waits for the container's handshake, which a signal interrupts), undoes everything and
//! exits with 128+N. Extraction checks between entries.
//!
//! Once the container runs, SIGINT and SIGQUIT typed at the terminal reach the container directly
//! (it is in the launcher's process group), so those are forwarded only when they were sent to
//! the launcher by a process (`kill`), not by the terminal driver: the container must not get
//! them twice.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use nix::unistd::Pid;

/// The container's host pid, or 0.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// Whether the container runs its command (start-up is over).
static RUNNING: AtomicBool = AtomicBool::new(false);
/// The signal that cancelled start-up, or 0.
static CANCEL: AtomicI32 = AtomicI32::new(0);
/// Other forwarded signals received during start-up (bit N: signal N), delivered once the
/// command runs.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Signals forwarded to the container.
pub(crate) const FORWARDED: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Signals that cancel start-up.
fn cancels(sig: libc::c_int) -> bool {
    matches!(
        sig,
        libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT
    )
}

extern "C" fn handle(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let pid = CHILD.load(Ordering::Relaxed);
    if !RUNNING.load(Ordering::Relaxed) {
        if cancels(sig) {
            CANCEL.store(sig, Ordering::Relaxed);
        } else if (0..64).contains(&sig) {
            PENDING.fetch_or(1 << sig, Ordering::Relaxed);
        }
        return;
    }
    if pid <= 0 {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let from_tty = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if from_tty && (sig == libc::SIGINT || sig == libc::SIGQUIT) {
        return;
    }
    // SAFETY: kill is async-signal-safe.
    unsafe { libc::kill(pid, sig) };
}

/// Install the handlers: from now on start-up can be cancelled.
pub fn install() {
    RUNNING.store(false, Ordering::Relaxed);
    CANCEL.store(0, Ordering::Relaxed);
    PENDING.store(0, Ordering::Relaxed);
    for &sig in FORWARDED {
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask is well-formed.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handle as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Record the container's pid (0: none).
pub fn set_child(pid: Pid) {
    CHILD.store(pid.as_raw(), Ordering::Relaxed);
}

/// The signal that cancelled start-up, if one did.
pub fn cancelled() -> Option<i32> {
    match CANCEL.load(Ordering::Relaxed) {
        0 => None,
        sig => Some(sig),
    }
}

/// Whether start-up was cancelled (for loops in lower layers, which take a plain `fn`).
pub fn is_cancelled() -> bool {
    cancelled().is_some()
}

/// Start-up is over: the container runs its command, and signals are forwarded from now on.
/// Returns the signals that arrived meanwhile (one too late to cancel, and any other forwarded
/// signal), which the caller forwards to the command.
pub fn started() -> Vec<i32> {
    RUNNING.store(true, Ordering::Relaxed);
    let late = CANCEL.swap(0, Ordering::Relaxed);
    let pending = PENDING.swap(0, Ordering::Relaxed);
    let mut out: Vec<i32> = (1..64).filter(|s| pending & (1 << s) != 0).collect();
    if late != 0 {
        out.push(late);
    }
    out
}
