//! Mounts inside the container: mount(2), mount_setattr(2), open_tree(2) and move_mount(2),
//! pivot_root(2), chroot(2).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

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

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttrArg {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on an opened mount: set attributes without clearing the ones the kernel
/// locked (a remount in a user namespace fails with EPERM if it would).
pub fn set_attr(
    fd: &impl AsRawFd,
    shown: &Path,
    attrs: &[MountAttr],
    recursive: bool,
) -> SysResult<()> {
    let set = attrs.iter().fold(0, |acc, a| {
        acc | match a {
            MountAttr::MOUNT_ATTR_RDONLY => MOUNT_ATTR_RDONLY,
            MountAttr::MOUNT_ATTR_NOSUID => MOUNT_ATTR_NOSUID,
            MountAttr::MOUNT_ATTR_NODEV => MOUNT_ATTR_NODEV,
            MountAttr::MOUNT_ATTR_NOEXEC => MOUNT_ATTR_NOEXEC,
        }
    });
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

/// Mount an overlay on `target`: `lowers` (top first), and `upper` (upper and work directories)
/// for a writable one. The new mount API first (fsopen, one `lowerdir+` option per layer: no
/// option string, so no page-size limit on how many layers; Linux 6.8+), else mount(2) with a
/// `lowerdir=a:b:c` string, refused if a path holds a character the string form cannot carry.
pub fn overlay(
    target: &Path,
    lowers: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
) -> SysResult<()> {
    match overlay_fs(target, lowers, upper) {
        Err(e) if e.errno() == Errno::EINVAL && e.op == "fsconfig" => {}
        Err(e) if e.errno() == Errno::ENOSYS => {}
        done => return done,
    }
    let mut data = String::from("lowerdir=");
    for (i, l) in lowers.iter().enumerate() {
        let text = l.to_str().filter(|t| !t.contains([',', ':', '\\']));
        let Some(text) = text else {
            return Err(SysError::other(
                "mount",
                Some(l.clone()),
                "this kernel takes overlay layers only as one option string, which cannot carry \
                 a layer path with `,`, `:` or `\\`",
            ));
        };
        if i > 0 {
            data.push(':');
        }
        data.push_str(text);
    }
    if let Some((u, w)) = upper {
        data.push_str(&format!(
            ",upperdir={},workdir={},volatile",
            u.display(),
            w.display()
        ));
    }
    if data.len() >= 4096 {
        return Err(SysError::other(
            "mount",
            Some(target.to_path_buf()),
            format!(
                "{} layers make an option string of {} bytes, over the page the kernel takes: \
                 Linux 6.8 or later mounts any number (fsconfig lowerdir+)",
                lowers.len(),
                data.len()
            ),
        ));
    }
    mount(
        Some("overlay"),
        target,
        target,
        Some("overlay"),
        &[],
        Some(&data),
    )
}

fn overlay_fs(
    target: &Path,
    lowers: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
) -> SysResult<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| {
            SysError::other("fsconfig", Some(p.to_path_buf()), "a path with a NUL byte")
        })
    };
    // SAFETY: a NUL-terminated name; the kernel returns a new fd or -1.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(
            SysError::new("fsopen", Some(target.to_path_buf()), Errno::last()).args("\"overlay\""),
        );
    }
    // SAFETY: fsopen returned a new descriptor that nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as libc::c_int) };
    let set = |key: &std::ffi::CStr, value: &Path| -> SysResult<()> {
        let v = cstr(value)?;
        // SAFETY: a valid fd and NUL-terminated key and value.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        if r < 0 {
            return Err(
                SysError::new("fsconfig", Some(value.to_path_buf()), Errno::last())
                    .args(key.to_string_lossy().into_owned()),
            );
        }
        Ok(())
    };
    for l in lowers {
        set(c"lowerdir+", l)?;
    }
    if let Some((u, w)) = upper {
        set(c"upperdir", u)?;
        set(c"workdir", w)?;
        // The upper directory lives and dies with the container's state directory: nothing in
        // it is meant to outlive a crash, so overlayfs need not sync it. Without `volatile`,
        // the unmount when the container's mount namespace goes (its last process exits) syncs
        // the upper filesystem, waiting for a journal commit of the whole of it: 5–150 ms per
        // start on the ext4 /run of the development VM (docs/performance.md). Linux 5.10+ (the
        // mount(2) fallback passes it too); this path (`lowerdir+`) is 6.8+.
        const FSCONFIG_SET_FLAG: libc::c_uint = 0;
        // SAFETY: a valid fd and a NUL-terminated key; a flag has no value.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_FLAG,
                c"volatile".as_ptr(),
                std::ptr::null::<libc::c_char>(),
                0,
            )
        };
        if r < 0 {
            return Err(
                SysError::new("fsconfig", Some(u.to_path_buf()), Errno::last()).args("volatile"),
            );
        }
    }
    // SAFETY: a valid fd; no key or value for this command.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        return Err(
            SysError::new("fsconfig", Some(target.to_path_buf()), Errno::last())
                .args("FSCONFIG_CMD_CREATE (overlay)"),
        );
    }
    // SAFETY: a valid, configured fs context fd.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if m < 0 {
        return Err(SysError::new(
            "fsmount",
            Some(target.to_path_buf()),
            Errno::last(),
        ));
    }
    // SAFETY: fsmount returned a new descriptor that nothing else owns.
    let m = unsafe { OwnedFd::from_raw_fd(m as libc::c_int) };
    let t = cstr(target)?;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: a valid mount fd, an empty path, and a NUL-terminated target path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            m.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(
            SysError::new("move_mount", Some(target.to_path_buf()), Errno::last())
                .args("the overlay"),
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
