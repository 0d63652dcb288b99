//! Safe extraction of root filesystem archives (`docker export` tarballs).
//!
//! The archive is untrusted input. The `tar` crate only parses it; every entry is written here,
//! relative to directory descriptors that were opened beneath the destination with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so no entry can be written through a symlink or a
//! `..` even if an earlier entry planted one. Final components are created with `O_EXCL` /
//! `*at(2)` calls that do not follow symlinks, and existing files are unlinked, never reopened.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev,
    mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use tar::EntryType;

use crate::error::{SysError, SysResult};

/// Compression of a rootfs archive, chosen from its file name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain `.tar`.
    None,
    /// `.tar.gz` / `.tgz`.
    Gzip,
    /// `.tar.zst` / `.tzst`.
    Zstd,
}

impl Compression {
    /// The compression implied by an archive's name, or `None` for a name we do not read.
    pub fn from_path(path: &Path) -> Option<Compression> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".tar") {
            Some(Compression::None)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Compression::Gzip)
        } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Some(Compression::Zstd)
        } else {
            None
        }
    }
}

/// What extraction may do beyond creating files owned by the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Create character and block devices and give every entry its archive owner (needs
    /// `CAP_MKNOD` and `CAP_CHOWN`). Unprivileged, device entries are skipped and counted in
    /// [`ExtractStats::skipped_devices`], and everything is owned by the caller. Fifos are
    /// created either way.
    pub privileged: bool,
}

/// What an extraction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Entries created (directories, files, links, nodes), the archive's `./` included.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Device entries skipped because extraction was not privileged.
    pub skipped_devices: u64,
}

/// Bytes read from the archive file, and copied per `write`, at a time.
const BUF_SIZE: usize = 256 * 1024;
const PATH_MAX: usize = libc::PATH_MAX as usize;
const NAME_MAX: usize = 255;

/// Extract `archive` into `dest`, an existing (normally empty) directory, streaming: nothing is
/// buffered beyond one copy buffer.
///
/// Refuses, with an error naming the entry, any entry that is absolute, contains `..`, would be
/// written through a symlink, or has a type we do not understand. Directory modes and times are
/// applied last, deepest first, so read-only directories do not block their children. On error
/// `dest` is left partly populated; the caller removes it.
pub fn extract(
    archive: &Path,
    compression: Compression,
    dest: &Path,
    opts: &ExtractOptions,
) -> SysResult<ExtractStats> {
    let read_err = |e: &io::Error, at: &str| SysError::io("read", Some(archive.into()), e).args(at);
    let file = File::open(archive).map_err(|e| SysError::io("open", Some(archive.into()), &e))?;
    let input = BufReader::with_capacity(BUF_SIZE, file);
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip | Compression::Zstd => {
            let zstd = compression == Compression::Zstd;
            let first =
                Member::start(input, zstd).map_err(|e| read_err(&e, "compressed stream header"))?;
            Box::new(Decompress {
                zstd,
                member: Some(first),
            })
        }
    };
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = nix::fcntl::open(dest, flags, Mode::empty())
        .map_err(|e| SysError::new("open", Some(dest.into()), e).args("O_PATH|O_DIRECTORY"))?;
    let mut x = Extractor {
        archive,
        dest,
        privileged: opts.privileged,
        root: Rc::new(root),
        cache: None,
        dirs: HashMap::new(),
        stats: ExtractStats::default(),
        buf: vec![0; BUF_SIZE],
    };
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| read_err(&e, "archive header"))?;
    let mut last = String::from("the start of the archive");
    for (index, entry) in entries.enumerate() {
        let at = || format!("entry #{index}, after `{last}`");
        let mut entry = entry.map_err(|e| read_err(&e, &at()))?;
        last = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        x.entry(&format!("entry #{index} `{last}`"), &mut entry)?;
    }
    if compression != Compression::None {
        // tar stops at its end marker; reading on to the end of the stream makes the
        // decompressor check the last member's trailer (gzip CRC and length, zstd checksum).
        let mut rest = tar.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| read_err(&e, "after the last entry"))?;
    }
    x.finish_dirs()?;
    Ok(x.stats)
}

