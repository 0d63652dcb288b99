//! Mounts inside the container: mount(2), mount_setattr(2), open_tree(2) and move_mount(2),
//! pivot_root(2), chroot(2).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use crate::error::{SysError, SysResult};
use serde::{Deserialize, Serialize};

/// A mount(2) flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum MountFlag {
    /// Read-only.
    MS_RDONLY,
    /// Ignore suid/sgid bits.
    MS_NOSUID,
    /// No device nodes.
    MS_NODEV,
    /// No execution.
    MS_NOEXEC,
    /// Bind mount.
    MS_BIND,
    /// Recursive (with MS_BIND or a propagation flag).
    MS_REC,
    /// Make private: no propagation in or out.
    MS_PRIVATE,
    /// Make a slave: receive propagation, send none.
    MS_SLAVE,
    /// Do not update access times.
    MS_NOATIME,
    /// Update access times only when older than the modification time (the kernel's default).
    MS_RELATIME,
    /// Always update access times.
    MS_STRICTATIME,
}

/// A mount attribute set by mount_setattr(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum MountAttr {
    /// Read-only.
    MOUNT_ATTR_RDONLY,
    /// Ignore suid/sgid bits.
    MOUNT_ATTR_NOSUID,
    /// No device nodes.
    MOUNT_ATTR_NODEV,
    /// No execution.
    MOUNT_ATTR_NOEXEC,
}

/// Translate plan flags to the kernel's.
pub fn ms_flags(flags: &[MountFlag]) -> MsFlags {
    flags.iter().fold(MsFlags::empty(), |acc, f| {
        acc | match f {
            MountFlag::MS_RDONLY => MsFlags::MS_RDONLY,
            MountFlag::MS_NOSUID => MsFlags::MS_NOSUID,
            MountFlag::MS_NODEV => MsFlags::MS_NODEV,
            MountFlag::MS_NOEXEC => MsFlags::MS_NOEXEC,
            MountFlag::MS_BIND => MsFlags::MS_BIND,
            MountFlag::MS_REC => MsFlags::MS_REC,
            MountFlag::MS_PRIVATE => MsFlags::MS_PRIVATE,
            MountFlag::MS_SLAVE => MsFlags::MS_SLAVE,
            MountFlag::MS_NOATIME => MsFlags::MS_NOATIME,
            MountFlag::MS_RELATIME => MsFlags::MS_RELATIME,
            MountFlag::MS_STRICTATIME => MsFlags::MS_STRICTATIME,
        }
    })
}

fn flag_names(flags: &[MountFlag]) -> String {
    flags
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join("|")
}

/// mount(2). `at` is where the call mounts (often /proc/self/fd/N); `shown` is the path a human
/// knows it by.
pub fn mount(
    source: Option<&str>,
    at: &Path,
    shown: &Path,
    fstype: Option<&str>,
    flags: &[MountFlag],
    data: Option<&str>,
) -> SysResult<()> {
    nix::mount::mount(source, at, fstype, ms_flags(flags), data).map_err(|e| {
        SysError::new("mount", Some(shown.to_path_buf()), e).args(format!(
            "source {:?}, type {:?}, {}, data {:?}",
            source.unwrap_or("NULL"),
            fstype.unwrap_or("NULL"),
            if flags.is_empty() {
                "0".into()
            } else {
                flag_names(flags)
            },
            data.unwrap_or("NULL")
        ))
    })
}

pub(super) const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub(super) const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
pub(super) struct MountAttrArg {
    pub(super) attr_set: u64,
    pub(super) attr_clr: u64,
    pub(super) propagation: u64,
    pub(super) userns_fd: u64,
}

