//! flock(2) files under `ROOT/locks/`. A lock is released by the kernel when its holder dies,
//! even by SIGKILL, so a crashed writer never leaves the store locked. Lock files are never
//! removed: removing one while another process waits on it would let two processes hold "the"
//! lock at once.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::{ImageResult, Store};
use crate::error::{SysError, SysResult};
use crate::image::{Digest, ImageError};

/// How to take a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    /// LOCK_SH, waiting.
    Shared,
    /// LOCK_EX, waiting.
    Exclusive,
    /// LOCK_EX|LOCK_NB: `None` when someone else holds it.
    TryExclusive,
}

/// Open (creating it) and lock `path`.
pub(super) fn take(path: &Path, how: Lock) -> SysResult<Option<Flock<File>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| SysError::io("open", Some(path.to_path_buf()), &e).args("O_RDWR|O_CREAT"))?;
    let (arg, name) = match how {
        Lock::Shared => (FlockArg::LockShared, "LOCK_SH"),
        Lock::Exclusive => (FlockArg::LockExclusive, "LOCK_EX"),
        Lock::TryExclusive => (FlockArg::LockExclusiveNonblock, "LOCK_EX|LOCK_NB"),
    };
    let fd = file.as_raw_fd();
    match Flock::lock(file, arg) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) if how == Lock::TryExclusive => Ok(None),
        Err((_, e)) => {
            Err(SysError::new("flock", Some(path.to_path_buf()), e)
                .args(format!("fd {fd}, {name}")))
        }
    }
}

/// `locks/store`, held while it lives: shared by writers, exclusive by collections.
#[derive(Debug)]
pub struct StoreLock {
    pub(super) _lock: Flock<File>,
}

/// Layers in use: a shared lock on each layer's lock file, for as long as this lives (the
/// launcher keeps it for the container's lifetime). `prune` and `rmi` skip a layer whose lock
/// they cannot take exclusively.
#[derive(Debug)]
pub struct Hold {
    _locks: Vec<Flock<File>>,
    layers: Vec<Digest>,
}

impl Hold {
    /// The layers held.
    pub fn layers(&self) -> &[Digest] {
        &self.layers
    }
}

impl Store {
    /// Hold `layers` (diff_ids, all unpacked) in use by `holder` (a container's name, for
    /// messages) until the returned [`Hold`] is dropped, and record their last use. Fails if a
    /// layer is not (or no longer: pruned meanwhile) unpacked; unpack it again then.
    pub fn hold(&self, layers: &[Digest], holder: &str) -> ImageResult<Hold> {
        let mut locks = Vec::with_capacity(layers.len());
        for diff_id in layers {
            let path = self.lock_path(&format!("layer-{}", diff_id.hex()));
            let Some(lock) = take(&path, Lock::Shared)? else {
                continue; // a shared lock is waited for, never refused
            };
            if self.layer(diff_id)?.is_none() {
                return Err(ImageError::Unknown(format!(
                    "layer {diff_id} (for {holder}): it is not unpacked; unpack it again"
                )));
            }
            self.touch_used(diff_id, holder)?;
            locks.push(lock);
        }
        Ok(Hold {
            _locks: locks,
            layers: layers.to_vec(),
        })
    }

    /// Record a layer's last use: `used/<hex>`'s mtime, its content the last holder. A mark
    /// less than a minute old is left as it is (`launch images` shows the last use to the
    /// minute; a start then writes nothing to the store).
    fn touch_used(&self, diff_id: &Digest, holder: &str) -> ImageResult<()> {
        let path = self.root.join("used").join(diff_id.hex());
        let fresh = std::fs::symlink_metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < std::time::Duration::from_secs(60));
        if fresh {
            return Ok(());
        }
        let holder: String = holder.chars().take(200).collect();
        std::fs::write(&path, format!("{holder}\n"))
            .map_err(|e| SysError::io("write", Some(path), &e).into())
    }

    /// Whether someone holds (or is unpacking) the layer: its lock cannot be taken exclusively
    /// at once. When it can, the lock is returned (held by the caller while it removes).
    pub(super) fn try_layer_exclusive(&self, diff_id: &Digest) -> ImageResult<Option<Flock<File>>> {
        Ok(take(
            &self.lock_path(&format!("layer-{}", diff_id.hex())),
            Lock::TryExclusive,
        )?)
    }
}