/// Owner, mode, time and xattrs of an entry, applied after its content.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// Where an entry goes (`name` in the directory `at`), and how errors name it.
#[derive(Clone, Copy)]
struct Here<'a> {
    at: BorrowedFd<'a>,
    name: &'a OsStr,
    rel: &'a Path,
    ctx: &'a str,
    archive: &'a Path,
    dest: &'a Path,
}

impl Here<'_> {
    fn fail(&self, op: &str, errno: Errno) -> SysError {
        fail(self.dest, self.rel, self.ctx, op, errno)
    }

    fn bad(&self, why: impl std::fmt::Display) -> SysError {
        bad(self.archive, self.ctx, why)
    }
}

struct Extractor<'a> {
    archive: &'a Path,
    dest: &'a Path,
    privileged: bool,
    root: Rc<OwnedFd>,
    /// The last parent directory opened: archives list siblings together, so this saves an
    /// `openat2` per entry.
    cache: Option<(PathBuf, Rc<OwnedFd>)>,
    /// Directories whose metadata is applied at the end.
    dirs: HashMap<PathBuf, Meta>,
    stats: ExtractStats,
    buf: Vec<u8>,
}

impl<'a> Extractor<'a> {
    fn here<'b>(&self, at: BorrowedFd<'b>, name: &'b OsStr, rel: &'b Path, ctx: &'b str) -> Here<'b>
    where
        'a: 'b,
    {
        Here {
            at,
            name,
            rel,
            ctx,
            archive: self.archive,
            dest: self.dest,
        }
    }

