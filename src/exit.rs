//! Exit codes. Documented in docs/exit-codes.md; the container's own status passes through.

/// Success.
pub const OK: u8 = 0;
/// The manifest is invalid, unreadable, or the command line is wrong.
pub const INVALID: u8 = 2;
/// `launch` itself failed (a plan step failed, with everything undone).
pub const LAUNCHER: u8 = 125;
/// The command was found but could not be executed.
pub const CANNOT_EXEC: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;

/// The exit code for a child's wait status: its own code, or 128+N when signal N killed it, as
/// shells report. `None` for a status that is not an end (stopped, continued).
pub fn of_status(status: nix::sys::wait::WaitStatus) -> Option<u8> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(code as u8),
        WaitStatus::Signaled(_, sig, _) => Some((128 + sig as i32) as u8),
        WaitStatus::Stopped(..)
        | WaitStatus::PtraceEvent(..)
        | WaitStatus::PtraceSyscall(_)
        | WaitStatus::Continued(_)
        | WaitStatus::StillAlive => None,
    }
}

/// The exit code for a command that could not be started: 127 when execve found no such file,
/// 126 when it found one it could not execute, as shells do; 125 for anything before execve.
pub fn of_exec_error(e: &crate::error::SysError) -> u8 {
    use nix::errno::Errno;
    match (e.op.as_str(), e.errno()) {
        ("execve", Errno::ENOENT | Errno::ENOTDIR) => NOT_FOUND,
        ("execve", _) => CANNOT_EXEC,
        _ => LAUNCHER,
    }
}
