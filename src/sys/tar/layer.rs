//! Image layers: a layer tar unpacked into a directory that overlayfs can use as a lower layer.
//!
//! The OCI image spec marks deletions with names: `.wh.NAME` deletes NAME of the layers below,
//! `.wh..wh..opq` hides everything the layers below have in its directory. overlayfs has its own
//! forms: a whiteout is a character device 0:0, an opaque directory carries the xattr
//! `trusted.overlay.opaque=y` (`user.overlay.opaque=y` on a `userxattr` mount, which is what an
//! unprivileged user mounts). The names are converted while the layer streams past:
//!
//! - `.wh.NAME` becomes a 0:0 character device NAME, unless this layer itself has an entry NAME
//!   (a whiteout only hides the layers below, OCI image spec "Whiteouts"). Linux allows any user
//!   to create the whiteout device (since 5.8), so rootless stores use the same form.
//! - `.wh..wh..opq` marks its directory, wherever the marker comes in the layer: the directory is
//!   marked at the end, after every entry of the layer was written (its own entries stay
//!   visible: they are in this layer). Both xattrs are set when privileged (the layer then works
//!   for a root mount and a `userxattr` one), the `user.` one otherwise.
//! - Other `.wh..wh.*` names are AUFS bookkeeping (`.wh..wh.plnk`) and are skipped.
//! - overlay xattrs carried by the layer itself (`trusted.overlay.*`, `user.overlay.*`) are
//!   dropped: a layer must not steer overlayfs with redirects or metacopy markers of its own.
//!
//! Everything else goes through the same hostile-archive-proof extraction as a rootfs tarball.
//! The blob's digest and its uncompressed digest (the diff_id) are computed from the bytes read,
//! while they stream.

use std::ffi::{CStr, OsStr};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat, makedev, mknodat};
use sha2::{Digest, Sha256};

use super::extract::{Extractor, extract_from, open_beneath, open_file, wrap};
use super::meta::fsetxattr;
use super::{BUF_SIZE, Compression, ExtractOptions, ExtractStats};
use crate::error::{SysError, SysResult};

/// The prefix of whiteout names.
pub(super) const WHITEOUT: &[u8] = b".wh.";
/// The opaque-directory marker.
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Layer-mode state of an extraction.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    /// Directories whose `.wh..wh..opq` marker was seen, marked at the end.
    opaque: Vec<PathBuf>,
    /// Whiteout devices made.
    whiteouts: u64,
}

/// Whether an xattr name is one overlayfs reads (`trusted.overlay.*`, `user.overlay.*`).
pub(super) fn is_overlay_xattr(name: &CStr) -> bool {
    let n = name.to_bytes();
    n.starts_with(b"trusted.overlay.") || n.starts_with(b"user.overlay.")
}

