//! `tar` roots (`docker export` tarballs) through the store: extracted once into a layer, and
//! reused while the archive is unchanged.
//!
//! `tar-roots/<sha256 of the archive's absolute path>.json` records the archive's identity when
//! it was read (size, mtime, ctime, inode, device, all taken *before* reading, so a change during
//! the read shows as a change next time) and the digest of its bytes. A start whose archive
//! still has that identity uses the layer without opening the archive. Any difference (a write,
//! `touch`, a restored mtime — which still moves ctime —, a replacement by rename) makes the
//! archive be hashed again; only a different digest extracts it again.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lock::{Lock, take};
use super::{ImageResult, LayerDir, Store, open_nofollow, read_bounded, remove_tree, write_atomic};
use crate::error::SysError;
use crate::image::{Digest, ImageError};
use crate::sys::tar::HashState;

/// What identifies a file's content without reading it: size, mtime, ctime, inode, device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
}

/// `tar-roots/<key>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    path: PathBuf,
    identity: Identity,
    /// The archive's bytes.
    digest: Digest,
    /// Its uncompressed tar stream: the layer.
    diff_id: Digest,
}

/// How a `tar` root was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarRootHit {
    /// The archive is unchanged: it was not opened.
    Cached,
    /// Its metadata changed but its content did not: it was hashed, not extracted.
    Rehashed,
    /// It was extracted (first use, or new content).
    Extracted,
}

/// A `tar` root in the store.
#[derive(Debug, Clone)]
pub struct TarRoot {
    /// The layer's diff_id (hold it with [`Store::hold`] while a container uses it).
    pub diff_id: Digest,
    /// The digest of the archive's bytes.
    pub digest: Digest,
    /// The extracted tree.
    pub layer: LayerDir,
    /// Whether the archive was read.
    pub hit: TarRootHit,
}

impl Store {
    /// The store's layer for the `docker export` tarball `archive` (tar, tar+gzip or tar+zstd),
    /// extracting it only when it is new or its content changed. `max_bytes` bounds the file
    /// content written (`[rootfs] max_size`); a layer already in the store that holds more is
    /// refused too.
    pub fn cached_tar_root(&self, archive: &Path, max_bytes: Option<u64>) -> ImageResult<TarRoot> {
        self.cached_tar_root_with(archive, max_bytes, &mut crate::image::progress::Quiet)
    }

    /// [`Store::cached_tar_root`], reporting an extraction to `progress` (a cached or rehashed
    /// archive reports nothing).
    pub fn cached_tar_root_with(
        &self,
        archive: &Path,
        max_bytes: Option<u64>,
        progress: &mut dyn crate::image::progress::Unpacking,
    ) -> ImageResult<TarRoot> {
        let root = self.cached_tar_root_unbounded(archive, max_bytes, progress)?;
        match max_bytes {
            Some(max) if root.layer.info.bytes > max => Err(ImageError::invalid(
                archive,
                format!(
                    "expands to {} bytes of files, more than max_size ({max} bytes)",
                    root.layer.info.bytes
                ),
                "raise `max_size`, or use a smaller archive",
            )),
            Some(_) | None => Ok(root),
        }
    }

