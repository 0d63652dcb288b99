//! The content-addressed store (docs/images.md, "The store"):
//!
//! ```text
//! ROOT/blobs/sha256/<hex>          verified blobs (renamed in only after the digest matched)
//! ROOT/ingest/                     blobs being written (temp files)
//! ROOT/layers/sha256/<hex>/        an unpacked layer by diff_id: root/ (overlay form), layer.json
//! ROOT/refs/<escaped reference>    named images → manifest digest (JSON)
//! ROOT/tar-roots/<hex>.json        `tar` roots: the archive's identity → its layer
//! ROOT/sources/<hex>.json          imported archives (OCI layout tar, docker-archive): identity → ref
//! ROOT/used/<hex>                  a layer's last use (mtime), touched by [`Store::hold`]
//! ROOT/locks/                      flock files: `store`, `blob-<hex>`, `layer-<hex>`, `tar-<hex>`
//! ROOT/tmp/                        layers being unpacked
//! ```
//!
//! Writers (imports, unpacks) hold `locks/store` shared; `prune` and `rmi` hold it
//! exclusive, so a collection never sees a blob that an import wrote but has not referenced
//! yet. Everything under `ingest/` and `tmp/` is a leftover once nobody holds `locks/store`:
//! opening the store removes them then, except a pull's `ingest/sha256-<hex>.partial` (and its
//! `.lock`): `launch-registry` does not take `locks/store`, and an interrupted pull resumes
//! from its partial file. `launch prune` removes those too.

mod blob;
mod gc;
mod layer;
mod lock;
mod refs;
mod sources;
mod tarroot;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use gc::{ImageInfo, Pruned};
pub use layer::{LayerDir, LayerInfo};
pub use lock::{Hold, StoreLock};
pub use refs::{RefRecord, escape_reference};
pub use tarroot::{Identity, TarRoot, TarRootHit};

use super::{Digest, ImageError, ImageResult, MAX_JSON};
use crate::error::SysError;
use lock::Lock;

/// The store directories, created 0700 when missing.
const DIRS: [&str; 10] = [
    "blobs",
    "blobs/sha256",
    "ingest",
    "layers",
    "layers/sha256",
    "refs",
    "tar-roots",
    "sources",
    "used",
    "locks",
];

/// An opened store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    /// Running as root: layers keep their owners and devices, opaque directories get the
    /// `trusted.` xattr too.
    privileged: bool,
    /// Asked between entries of every unpack (see [`Store::with_cancel`]).
    cancelled: Option<fn() -> bool>,
}

impl Store {
    /// Where the store is: `$LAUNCH_STORE`, else `/var/lib/launch` for root, else
    /// `$XDG_DATA_HOME/launch` (`~/.local/share/launch`).
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("LAUNCH_STORE").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/launch");
        }
        if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(d).join("launch");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
        PathBuf::from(home).join(".local/share/launch")
    }

    /// Open the existing store at `root` to use what is in it (a run holding its layers): the
    /// root must be the caller's and private, as for [`Store::open`], which has already made
    /// its directories and removed leftovers when the image was resolved.
    pub fn open_existing(root: &Path) -> ImageResult<Store> {
        check_root(root)?;
        Ok(Store {
            root: root.to_path_buf(),
            privileged: nix::unistd::geteuid().is_root(),
            cancelled: None,
        })
    }

    /// Open the store at [`Store::default_root`].
    pub fn open_default() -> ImageResult<Store> {
        Store::open(&Store::default_root())
    }

    /// Open (creating it if needed) the store at `root`. The root must be a directory of the
    /// caller's that no one else can write. Leftovers of writers that died are removed when no
    /// writer is running.
    pub fn open(root: &Path) -> ImageResult<Store> {
        if !root.is_dir() {
            mkdir_p(root)?;
        }
        check_root(root)?;
        // `tmp` is made last: when it is there, so is the rest (one lookup instead of twenty
        // calls at every start of an image root).
        if !root.join("tmp").is_dir() {
            for d in DIRS {
                mkdir(&root.join(d))?;
            }
            mkdir(&root.join("tmp"))?;
        }
        let store = Store {
            root: root.to_path_buf(),
            privileged: nix::unistd::geteuid().is_root(),
            cancelled: None,
        };
        if let Some(_all) = store.lock_store(Lock::TryExclusive)? {
            store.clean_leftovers(false)?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a verified blob is (it may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the store has the blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Take `locks/store` shared for the lifetime of the guard: what a writer (import, pull,
    /// unpack) holds so that `prune` and `rmi` wait for it.
    pub fn write_lock(&self) -> ImageResult<StoreLock> {
        self.lock_store(Lock::Shared)?
            .ok_or_else(|| SysError::other("flock", Some(self.lock_path("store")), "not taken"))
            .map_err(ImageError::from)
    }

    fn lock_store(&self, how: Lock) -> ImageResult<Option<StoreLock>> {
        Ok(lock::take(&self.lock_path("store"), how)?.map(|l| StoreLock { _lock: l }))
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(name)
    }

    /// A blob read whole, bounded by [`MAX_JSON`]: manifests, indexes, configs.
    pub fn read_json_blob(&self, digest: &Digest) -> ImageResult<Vec<u8>> {
        read_bounded(&self.blob_path(digest), MAX_JSON)
    }

    /// Remove what interrupted writers left in `ingest/` and `tmp/` (call with `locks/store`
    /// exclusive). A pull's files (`ingest/sha256-<hex>.partial`, the download an interrupted
    /// pull resumes with Range, and its `.lock`) are removed only by a collection (`all`):
    /// `launch-registry` does not take `locks/store`, and a pull must resume after any open.
    fn clean_leftovers(&self, all: bool) -> ImageResult<u64> {
        let mut freed = 0;
        for dir in ["ingest", "tmp"] {
            let dir = self.root.join(dir);
            let rd = std::fs::read_dir(&dir)
                .map_err(|e| SysError::io("opendir", Some(dir.clone()), &e))?;
            for entry in rd.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let pulls = name.starts_with("sha256-")
                    && (name.ends_with(".partial") || name.ends_with(".lock"));
                if pulls && !all {
                    continue;
                }
                freed += remove_tree(&entry.path())?;
            }
        }
        Ok(freed)
    }

    /// A new, unique directory under `tmp/` named after `tag`.
    fn tmp_dir(&self, tag: &str) -> ImageResult<PathBuf> {
        let path = self.root.join("tmp").join(unique(tag));
        mkdir(&path)?;
        Ok(path)
    }
}

/// `tag.PID.N`: unique among the store's writers.
fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{tag}.{}.{n}.{nanos:x}", std::process::id())
}

/// mkdir(2) 0700; an existing directory is fine.
fn mkdir(path: &Path) -> ImageResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(SysError::io("mkdir", Some(path.to_path_buf()), &e)
            .args("0700")
            .into()),
    }
}

