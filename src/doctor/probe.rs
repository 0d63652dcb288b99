//! Probe the real host into [`DoctorFacts`]: small reads of /proc, /sys and /etc, a stat of
//! each helper, two harmless system calls and one child that tries unshare(CLONE_NEWUSER).

use std::path::{Path, PathBuf};

use super::{DirState, DoctorFacts, Helper, Overlay, SeccompFacts, UsernsFacts};
use crate::host::HostFacts;

/// Probe this host for the calling user. `host` is [`crate::host::RealHost::probe`]'s facts.
pub fn probe(host: HostFacts) -> DoctorFacts {
    let euid = nix::unistd::geteuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = user_name(&passwd, euid);
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let subgid = std::fs::read_to_string("/etc/subgid").unwrap_or_default();
    let store_root = crate::image::store::Store::default_root();
    DoctorFacts {
        euid,
        distro: distro(&std::fs::read_to_string("/etc/os-release").unwrap_or_default()),
        userns: UsernsFacts {
            max_user_namespaces: read_num("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: read_num("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict: read_num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            apparmor_label: apparmor_label(),
            probe: Some(try_userns()),
        },
        subuid: sub_ranges(&subuid, user.as_deref(), euid),
        subgid: sub_ranges(&subgid, user.as_deref(), euid),
        subid_free: free_start(&[&subuid, &subgid]),
        user,
        newuidmap: helper("newuidmap"),
        newgidmap: helper("newgidmap"),
        overlay: overlay(&host.kernel),
        mount_setattr: mount_setattr(),
        seccomp: seccomp(),
        nft: crate::host::find_program("nft"),
        tun_exists: Path::new("/dev/net/tun").exists(),
        state_root: dir_state(&host.state_root, euid),
        store: dir_state(&store_root, euid),
        store_root,
        host,
    }
}

fn read_num(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub use crate::host::{sub_ranges, user_name};

/// `ID` and `ID_LIKE` of /etc/os-release's text.
pub fn distro(os_release: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["ID=", "ID_LIKE="] {
        if let Some(v) = os_release.lines().find_map(|l| l.strip_prefix(key)) {
            out.extend(v.trim_matches('"').split_whitespace().map(str::to_owned));
        }
    }
    out
}

/// The first id past every range in the given /etc/subuid and /etc/subgid texts, at least
/// 100000 (useradd's SUB_UID_MIN).
pub fn free_start(texts: &[&str]) -> u64 {
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| {
            let mut f = l.trim().split(':').skip(1);
            let start: u64 = f.next()?.parse().ok()?;
            let count: u64 = f.next()?.parse().ok()?;
            Some(start + count)
        })
        .fold(100_000, u64::max)
}

fn apparmor_label() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/attr/apparmor/current")
        .or_else(|_| std::fs::read_to_string("/proc/self/attr/current"))
        .ok()?;
    let label = text.trim().trim_end_matches('\0').trim();
    // "unconfined", or "profile (enforce)".
    let name = label.split(" (").next().unwrap_or(label);
    (!name.is_empty()).then(|| name.to_owned())
}

/// A child tries unshare(CLONE_NEWUSER) (a thread cannot: the kernel refuses it in a process
/// with several threads): `None` when it worked, else the errno's name.
fn try_userns() -> Option<String> {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::ForkResult;
    // SAFETY: launch is single-threaded here; the child makes one system call and _exits,
    // touching no lock or allocation.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let code = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => None,
            Ok(WaitStatus::Exited(_, code)) => {
                Some(format!("{}", nix::errno::Errno::from_raw(code)))
            }
            Ok(other) => Some(format!("a child that ended as {other:?}")),
            Err(e) => Some(format!("waitpid: {e}")),
        },
        Err(e) => Some(format!("fork: {e}")),
    }
}

fn helper(name: &str) -> Option<Helper> {
    use std::os::unix::fs::MetadataExt;
    let path = crate::host::find_program(name)?;
    let md = std::fs::metadata(&path).ok()?;
    Some(Helper {
        setuid_root: md.uid() == 0 && md.mode() & 0o4000 != 0,
        file_caps: has_xattr(&path, "security.capability"),
        path,
    })
}

fn has_xattr(path: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(path.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: both are NUL-terminated strings; a NULL buffer of size 0 asks for the size only.
    unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) > 0 }
}

fn overlay(kernel: &str) -> Overlay {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        return Overlay::Registered;
    }
    let dir = PathBuf::from(format!("/lib/modules/{kernel}/kernel/fs/overlayfs"));
    let module = ["", ".xz", ".zst", ".gz"]
        .iter()
        .any(|ext| dir.join(format!("overlay.ko{ext}")).exists());
    match module {
        true => Overlay::Module,
        false => Overlay::Missing,
    }
}

/// mount_setattr(-1, "", 0, NULL, 0): EBADF (or EINVAL) when the call exists, ENOSYS when not.
fn mount_setattr() -> Option<String> {
    // SAFETY: an invalid fd, an empty path and a NULL attribute: the kernel only validates them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            0,
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    let errno = nix::errno::Errno::last();
    match (r, errno) {
        (-1, nix::errno::Errno::ENOSYS) => Some("ENOSYS".into()),
        _ => None,
    }
}

fn seccomp() -> SeccompFacts {
    // SAFETY: PR_GET_SECCOMP reads this thread's mode.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    // SAFETY: a NULL filter program: the kernel fails with EFAULT copying it when filters are
    // supported (EINVAL without CONFIG_SECCOMP_FILTER), before installing anything.
    let set = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
            0,
            0,
        )
    };
    let set_errno = nix::errno::Errno::last();
    SeccompFacts {
        mode: (mode >= 0).then_some(mode as u32),
        filters: set == -1 && set_errno != nix::errno::Errno::EINVAL,
    }
}

/// What `dir` is, for launch's trust rules (crate::exec::state::check_private_dir): this
/// user's, writable by no one else; or missing, with whether this user can create it.
pub fn dir_state(dir: &Path, euid: u32) -> DirState {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(dir) {
        Ok(md) if !md.file_type().is_dir() => DirState::NotDir,
        Ok(md) if md.uid() != euid => DirState::OtherOwner(md.uid()),
        Ok(md) if md.mode() & 0o022 != 0 => DirState::OthersWritable(md.mode() & 0o7777),
        Ok(_) => DirState::Private,
        Err(_) => {
            let ancestor = dir
                .ancestors()
                .skip(1)
                .find(|a| a.exists())
                .unwrap_or(Path::new("/"))
                .to_path_buf();
            let writable = nix::unistd::access(
                &ancestor,
                nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
            )
            .is_ok();
            DirState::Missing { ancestor, writable }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::IdRange;

    #[test]
    fn passwd_subids_and_os_release() {
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name(passwd, 7), None);
        let sub = "alice:100000:65536\nbob:165536:65536\n1000:300000:10\n";
        assert_eq!(
            sub_ranges(sub, Some("alice"), 1000),
            [
                IdRange {
                    start: 100000,
                    count: 65536
                },
                IdRange {
                    start: 300000,
                    count: 10
                }
            ]
        );
        assert_eq!(free_start(&[sub, "bob:500000:65536\n"]), 565536);
        assert_eq!(free_start(&["", ""]), 100000);
        assert_eq!(
            distro("NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n"),
            ["ubuntu", "debian"]
        );
        assert_eq!(
            distro("ID=\"rhel\"\nID_LIKE=\"fedora centos\"\n"),
            ["rhel", "fedora", "centos"]
        );
    }
}
