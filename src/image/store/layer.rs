//! Layers unpacked by diff_id: `layers/sha256/<hex>/root/` is the layer's tree in overlay form
//! (whiteout devices, opaque xattrs), `layer.json` what was unpacked. A layer is unpacked under
//! `tmp/`, its layer.json written last, the filesystem synced, and the directory renamed into
//! place: a layer directory exists complete or not at all, and a crash leaves only `tmp/`
//! leftovers, which no reader trusts and the next open of the store removes.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lock::{Lock, take};
use super::{ImageResult, Store, mkdir, read_bounded, remove_tree, write_atomic};
use crate::error::SysError;
use crate::image::progress::{Quiet, Unpacking};
use crate::image::{Digest, ImageError};
use crate::sys::tar::{ExtractOptions, Unpacked, extract_layer_with};

/// The version of `layer.json`'s format.
const LAYER_FORMAT: u32 = 1;

/// `layer.json`: what an unpacked layer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// [`LAYER_FORMAT`].
    pub format: u32,
    /// The uncompressed tar's digest: the layer's name.
    pub diff_id: Digest,
    /// The blob it was unpacked from (none for a `tar` root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<Digest>,
    /// The uncompressed tar's size.
    pub tar_size: u64,
    /// Bytes of regular-file content.
    pub bytes: u64,
    /// Entries made.
    pub entries: u64,
    /// Whiteout devices made.
    pub whiteouts: u64,
    /// Device entries skipped (an unprivileged store cannot create them).
    pub skipped_devices: u64,
    /// Unpacked with the archive's owners (by root) or all owned by the store's user.
    pub owners_kept: bool,
    /// Unix time of the unpack.
    pub unpacked: u64,
}

/// A complete unpacked layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDir {
    /// Its diff_id.
    pub diff_id: Digest,
    /// The directory to give overlayfs as a lower layer.
    pub root: PathBuf,
    /// Its layer.json.
    pub info: LayerInfo,
}

