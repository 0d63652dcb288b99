//! A container's /proc, made by the launcher: a procfs instance for the container's pid
//! namespace, created detached (fsopen(2) with procfs's `pidns` option, fsmount(2)), its masked
//! and read-only paths applied on the detached tree, then handed to the container process,
//! which attaches the whole tree with one move_mount(2).
//!
//! Why: the masks are a dozen lookups and mounts, ~0.15 ms, and the container process is the
//! start's critical path while the launcher waits idle for it. Made by the launcher, they run on
//! another CPU while the container process builds the rest of its root. The result is the same
//! mounts in the same order as the container process would make them: the tree is attached
//! where its proc mount would go, with the same flags, and nothing is mounted below /proc after
//! it (lowering checks).
//!
//! Kernels before procfs's `pidns` option or before mounts on detached trees (both in Linux
//! 6.15+) refuse a step: [`prepare`] then says [`Prepared::Unsupported`], and the container
//! process mounts and masks its /proc itself, as on any kernel before.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::SysResult;
use crate::sys::fs::Root;
use crate::sys::masked_paths;
use crate::sys::mount::{FsOption, MountAttr, new_fs};

/// What [`prepare`] made.
pub enum Prepared {
    /// The detached /proc, masked, ready for move_mount(2).
    Tree(OwnedFd),
    /// This kernel cannot do it (the errno that said so): the container process mounts its
    /// /proc itself.
    Unsupported(Errno),
}

/// Whether `e` from the fsopen/fsconfig/fsmount of a procfs instance, or from a mount on the
/// detached tree, means the kernel lacks the feature (not that something is wrong).
fn unsupported(e: Errno) -> bool {
    matches!(e, Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP)
}

/// A procfs instance for the pid namespace `pidns` (an open `/proc/PID/ns/pid`), with `attrs`,
/// and `masked` and `readonly` (paths inside the container, all under `/proc`) applied on it
/// as [`masked_paths::apply`] would apply them under the container's root.
pub fn prepare(
    pidns: &OwnedFd,
    attrs: &[MountAttr],
    masked: &[PathBuf],
    readonly: &[PathBuf],
) -> SysResult<Prepared> {
    let shown = Path::new("/proc (for the container, detached)");
    let options = [
        FsOption::String("source", "proc"),
        FsOption::Fd("pidns", pidns.as_fd()),
    ];
    let tree = match new_fs("proc", &options, attrs, shown) {
        Ok(t) => t,
        Err(e) if unsupported(e.errno()) => return Ok(Prepared::Unsupported(e.errno())),
        Err(e) => return Err(e),
    };
    let root = Root::from_fd(tree, Path::new("/proc"));
    let inside = |ps: &[PathBuf]| -> Vec<PathBuf> {
        ps.iter()
            .filter_map(|p| p.strip_prefix("/proc").ok().map(Path::to_path_buf))
            .collect()
    };
    match masked_paths::apply(&root, &inside(masked), &inside(readonly)) {
        Ok(_) => {}
        // The first mount on the detached tree is where a kernel without the feature refuses.
        Err(e) if unsupported(e.errno()) => return Ok(Prepared::Unsupported(e.errno())),
        Err(e) => return Err(e),
    }
    Ok(Prepared::Tree(root.into_fd()))
}
