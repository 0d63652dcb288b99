//! The built-in init (`process.init = true`): PID 1 forks the command, forwards signals to it,
//! reaps every zombie (orphans are re-parented to PID 1), and exits with the command's status.
//! A few dozen lines instead of an external tini.

use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::channel::{Channel, ToParent};
use crate::error::{SysError, SysResult};
use crate::sys::process;

/// Signals init handles: SIGCHLD to reap, the rest forwarded to the command.
const HANDLED: &[Signal] = &[
    Signal::SIGCHLD,
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Become init: fork and exec the command in the child, then supervise it, and exit with its
/// status. If the command cannot be started, it reports so as plan step `step`.
pub(super) fn run(
    argv: &[String],
    env: &[String],
    preserve_fds: u32,
    chan: Channel,
    step: usize,
) -> ! {
    match start(argv, env, preserve_fds, &chan, step) {
        Err(error) => {
            let _ = chan.send(&ToParent::Failed { step, error });
            exit(125)
        }
        Ok(cmd) => {
            // Our end of the channel closes at once; the command's copy closes on its execve, or
            // carries its failure first. So launch reads end-of-file exactly when the command
            // starts, never later: a signal to launch after the command's first output is
            // forwarded to it, not taken for a cancelled start-up.
            chan.close();
            // PID 1 lives as long as the container: it keeps no descriptor of the launcher's
            // (the journal, cgroup files) nor of its caller's, which the command could reach
            // through /proc/1/fd. Failing to close them is not worth killing the container for:
            // close_range only fails on a kernel older than 5.9.
            let _ = process::close_from(3, false);
            supervise(cmd)
        }
    }
}

fn start(
    argv: &[String],
    env: &[String],
    preserve_fds: u32,
    chan: &Channel,
    step: usize,
) -> SysResult<Pid> {
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(*s);
    }
    // Block first, so no signal is lost between the fork and the first sigwait.
    let old = set
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .map_err(|e| SysError::new("sigprocmask", None, e))?;
    let prepare = || {
        let stdin = std::io::stdin();
        if nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
            // The command's own process group, in the foreground of the terminal. A background
            // group calling tcsetpgrp gets SIGTTOU (and stops) unless it is blocked: block it
            // for the call; the old mask comes back before execve.
            let mut ttou = SigSet::empty();
            ttou.add(Signal::SIGTTOU);
            let _ = ttou.thread_block();
            let me = nix::unistd::getpid();
            let _ = nix::unistd::setpgid(me, me);
            let _ = nix::unistd::tcsetpgrp(stdin.as_fd(), me);
        }
        old.thread_set_mask()
            .map_err(|e| SysError::new("sigprocmask", None, e).args("SIG_SETMASK"))
    };
    // A command that cannot start reports over the channel itself, as plan step `step`; it
    // exits with 127, which the supervision below passes on.
    let report = |error| {
        let _ = chan.send(&ToParent::Failed { step, error });
    };
    // SAFETY: this process is single-threaded (the launcher's only thread besides its own, an
    // archive's reader during extraction, is joined before clone).
    unsafe { process::fork_exec(prepare, argv, env, preserve_fds, report) }
}

fn supervise(cmd: Pid) -> ! {
    // SAFETY: prctl with a NUL-terminated name that outlives the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"launch-init".as_ptr(), 0, 0, 0) };
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(*s);
    }
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(cmd, sig);
            continue;
        }
        // Reap everything that has exited: the command, and any orphan.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(st) if st.pid() == Some(cmd) => {
                    if let Some(code) = crate::exit::of_status(st) {
                        exit(code.into());
                    }
                }
                Ok(_) => {}
            }
        }
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}
