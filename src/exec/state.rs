//! Instance state on disk, for `launch ps`, `stop`, `exec` and `gc`.
//!
//! `<state root>/<name>-<id>/journal` is the only file: the undo journal (see [`super::journal`]),
//! locked with flock by the launcher for as long as it lives (a lock that can be taken means the
//! launcher is gone, even after SIGKILL, and is never fooled by a reused pid). Once the container
//! process exists, the journal also holds its [`State`]: what the other commands need to find and
//! enter the container. One file instead of a journal and a `state.json` written through a
//! rename: three file creations and removals fewer per run.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{SysError, SysResult};
use crate::spec::StopPolicy as Stop;

/// What `ps`, `stop` and `exec` know about a running container (a journal line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The manifest's name.
    pub name: String,
    /// `name-<id>`.
    pub instance: String,
    /// The manifest as given on the command line.
    pub manifest: String,
    /// The launcher's pid.
    pub launcher_pid: i32,
    /// The container's main process (host pid).
    pub pid: i32,
    /// Unix time the container was started.
    pub started: u64,
    /// The container's cgroups: its own, which `ps` reads and `stop` kills.
    pub cgroups: Vec<PathBuf>,
    /// Groups it joined without owning them (v1: the shared group holding its device list),
    /// which `launch exec` joins too; nothing is counted or killed in them.
    #[serde(default)]
    pub joined: Vec<PathBuf>,
    /// How to stop it.
    pub stop: Stop,
    /// The container's process as its Spec describes it: `launch exec` runs a command with the
    /// same ids, environment, working directory and rlimits.
    pub process: crate::spec::Process,
    /// Its confinement (capabilities, no_new_privs, seccomp), which `launch exec` applies too.
    #[serde(default)]
    pub security: crate::spec::Security,
    /// Its network, as `launch ps` shows it.
    #[serde(default)]
    pub network: Network,
}

/// A running container's network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The mode (`none`, `host`, `bridge`, `pasta`, `slirp`).
    pub mode: String,
    /// Its address on the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::Ipv4Addr>,
    /// Its published ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::spec::Port>,
}

/// One instance directory under the state root.
#[derive(Debug)]
pub struct Instance {
    /// Its directory.
    pub dir: PathBuf,
    /// Its state, once the container process exists.
    pub state: Option<State>,
    /// Its launcher still holds the journal lock.
    pub alive: bool,
    /// Its launcher's pid and start time, from the journal.
    pub launcher: Option<(i32, u64)>,
    /// A start record, not a run's instance: its launcher is still bringing the image in (the
    /// manifest, as given on the command line). See [`super::starting`].
    pub starting: Option<String>,
}

impl Instance {
    /// The instance name (the directory's name).
    pub fn instance(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The manifest name: the instance without its `-<id>` suffix.
    pub fn name(&self) -> String {
        let i = self.instance();
        i.rsplit_once('-').map_or(i.clone(), |(n, _)| n.to_owned())
    }
}

/// Is the launcher that owns `journal` alive? It holds an exclusive flock on it for its whole
/// life; if we can take the lock, nobody does.
pub fn journal_locked(journal: &Path) -> bool {
    std::fs::File::open(journal).is_ok_and(|f| locked(f).0)
}

/// Whether `f` (an open journal) is locked by its launcher; the file back to read it.
fn locked(f: std::fs::File) -> (bool, Option<std::fs::File>) {
    // A shared lock: testers never block each other, and the launcher takes its exclusive lock
    // blocking (Journal::create), so a test at that moment only delays it.
    match Flock::lock(f, FlockArg::LockSharedNonblock) {
        Ok(l) => (false, l.unlock().ok()),
        Err((f, _)) => (true, Some(f)),
    }
}

/// Every instance directory under `root`, sorted. Each journal is opened once: to test its lock
/// and to read the state from it.
pub fn list(root: &Path) -> Vec<Instance> {
    let mut out: Vec<Instance> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            let dir = e.path();
            let (alive, file) = match std::fs::File::open(dir.join("journal")) {
                Ok(f) => locked(f),
                Err(_) => (false, None),
            };
            let contents = file.map(super::journal::read).unwrap_or_default();
            Instance {
                dir,
                state: contents.state,
                alive,
                launcher: contents.launcher,
                starting: contents.starting,
            }
        })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// An exclusive lock on the state root itself, held while instances are claimed or collected,