impl Extractor<'_> {
    /// A `.wh.*` entry `rel` (its last component `name`): an overlay whiteout or an opaque mark.
    pub(super) fn whiteout(&mut self, rel: &Path, name: &OsStr, ctx: &str) -> SysResult<()> {
        let dir = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let bytes = name.as_bytes();
        if bytes == OPAQUE {
            // The directory must exist in this layer for the mark (and be a directory now).
            self.parent(&dir, true, ctx)?;
            if let Some(o) = self.overlay.as_mut() {
                o.opaque.push(dir);
            }
            return Ok(());
        }
        let target = &bytes[WHITEOUT.len()..];
        if target.starts_with(WHITEOUT) {
            return Ok(()); // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to create
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(super::extract::bad(
                self.archive,
                ctx,
                "a whiteout that names no file",
            ));
        }
        let parent = self.parent(&dir, true, ctx)?;
        let tname = OsStr::from_bytes(target);
        let trel = dir.join(tname);
        let h = self.here(parent.as_fd(), tname, &trel, ctx);
        match fstatat(h.at, tname, AtFlags::AT_SYMLINK_NOFOLLOW) {
            // An entry of this layer (or a whiteout already made): whiteouts hide lower layers only.
            Ok(_) => return Ok(()),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(h.fail("fstatat", e)),
        }
        mknodat(h.at, tname, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| {
            h.fail("mknodat", e)
                .args(format!("{ctx}, S_IFCHR 0:0 (whiteout)"))
        })?;
        if let Some(o) = self.overlay.as_mut() {
            o.whiteouts += 1;
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// Mark the opaque directories (before directory modes are applied: a read-only directory
    /// would refuse an unprivileged user's xattr).
    pub(super) fn finish_opaque(&mut self) -> SysResult<()> {
        let Some(o) = self.overlay.as_mut() else {
            return Ok(());
        };
        let dirs = std::mem::take(&mut o.opaque);
        for rel in dirs {
            let path = Path::new(".").join(&rel);
            let fd = match open_beneath(self.root.as_fd(), &path, OFlag::O_RDONLY) {
                Ok(fd) => fd,
                // Replaced by a non-directory later in the layer: nothing left to mark.
                Err(Errno::ENOTDIR | Errno::ENOENT) => continue,
                Err(e) => {
                    let ctx = format!("opaque directory `{}`", rel.display());
                    return Err(super::extract::fail(self.dest, &rel, &ctx, "openat2", e));
                }
            };
            let set = |name: &CStr| {
                fsetxattr(fd.as_fd(), name, b"y").map_err(|e| {
                    SysError::new("fsetxattr", Some(self.dest.join(&rel)), e)
                        .args(format!("{}, \"y\"", name.to_string_lossy()))
                })
            };
            if self.privileged {
                set(c"trusted.overlay.opaque")?;
                // For a `userxattr` mount of the same layer; a filesystem without user xattrs
                // still serves the root mount.
                match set(c"user.overlay.opaque") {
                    Ok(()) => {}
                    Err(e) if e.errno() == Errno::EOPNOTSUPP => {}
                    Err(e) => return Err(e),
                }
            } else {
                set(c"user.overlay.opaque").map_err(|e| {
                    e.with_detail(
                        "a rootless store needs user xattrs (the overlay `userxattr` opaque \
                         marker); put LAUNCH_STORE on a filesystem that has them",
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// What [`extract_layer`] did and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The extraction's counts.
    pub stats: ExtractStats,
    /// Whiteout devices made (layer mode).
    pub whiteouts: u64,
    /// The compression found by the blob's magic bytes.
    pub compression: Compression,
    /// `sha256:<hex>` of the blob's bytes as read.
    pub digest: String,
    /// The blob's size.
    pub blob_size: u64,
    /// `sha256:<hex>` of the uncompressed tar stream (an image layer's diff_id).
    pub diff_id: String,
    /// The uncompressed size.
    pub tar_size: u64,
}

/// Unpack `blob` (a tar, tar+gzip or tar+zstd, found by its magic bytes) into `dest`, an empty
/// directory, as [`super::extract`] does, hashing the blob and its uncompressed stream while
/// they stream. `whiteouts`: convert whiteouts and opaque markers to overlay form (an image
/// layer), or write every entry as it is (a `docker export` root). The caller compares the
/// digests with what it expects and removes `dest` on a mismatch or an error.
pub fn extract_layer(
    blob: &Path,
    dest: &Path,
    opts: &ExtractOptions,
    whiteouts: bool,
) -> SysResult<Unpacked> {
    extract_layer_with(blob, dest, opts, whiteouts, &mut |_| {})
}

/// [`extract_layer`], telling `progress` before each entry how many bytes of the blob were read
/// so far (a layer unpack's progress display).
pub fn extract_layer_with(
    blob: &Path,
    dest: &Path,
    opts: &ExtractOptions,
    whiteouts: bool,
    progress: &mut dyn FnMut(u64),
) -> SysResult<Unpacked> {
    let file = open_file(blob)?;
    let outer_hash = SharedHash::default();
    let mut input = BufReader::with_capacity(BUF_SIZE, Hashing::with(file, outer_hash.clone()));
    let magic = input
        .fill_buf()
        .map_err(|e| SysError::io("read", Some(blob.into()), &e).args("magic bytes"))?;
    let compression = sniff(magic);
    // An uncompressed blob is its own tar stream: one hash gives both digests.
    let (inner_hash, extra) = match compression {
        Compression::None => (outer_hash.clone(), None),
        Compression::Gzip | Compression::Zstd => {
            let inner = SharedHash::default();
            (inner.clone(), Some(inner))
        }
    };
    let tar = wrap(input, compression, blob, extra)?;
    let overlay = whiteouts.then(Overlay::default);
    // The reading thread counts the blob's bytes as it hashes them.
    let mut between = || progress(outer_hash.len());
    let (stats, overlay) = extract_from(blob, tar, true, dest, opts, overlay, &mut between)?;
    // `extract_from` dropped the stream, which joined its thread: the hashes are complete.
    let (digest, blob_size) = outer_hash.result();
    let (diff_id, tar_size) = inner_hash.result();
    Ok(Unpacked {
        stats,
        whiteouts: overlay.map_or(0, |o| o.whiteouts),
        compression,
        digest,
        blob_size,
        diff_id,
        tar_size,
    })
}

/// The compression a stream's first bytes announce (gzip `1f 8b`, zstd `28 b5 2f fd`).
pub fn sniff(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A running SHA-256 and byte count.
#[derive(Default)]
pub struct HashState {
    hash: Sha256,
    len: u64,
}

impl HashState {
    /// Add bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// `sha256:<hex>` and the length so far.
    pub fn result(&self) -> (String, u64) {
        (sha256_string(&self.hash.clone().finalize()), self.len)
    }
}

/// `sha256:` and the lowercase hex of a 32-byte digest.
pub fn sha256_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// A [`HashState`] shared between the thread that reads an archive and the caller, who reads
/// the result once that thread is joined.
#[derive(Clone, Default)]
pub(super) struct SharedHash(Arc<Mutex<HashState>>);

impl SharedHash {
    fn update(&self, bytes: &[u8]) {
        // A poisoned lock only means a reading thread panicked; the state is a plain hash.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(bytes);
    }

    fn result(&self) -> (String, u64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .result()
    }

    /// The bytes hashed so far.
    fn len(&self) -> u64 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len
    }
}

/// A reader that hashes what passes through it.
pub(super) struct Hashing<R> {
    inner: R,
    state: SharedHash,
}

impl<R> Hashing<R> {
    pub(super) fn with(inner: R, state: SharedHash) -> Hashing<R> {
        Hashing { inner, state }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.state.update(&buf[..n]);
        Ok(n)
    }
}

/// The tar stream of the archive `path` (tar, tar+gzip or tar+zstd, by its magic bytes), with
/// the guard that bounds what the tar crate buffers for long names and PAX headers: for readers
/// of image archives (OCI layouts, `docker save` files) that only look at some entries.
pub fn open_guarded(path: &Path) -> SysResult<Box<dyn Read>> {
    let mut input = BufReader::with_capacity(BUF_SIZE, open_file(path)?);
    let magic = input
        .fill_buf()
        .map_err(|e| SysError::io("read", Some(path.into()), &e).args("magic bytes"))?;
    let compression = sniff(magic);
    wrap(input, compression, path, None)
}
