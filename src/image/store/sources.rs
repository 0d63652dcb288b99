//! Imported archive files (an OCI layout tar, a `docker save` file) remembered by identity:
//! `sources/<sha256 of path and options>.json` records the file's identity (taken before it was
//! read) and the reference it was imported as, so a start from an unchanged archive does not read
//! it again. The records keep nothing alive (the reference does); `prune` drops those whose file
//! is gone.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tarroot::{Identity, identity};
use super::{ImageResult, RefRecord, Store, read_bounded, remove_tree, write_atomic};
use crate::error::SysError;
use crate::image::Digest;

/// `sources/<key>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    path: PathBuf,
    options: String,
    identity: Identity,
    reference: String,
    digest: Digest,
}

impl Store {
    fn source_path(&self, abs: &Path, options: &str) -> PathBuf {
        let mut key = abs.as_os_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(options.as_bytes());
        let name = format!("{}.json", Digest::of(&key).hex());
        self.root.join("sources").join(name)
    }

    /// The reference `path` was imported as with `options` (the import's kind and settings), if
    /// the file still has the identity it had then and the reference still names that image.
    /// Reads only the file's metadata. Returns the identity to record after a new import.
    pub fn source_unchanged(
        &self,
        path: &Path,
        options: &str,
    ) -> ImageResult<(Option<RefRecord>, Identity)> {
        let abs = absolute(path)?;
        let now = identity(&abs)?;
        let Some(rec) = read(&self.source_path(&abs, options)) else {
            return Ok((None, now));
        };
        if rec.path != abs || rec.options != options || rec.identity != now {
            return Ok((None, now));
        }
        let current = self.read_ref(&rec.reference)?;
        Ok((current.filter(|r| r.digest == rec.digest), now))
    }

    /// Remember that `path` (with `identity`, taken before it was read) was imported as
    /// `record`.
    pub fn record_source(
        &self,
        path: &Path,
        options: &str,
        identity: Identity,
        record: &RefRecord,
    ) -> ImageResult<()> {
        let abs = absolute(path)?;
        let rec = Record {
            path: abs.clone(),
            options: options.to_owned(),
            identity,
            reference: record.reference.clone(),
            digest: record.digest.clone(),
        };
        let target = self.source_path(&abs, options);
        let json = serde_json::to_vec_pretty(&rec)
            .map_err(|e| SysError::other("serialize", Some(target.clone()), e.to_string()))?;
        write_atomic(&target, &json)
    }

    /// Remove the records of files that no longer exist.
    pub(super) fn drop_stale_sources(&self) -> ImageResult<()> {
        let dir = self.root.join("sources");
        let rd = std::fs::read_dir(&dir).map_err(|e| SysError::io("opendir", Some(dir), &e))?;
        for entry in rd.flatten() {
            let gone =
                read(&entry.path()).is_none_or(|r| std::fs::symlink_metadata(&r.path).is_err());
            if gone {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

fn absolute(path: &Path) -> ImageResult<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| SysError::io("absolute path", Some(path.to_path_buf()), &e).into())
}

fn read(path: &Path) -> Option<Record> {
    serde_json::from_slice(&read_bounded(path, 64 << 10).ok()?).ok()
}