    fn entry<R: Read>(&mut self, ctx: &str, entry: &mut tar::Entry<R>) -> SysResult<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(()); // archive-wide defaults (e.g. git's commit id); nothing to create
        }
        let archive = self.archive;
        let raw = entry.path_bytes().into_owned();
        let rel = normalise(&raw).map_err(|why| bad(archive, ctx, format!("path {why}")))?;
        let meta = read_meta(entry, archive, ctx)?;
        // Pre-POSIX archives mark directories with a trailing slash on a regular entry.
        let is_dir = kind.is_dir() || (kind == EntryType::Regular && raw.ends_with(b"/"));
        let Some(name) = rel.file_name() else {
            if !is_dir {
                return Err(bad(archive, ctx, "a non-directory entry names the root"));
            }
            self.dirs.insert(rel, meta);
            self.stats.entries += 1;
            return Ok(());
        };
        if matches!(kind, EntryType::Char | EntryType::Block) && !self.privileged {
            self.stats.skipped_devices += 1;
            return Ok(());
        }
        let parent = self.parent(rel.parent().unwrap_or(Path::new("")), true, ctx)?;
        let h = self.here(parent.as_fd(), name, &rel, ctx);
        match kind {
            _ if is_dir => self.dir(h, meta)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(h, entry, &meta)?
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                if target.is_empty() || target.contains(&0) || target.len() > PATH_MAX {
                    return Err(h.bad("symlink target is empty, over PATH_MAX or has a NUL"));
                }
                let target = OsStr::from_bytes(&target);
                self.create(h, "symlinkat", || symlinkat(target, h.at, name))?;
                self.apply_at(h, &meta, false)?;
            }
            EntryType::Link => self.hard_link(h, entry)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let header = entry.header();
                let num = |n: io::Result<Option<u32>>| n.ok().flatten().map(u64::from);
                let (kind, dev) =
                    match (kind, num(header.device_major()), num(header.device_minor())) {
                        (EntryType::Fifo, _, _) => (SFlag::S_IFIFO, 0),
                        (EntryType::Char, Some(ma), Some(mi)) => (SFlag::S_IFCHR, makedev(ma, mi)),
                        (_, Some(ma), Some(mi)) => (SFlag::S_IFBLK, makedev(ma, mi)),
                        _ => return Err(h.bad("device entry without valid device numbers")),
                    };
                let perm = Mode::from_bits_truncate(0o600);
                self.create(h, "mknodat", || mknodat(h.at, name, kind, perm, dev))?;
                self.apply_at(h, &meta, true)?;
            }
            other => {
                let byte = other.as_byte().escape_ascii();
                return Err(h.bad(format!("unsupported entry type `{byte}`")));
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// A descriptor for directory `rel` beneath the root, creating missing directories when
    /// `create` (archives may omit them). Never follows a symlink.
    fn parent(&mut self, rel: &Path, create: bool, ctx: &str) -> SysResult<Rc<OwnedFd>> {
        if rel.as_os_str().is_empty() {
            return Ok(self.root.clone());
        }
        match &self.cache {
            Some((cached, fd)) if cached == rel => return Ok(fd.clone()),
            _ => {}
        }
        let fd = match open_beneath(self.root.as_fd(), rel, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => self.make_dirs(rel, ctx)?,
            Err(e) => return Err(fail(self.dest, rel, ctx, "openat2", e)),
        };
        let fd = Rc::new(fd);
        self.cache = Some((rel.to_path_buf(), fd.clone()));
        Ok(fd)
    }

    fn make_dirs(&self, rel: &Path, ctx: &str) -> SysResult<OwnedFd> {
        let mut fd: Option<OwnedFd> = None;
        let mut done = PathBuf::new();
        for comp in rel.iter() {
            done.push(comp);
            let at = fd.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
            match mkdirat(at, comp, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(fail(self.dest, &done, ctx, "mkdirat", e)),
            }
            let next = open_beneath(at, Path::new(comp), OFlag::O_PATH);
            fd = Some(next.map_err(|e| fail(self.dest, &done, ctx, "openat2", e))?);
        }
        fd.ok_or_else(|| bad(self.archive, ctx, "empty parent path"))
    }

    /// Run `make`; if the name exists, remove what is there (never a populated directory) and
    /// run it once more. Existing files are never opened, so hard links and symlinks planted by
    /// earlier entries cannot redirect the write.
    fn create<T>(&mut self, h: Here, op: &str, make: impl Fn() -> nix::Result<T>) -> SysResult<T> {
        match make() {
            Err(Errno::EEXIST) => {
                self.remove(h)?;
                make().map_err(|e| h.fail(op, e))
            }
            made => made.map_err(|e| h.fail(op, e)),
        }
    }

    fn remove(&mut self, h: Here) -> SysResult<()> {
        if !is_dir(h)? {
            return unlinkat(h.at, h.name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| h.fail("unlinkat", e));
        }
        match unlinkat(h.at, h.name, UnlinkatFlags::RemoveDir) {
            Ok(()) => {}
            Err(Errno::ENOTEMPTY | Errno::EEXIST) => {
                return Err(h.bad("would replace a non-empty directory with a non-directory"));
            }
            Err(e) => return Err(h.fail("unlinkat", e)),
        }
        self.dirs.remove(h.rel);
        self.cache = None; // it may have been this directory
        Ok(())
    }

    fn dir(&mut self, h: Here, meta: Meta) -> SysResult<()> {
        // 0700 until the end: the archive's mode (maybe read-only) must not block the children.
        let mode = Mode::from_bits_truncate(0o700);
        match mkdirat(h.at, h.name, mode) {
            Ok(()) => {}
            Err(Errno::EEXIST) if is_dir(h)? => {} // repeated directories update metadata
            Err(Errno::EEXIST) => {
                self.remove(h)?;
                mkdirat(h.at, h.name, mode).map_err(|e| h.fail("mkdirat", e))?;
            }
            Err(e) => return Err(h.fail("mkdirat", e)),
        }
        self.dirs.insert(h.rel.to_path_buf(), meta);
        Ok(())
    }

    fn file(&mut self, h: Here, data: &mut impl Read, meta: &Meta) -> SysResult<()> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
        let perm = Mode::from_bits_truncate(0o600);
        let open = || openat(h.at, h.name, flags | OFlag::O_CLOEXEC, perm);
        let mut file = File::from(self.create(h, "openat", open)?);
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SysError::io("read", Some(h.archive.into()), &e).args(h.ctx)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| SysError::io("write", Some(h.dest.join(h.rel)), &e).args(h.ctx))?;
            self.stats.bytes += n as u64;
        }
        self.apply_fd(file.as_fd(), h, meta)
    }

    fn hard_link<R: Read>(&mut self, h: Here, entry: &tar::Entry<R>) -> SysResult<()> {
        let raw = entry.link_name_bytes().unwrap_or_default().into_owned();
        let shown = String::from_utf8_lossy(&raw);
        let target =
            normalise(&raw).map_err(|why| h.bad(format!("link target `{shown}` {why}")))?;
        if target == h.rel {
            return Ok(()); // a link to itself: unlinking first would destroy the file
        }
        let Some(target_name) = target.file_name() else {
            return Err(h.bad("hard link target is the root"));
        };
        // The target's directory is opened beneath the root like any parent, so the link can only
        // name a file extracted here (linkat without AT_SYMLINK_FOLLOW links a symlink itself).
        let from = self.parent(target.parent().unwrap_or(Path::new("")), false, h.ctx)?;
        let link = || linkat(from.as_fd(), target_name, h.at, h.name, AtFlags::empty());
        self.create(h, "linkat", link)
    }

    /// Owner, mode, xattrs and time on an open file or directory. Mode comes after chown
    /// (which clears setuid/setgid); the time comes last because the others change ctime only.
    fn apply_fd(&self, fd: BorrowedFd, h: Here, meta: &Meta) -> SysResult<()> {
        if self.privileged {
            let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
            fchown(fd, Some(uid), Some(gid)).map_err(|e| h.fail("fchown", e))?;
        }
        fchmod(fd, Mode::from_bits_truncate(meta.mode)).map_err(|e| h.fail("fchmod", e))?;
        for (name, value) in &meta.xattrs {
            match fsetxattr(fd, name, value) {
                // Unsupported by this filesystem, or a namespace we may not set (trusted.*,
                // security.* unprivileged): the rootfs still works without them.
                Ok(()) | Err(Errno::EOPNOTSUPP | Errno::EPERM) => {}
                Err(e) => {
                    let args = format!("{}, {}", h.ctx, name.to_string_lossy());
                    return Err(h.fail("fsetxattr", e).args(args));
                }
            }
        }
        futimens(fd, &meta.mtime, &meta.mtime).map_err(|e| h.fail("futimens", e))
    }

    /// Metadata on a symlink or node, by name, never following a symlink. Their xattrs are not
    /// set: that needs an fd (`O_PATH` ones are refused) or a path resolved through /proc.
    fn apply_at(&self, h: Here, meta: &Meta, chmod: bool) -> SysResult<()> {
        if self.privileged {
            let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
            let nofollow = AtFlags::AT_SYMLINK_NOFOLLOW;
            fchownat(h.at, h.name, Some(uid), Some(gid), nofollow)
                .map_err(|e| h.fail("fchownat", e))?;
        }
        if chmod {
            let mode = Mode::from_bits_truncate(meta.mode);
            match fchmodat(h.at, h.name, mode, FchmodatFlags::NoFollowSymlink) {
                // Without fchmodat2 (Linux < 6.6) and /proc, libc cannot chmod without following.
                // The name is the node mknodat just made in a directory we hold open, not a link.
                Err(Errno::EOPNOTSUPP | Errno::ENOSYS) => {
                    fchmodat(h.at, h.name, mode, FchmodatFlags::FollowSymlink)
                }
                done => done,
            }
            .map_err(|e| h.fail("fchmodat", e))?;
        }
        let (t, nofollow) = (&meta.mtime, UtimensatFlags::NoFollowSymlink);
        utimensat(h.at, h.name, t, t, nofollow).map_err(|e| h.fail("utimensat", e))
    }

    /// Apply directory metadata, deepest first so a parent's mode never blocks reaching a child
    /// and a child's creation never changes a parent's restored mtime.
    fn finish_dirs(&mut self) -> SysResult<()> {
        let mut dirs: Vec<_> = std::mem::take(&mut self.dirs).into_iter().collect();
        dirs.sort_by_key(|(rel, _)| Reverse(rel.components().count()));
        for (rel, meta) in dirs {
            let ctx = format!("directory `{}`", rel.display());
            let path = Path::new(".").join(&rel); // `.` alone for the root itself
            let h = self.here(self.root.as_fd(), OsStr::new("."), &rel, &ctx);
            let fd =
                open_beneath(h.at, &path, OFlag::O_RDONLY).map_err(|e| h.fail("openat2", e))?;
            self.apply_fd(fd.as_fd(), h, &meta)?;
        }
        Ok(())
    }
}