/// mount_setattr(2) on an opened mount: set attributes without clearing the ones the kernel
/// locked (a remount in a user namespace fails with EPERM if it would).
pub fn set_attr(
    fd: &impl AsRawFd,
    shown: &Path,
    attrs: &[MountAttr],
    recursive: bool,
) -> SysResult<()> {
    let set = attrs.iter().fold(0, |acc, a| acc | attr_bit(*a));
    let arg = MountAttrArg {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: a valid fd, an empty NUL-terminated path, and a properly sized struct that lives
    // across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &arg as *const MountAttrArg,
            std::mem::size_of::<MountAttrArg>(),
        )
    };
    if r < 0 {
        let names: Vec<String> = attrs.iter().map(|a| format!("{a:?}")).collect();
        return Err(
            SysError::new("mount_setattr", Some(shown.to_path_buf()), Errno::last()).args(format!(
                "{}{}",
                if recursive { "AT_RECURSIVE, " } else { "" },
                names.join("|")
            )),
        );
    }
    Ok(())
}

/// An option of a new filesystem instance, for [`new_fs`].
pub enum FsOption<'a> {
    /// fsconfig(FSCONFIG_SET_STRING, key, value).
    String(&'a str, &'a str),
    /// fsconfig(FSCONFIG_SET_STRING, key, path): a path, which need not be UTF-8.
    Path(&'a str, &'a Path),
    /// fsconfig(FSCONFIG_SET_FD, key, fd): procfs's `pidns`, for one.
    Fd(&'a str, std::os::fd::BorrowedFd<'a>),
    /// fsconfig(FSCONFIG_SET_FLAG, key).
    Flag(&'a str),
}

/// A new instance of the filesystem `fstype`, as a detached mount with `attrs`: fsopen(2),
/// fsconfig(2) for each option, then FSCONFIG_CMD_CREATE and fsmount(2). Attach it with
/// [`move_to`]; until then it is in no mount namespace. `shown` names it in errors.
pub fn new_fs(
    fstype: &str,
    options: &[FsOption<'_>],
    attrs: &[MountAttr],
    shown: &Path,
) -> SysResult<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_SET_FD: libc::c_uint = 5;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let err = |op: &str, args: String| {
        SysError::new(op, Some(shown.to_path_buf()), Errno::last()).args(args)
    };
    let cstr = |s: &[u8]| {
        std::ffi::CString::new(s).map_err(|_| {
            SysError::other("fsconfig", Some(shown.to_path_buf()), "a NUL in an option")
        })
    };

    let name = cstr(fstype.as_bytes())?;
    // SAFETY: a NUL-terminated name; the kernel returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    if r < 0 {
        return Err(err("fsopen", format!("{fstype:?}, FSOPEN_CLOEXEC")));
    }
    // SAFETY: fsopen returned a new descriptor that nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(r as libc::c_int) };
    let fs_raw = || fs.as_raw_fd();
    let set = |key: &std::ffi::CStr, cmd: libc::c_uint, value: *const libc::c_char, aux: i32| {
        // SAFETY: a valid fd, a NUL-terminated key, and a NUL-terminated value (or null) that
        // lives across the call.
        unsafe { libc::syscall(libc::SYS_fsconfig, fs_raw(), cmd, key.as_ptr(), value, aux) }
    };
    for o in options {
        let (r, shown_opt) = match o {
            FsOption::String(k, v) => {
                let value = cstr(v.as_bytes())?;
                let r = set(&cstr(k.as_bytes())?, FSCONFIG_SET_STRING, value.as_ptr(), 0);
                (r, format!("FSCONFIG_SET_STRING, {k:?}, {v:?}"))
            }
            FsOption::Path(k, p) => {
                let value = cstr(p.as_os_str().as_bytes())?;
                let r = set(&cstr(k.as_bytes())?, FSCONFIG_SET_STRING, value.as_ptr(), 0);
                (r, format!("FSCONFIG_SET_STRING, {k:?}, {p:?}"))
            }
            FsOption::Fd(k, fd) => {
                let r = set(
                    &cstr(k.as_bytes())?,
                    FSCONFIG_SET_FD,
                    std::ptr::null(),
                    fd.as_raw_fd(),
                );
                (r, format!("FSCONFIG_SET_FD, {k:?}"))
            }
            FsOption::Flag(k) => {
                let r = set(&cstr(k.as_bytes())?, FSCONFIG_SET_FLAG, std::ptr::null(), 0);
                (r, format!("FSCONFIG_SET_FLAG, {k:?}"))
            }
        };
        if r < 0 {
            return Err(err("fsconfig", shown_opt));
        }
    }
    // SAFETY: a valid fd; no key or value for this command.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs_raw(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    if r < 0 {
        return Err(err("fsconfig", format!("FSCONFIG_CMD_CREATE ({fstype})")));
    }
    let bits = attrs.iter().fold(0u64, |acc, a| acc | attr_bit(*a));
    // SAFETY: a valid fd; the kernel returns a new fd or -1.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            bits as libc::c_uint,
        )
    };
    if r < 0 {
        let names: Vec<String> = attrs.iter().map(|a| format!("{a:?}")).collect();
        return Err(err(
            "fsmount",
            format!("FSMOUNT_CLOEXEC, {}", names.join("|")),
        ));
    }
    // SAFETY: fsmount returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as libc::c_int) })
}

