//! What the filter does with a call: the profile's `SCMP_ACT_*` names and the kernel's
//! `SECCOMP_RET_*` values.

use serde::{Deserialize, Serialize};

/// What the kernel does with a matching call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Run the call.
    Allow,
    /// Fail the call with this errno, without running it.
    Errno(u16),
    /// Kill the calling thread (`SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`).
    KillThread,
    /// Kill the whole process with SIGSYS.
    KillProcess,
    /// Send SIGSYS to the thread, which may handle it.
    Trap,
    /// Run the call and log it to the kernel log (audit).
    Log,
    /// Hand the call to a ptrace tracer, with this value; ENOSYS without a tracer.
    Trace(u16),
}

/// The largest errno the kernel returns (linux/err.h `MAX_ERRNO`).
pub const MAX_ERRNO: u32 = 4095;

impl Action {
    /// The `SECCOMP_RET_*` value the filter returns.
    pub fn ret(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Trace(msg) => libc::SECCOMP_RET_TRACE | u32::from(msg),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Allow => f.write_str("SCMP_ACT_ALLOW"),
            Action::Errno(e) => write!(f, "SCMP_ACT_ERRNO({e})"),
            Action::KillThread => f.write_str("SCMP_ACT_KILL_THREAD"),
            Action::KillProcess => f.write_str("SCMP_ACT_KILL_PROCESS"),
            Action::Trap => f.write_str("SCMP_ACT_TRAP"),
            Action::Log => f.write_str("SCMP_ACT_LOG"),
            Action::Trace(m) => write!(f, "SCMP_ACT_TRACE({m})"),
        }
    }
}

/// An action as a profile names it; ERRNO and TRACE take their value from `errnoRet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum ActionName {
    /// `SCMP_ACT_ALLOW`.
    SCMP_ACT_ALLOW,
    /// `SCMP_ACT_ERRNO`.
    SCMP_ACT_ERRNO,
    /// `SCMP_ACT_KILL`: libseccomp's older name for KILL_THREAD.
    SCMP_ACT_KILL,
    /// `SCMP_ACT_KILL_THREAD`.
    SCMP_ACT_KILL_THREAD,
    /// `SCMP_ACT_KILL_PROCESS`.
    SCMP_ACT_KILL_PROCESS,
    /// `SCMP_ACT_TRAP`.
    SCMP_ACT_TRAP,
    /// `SCMP_ACT_LOG`.
    SCMP_ACT_LOG,
    /// `SCMP_ACT_TRACE`.
    SCMP_ACT_TRACE,
    /// `SCMP_ACT_NOTIFY`: needs a seccomp agent listening on a socket, which launch has not.
    SCMP_ACT_NOTIFY,
}

impl ActionName {
    /// Every name, for parsing and suggestions.
    pub const ALL: [ActionName; 9] = [
        ActionName::SCMP_ACT_ALLOW,
        ActionName::SCMP_ACT_ERRNO,
        ActionName::SCMP_ACT_KILL,
        ActionName::SCMP_ACT_KILL_THREAD,
        ActionName::SCMP_ACT_KILL_PROCESS,
        ActionName::SCMP_ACT_TRAP,
        ActionName::SCMP_ACT_LOG,
        ActionName::SCMP_ACT_TRACE,
        ActionName::SCMP_ACT_NOTIFY,
    ];

    /// The name as profiles spell it.
    pub fn name(self) -> &'static str {
        match self {
            ActionName::SCMP_ACT_ALLOW => "SCMP_ACT_ALLOW",
            ActionName::SCMP_ACT_ERRNO => "SCMP_ACT_ERRNO",
            ActionName::SCMP_ACT_KILL => "SCMP_ACT_KILL",
            ActionName::SCMP_ACT_KILL_THREAD => "SCMP_ACT_KILL_THREAD",
            ActionName::SCMP_ACT_KILL_PROCESS => "SCMP_ACT_KILL_PROCESS",
            ActionName::SCMP_ACT_TRAP => "SCMP_ACT_TRAP",
            ActionName::SCMP_ACT_LOG => "SCMP_ACT_LOG",
            ActionName::SCMP_ACT_TRACE => "SCMP_ACT_TRACE",
            ActionName::SCMP_ACT_NOTIFY => "SCMP_ACT_NOTIFY",
        }
    }

    /// The action, with `ret` (a profile's `errnoRet`) for ERRNO and TRACE. runc's defaults
    /// when `errnoRet` is absent: EPERM for ERRNO and TRACE. `Err` says why it cannot be used.
    pub fn action(self, ret: Option<u32>) -> Result<Action, String> {
        let value = |default: u32| -> Result<u16, String> {
            match ret.unwrap_or(default) {
                n if n <= MAX_ERRNO => Ok(n as u16),
                n => Err(format!(
                    "errnoRet {n} is out of range: the kernel returns errno values up to {MAX_ERRNO}"
                )),
            }
        };
        let no_value = |a: Action| match ret {
            None => Ok(a),
            Some(_) => Err(format!(
                "errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {}",
                self.name()
            )),
        };
        match self {
            ActionName::SCMP_ACT_ALLOW => no_value(Action::Allow),
            ActionName::SCMP_ACT_ERRNO => Ok(Action::Errno(value(libc::EPERM as u32)?)),
            ActionName::SCMP_ACT_KILL | ActionName::SCMP_ACT_KILL_THREAD => {
                no_value(Action::KillThread)
            }
            ActionName::SCMP_ACT_KILL_PROCESS => no_value(Action::KillProcess),
            ActionName::SCMP_ACT_TRAP => no_value(Action::Trap),
            ActionName::SCMP_ACT_LOG => no_value(Action::Log),
            ActionName::SCMP_ACT_TRACE => Ok(Action::Trace(value(libc::EPERM as u32)?)),
            ActionName::SCMP_ACT_NOTIFY => Err(
                "SCMP_ACT_NOTIFY hands calls to a seccomp agent, which launch does not run; \
                 use SCMP_ACT_ERRNO or SCMP_ACT_LOG"
                    .to_string(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Action, ActionName};

    #[test]
    fn actions_are_the_kernels_values() {
        assert_eq!(Action::Allow.ret(), 0x7fff_0000);
        assert_eq!(Action::Errno(1).ret(), 0x0005_0001);
        assert_eq!(Action::KillProcess.ret(), 0x8000_0000);
        assert_eq!(Action::KillThread.ret(), 0);
        assert_eq!(Action::Trace(7).ret(), 0x7ff0_0007);
        assert_eq!(Action::Log.ret(), 0x7ffc_0000);
        assert_eq!(Action::Trap.ret(), 0x0003_0000);
    }

    #[test]
    fn errno_ret_defaults_and_bounds() {
        let errno = ActionName::SCMP_ACT_ERRNO;
        assert_eq!(errno.action(None), Ok(Action::Errno(1)));
        assert_eq!(errno.action(Some(38)), Ok(Action::Errno(38)));
        assert!(
            errno
                .action(Some(70000))
                .unwrap_err()
                .contains("out of range")
        );
        assert!(ActionName::SCMP_ACT_ALLOW.action(Some(1)).is_err());
        assert_eq!(
            ActionName::SCMP_ACT_KILL.action(None),
            Ok(Action::KillThread)
        );
        assert!(
            ActionName::SCMP_ACT_NOTIFY
                .action(None)
                .unwrap_err()
                .contains("agent")
        );
    }
}