/// The store root is input: a directory of the caller's that no one else can write.
fn check_root(root: &Path) -> ImageResult<()> {
    crate::exec::state::check_private_dir(
        root,
        "check store root",
        "since another user could have planted images in it; remove it, or set LAUNCH_STORE to \
         a directory only you can write",
    )?;
    Ok(())
}

/// `mkdir -p` with 0700 for the directories made.
fn mkdir_p(path: &Path) -> ImageResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(path)
        .map_err(|e| {
            SysError::io("mkdir -p", Some(path.to_path_buf()), &e)
                .args("0700")
                .into()
        })
}

/// Read a whole file of at most `max` bytes (never through a symlink).
pub(crate) fn read_bounded(path: &Path, max: u64) -> ImageResult<Vec<u8>> {
    let file = open_nofollow(path)?;
    read_all_bounded(file, max, path)
}

/// Read a whole stream of at most `max` bytes.
pub(crate) fn read_all_bounded(r: impl Read, max: u64, path: &Path) -> ImageResult<Vec<u8>> {
    let mut out = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| SysError::io("read", Some(path.to_path_buf()), &e))?;
    if out.len() as u64 > max {
        return Err(ImageError::invalid(
            path,
            format!("larger than {max} bytes: not an image document"),
            "image indexes, manifests and configs are small JSON documents",
        ));
    }
    Ok(out)
}

/// open(2) O_RDONLY|O_NOFOLLOW|O_CLOEXEC.
pub(crate) fn open_nofollow(path: &Path) -> ImageResult<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            SysError::io("open", Some(path.to_path_buf()), &e)
                .args("O_RDONLY|O_NOFOLLOW")
                .into()
        })
}

/// Write `bytes` to `path` atomically: a temp file beside it, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> ImageResult<()> {
    use std::io::Write;
    // `.tmp.PID.N.NANOS`: hidden, unique, and short whatever the final name's length.
    let tmp = path.with_file_name(format!(".{}", unique("tmp")));
    let io = |op: &str, p: &Path, e: std::io::Error| SysError::io(op, Some(p.to_path_buf()), &e);
    let write = || -> ImageResult<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io("open", &tmp, e).args("O_WRONLY|O_CREAT|O_EXCL"))?;
        f.write_all(bytes).map_err(|e| io("write", &tmp, e))?;
        f.sync_all().map_err(|e| io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| io("rename", &tmp, e).args(path.display().to_string()))?;
        fsync_parent(path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// fsync(2) the directory holding `path`: a rename is durable only once its directory is.
pub(crate) fn fsync_parent(path: &Path) -> ImageResult<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SysError::io("fsync", Some(dir.to_path_buf()), &e).into())
}

/// Remove a file or a whole tree, even one with read-only directories (an unprivileged store's
/// layers keep their modes). Returns the bytes of the regular files removed.
pub(crate) fn remove_tree(path: &Path) -> ImageResult<u64> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(SysError::io("lstat", Some(path.to_path_buf()), &e).into()),
    };
    if !md.is_dir() {
        std::fs::remove_file(path)
            .map_err(|e| SysError::io("unlink", Some(path.to_path_buf()), &e))?;
        return Ok(if md.is_file() { md.size() } else { 0 });
    }
    if md.mode() & 0o700 != 0o700 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| SysError::io("chmod", Some(path.to_path_buf()), &e).args("0700"))?;
    }
    let mut bytes = 0;
    let rd = std::fs::read_dir(path).map_err(|e| SysError::io("opendir", Some(path.into()), &e))?;
    for entry in rd {
        let entry = entry.map_err(|e| SysError::io("readdir", Some(path.into()), &e))?;
        bytes += remove_tree(&entry.path())?;
    }
    std::fs::remove_dir(path).map_err(|e| SysError::io("rmdir", Some(path.to_path_buf()), &e))?;
    Ok(bytes)
}