fn attr_bit(a: MountAttr) -> u64 {
    match a {
        MountAttr::MOUNT_ATTR_RDONLY => MOUNT_ATTR_RDONLY,
        MountAttr::MOUNT_ATTR_NOSUID => MOUNT_ATTR_NOSUID,
        MountAttr::MOUNT_ATTR_NODEV => MOUNT_ATTR_NODEV,
        MountAttr::MOUNT_ATTR_NOEXEC => MOUNT_ATTR_NOEXEC,
    }
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `fd` (an `O_PATH`
/// descriptor; a directory or a file inside a mount binds from there, as `mount --bind` would),
/// with the mounts beneath it when `recursive`. Attributes can be set on the copy before
/// [`move_to`] attaches it, and neither call walks a path: no `/proc/self/fd` link to resolve.
pub fn clone_tree(fd: &impl AsRawFd, shown: &Path, recursive: bool) -> SysResult<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint
        | if recursive {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        };
    // SAFETY: a valid fd and an empty NUL-terminated path; the kernel returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    if r < 0 {
        return Err(
            SysError::new("open_tree", Some(shown.to_path_buf()), Errno::last()).args(format!(
                "OPEN_TREE_CLONE{}",
                if recursive { "|AT_RECURSIVE" } else { "" }
            )),
        );
    }
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as libc::c_int) })
}

/// move_mount(2): attach the detached mount `tree` (from [`clone_tree`]) on top of what the
/// `O_PATH` descriptor `at` names.
pub fn move_to(tree: &OwnedFd, at: &impl AsRawFd, shown: &Path) -> SysResult<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: two valid fds and empty NUL-terminated paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(
            SysError::new("move_mount", Some(shown.to_path_buf()), Errno::last())
                .args("MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH"),
        );
    }
    Ok(())
}

/// pivot_root into `new_root` and detach the old root, using the `pivot_root(".", ".")` idiom
/// (runc's): no directory for the old root is needed inside the new one.
pub fn pivot_root(new_root: &Path) -> SysResult<()> {
    let e = |op: &str, e: Errno| SysError::new(op, Some(new_root.to_path_buf()), e);
    nix::unistd::chdir(new_root).map_err(|x| e("chdir", x))?;
    nix::unistd::pivot_root(".", ".").map_err(|x| e("pivot_root", x).args("\".\", \".\""))?;
    // The old root is now stacked under ".": make it a slave so unmounting it does not
    // propagate to the host, then detach it.
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|x| e("mount", x).args("old root, MS_SLAVE|MS_REC"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH)
        .map_err(|x| e("umount2", x).args("old root, MNT_DETACH"))?;
    nix::unistd::chdir("/").map_err(|x| e("chdir", x).args("\"/\""))
}

/// chroot into `path` (only when the manifest asks for it).
pub fn chroot(path: &Path) -> SysResult<()> {
    let e = |op: &str, e: Errno| SysError::new(op, Some(path.to_path_buf()), e);
    nix::unistd::chdir(path).map_err(|x| e("chdir", x))?;
    nix::unistd::chroot(".").map_err(|x| e("chroot", x))?;
    nix::unistd::chdir("/").map_err(|x| e("chdir", x).args("\"/\""))
}
