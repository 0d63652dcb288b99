//! Paths inside the container's root, resolved as if the root were `/`.
//!
//! A rootfs is untrusted: its `/proc` may be a symlink to the host's `/etc`. Every mount point and
//! file `launch` creates inside it is therefore reached with openat2(RESOLVE_IN_ROOT), so symlinks
//! resolve within the root and never lead out of it, and mounts go onto the opened fd through
//! /proc/self/fd (as runc and crun do).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

use crate::error::{SysError, SysResult};

/// A root directory, opened, under which paths are resolved.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

impl Root {
    /// Open `path` as the root. Reopen after mounting over it: an fd keeps the old directory.
    pub fn open(path: &Path) -> SysResult<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            SysError::new("open", Some(path.to_path_buf()), e).args("O_PATH|O_DIRECTORY")
        })?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// An opened directory as the root: the root of a detached mount, for one (`shown` names it
    /// in messages).
    pub fn from_fd(fd: OwnedFd, shown: &Path) -> Root {
        Root {
            fd,
            path: shown.to_path_buf(),
        }
    }

    /// The root's descriptor, given up.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The root's path on the host (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, op: &str, rel: &Path, e: Errno) -> SysError {
        SysError::new(op, Some(self.path.join(rel)), e).args("beneath the container root")
    }

    /// Open `rel` (relative to the root) with O_PATH, following symlinks only within the root.
    pub fn open_path(&self, rel: &Path) -> SysResult<OwnedFd> {
        openat2(self.fd.as_fd(), rel, how(OFlag::O_PATH)).map_err(|e| self.err("openat2", rel, e))
    }

    /// The contents of the regular file `rel`, resolved within the root (an absolute symlink such
    /// as `etc/passwd -> /etc/passwd` stays inside it); `None` if it does not exist. At most
    /// `max` bytes.
    pub fn read(&self, rel: &Path, max: u64) -> SysResult<Option<Vec<u8>>> {
        use std::io::Read;
        // O_NONBLOCK: a fifo planted there must not hang the caller; only a regular file is read.
        let flags = OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
        let fd = match openat2(self.fd.as_fd(), rel, how(flags)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.err("openat2", rel, e)),
        };
        let file = std::fs::File::from(fd);
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        if !regular {
            return Err(SysError::other(
                "read",
                Some(self.path.join(rel)),
                "not a regular file",
            ));
        }
        let mut text = Vec::new();
        file.take(max)
            .read_to_end(&mut text)
            .map_err(|e| SysError::io("read", Some(self.path.join(rel)), &e))?;
        Ok(Some(text))
    }

    /// Open the parent directory of `rel` and return it with the final name.
    fn parent<'a>(&self, rel: &'a Path) -> SysResult<(OwnedFd, &'a std::ffi::OsStr)> {
        let name = rel
            .file_name()
            .ok_or_else(|| self.err("openat2", rel, Errno::EINVAL))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        self.mkdir_all(parent, 0o755)?;
        let dir = if parent.as_os_str().is_empty() {
            nix::unistd::dup(self.fd.as_fd()).map_err(|e| self.err("dup", rel, e))?
        } else {
            openat2(
                self.fd.as_fd(),
                parent,
                how(OFlag::O_PATH | OFlag::O_DIRECTORY),
            )
            .map_err(|e| self.err("openat2", parent, e))?
        };
        Ok((dir, name))
    }

    /// mkdir -p `rel` inside the root; existing directories (or symlinks to them, within the
    /// root) are fine.
    pub fn mkdir_all(&self, rel: &Path, mode: u32) -> SysResult<()> {
        let mut done = PathBuf::new();
        let mut dir = nix::unistd::dup(self.fd.as_fd()).map_err(|e| self.err("dup", rel, e))?;
        for c in rel.components() {
            let Component::Normal(name) = c else { continue };
            done.push(name);
            match openat2(
                self.fd.as_fd(),
                &done,
                how(OFlag::O_PATH | OFlag::O_DIRECTORY),
            ) {
                Ok(fd) => dir = fd,
                Err(Errno::ENOENT) => {
                    // The name does not exist (a dangling symlink would resolve and fail with
                    // ENOENT too; mkdirat on it fails with EEXIST, which we report).
                    match nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(mode))
                    {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(self
                                .err("mkdirat", &done, e)
                                .args(format!("mode {mode:04o}")));
                        }
                    }
                    dir = openat2(
                        self.fd.as_fd(),
                        &done,
                        how(OFlag::O_PATH | OFlag::O_DIRECTORY),
                    )
                    .map_err(|e| self.err("openat2", &done, e))?;
                }
                Err(e) => return Err(self.err("openat2", &done, e)),
            }
        }
        Ok(())
    }

    /// Create an empty file at `rel` unless something is there. A dangling symlink there is
    /// followed inside the root and its target created (as runc does for a mount point): a
    /// root whose /etc/resolv.conf points at ../run/systemd/resolve/stub-resolv.conf gets that
    /// file, which a bind then covers.
    pub fn touch(&self, rel: &Path) -> SysResult<()> {
        let mut rel = rel.to_path_buf();
        // Symlinks followed at most this often (the kernel's own limit is 40).
        for _ in 0..8 {
            if self.open_path(&rel).is_ok() {
                return Ok(());
            }
            let (dir, name) = self.parent(&rel)?;
            match nix::fcntl::openat(
                dir.as_fd(),
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EEXIST) => {}
                Err(e) => {
                    return Err(self
                        .err("openat", &rel, e)
                        .args("O_CREAT|O_EXCL|O_NOFOLLOW"));
                }
            }
            // Something is there that does not resolve: a dangling symlink (or one created
            // meanwhile). Its target, taken inside the root.
            let target = match nix::fcntl::readlinkat(dir.as_fd(), name) {
                Ok(t) => PathBuf::from(t),
                Err(Errno::EINVAL) => return Ok(()),
                Err(e) => return Err(self.err("readlinkat", &rel, e)),
            };
            let base = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            let joined = if target.is_absolute() {
                target
            } else {
                base.join(target)
            };
            // `..` stops at the root, as RESOLVE_IN_ROOT resolves it.
            let mut next = PathBuf::new();
            for c in joined.components() {
                match c {
                    Component::Normal(n) => next.push(n),
                    Component::ParentDir => {
                        next.pop();
                    }
                    Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                }
            }
            rel = next;
        }
        Err(self
            .err("openat", &rel, Errno::ELOOP)
            .args("following symlinks to make a mount point"))
    }

    /// Create the character device `rel` with exactly `mode` (the umask is cleared around the
    /// call; the container process is single-threaded here).
    pub fn mknod_char(&self, rel: &Path, major: u32, minor: u32, mode: u32) -> SysResult<()> {
        let (dir, name) = self.parent(rel)?;
        let old = nix::sys::stat::umask(Mode::empty());
        let r = nix::sys::stat::mknodat(
            dir.as_fd(),
            name,
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::makedev(major.into(), minor.into()),
        );
        nix::sys::stat::umask(old);
        r.map_err(|e| {
            self.err("mknodat", rel, e)
                .args(format!("S_IFCHR|{mode:04o}, makedev({major}, {minor})"))
        })
    }

    /// Create a symlink `rel` → `target`.
    pub fn symlink(&self, target: &str, rel: &Path) -> SysResult<()> {
        let (dir, name) = self.parent(rel)?;
        nix::unistd::symlinkat(target, dir.as_fd(), name).map_err(|e| {
            self.err("symlinkat", rel, e)
                .args(format!("target {target:?}"))
        })
    }
}

/// The `/proc/self/fd/N` path of an fd: how a mount call reaches an fd-resolved target.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}
