//! clone3(2): create the container process with every namespace at once (and, on cgroup v2,
//! directly inside its cgroup), with fork semantics.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::error::{SysError, SysResult};
use serde::{Deserialize, Serialize};

/// A namespace flag given to clone3/unshare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum CloneFlag {
    /// New user namespace.
    CLONE_NEWUSER,
    /// New pid namespace.
    CLONE_NEWPID,
    /// New mount namespace.
    CLONE_NEWNS,
    /// New UTS namespace.
    CLONE_NEWUTS,
    /// New IPC namespace.
    CLONE_NEWIPC,
    /// New network namespace.
    CLONE_NEWNET,
    /// New cgroup namespace.
    CLONE_NEWCGROUP,
    /// New time namespace.
    CLONE_NEWTIME,
    /// Start the child in a given cgroup (v2).
    CLONE_INTO_CGROUP,
}

/// The kernel value of a plan clone flag.
pub fn flag_bits(flags: &[CloneFlag]) -> u64 {
    flags.iter().fold(0u64, |acc, f| {
        acc | match f {
            CloneFlag::CLONE_NEWUSER => libc::CLONE_NEWUSER as u64,
            CloneFlag::CLONE_NEWPID => libc::CLONE_NEWPID as u64,
            CloneFlag::CLONE_NEWNS => libc::CLONE_NEWNS as u64,
            CloneFlag::CLONE_NEWUTS => libc::CLONE_NEWUTS as u64,
            CloneFlag::CLONE_NEWIPC => libc::CLONE_NEWIPC as u64,
            CloneFlag::CLONE_NEWNET => libc::CLONE_NEWNET as u64,
            CloneFlag::CLONE_NEWCGROUP => libc::CLONE_NEWCGROUP as u64,
            CloneFlag::CLONE_NEWTIME => libc::CLONE_NEWTIME as u64,
            // The kernel value; libc declares it as a c_int, which it overflows.
            CloneFlag::CLONE_INTO_CGROUP => 0x2_0000_0000,
        }
    })
}

/// What clone3 returned to this process.
pub enum Forked {
    /// We are the parent; this is the child.
    Parent(Pid),
    /// We are the child.
    Child,
}

/// clone3 with fork semantics (no new stack): returns in both processes.
///
/// # Safety
///
/// As for fork: the caller must be single-threaded. The child has only this thread, so a lock
/// another thread held (the allocator's, stdio's) would stay locked in it forever.
pub unsafe fn clone3(flags: &[CloneFlag], cgroup_fd: Option<RawFd>) -> SysResult<Forked> {
    // SAFETY: clone_args is plain data; zero is valid for every field.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flag_bits(flags);
    args.exit_signal = libc::SIGCHLD as u64;
    if let Some(fd) = cgroup_fd {
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork: the child gets a copy
    // of the address space and continues here. The caller is single-threaded (this function's
    // contract).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match r {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
        _ => Err(SysError::new("clone3", None, Errno::last()).args(
            flags
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join("|"),
        )),
    }
}
