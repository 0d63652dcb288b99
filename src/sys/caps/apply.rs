//! Setting a process's capability sets, in the order the kernel requires, around its uid change.
//!
//! ```text
//! PR_CAPBSET_DROP each capability not kept   (needs CAP_SETPCAP: before anything is dropped)
//! PR_SET_KEEPCAPS 1                          (only when leaving uid 0 with capabilities to keep)
//! setgroups, setgid, setuid                  (the caller's, while CAP_SETUID/CAP_SETGID are held)
//! PR_SET_KEEPCAPS 0
//! capset(effective, permitted, inheritable)
//! PR_CAP_AMBIENT_CLEAR_ALL, PR_CAP_AMBIENT_RAISE each ambient capability
//! ```
//! Nothing here allocates on success, so [`apply`] may run in a child forked from a threaded
//! process (as the tests do).

use nix::errno::Errno;

use super::capability::Capability;
use super::plan::{CapPlan, CapSets};
use super::set::CapSet;
use crate::error::{SysError, SysResult};

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, passed as two 32-bit words.
const VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`, one per 32 capabilities.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Set the process's capabilities to `plan`, calling `change_ids` (setgroups, setgid, setuid)
/// at the one point where that works: after the bounding set is cut (which needs CAP_SETPCAP),
/// before capset takes CAP_SETUID and CAP_SETGID away. The caller is uid 0 in its user namespace
/// with its full set (launch's container process before it drops anything).
pub fn apply(plan: &CapPlan, change_ids: impl FnOnce() -> SysResult<()>) -> SysResult<()> {
    drop_bounding(plan.sets.bounding)?;
    if plan.keep_caps {
        set_keep_caps(true)?;
    }
    change_ids()?;
    if plan.keep_caps {
        set_keep_caps(false)?;
    }
    set_sets(&plan.sets)
}

/// capset(2) the effective, permitted and inheritable sets of `sets`, then set the ambient set
/// (its bounding set is [`drop_bounding`]'s business).
pub fn set_sets(sets: &CapSets) -> SysResult<()> {
    capset(sets)?;
    set_ambient(sets.ambient)
}

/// The kernel's name for capability number `n`, for messages (allocates: failure paths only).
fn shown(n: u32) -> String {
    u8::try_from(n)
        .ok()
        .and_then(Capability::from_number)
        .map_or_else(|| format!("capability {n}"), |c| c.name().to_string())
}

/// Whether capability `n` is in the calling thread's bounding set; `None` past the kernel's last
/// capability.
fn in_bounding(n: u32) -> Option<bool> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(n), 0, 0, 0) };
    match r {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// The calling thread's bounding set, as PR_CAPBSET_READ reports it (capabilities launch does
/// not know are left out). Allocation-free, unlike reading /proc/self/status.
pub fn bounding_now() -> CapSet {
    Capability::ALL
        .into_iter()
        .filter(|c| in_bounding(c.number().into()) == Some(true))
        .collect()
}

/// PR_CAPBSET_DROP every capability `keep` lacks, including those newer than launch (numbers
/// above [`Capability::LAST`]): never kept, since launch cannot say what they allow. One prctl
/// per capability: dropping one already absent is a no-op, and the kernel's EINVAL past its last
/// capability ends the loop (no PR_CAPBSET_READ first: half the calls, on every start).
pub fn drop_bounding(keep: CapSet) -> SysResult<()> {
    // 64 is capset's limit.
    for n in 0..64u32 {
        let kept = u8::try_from(n)
            .ok()
            .and_then(Capability::from_number)
            .is_some_and(|c| keep.contains(c));
        if kept {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(n), 0, 0, 0) };
        if r != 0 {
            let errno = Errno::last();
            if errno == Errno::EINVAL {
                break; // past the kernel's last capability
            }
            let e =
                SysError::new("prctl", None, errno).args(format!("PR_CAPBSET_DROP, {}", shown(n)));
            return Err(match errno {
                Errno::EPERM => e.with_detail("dropping from the bounding set needs CAP_SETPCAP"),
                _ => e,
            });
        }
    }
    Ok(())
}

/// PR_SET_KEEPCAPS: whether setuid(2) away from uid 0 keeps the permitted set.
pub fn set_keep_caps(on: bool) -> SysResult<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) };
    if r != 0 {
        return Err(SysError::new("prctl", None, Errno::last())
            .args(format!("PR_SET_KEEPCAPS, {}", u8::from(on))));
    }
    Ok(())
}

/// capset(2), version 3, on the calling thread.
fn capset(s: &CapSets) -> SysResult<()> {
    let (eff, prm, inh) = (
        s.effective.words(),
        s.permitted.words(),
        s.inheritable.words(),
    );
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [0, 1].map(|i| Data {
        effective: eff[i],
        permitted: prm[i],
        inheritable: inh[i],
    });
    // SAFETY: a valid header (pid 0: this thread) and the two data structs version 3 reads;
    // both live across the call, and the kernel only writes `header.version` back on EINVAL.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if r != 0 {
        let errno = Errno::last();
        let e = SysError::new("capset", None, errno).args(format!(
            "_LINUX_CAPABILITY_VERSION_3, effective [{}], permitted [{}], inheritable [{}]",
            s.effective, s.permitted, s.inheritable
        ));
        return Err(match errno {
            Errno::EPERM => e.with_detail(
                "a set asks for a capability the process does not hold: \
                 was it outside launch's own bounding set?",
            ),
            _ => e,
        });
    }
    Ok(())
}

/// Clear the ambient set, then raise each capability of `ambient` (each must be permitted and
/// inheritable already).
fn set_ambient(ambient: CapSet) -> SysResult<()> {
    let prctl = |op: libc::c_int, cap: u8| {
        // SAFETY: prctl with integer arguments.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                op as libc::c_ulong,
                libc::c_ulong::from(cap),
                0,
                0,
            )
        }
    };
    if prctl(libc::PR_CAP_AMBIENT_CLEAR_ALL, 0) != 0 {
        let errno = Errno::last();
        // Before Linux 4.3 there is no ambient set to clear, and none can be asked for.
        if errno == Errno::EINVAL && ambient.is_empty() {
            return Ok(());
        }
        return Err(
            SysError::new("prctl", None, errno).args("PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL")
        );
    }
    for cap in ambient.iter() {
        if prctl(libc::PR_CAP_AMBIENT_RAISE, cap.number()) != 0 {
            return Err(SysError::new("prctl", None, Errno::last())
                .args(format!("PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, {cap}")));
        }
    }
    Ok(())
}

/// prctl(PR_SET_NO_NEW_PRIVS): from here on, execve never grants privileges (setuid bits and
/// file capabilities are ignored), for this process and everything it starts. seccomp filters
/// need it (without CAP_SYS_ADMIN); bubblewrap always sets it.
pub fn set_no_new_privs() -> SysResult<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(SysError::new("prctl", None, Errno::last()).args("PR_SET_NO_NEW_PRIVS, 1"));
    }
    Ok(())
}
