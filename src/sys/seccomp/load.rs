//! seccomp(2): install a compiled filter on the calling thread.

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use super::compile::Program;
use crate::error::{SysError, SysResult};

/// How a filter is installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadFlags {
    /// SECCOMP_FILTER_FLAG_LOG: log every action but ALLOW to the kernel log (dmesg, audit), so
    /// users see which call a container was denied.
    pub log: bool,
}

impl LoadFlags {
    fn bits(self) -> libc::c_ulong {
        match self.log {
            true => libc::SECCOMP_FILTER_FLAG_LOG,
            false => 0,
        }
    }

    fn names(self) -> &'static str {
        match self.log {
            true => "SECCOMP_FILTER_FLAG_LOG",
            false => "0",
        }
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER): from here on, every call of this thread (and of the
/// programs it execs and the children it makes) goes through `program`, for good.
///
/// The kernel refuses (EACCES) unless no_new_privs is set (`prctl(PR_SET_NO_NEW_PRIVS)`) or the
/// thread has CAP_SYS_ADMIN: set no_new_privs first. Load it last before execve, since the
/// filter also judges launch's own remaining calls. No TSYNC: launch's child is single-threaded.
/// On success nothing is allocated, so it may run in a child forked from a threaded process.
pub fn load(program: &Program, flags: LoadFlags) -> SysResult<()> {
    let fprog = libc::sock_fprog {
        len: program.instructions.len() as libc::c_ushort,
        // Instruction is `#[repr(C)]` with sock_filter's layout (checked in bpf.rs); the kernel
        // only reads through this pointer.
        filter: program.instructions.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccomp reads `fprog` and the `len` instructions it points to, which live in
    // `program` for the duration of the call; it copies them before returning.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags.bits(),
            &fprog as *const libc::sock_fprog,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let errno = Errno::last();
    let err = SysError::new("seccomp", None, errno).args(format!(
        "SECCOMP_SET_MODE_FILTER, {}, `{}` ({} instructions, {})",
        flags.names(),
        program.name,
        program.instructions.len(),
        program.digest
    ));
    Err(match errno {
        Errno::EACCES => err.with_detail(
            "set no_new_privs first (or keep CAP_SYS_ADMIN): the kernel refuses a filter otherwise",
        ),
        Errno::EINVAL if flags.log => {
            err.with_detail("this kernel may not know SECCOMP_FILTER_FLAG_LOG (Linux 4.14+)")
        }
        _ => err,
    })
}
