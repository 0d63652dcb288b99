//! overlayfs: the mount (new mount API, with the mount(2) fallback) in the container, and on
//! the host the upper and work directories it writes to: in the state directory (gone with
//! the run) or in a `[rootfs] persist` directory, which is input like any other path a plan
//! names and is checked before use.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{SysError, SysResult};
use crate::sys::mount::{FsOption, new_fs};

/// Options of an overlay mount beyond its directories.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `userxattr`: attributes as `user.overlay.*` (a mount in a user namespace).
    pub userxattr: bool,
    /// `volatile`: no sync of the upper directory (it is thrown away with the run).
    pub volatile: bool,
}

/// Mount an overlay on `target`: `lowers` (top first), and `upper` (upper and work directories)
/// for a writable one. The new mount API first (fsopen, one `lowerdir+` option per layer: no
/// option string, so no page-size limit on how many layers; Linux 6.8+), else mount(2) with a
/// `lowerdir=a:b:c` string, refused if a path holds a character the string form cannot carry.
pub fn mount(
    target: &Path,
    lowers: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
    opts: Options,
) -> SysResult<()> {
    match overlay_fs(target, lowers, upper, opts) {
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
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    if opts.userxattr {
        data.push_str(",userxattr");
    }
    if opts.volatile && upper.is_some() {
        data.push_str(",volatile");
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
    super::mount::mount(
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
    opts: Options,
) -> SysResult<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| {
            SysError::other("fsconfig", Some(p.to_path_buf()), "a path with a NUL byte")
        })
    };
    let mut options: Vec<FsOption> = lowers
        .iter()
        .map(|l| FsOption::Path("lowerdir+", l))
        .collect();
    if let Some((u, w)) = upper {
        options.push(FsOption::Path("upperdir", u));
        options.push(FsOption::Path("workdir", w));
    }
    if opts.userxattr {
        options.push(FsOption::Flag("userxattr"));
    }
    // The upper directory lives and dies with the state directory: nothing in it is meant to
    // outlive a crash, so overlayfs need not sync it. Without `volatile` the unmount when the
    // container's mount namespace goes syncs the upper filesystem, waiting for a journal
    // commit of all of it (5-150 ms per exit on an ext4 /run; docs/performance.md).
    if opts.volatile && upper.is_some() {
        options.push(FsOption::Flag("volatile"));
    }
    let m = new_fs("overlay", &options, &[], target)?;
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

/// Make `upper` (0755) and `work` (0700), given to `owner` (the container's root on the host,
/// when a user namespace maps it elsewhere). In a `persist` directory they may exist already:
/// then each must be a directory (not a symlink) of this user or `owner`, and is kept as it is.
pub fn make_dirs(upper: &Path, work: &Path, owner: Option<(u32, u32)>) -> SysResult<()> {
    // A host root's overlays are one directory deeper (`host/usr/upper`): their parent, in a
    // directory only this user may write (the state or persist directory), is made 0700.
    if let Some(parent) = upper.parent().filter(|p| !p.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| SysError::io("mkdir", Some(parent.to_path_buf()), &e).args("0700"))?;
    }
    for (dir, mode) in [(upper, 0o755), (work, 0o700)] {
        match std::fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| SysError::io("chmod", Some(dir.to_path_buf()), &e))?;
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(|e| {
                        SysError::io("lchown", Some(dir.to_path_buf()), &e)
                            .args(format!("{uid}:{gid}"))
                    })?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                own_dir(dir, false, owner.map(|o| o.0))?
            }
            Err(e) => return Err(SysError::io("mkdir", Some(dir.to_path_buf()), &e)),
        }
    }
    Ok(())
}

