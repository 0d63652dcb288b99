//! The extraction loop: every entry written beneath the destination, never through a symlink.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev,
    mkdirat, mknodat, utimensat,
};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use tar::EntryType;

use crate::error::{SysError, SysResult};

use super::decompress::{Corrupt, Decompress};
use super::guard::Guard;
use super::layer::{Hashing, Overlay, SharedHash};
use super::meta::{Meta, fsetxattr, read_meta, shift_xattr};
use super::names::normalise;
use super::{BUF_SIZE, Compression, ExtractOptions, ExtractStats, PATH_MAX};

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
    let reader = open(archive, compression)?;
    let drain = compression != Compression::None;
    extract_from(archive, reader, drain, dest, opts, None, &mut || {}).map(|(stats, _)| stats)
}

/// [`extract`] from an already opened stream (`archive` names it in errors). `drain`: read the
/// stream to its end after tar's end marker (a decompressor then checks its last trailer, a
/// hashing reader sees every byte). `overlay`: a layer of an image, whose whiteouts become
/// overlayfs whiteouts (see `layer.rs`). `between` is called before each entry (progress).
pub(super) fn extract_from(
    archive: &Path,
    reader: Box<dyn Read>,
    drain: bool,
    dest: &Path,
    opts: &ExtractOptions,
    overlay: Option<Overlay>,
    between: &mut dyn FnMut(),
) -> SysResult<(ExtractStats, Option<Overlay>)> {
    let read_err = |e: &io::Error, at: &str| read_error(archive, e, at);
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = nix::fcntl::open(dest, flags, Mode::empty())
        .map_err(|e| SysError::new("open", Some(dest.into()), e).args("O_PATH|O_DIRECTORY"))?;
    let mut x = Extractor {
        archive,
        dest,
        privileged: opts.privileged,
        owners: opts.owners.as_ref(),
        root: Rc::new(root),
        cache: None,
        dirs: HashMap::new(),
        stats: ExtractStats::default(),
        buf: vec![0; BUF_SIZE],
        max_bytes: opts.max_bytes,
        overlay,
    };
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| read_err(&e, "archive header"))?;
    let mut last = String::from("the start of the archive");
    for (index, entry) in entries.enumerate() {
        between();
        if opts.cancelled.is_some_and(|c| c()) {
            return Err(
                SysError::other("extract", Some(archive.into()), "cancelled")
                    .args(format!("before entry #{index}")),
            );
        }
        let at = || format!("entry #{index}, after `{last}`");
        let mut entry = entry.map_err(|e| read_err(&e, &at()))?;
        last = shown_name(&entry.path_bytes());
        x.entry(&format!("entry #{index} `{last}`"), &mut entry)?;
    }
    if drain {
        // tar stops at its end marker; reading on to the end of the stream makes the
        // decompressor check the last member's trailer (gzip CRC and length, zstd checksum).
        let mut rest = tar.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| read_err(&e, "after the last entry"))?;
    }
    x.finish_opaque()?;
    x.finish_dirs()?;
    Ok((x.stats, x.overlay))
}

/// The archive's tar stream, decompressed.
/// The most of an entry's name a message shows: names come from the archive, and one of 64 MiB
/// must not become a 64 MiB message.
const SHOWN_NAME: usize = 120;

/// An entry's name for messages: lossy UTF-8, cut to [`SHOWN_NAME`] characters.
fn shown_name(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    if s.chars().count() <= SHOWN_NAME {
        return s.into_owned();
    }
    let cut: String = s.chars().take(SHOWN_NAME).collect();
    format!("{cut}… ({} bytes)", name.len())
}

/// A read error, without the archive's bytes: the tar parser's messages quote the header field
/// it could not parse, which for a file that is not an archive (a symlink swapped in for it, to
/// /etc/shadow) would print that file's contents.
pub(super) fn read_error(archive: &Path, e: &io::Error, at: &str) -> SysError {
    if e.raw_os_error().is_some() {
        return SysError::io("read", Some(archive.into()), e).args(at);
    }
    if let Some(b) = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<super::guard::Bounded>())
    {
        return SysError::other("read", Some(archive.into()), b.0.clone()).args(at);
    }
    // The decompressor's verdict (a checksum mismatch, a corrupt block) quotes nothing either.
    if let Some(c) = e.get_ref().and_then(|i| i.downcast_ref::<Corrupt>()) {
        return SysError::other("read", Some(archive.into()), c.0.clone()).args(at);
    }
    // The parser's own words only where they quote nothing of the file.
    let what = match e.kind() {
        io::ErrorKind::UnexpectedEof => "the archive ends in the middle of an entry",
        _ if e.to_string() == "archive header checksum mismatch" => {
            "header checksum mismatch: not a valid tar archive here (its bytes are not shown)"
        }
        _ => "not a valid tar archive here (its bytes are not shown)",
    };
    SysError::other("read", Some(archive.into()), what).args(at)
}