/// Header fields and PAX records (`SCHILY.xattr.*`, sub-second `mtime`) of an entry.
fn read_meta<R: Read>(entry: &mut tar::Entry<R>, archive: &Path, ctx: &str) -> SysResult<Meta> {
    let field = |e: io::Error| SysError::io("read", Some(archive.into()), &e).args(ctx);
    let header = entry.header();
    let mode = header.mode().map_err(field)? & 0o7777;
    let id = |n: io::Result<u64>| {
        let n = n.map_err(field)?;
        u32::try_from(n).map_err(|_| bad(archive, ctx, format!("owner id {n} is out of range")))
    };
    let (uid, gid) = (id(header.uid())?, id(header.gid())?);
    let secs = header.mtime().map_err(field)?;
    let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
    let mut xattrs = Vec::new();
    for ext in entry.pax_extensions().map_err(field)?.into_iter().flatten() {
        let ext = ext.map_err(field)?;
        if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
            let name = CString::new(name).map_err(|_| bad(archive, ctx, "xattr name has a NUL"))?;
            xattrs.push((name, ext.value_bytes().to_vec()));
        } else if ext.key_bytes() == b"mtime" {
            mtime = parse_pax_time(ext.value_bytes()).unwrap_or(mtime);
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// Whether `h.name` is a directory (not following a symlink).
fn is_dir(h: Here) -> SysResult<bool> {
    let st =
        fstatat(h.at, h.name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| h.fail("fstatat", e))?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// A malformed or malicious entry.
fn bad(archive: &Path, ctx: &str, why: impl std::fmt::Display) -> SysError {
    SysError::other("extract", Some(archive.into()), format!("{ctx}: {why}"))
}

/// A failed call on `rel` beneath `dest`, with a hint for errnos that mean the archive tried
/// something we refuse.
fn fail(dest: &Path, rel: &Path, ctx: &str, op: &str, errno: Errno) -> SysError {
    let mut err = SysError::new(op, Some(dest.join(rel)), errno).args(ctx);
    err.detail = match (op, errno) {
        ("openat2", Errno::ELOOP) => {
            Some("a path component is a symbolic link; entries are never written through symlinks")
        }
        ("openat2", Errno::ENOTDIR) => Some("a path component is not a directory"),
        ("openat2", Errno::EXDEV) => Some("the path leaves the destination"),
        ("openat2", Errno::ENOSYS) => Some("openat2 needs Linux 5.6 or later"),
        ("openat2" | "linkat", Errno::ENOENT) => {
            Some("the hard link target is not an earlier entry")
        }
        _ => None,
    }
    .map(String::from);
    err
}

/// Open directory `rel` beneath `dir` without following any symlink or leaving `dir`.
fn open_beneath(dir: BorrowedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
    let flags = flags | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let how = OpenHow::new()
        .flags(flags)
        .resolve(resolve | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(dir, rel, how)
}

fn fsetxattr(fd: BorrowedFd, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: `fd` is open for the call, `name` is NUL-terminated and `value` is a live buffer of
    // `value.len()` bytes; the kernel only reads them.
    let (name, len, value) = (name.as_ptr(), value.len(), value.as_ptr().cast());
    let rc = unsafe { libc::fsetxattr(fd.as_raw_fd(), name, value, len, 0) };
    Errno::result(rc).map(drop)
}

/// An archive path as a relative path without `.` components, or why it is refused.
fn normalise(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.contains(&0) {
        return Err("contains a NUL byte".into());
    }
    if raw.len() > PATH_MAX {
        return Err(format!("is {} bytes long, over PATH_MAX", raw.len()));
    }
    if raw.starts_with(b"/") {
        return Err("is an absolute path".into());
    }
    let mut rel = PathBuf::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("leaves the root (contains `..`)".into()),
            c if c.len() > NAME_MAX => return Err("has a name over NAME_MAX".into()),
            c => rel.push(OsStr::from_bytes(c)),
        }
    }
    Ok(rel)
}

/// A PAX time, `seconds[.fraction]`.
fn parse_pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    if secs < 0 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None; // pre-1970 fractions count backwards; the header's whole seconds will do
    }
    let nanos = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
    Some(TimeSpec::new(secs, nanos))
}