impl Store {
    /// `layers/sha256/<hex>`.
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers/sha256").join(diff_id.hex())
    }

    /// The layer, if it is unpacked and complete (its layer.json names it).
    pub fn layer(&self, diff_id: &Digest) -> ImageResult<Option<LayerDir>> {
        let dir = self.layer_path(diff_id);
        let json = dir.join("layer.json");
        if !json.is_file() {
            return Ok(None);
        }
        let bytes = read_bounded(&json, 64 << 10)?;
        let info: LayerInfo = match serde_json::from_slice(&bytes) {
            Ok(i) => i,
            Err(_) => return Ok(None),
        };
        if info.diff_id != *diff_id || info.format != LAYER_FORMAT {
            return Ok(None);
        }
        Ok(Some(LayerDir {
            diff_id: diff_id.clone(),
            root: dir.join("root"),
            info,
        }))
    }

    /// Unpack the stored blob `blob` as the layer `diff_id`, once: a layer already unpacked is
    /// returned as it is, and concurrent unpacks of one layer (threads or processes) share one
    /// (the others wait for it). Both digests are checked against the bytes read; on a mismatch
    /// or any error nothing of the unpack is kept.
    pub fn unpack_layer(&self, blob: &Digest, diff_id: &Digest) -> ImageResult<LayerDir> {
        self.unpack_layer_with(blob, diff_id, (1, 1), &mut Quiet)
    }

    /// [`Store::unpack_layer`], reporting to `progress` as layer `nth.0` of `nth.1` (a layer
    /// found unpacked reports nothing).
    pub fn unpack_layer_with(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        nth: (usize, usize),
        progress: &mut dyn Unpacking,
    ) -> ImageResult<LayerDir> {
        if let Some(done) = self.layer(diff_id)? {
            return Ok(done);
        }
        let _writer = self.write_lock()?;
        let _lock = take(
            &self.lock_path(&format!("layer-{}", diff_id.hex())),
            Lock::Exclusive,
        )?;
        if let Some(done) = self.layer(diff_id)? {
            return Ok(done);
        }
        let path = self.blob_path(blob);
        if !self.has_blob(blob) {
            return Err(ImageError::Unknown(format!("blob {blob}")));
        }
        let size = self.blob_size(blob).unwrap_or(0);
        progress.layer_start(nth, diff_id, size);
        let mut report = |done| progress.layer_progress(diff_id, done, size);
        let extracted = self.extract_tmp(&path, diff_id.hex(), true, None, &mut report);
        let (tmp, unpacked) = extracted.inspect_err(|_| progress.layer_failed())?;
        let checks = [
            (&unpacked.digest, blob, format!("layer blob {blob}")),
            (
                &unpacked.diff_id,
                diff_id,
                format!("the uncompressed layer of blob {blob} (diff_id)"),
            ),
        ];
        for (got, want, what) in checks {
            if got != want.as_str() {
                progress.layer_failed();
                remove_tree(&tmp)?;
                return Err(ImageError::DigestMismatch {
                    what,
                    want: want.to_string(),
                    got: got.clone(),
                });
            }
        }
        let layer = self
            .install(&tmp, diff_id, Some(blob), &unpacked)
            .inspect_err(|_| progress.layer_failed())?;
        progress.layer_done(diff_id, &layer.info);
        Ok(layer)
    }

    /// Extract `source` into a new `tmp/<tag>.*/root`, writing at most `max_bytes` of file
    /// content; on error (a cancel too) the directory is removed. `progress` hears the bytes of
    /// `source` read, between entries.
    pub(super) fn extract_tmp(
        &self,
        source: &Path,
        tag: &str,
        whiteouts: bool,
        max_bytes: Option<u64>,
        progress: &mut dyn FnMut(u64),
    ) -> ImageResult<(PathBuf, Unpacked)> {
        let tmp = self.tmp_dir(tag)?;
        let root = tmp.join("root");
        // 0755, as a layer without a `./` entry must not make the merged root private (the
        // topmost layer's directory attributes are the merged directory's).
        let result = mkdir(&root).and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| SysError::io("chmod", Some(root.clone()), &e).args("0755"))?;
            let opts = ExtractOptions {
                privileged: self.privileged,
                owners: None,
                cancelled: self.cancelled,
                max_bytes,
            };
            Ok(extract_layer_with(
                source, &root, &opts, whiteouts, progress,
            )?)
        });
        match result {
            Ok(u) => Ok((tmp, u)),
            Err(e) => {
                remove_tree(&tmp)?;
                Err(e)
            }
        }
    }

    /// Write `tmp`'s layer.json, sync, and rename it into place as the layer `diff_id` (the
    /// caller holds the layer's lock and found no complete layer there).
    pub(super) fn install(
        &self,
        tmp: &Path,
        diff_id: &Digest,
        blob: Option<&Digest>,
        u: &Unpacked,
    ) -> ImageResult<LayerDir> {
        let info = LayerInfo {
            format: LAYER_FORMAT,
            diff_id: diff_id.clone(),
            blob: blob.cloned(),
            tar_size: u.tar_size,
            bytes: u.stats.bytes,
            entries: u.stats.entries,
            whiteouts: u.whiteouts,
            skipped_devices: u.stats.skipped_devices,
            owners_kept: self.privileged,
            unpacked: now(),
        };
        let dest = self.layer_path(diff_id);
        let done = (|| -> ImageResult<LayerDir> {
            let json = serde_json::to_vec_pretty(&info).map_err(|e| {
                SysError::other("serialize", Some(tmp.join("layer.json")), e.to_string())
            })?;
            write_atomic(&tmp.join("layer.json"), &json)?;
            syncfs(tmp)?;
            // A directory without a layer.json is a leftover of something no reader trusted.
            remove_tree(&dest)?;
            std::fs::rename(tmp, &dest).map_err(|e| {
                SysError::io("rename", Some(tmp.to_path_buf()), &e).args(dest.display().to_string())
            })?;
            super::fsync_parent(&dest)?;
            Ok(LayerDir {
                diff_id: diff_id.clone(),
                root: dest.join("root"),
                info,
            })
        })();
        if done.is_err() {
            let _ = remove_tree(tmp);
        }
        done
    }

    /// Ask `cancelled` between entries of every unpack, between layers, and between chunks of
    /// every blob stored from a local source (Ctrl-C while an image is brought in): a cancelled
    /// unpack or import fails and leaves nothing the store trusts (its temporary files are
    /// removed).
    pub fn with_cancel(mut self, cancelled: fn() -> bool) -> Store {
        self.cancelled = Some(cancelled);
        self
    }

    /// Whether the unpack or import under way was cancelled.
    pub(super) fn is_cancelled(&self) -> bool {
        self.cancelled.is_some_and(|c| c())
    }

    /// The error a cancelled unpack or import stops with.
    pub(super) fn cancelled_error(&self, what: &str) -> ImageError {
        SysError::other(
            "cancel",
            Some(self.root.clone()),
            format!("{what}: cancelled"),
        )
        .into()
    }
}

/// syncfs(2) on the filesystem holding `path`: the unpacked files reach the disk before the
/// rename that makes the layer trusted.
fn syncfs(path: &Path) -> ImageResult<()> {
    let dir = std::fs::File::open(path).map_err(|e| SysError::io("open", Some(path.into()), &e))?;
    // SAFETY: the fd is open for the call; syncfs only reads it.
    let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
    nix::errno::Errno::result(rc)
        .map(drop)
        .map_err(|e| SysError::new("syncfs", Some(path.to_path_buf()), e).into())
}

/// Seconds since the epoch.
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