pub(super) fn open(archive: &Path, compression: Compression) -> SysResult<Box<dyn Read>> {
    let file = open_file(archive)?;
    wrap(
        BufReader::with_capacity(BUF_SIZE, file),
        compression,
        archive,
        None,
    )
}

/// Open an archive for reading, never through a symlink.
pub(super) fn open_file(archive: &Path) -> SysResult<File> {
    // O_NOFOLLOW: validation resolved the path to the file itself; a symlink found here was
    // swapped in since (a plan runs later, maybe as root), and is refused.
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::OpenOptions::new().read(true),
        libc::O_NOFOLLOW | libc::O_CLOEXEC,
    )
    .open(archive)
    .map_err(|e| {
        let mut err = SysError::io("open", Some(archive.into()), &e).args("O_RDONLY|O_NOFOLLOW");
        if e.raw_os_error() == Some(libc::ELOOP) {
            err = err.with_detail(
                "it is a symlink now: it was replaced after the plan was made; make the plan again",
            );
        }
        err
    })
}

/// The tar stream of `input`, decompressed, behind the [`Guard`] that bounds what the tar crate
/// buffers for long names and PAX headers. Reading `input`, decompressing it and hashing the
/// result into `hash` (when given) happen in a thread of their own, ahead of the caller
/// ([`super::pipe`]): extraction and decompression use two CPUs, as GNU tar and its gzip or zstd
/// process do.
pub(super) fn wrap<R: io::BufRead + Send + 'static>(
    input: R,
    compression: Compression,
    archive: &Path,
    hash: Option<SharedHash>,
) -> SysResult<Box<dyn Read>> {
    let stream: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip | Compression::Zstd => {
            let zstd = compression == Compression::Zstd;
            Box::new(Decompress::new(input, zstd).map_err(|e| {
                SysError::other("decompress", Some(archive.into()), e.to_string())
                    .args("starting the decoder")
            })?)
        }
    };
    let stream: Box<dyn Read + Send> = match hash {
        Some(state) => Box::new(Hashing::with(stream, state)),
        None => stream,
    };
    let piped = super::pipe::spawn(stream).map_err(|e| {
        SysError::io("pthread_create", Some(archive.into()), &e)
            .args("the thread that reads and decompresses the archive")
    })?;
    Ok(Box::new(Guard::new(piped)))
}

/// Where an entry goes (`name` in the directory `at`), and how errors name it.
#[derive(Clone, Copy)]
pub(super) struct Here<'a> {
    pub(super) at: BorrowedFd<'a>,
    name: &'a OsStr,
    rel: &'a Path,
    ctx: &'a str,
    archive: &'a Path,
    dest: &'a Path,
}

impl Here<'_> {
    pub(super) fn fail(&self, op: &str, errno: Errno) -> SysError {
        fail(self.dest, self.rel, self.ctx, op, errno)
    }

    pub(super) fn bad(&self, why: impl std::fmt::Display) -> SysError {
        bad(self.archive, self.ctx, why)
    }
}

pub(super) struct Extractor<'a> {
    pub(super) archive: &'a Path,
    pub(super) dest: &'a Path,
    pub(super) privileged: bool,
    owners: Option<&'a crate::sys::idmap::OwnerShift>,
    pub(super) root: Rc<OwnedFd>,
    /// The last parent directory opened: archives list siblings together, so this saves an
    /// `openat2` per entry.
    cache: Option<(PathBuf, Rc<OwnedFd>)>,
    /// Directories whose metadata is applied at the end.
    dirs: HashMap<PathBuf, Meta>,
    pub(super) stats: ExtractStats,
    buf: Vec<u8>,
    max_bytes: Option<u64>,
    /// Layer mode: whiteouts to convert, opaque directories to mark.
    pub(super) overlay: Option<Overlay>,
}