/// A gzip or zstd stream read member by member (frame by frame): concatenated members (pigz,
/// pzstd, `cat a.gz b.gz`) read as one stream, each member's checksum is verified, and zero
/// padding after the last one (tape-style blocking) is accepted like gzip(1) does.
struct Decompress<R: BufRead> {
    zstd: bool,
    member: Option<Member<R>>,
}

enum Member<R: BufRead> {
    Gzip(flate2::bufread::GzDecoder<R>),
    Zstd(Box<StreamingDecoder<R, FrameDecoder>>), // boxed: the frame decoder is large
}

impl<R: BufRead> Member<R> {
    fn start(source: R, zstd: bool) -> io::Result<Member<R>> {
        Ok(match zstd {
            true => Member::Zstd(Box::new(
                StreamingDecoder::new(source).map_err(io::Error::other)?,
            )),
            false => Member::Gzip(flate2::bufread::GzDecoder::new(source)),
        })
    }

    /// The source after a finished member. flate2 checks the gzip CRC itself; ruzstd reads the
    /// zstd checksum but leaves comparing it to us.
    fn finish(self) -> io::Result<R> {
        let zstd = match self {
            Member::Gzip(gz) => return Ok(gz.into_inner()),
            Member::Zstd(zstd) => zstd,
        };
        let frame = &zstd.decoder;
        match (
            frame.get_checksum_from_data(),
            frame.get_calculated_checksum(),
        ) {
            (Some(want), Some(got)) if want != got => {
                Err(io::Error::other("zstd content checksum mismatch"))
            }
            _ => Ok(zstd.into_inner()),
        }
    }
}