/// Check that `dir` is a directory (lstat: not a symlink) owned by this user (or `also`) and,
/// with `private`, that no one else may write it.
fn own_dir(dir: &Path, private: bool, also: Option<u32>) -> SysResult<()> {
    let md = std::fs::symlink_metadata(dir)
        .map_err(|e| SysError::io("lstat", Some(dir.to_path_buf()), &e))?;
    let uid = nix::unistd::geteuid().as_raw();
    let why = if !md.file_type().is_dir() {
        Some("is not a directory (a symlink or a file)".to_owned())
    } else if md.uid() != uid && Some(md.uid()) != also {
        Some(format!(
            "is owned by uid {}, not {uid} (this user)",
            md.uid()
        ))
    } else if private && md.mode() & 0o022 != 0 {
        Some(format!(
            "may be written by others (mode {:o}): chmod go-w it",
            md.mode() & 0o7777
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(SysError::other(
            "use the overlay directory",
            Some(dir.to_path_buf()),
            why,
        )),
        None => Ok(()),
    }
}

/// Take `dir` for one run's writes (`[rootfs] persist`): made 0700 if missing (its parent must
/// exist), else checked ([`own_dir`], private); locked exclusively, without waiting (a second
/// container on it is refused: overlayfs does not share an upper directory); bound to `lowers`
/// (`lowers.json`, written at first use), so writes made over other layers are never mixed
/// with these. The returned file holds the lock until it is dropped.
pub fn take_persist_dir(dir: &Path, lowers: &[PathBuf]) -> SysResult<std::fs::File> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(SysError::io("mkdir", Some(dir.to_path_buf()), &e).args("0700")),
    }
    own_dir(dir, true, None)?;
    let f =
        std::fs::File::open(dir).map_err(|e| SysError::io("open", Some(dir.to_path_buf()), &e))?;
    // SAFETY: a valid fd; flock(2) takes no pointers.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let errno = Errno::last();
        let e = SysError::new("flock", Some(dir.to_path_buf()), errno).args("LOCK_EX|LOCK_NB");
        return Err(match errno {
            Errno::EWOULDBLOCK => SysError::other(
                "flock",
                Some(dir.to_path_buf()),
                "another container is using this persist directory",
            ),
            _ => e,
        });
    }
    let want: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let record = dir.join("lowers.json");
    match std::fs::symlink_metadata(&record) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let json = serde_json::to_vec_pretty(&want)
                .map_err(|e| SysError::other("serialize", Some(record.clone()), e.to_string()))?;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&record)
                .map_err(|e| SysError::io("create", Some(record.clone()), &e))?;
            out.write_all(&json)
                .and_then(|()| out.sync_all())
                .map_err(|e| SysError::io("write", Some(record.clone()), &e))?;
        }
        Err(e) => return Err(SysError::io("lstat", Some(record), &e)),
        Ok(md) if !md.is_file() || md.len() > 1 << 20 => {
            return Err(SysError::other(
                "read",
                Some(record),
                "is not a regular file of at most 1 MiB",
            ));
        }
        Ok(_) => {
            let bytes = std::fs::read(&record)
                .map_err(|e| SysError::io("read", Some(record.clone()), &e))?;
            let had: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| {
                SysError::other(
                    "parse",
                    Some(record.clone()),
                    format!("not a list of paths: {e}"),
                )
            })?;
            if had != want {
                return Err(SysError::other(
                    "use the persist directory",
                    Some(dir.to_path_buf()),
                    format!(
                        "its writes were made over other layers ({}), not these ({}): remove \
                         it to start afresh, or name another `persist` directory",
                        had.join(", "),
                        want.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(f)
}

/// A detached, read-only copy of the store layer `layer` whose ids are seen through the user
/// namespace `userns` (an idmapped mount: a file the store has as uid 0 is the container's uid
/// 0, whatever host id that is), for the container to attach over the layer's path in its own
/// mount namespace ([`attach`]). Made by the launcher, which has the privilege over the store's
/// filesystem that the container does not: the store is shared by containers of any id maps
/// and never chowned. Needs Linux 5.12+ and a filesystem that supports idmapped mounts.
pub fn idmapped_copy(layer: &Path, userns: &impl AsRawFd) -> SysResult<OwnedFd> {
    use super::mount::{MOUNT_ATTR_IDMAP, MOUNT_ATTR_RDONLY, MountAttrArg};
    let tree = super::mount::clone_tree(&dir_path(layer)?, layer, false)?;
    let arg = MountAttrArg {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: a valid fd, an empty NUL-terminated path, and a properly sized struct that lives
    // across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &arg as *const MountAttrArg,
            std::mem::size_of::<MountAttrArg>(),
        )
    };
    if r < 0 {
        let errno = Errno::last();
        let e = SysError::new("mount_setattr", Some(layer.to_path_buf()), errno)
            .args("MOUNT_ATTR_IDMAP|MOUNT_ATTR_RDONLY, the container's user namespace");
        return Err(match errno {
            Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP => SysError::other(
                "mount_setattr",
                Some(layer.to_path_buf()),
                format!(
                    "{e}: this kernel or the store's filesystem cannot make idmapped mounts, \
                     which an image root in a user namespace with other ids needs (docs/images.md)"
                ),
            ),
            _ => e,
        });
    }
    Ok(tree)
}

/// Attach the detached mount `tree` ([`idmapped_copy`]) on top of `target`, in this mount
/// namespace.
pub fn attach(tree: &OwnedFd, target: &Path) -> SysResult<()> {
    super::mount::move_to(tree, &dir_path(target)?, target)
}

/// An `O_PATH` descriptor of the directory `dir` (not through a final symlink).
fn dir_path(dir: &Path) -> SysResult<OwnedFd> {
    nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| {
        SysError::new("open", Some(dir.to_path_buf()), e).args("O_PATH|O_DIRECTORY|O_NOFOLLOW")
    })
}
