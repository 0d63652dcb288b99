//! Blobs in: streamed into `ingest/`, hashed while they stream, renamed into `blobs/sha256/`
//! only once the digest is known good. A source's names are never trusted: what is stored is
//! named by the hash of what was read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::lock::{Lock, take};
use super::{ImageResult, Store, unique};
use crate::error::SysError;
use crate::image::{Digest, ImageError};
use crate::sys::tar::HashState;

/// Bytes copied per read.
const CHUNK: usize = 256 * 1024;

impl Store {
    /// Store the blob `expected` from `reader` (`what` names it in errors), verifying its digest
    /// while it streams; returns its size and whether this call stored it (false: the store had
    /// it already, and `reader` was not read). Concurrent ingests of one blob share it: the
    /// second waits for the first and then finds it.
    pub fn ingest(
        &self,
        expected: &Digest,
        reader: impl Read,
        what: &str,
    ) -> ImageResult<(u64, bool)> {
        if let Some(size) = self.blob_size(expected) {
            return Ok((size, false));
        }
        let _lock = take(
            &self.lock_path(&format!("blob-{}", expected.hex())),
            Lock::Exclusive,
        )?;
        if let Some(size) = self.blob_size(expected) {
            return Ok((size, false));
        }
        let tmp = self.root.join("ingest").join(unique(expected.hex()));
        let result = copy_hashed(reader, &tmp, what, self.cancelled).and_then(|(got, size)| {
            if got != *expected {
                return Err(ImageError::DigestMismatch {
                    what: what.to_owned(),
                    want: expected.to_string(),
                    got: got.to_string(),
                });
            }
            self.rename_in(&tmp, expected)?;
            Ok(size)
        });
        match result {
            Ok(size) => Ok((size, true)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Store a blob whose digest is not known beforehand (a `docker save` layer): it is named by
    /// the hash of what was read. Returns the digest, the size and whether this call stored it.
    pub fn ingest_any(&self, reader: impl Read, what: &str) -> ImageResult<(Digest, u64, bool)> {
        let tmp = self.root.join("ingest").join(unique("any"));
        let result = copy_hashed(reader, &tmp, what, self.cancelled).and_then(|(digest, size)| {
            if self.has_blob(&digest) {
                let _ = std::fs::remove_file(&tmp);
                return Ok((digest, size, false));
            }
            self.rename_in(&tmp, &digest)?;
            Ok((digest, size, true))
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Store `bytes` (a manifest the store wrote itself); returns their digest.
    pub fn put_bytes(&self, bytes: &[u8], what: &str) -> ImageResult<Digest> {
        let digest = Digest::of(bytes);
        self.ingest(&digest, bytes, what)?;
        Ok(digest)
    }

    /// The size of a stored blob, if the store has it.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        std::fs::symlink_metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    fn rename_in(&self, tmp: &Path, digest: &Digest) -> ImageResult<()> {
        let dest = self.blob_path(digest);
        std::fs::rename(tmp, &dest).map_err(|e| {
            SysError::io("rename", Some(tmp.to_path_buf()), &e).args(dest.display().to_string())
        })?;
        super::fsync_parent(&dest)
    }
}

/// Copy `reader` into a new file `tmp` (fsynced), hashing it; `cancelled` is asked between
/// chunks (the caller removes `tmp` on any error).
fn copy_hashed(
    mut reader: impl Read,
    tmp: &PathBuf,
    what: &str,
    cancelled: Option<fn() -> bool>,
) -> ImageResult<(Digest, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(tmp)
        .map_err(|e| SysError::io("open", Some(tmp.clone()), &e).args("O_WRONLY|O_CREAT|O_EXCL"))?;
    let mut hash = HashState::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        if cancelled.is_some_and(|c| c()) {
            let err = SysError::other("cancel", Some(tmp.clone()), "cancelled").args(what);
            return Err(err.into());
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let err = SysError::io("read", None, &e).args(what.to_owned());
                return Err(err.into());
            }
        };
        hash.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| SysError::io("write", Some(tmp.clone()), &e))?;
    }
    file.sync_all()
        .map_err(|e| SysError::io("fsync", Some(tmp.clone()), &e))?;
    let (digest, size) = hash.result();
    let digest = Digest::parse(&digest).map_err(|e| SysError::other("sha256", None, e))?;
    Ok((digest, size))
}