impl<'a> Extractor<'a> {
    pub(super) fn here<'b>(
        &self,
        at: BorrowedFd<'b>,
        name: &'b OsStr,
        rel: &'b Path,
        ctx: &'b str,
    ) -> Here<'b>
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

    /// An entry's name as [`normalise`] judges it. Image layers are read as containerd and
    /// Docker read them: a name (or hard link target) with a leading `/` is relative to the
    /// layer's root (`umoci insert` writes `/` and `/bin/sh`); it is still written beneath the
    /// root like any other. A root filesystem archive (`docker export`) never has one, and one
    /// that does is refused.
    fn names<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        match self.overlay {
            Some(_) => {
                let mut r = raw;
                while let [b'/', rest @ ..] = r {
                    r = rest;
                }
                match r.is_empty() && !raw.is_empty() {
                    true => b".",
                    false => r,
                }
            }
            None => raw,
        }
    }

    fn entry<R: Read>(&mut self, ctx: &str, entry: &mut tar::Entry<R>) -> SysResult<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(()); // archive-wide defaults (e.g. git's commit id); nothing to create
        }
        let archive = self.archive;
        let raw = entry.path_bytes().into_owned();
        let rel =
            normalise(self.names(&raw)).map_err(|why| bad(archive, ctx, format!("path {why}")))?;
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
        if self.overlay.is_some() && name.as_bytes().starts_with(super::layer::WHITEOUT) {
            return self.whiteout(&rel, name, ctx);
        }
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
    pub(super) fn parent(&mut self, rel: &Path, create: bool, ctx: &str) -> SysResult<Rc<OwnedFd>> {
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
            let total = self.stats.bytes.saturating_add(n as u64);
            if let Some(max) = self.max_bytes.filter(|m| total > *m) {
                return Err(SysError::other(
                    "extract",
                    Some(h.archive.into()),
                    format!(
                        "the archive expands past `[rootfs] max_size` ({max} bytes) at {}",
                        h.ctx
                    ),
                ));
            }
            file.write_all(&self.buf[..n]).map_err(|e| {
                let err = SysError::io("write", Some(h.dest.join(h.rel)), &e).args(h.ctx);
                match e.raw_os_error() {
                    Some(libc::ENOSPC) | Some(libc::EDQUOT) => err.with_detail(format!(
                        "the filesystem holding {} is full after {} bytes of this archive: free \
                         space there, or set `[rootfs] max_size` to stop an archive that expands \
                         without bound before it fills the disk",
                        h.dest.display(),
                        self.stats.bytes
                    )),
                    _ => err,
                }
            })?;
            self.stats.bytes = total;
        }
        self.apply_fd(file.as_fd(), h, meta)
    }

    fn hard_link<R: Read>(&mut self, h: Here, entry: &tar::Entry<R>) -> SysResult<()> {
        let raw = entry.link_name_bytes().unwrap_or_default().into_owned();
        let shown = String::from_utf8_lossy(&raw);
        let target = normalise(self.names(&raw))
            .map_err(|why| h.bad(format!("link target `{shown}` {why}")))?;
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

    /// The host owner of an entry: the archive's, or the host ids the container's maps give it.
    fn owner(&self, meta: &Meta) -> (Uid, Gid) {
        match self.owners {
            Some(o) => (
                Uid::from_raw(o.uid(meta.uid)),
                Gid::from_raw(o.gid(meta.gid)),
            ),
            None => (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid)),
        }
    }

    /// The mode to set. Through the maps, setuid (setgid) is dropped from a file whose owner
    /// (group) the maps leave out: the kernel ignores it inside the container anyway, and on the
    /// host it would be a setuid program of whoever owns 65534.
    fn mode(&self, meta: &Meta) -> Mode {
        let mut mode = meta.mode;
        if let Some(o) = self.owners {
            if !o.maps_uid(meta.uid) {
                mode &= !0o4000;
            }
            if !o.maps_gid(meta.gid) {
                mode &= !0o2000;
            }
        }
        Mode::from_bits_truncate(mode)
    }

    /// Owner, mode, xattrs and time on an open file or directory. Mode comes after chown
    /// (which clears setuid/setgid); the time comes last because the others change ctime only.
    fn apply_fd(&self, fd: BorrowedFd, h: Here, meta: &Meta) -> SysResult<()> {
        if self.privileged {
            let (uid, gid) = self.owner(meta);
            fchown(fd, Some(uid), Some(gid)).map_err(|e| h.fail("fchown", e))?;
        }
        fchmod(fd, self.mode(meta)).map_err(|e| h.fail("fchmod", e))?;
        for (name, value) in &meta.xattrs {
            if self.overlay.is_some() && super::layer::is_overlay_xattr(name) {
                continue; // only whiteouts and opaque markers we made ourselves steer overlayfs
            }
            let shifted = self.owners.and_then(|o| shift_xattr(o, name, value));
            match fsetxattr(fd, name, shifted.as_deref().unwrap_or(value)) {
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
            let (uid, gid) = self.owner(meta);
            let nofollow = AtFlags::AT_SYMLINK_NOFOLLOW;
            fchownat(h.at, h.name, Some(uid), Some(gid), nofollow)
                .map_err(|e| h.fail("fchownat", e))?;
        }
        if chmod {
            let mode = self.mode(meta);
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

/// Whether `h.name` is a directory (not following a symlink).
fn is_dir(h: Here) -> SysResult<bool> {
    let st =
        fstatat(h.at, h.name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| h.fail("fstatat", e))?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// A malformed or malicious entry.
pub(super) fn bad(archive: &Path, ctx: &str, why: impl std::fmt::Display) -> SysError {
    SysError::other("extract", Some(archive.into()), format!("{ctx}: {why}"))
}

/// A failed call on `rel` beneath `dest`, with a hint for errnos that mean the archive tried
/// something we refuse.
pub(super) fn fail(dest: &Path, rel: &Path, ctx: &str, op: &str, errno: Errno) -> SysError {
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
pub(super) fn open_beneath(dir: BorrowedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
    let flags = flags | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let how = OpenHow::new()
        .flags(flags)
        .resolve(resolve | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(dir, rel, how)
}