    fn cached_tar_root_unbounded(
        &self,
        archive: &Path,
        max_bytes: Option<u64>,
        progress: &mut dyn crate::image::progress::Unpacking,
    ) -> ImageResult<TarRoot> {
        let abs = std::path::absolute(archive)
            .map_err(|e| SysError::io("absolute path", Some(archive.to_path_buf()), &e))?;
        let key = Digest::of(abs.as_os_str().as_bytes());
        let record_path = self
            .root
            .join("tar-roots")
            .join(format!("{}.json", key.hex()));
        if let Some(hit) = self.unchanged(&abs, &record_path)? {
            return Ok(hit);
        }
        let _writer = self.write_lock()?;
        let _lock = take(
            &self.lock_path(&format!("tar-{}", key.hex())),
            Lock::Exclusive,
        )?;
        if let Some(hit) = self.unchanged(&abs, &record_path)? {
            return Ok(hit); // another process extracted it meanwhile
        }
        let id = identity(&abs)?;
        let old = read_record(&record_path);
        if let Some(old) = old.filter(|r| r.path == abs) {
            if let Some(layer) = self.layer(&old.diff_id)? {
                let digest = hash_file(&abs)?;
                if digest == old.digest {
                    let record = Record {
                        identity: id,
                        ..old
                    };
                    write_record(&record_path, &record)?;
                    return Ok(TarRoot {
                        diff_id: record.diff_id,
                        digest: record.digest,
                        layer,
                        hit: TarRootHit::Rehashed,
                    });
                }
            }
        }
        progress.archive_start(&abs, id.size);
        let mut report = |done| progress.layer_progress(&key, done, id.size);
        let extracted = self.extract_tmp(
            &abs,
            &format!("tar-{}", key.hex()),
            false,
            max_bytes,
            &mut report,
        );
        let (tmp, unpacked) = extracted.inspect_err(|_| progress.layer_failed())?;
        let parse = |s: &str| Digest::parse(s).map_err(|e| SysError::other("sha256", None, e));
        let (digest, diff_id) = match (parse(&unpacked.digest), parse(&unpacked.diff_id)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                remove_tree(&tmp)?;
                return Err(e.into());
            }
        };
        let layer = {
            let _layer_lock = take(
                &self.lock_path(&format!("layer-{}", diff_id.hex())),
                Lock::Exclusive,
            )?;
            match self.layer(&diff_id)? {
                Some(existing) => {
                    remove_tree(&tmp)?;
                    existing
                }
                None => self.install(&tmp, &diff_id, None, &unpacked)?,
            }
        };
        let record = Record {
            path: abs,
            identity: id,
            digest: digest.clone(),
            diff_id: diff_id.clone(),
        };
        write_record(&record_path, &record)?;
        progress.layer_done(&diff_id, &layer.info);
        Ok(TarRoot {
            diff_id,
            digest,
            layer,
            hit: TarRootHit::Extracted,
        })
    }

    /// The cached root, if the archive's identity is the recorded one and its layer is there.
    fn unchanged(&self, abs: &Path, record_path: &Path) -> ImageResult<Option<TarRoot>> {
        let Some(record) = read_record(record_path).filter(|r| r.path == abs) else {
            return Ok(None);
        };
        if identity(abs)? != record.identity {
            return Ok(None);
        }
        Ok(self.layer(&record.diff_id)?.map(|layer| TarRoot {
            diff_id: record.diff_id,
            digest: record.digest,
            layer,
            hit: TarRootHit::Cached,
        }))
    }

    /// The layers `tar` roots use.
    pub(super) fn tar_root_layers(&self) -> ImageResult<Vec<Digest>> {
        Ok(self
            .tar_records()?
            .into_iter()
            .map(|(_, r)| r.diff_id)
            .collect())
    }

    /// Remove the records of archives that no longer exist; returns their paths.
    pub(super) fn drop_stale_tar_roots(&self) -> ImageResult<Vec<String>> {
        let mut dropped = Vec::new();
        for (path, record) in self.tar_records()? {
            if std::fs::symlink_metadata(&record.path).is_err() {
                remove_tree(&path)?;
                dropped.push(record.path.display().to_string());
            }
        }
        Ok(dropped)
    }

    fn tar_records(&self) -> ImageResult<Vec<(PathBuf, Record)>> {
        let dir = self.root.join("tar-roots");
        let rd = std::fs::read_dir(&dir).map_err(|e| SysError::io("opendir", Some(dir), &e))?;
        Ok(rd
            .flatten()
            .filter_map(|e| read_record(&e.path()).map(|r| (e.path(), r)))
            .collect())
    }
}

/// The archive's identity (lstat: a symlink is refused, as extraction refuses it).
pub(crate) fn identity(path: &Path) -> ImageResult<Identity> {
    let md = std::fs::symlink_metadata(path)
        .map_err(|e| SysError::io("lstat", Some(path.to_path_buf()), &e))?;
    if !md.is_file() {
        return Err(ImageError::invalid(
            path,
            "is not a regular file (a symlink, a directory or a device)",
            "name the archive file itself",
        ));
    }
    Ok(Identity {
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        ctime: (md.ctime(), md.ctime_nsec()),
        ino: md.ino(),
        dev: md.dev(),
    })
}

fn read_record(path: &Path) -> Option<Record> {
    let bytes = read_bounded(path, 64 << 10).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_record(path: &Path, record: &Record) -> ImageResult<()> {
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| SysError::other("serialize", Some(path.to_path_buf()), e.to_string()))?;
    write_atomic(path, &json)
}

/// The digest of a file's bytes.
fn hash_file(path: &Path) -> ImageResult<Digest> {
    use std::io::Read;
    let mut file = open_nofollow(path)?;
    let mut hash = HashState::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hash.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SysError::io("read", Some(path.to_path_buf()), &e).into()),
        }
    }
    Digest::parse(&hash.result().0).map_err(|e| SysError::other("sha256", None, e).into())
}