/// so `gc` never sees an instance half created.
pub struct RootLock {
    _lock: Flock<std::fs::File>,
}

/// Create the state root if needed (0711) and lock it.
pub fn lock_root(root: &Path) -> SysResult<RootLock> {
    make_root(root)?;
    let f = std::fs::File::open(root)
        .map_err(|e| SysError::io("open", Some(root.to_path_buf()), &e))?;
    let fd = f.as_raw_fd();
    Flock::lock(f, FlockArg::LockExclusive)
        .map(|l| RootLock { _lock: l })
        .map_err(|(_, e)| {
            SysError::new("flock", Some(root.to_path_buf()), e).args(format!("fd {fd}, LOCK_EX"))
        })
}

/// Create the state root if needed (0711: others may pass through, never list it; each
/// instance directory in it is 0700 or 0710), then make sure it can be trusted.
pub(super) fn make_root(dir: &Path) -> SysResult<()> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)
            .map_err(|e| SysError::io("mkdir -p", Some(dir.to_path_buf()), &e))?;
        set_mode(dir, 0o711)?;
    }
    check_root(dir)
}

/// A state root is trusted only if it is a real directory (not a symlink) owned by the caller
/// and writable by no one else: otherwise another user could have made it first (a predictable
/// `/tmp/launch-UID`) and planted journals in it that `launch gc` would act on, as ssh-agent and
/// tmux refuse a socket directory they do not own.
pub fn check_root(dir: &Path) -> SysResult<()> {
    check_private_dir(
        dir,
        "check state root",
        "since another user could have planted state in it; remove it, or set \
         LAUNCH_STATE_ROOT (or XDG_RUNTIME_DIR) to a directory only you can write",
    )
}

/// The check of [`check_root`] for any directory launch keeps trusted data in (the image store
/// too): `op` names the check, `why` ends the message with the risk and the fix.
pub fn check_private_dir(dir: &Path, op: &str, why: &str) -> SysResult<()> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(dir)
        .map_err(|e| SysError::io("lstat", Some(dir.to_path_buf()), &e))?;
    let me = nix::unistd::geteuid().as_raw();
    let problem = if !md.file_type().is_dir() {
        Some("is not a directory (a symlink?)".to_string())
    } else if md.uid() != me {
        Some(format!(
            "is owned by uid {}, not by you (uid {me})",
            md.uid()
        ))
    } else if md.mode() & 0o022 != 0 {
        Some(format!(
            "is writable by others (mode {:04o})",
            md.mode() & 0o7777
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(SysError::other(
            op,
            Some(dir.to_path_buf()),
            format!("{} {p}: refusing to use it, {why}", dir.display()),
        )),
    }
}

/// mkdir(2) with exactly `mode`: a chmod follows only if the umask took bits away (one
/// metadata operation fewer on the usual umask).
pub(super) fn mkdir(path: &Path, mode: u32) -> SysResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| {
            SysError::io("mkdir", Some(path.to_path_buf()), &e).args(format!("{mode:04o}"))
        })?;
    // umask(2) can only be read by setting it; the launcher is single-threaded, so setting it
    // back at once races with nothing.
    use nix::sys::stat::{Mode, umask};
    let mask = umask(Mode::from_bits_truncate(0o022));
    umask(mask);
    if mask.bits() & mode != 0 {
        set_mode(path, mode)?;
    }
    Ok(())
}

/// chown(2) the group only.
pub(super) fn chgrp(path: &Path, gid: u32) -> SysResult<()> {
    nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
        .map_err(|e| SysError::new("chown", Some(path.to_path_buf()), e).args(format!("-1, {gid}")))
}

fn set_mode(path: &Path, mode: u32) -> SysResult<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        SysError::io("chmod", Some(path.to_path_buf()), &e).args(format!("{mode:04o}"))
    })
}
