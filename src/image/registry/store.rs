//! The part of the image store a pull writes (the contract the store module reads):
//!
//! ```text
//! ROOT/                         0700, owned by the caller, writable by no one else
//!   blobs/sha256/<64 hex>       verified blobs (layers, configs, manifests, indexes), 0644
//!   ingest/sha256-<hex>.partial a download in progress or interrupted (resumed with Range)
//!   ingest/sha256-<hex>.lock    flock(2)ed while that blob is downloaded
//!   refs/<escaped reference>    JSON {reference, digest, index_digest?, platform}
//! ```
//!
//! A blob reaches `blobs/` only by rename(2) after its digest matched, so a reader never sees
//! half a blob; a ref is written (temp + rename) only after every blob it names is there.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::SysError;
use crate::image::reference::{Digest, Reference};

use super::error::PullError;

/// The store's root: `$LAUNCH_STORE`, else `/var/lib/launch` for root, else
/// `$XDG_DATA_HOME/launch` (`~/.local/share/launch`).
pub fn default_root() -> PathBuf {
    crate::image::store::Store::default_root()
}

/// What `refs/<escaped reference>` holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefRecord {
    /// The normalised reference (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The image manifest's digest (after platform selection).
    pub digest: String,
    /// The index's digest when the reference named an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    /// The platform of the image (`linux/amd64`).
    pub platform: String,
}

/// An opened, checked store root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io(op: &str, path: &Path, e: &std::io::Error) -> PullError {
    PullError::Store(SysError::io(op, Some(path.to_path_buf()), e))
}

fn mkdir_private(dir: &Path) -> Result<(), PullError> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("mkdir", dir, &e)),
    }
}

impl Store {
    /// Create (0700) and check the root and its directories.
    pub fn open(root: &Path) -> Result<Store, PullError> {
        if !root.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(|e| io("mkdir -p", root, &e))?;
        }
        crate::exec::state::check_private_dir(
            root,
            "check image store",
            "since another user could have planted blobs in it; remove it, or set \
             LAUNCH_STORE to a directory only you can write",
        )
        .map_err(PullError::Store)?;
        for d in ["blobs", "blobs/sha256", "ingest", "refs"] {
            mkdir_private(&root.join(d))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a verified blob lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Where a download of `d` in progress keeps its bytes.
    pub fn partial_path(&self, d: &Digest) -> PathBuf {
        self.root.join(format!("ingest/sha256-{}.partial", d.hex()))
    }

    /// Whether a verified blob of `size` bytes is there.
    pub fn has_blob(&self, d: &Digest, size: u64) -> bool {
        std::fs::metadata(self.blob_path(d)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Lock `d`'s download against other pulls (released on drop).
    pub fn lock_blob(&self, d: &Digest) -> Result<Flock<File>, PullError> {
        let path = self.root.join(format!("ingest/sha256-{}.lock", d.hex()));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io("open", &path, &e))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| {
            PullError::Store(SysError::new("flock", Some(path.clone()), e).args("LOCK_EX"))
        })
    }

    /// Move a finished, verified partial file into `blobs/` (0644).
    pub fn commit(&self, partial: &Path, d: &Digest) -> Result<(), PullError> {
        std::fs::set_permissions(partial, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io("chmod 0644", partial, &e))?;
        let dest = self.blob_path(d);
        std::fs::rename(partial, &dest).map_err(|e| io("rename", &dest, &e))
    }

    /// Store small verified bytes (a manifest) as a blob.
    pub fn put(&self, d: &Digest, bytes: &[u8]) -> Result<(), PullError> {
        if self.has_blob(d, bytes.len() as u64) {
            return Ok(());
        }
        let tmp = self.root.join(format!(
            "ingest/sha256-{}.{}.tmp",
            d.hex(),
            std::process::id()
        ));
        write_file(&tmp, bytes, 0o644)?;
        let dest = self.blob_path(d);
        std::fs::rename(&tmp, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("rename", &dest, &e)
        })
    }

    /// Record that `r` was pulled (temp + rename).
    pub fn write_ref(&self, r: &Reference, record: &RefRecord) -> Result<PathBuf, PullError> {
        let dest = self.root.join("refs").join(r.escaped());
        let tmp =
            self.root
                .join("refs")
                .join(format!(".{}.{}.tmp", r.escaped(), std::process::id()));
        let text = serde_json::to_string_pretty(record).map_err(|e| {
            PullError::Store(SysError::other(
                "serialize",
                Some(dest.clone()),
                e.to_string(),
            ))
        })? + "\n";
        write_file(&tmp, text.as_bytes(), 0o644)?;
        std::fs::rename(&tmp, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("rename", &dest, &e)
        })?;
        Ok(dest)
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PullError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| io("open", path, &e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io("write", path, &e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io("chmod", path, &e))
}