impl<R: BufRead> Read for Decompress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(member) = self.member.as_mut() {
            let n = match member {
                Member::Gzip(gz) => gz.read(buf)?,
                Member::Zstd(zstd) => zstd.read(buf)?,
            };
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(done) = self.member.take() else {
                break;
            };
            let mut source = done.finish()?;
            match source.fill_buf()?.first() {
                None => break,
                Some(0) => skip_zeros(&mut source)?,
                Some(_) => self.member = Some(Member::start(source, self.zstd)?),
            }
        }
        Ok(0)
    }
}

/// Consume zero padding to the end; anything else after the last member is an error.
fn skip_zeros(source: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = source.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.iter().any(|b| *b != 0) {
            return Err(io::Error::other("data after the last compressed member"));
        }
        let n = chunk.len();
        source.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_dots_and_refuses_escapes() {
        assert_eq!(
            normalise(b"./etc//passwd/."),
            Ok(PathBuf::from("etc/passwd"))
        );
        assert_eq!(normalise(b"./"), Ok(PathBuf::new()));
        let why = |raw: &[u8]| normalise(raw).unwrap_err();
        assert_eq!(why(b"../etc/passwd"), "leaves the root (contains `..`)");
        assert_eq!(why(b"a/b/../../.."), "leaves the root (contains `..`)");
        assert_eq!(why(b"/etc/passwd"), "is an absolute path");
        assert_eq!(why(b"a\0b"), "contains a NUL byte");
        assert_eq!(why(&[b'a'; 256]), "has a name over NAME_MAX");
        assert_eq!(
            why(&b"a/".repeat(2100)),
            "is 4200 bytes long, over PATH_MAX"
        );
    }

    #[test]
    fn pax_times_keep_nanoseconds() {
        let t = |secs, nanos| Some(TimeSpec::new(secs, nanos));
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            t(1_700_000_000, 500_000_000)
        );
        assert_eq!(parse_pax_time(b"12"), t(12, 0));
        assert_eq!(parse_pax_time(b"1.1234567891"), t(1, 123_456_789));
        assert_eq!(parse_pax_time(b"-1.5"), None);
        assert_eq!(parse_pax_time(b"1.x"), None);
    }
}
