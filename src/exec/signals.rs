//! Signals received by the launcher go to the container's main process.
//!
//! SIGINT and SIGQUIT typed at the terminal reach the container directly (it is in the launcher's
//! process group), so those are forwarded only when they were sent to the launcher by a process
//! (`kill`), not by the terminal driver: the container must not get them twice.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::unistd::Pid;

/// The container's host pid, or 0.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Signals forwarded to the container.
const FORWARDED: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let pid = CHILD.load(Ordering::Relaxed);
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

/// Install the forwarding handlers (before the container exists: they do nothing until then).
pub fn install() {
    for &sig in FORWARDED {
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask is well-formed.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
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
