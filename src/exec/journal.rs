//! The undo journal: before each host-visible step, what undoes it is appended to
//! `<state dir>/journal`, so a launcher killed with SIGKILL can be cleaned up later (`launch gc`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::State;
use crate::error::{SysError, SysResult};

/// Something on the host to undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// Remove a directory tree (state dir, extracted rootfs).
    RemoveTree {
        /// The tree.
        path: PathBuf,
    },
    /// Kill everything in a cgroup and remove it.
    RemoveCgroup {
        /// The group.
        path: PathBuf,
    },
    /// SIGKILL the container process and reap it.
    KillProcess {
        /// Its host pid.
        pid: i32,
        /// Its start time (clock ticks since boot): `launch gc` kills the pid only if it is
        /// still that process, not a later one that reused the number.
        #[serde(default)]
        start_time: Option<u64>,
    },
    /// Give a bridge address back (only the lease of this owner and address).
    ReleaseAddress {
        /// The lease file's directory.
        dir: PathBuf,
        /// The bridge.
        bridge: String,
        /// Its subnet.
        subnet: crate::spec::Subnet,
        /// The address.
        address: std::net::Ipv4Addr,
        /// The lease's owner: the instance.
        owner: String,
    },
    /// Take published ports out of the nftables maps.
    UnpublishPorts {
        /// The ports.
        ports: Vec<crate::spec::Port>,
    },
    /// Delete a host link (a veth's host end, which takes its peer).
    DeleteLink {
        /// The link.
        name: String,
    },
    /// SIGKILL a network helper (pasta, slirp4netns) that is not the launcher's child.
    KillHelper {
        /// Its pid.
        pid: i32,
        /// Its start time: only that process is killed.
        start_time: Option<u64>,
    },
}

impl Undo {
    /// Carry it out. Something already gone counts as undone.
    pub fn run(&self) -> SysResult<()> {
        match self {
            Undo::RemoveTree { path } => match std::fs::remove_dir_all(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                // overlayfs leaves `work/work` mode 0: a launcher that is not root cannot read
                // it until it gives itself the right back (only on directories it owns).
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    open_own_dirs(path);
                    std::fs::remove_dir_all(path)
                        .or_else(|e| match e.kind() {
                            std::io::ErrorKind::NotFound => Ok(()),
                            _ => Err(e),
                        })
                        .map_err(|e| SysError::io("remove_dir_all", Some(path.clone()), &e))
                }
                Err(e) => Err(SysError::io("remove_dir_all", Some(path.clone()), &e)),
            },
            Undo::RemoveCgroup { path } => crate::sys::cgroup::destroy(path),
            Undo::ReleaseAddress {
                dir,
                bridge,
                subnet,
                address,
                owner,
            } => crate::sys::net::alloc::Allocator::new(dir, bridge, *subnet)
                .release(*address, owner)
                .map(drop),
            Undo::UnpublishPorts { ports } => crate::sys::net::firewall::unpublish(ports),
            Undo::DeleteLink { name } => crate::sys::net::link::delete_link(name).map(drop),
            Undo::KillHelper { pid, start_time } => {
                // Only the process the launcher recorded, as for the container.
                match start_time {
                    Some(t) => crate::sys::net::helper::kill(*pid, *t),
                    None => Ok(()),
                }
            }
            Undo::KillProcess { pid, start_time } => {
                // Only the process the launcher recorded: a pid is reused, and a journal without
                // a start time proves nothing about who holds that pid now.
                if start_time.is_none() || *start_time != self::start_time(*pid) {
                    return Ok(());
                }
                let pid = nix::unistd::Pid::from_raw(*pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                loop {
                    match nix::sys::wait::waitpid(pid, None) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        _ => return Ok(()),
                    }
                }
            }
        }
    }
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undo::RemoveTree { path } => write!(f, "remove {}", path.display()),
            Undo::RemoveCgroup { path } => write!(f, "kill and remove cgroup {}", path.display()),
            Undo::KillProcess { pid, .. } => write!(f, "kill container process {pid}"),
            Undo::ReleaseAddress {
                address, bridge, ..
            } => write!(f, "release address {address} on {bridge}"),
            Undo::UnpublishPorts { ports } => write!(
                f,
                "unpublish {}",
                ports
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Undo::DeleteLink { name } => write!(f, "delete link {name}"),
            Undo::KillHelper { pid, .. } => write!(f, "kill network helper {pid}"),
        }
    }
}

/// One journal line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Entry {
    /// Who wrote the journal: gc cleans up only after launchers that no longer exist.
    Launcher {
        /// The launcher's pid.
        launcher: i32,
        /// Its start time in clock ticks since boot (field 22 of /proc/PID/stat), so a reused
        /// pid is not mistaken for it.
        start_time: u64,
    },
    /// An undo, recorded before the step it undoes.
    Undo(Undo),
    /// The container's state, recorded once its process exists (see [`super::state`]).
    State {
        /// The state (boxed: far larger than the other entries).
        state: Box<State>,
    },
    /// A start record: the launcher is bringing the image in, before the run's own instance
    /// exists (see [`super::starting`]). The manifest as given on the command line.
    Starting {
        /// The manifest.
        starting: String,
    },
    /// The launcher's network namespace (the inode of its nsfs file), recorded with
    /// [`Entry::Launcher`]: the links and nftables rules its undos name live there, and `gc`
    /// run from another network namespace must not count them as removed.
    Netns {
        /// The namespace's inode (`net:[INODE]`).
        netns: u64,
    },
}

/// What a journal holds.
#[derive(Debug, Default)]
pub struct Contents {
    /// The undos, in the order they were recorded.
    pub undos: Vec<Undo>,
    /// The container's state, if it got that far.
    pub state: Option<State>,
    /// The launcher: pid and start time (clock ticks since boot).
    pub launcher: Option<(i32, u64)>,
    /// A start record's manifest (see [`super::starting`]).
    pub starting: Option<String>,
    /// The launcher's network namespace (inode), if recorded.
    pub netns: Option<u64>,
}

/// Read a journal. A line cut short by a crash, or one this version does not know, is skipped.
pub fn read(mut f: std::fs::File) -> Contents {
    use std::io::Read;
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let mut c = Contents::default();
    for e in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
    {
        match e {
            Entry::Undo(u) => c.undos.push(u),
            Entry::State { state } => c.state = Some(*state),
            Entry::Launcher {
                launcher,
                start_time,
            } => c.launcher = Some((launcher, start_time)),
            Entry::Starting { starting } => c.starting = Some(starting),
            Entry::Netns { netns } => c.netns = Some(netns),
        }
    }
    c
}

/// The open journal, flock'ed for as long as the launcher lives (see [`super::state`]).
pub struct Journal {
    file: nix::fcntl::Flock<std::fs::File>,
    path: PathBuf,
}

impl Journal {
    /// Create the journal in a fresh state dir and record who owns it.
    pub fn create(state_dir: &Path) -> SysResult<Journal> {
        let path = state_dir.join("journal");
        // 0600: it holds the container's environment, which may hold secrets.
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().create_new(true).append(true),
            0o600,
        )
        .open(&path)
        .map_err(|e| {
            SysError::io("open", Some(path.clone()), &e).args("O_CREAT|O_EXCL|O_APPEND, 0600")
        })?;
        // Blocking: the file is new, so only a reader testing whether its launcher lives
        // (`launch ps`, a shared lock held for a moment) can be holding it.
        let file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| SysError::new("flock", Some(path.clone()), e).args("LOCK_EX"))?;
        let mut j = Journal { file, path };
        let me = std::process::id() as i32;
        j.append(&Entry::Launcher {
            launcher: me,
            start_time: start_time(me).unwrap_or(0),
        })?;
        // The launcher never leaves its network namespace (sys/net/link.rs joins others on
        // threads only): the one it has now is where its links and rules will be.
        if let Some(netns) = netns_of("self") {
            j.append(&Entry::Netns { netns })?;
        }
        Ok(j)
    }

    /// Append one entry (one write, so a crash leaves whole lines).
    pub fn append(&mut self, e: &Entry) -> SysResult<()> {
        let mut line = serde_json::to_vec(e)
            .map_err(|x| SysError::other("write", Some(self.path.clone()), x.to_string()))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|x| SysError::io("write", Some(self.path.clone()), &x))
    }
}

/// A process's start time (clock ticks since boot), from /proc/PID/stat.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// The inode of `/proc/PID/ns/net` (`PID` may be `self`): which network namespace it is in.
pub fn netns_of(pid: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Whether network namespace `netns` (an inode) still exists as far as can be seen: a process
/// is in it, or it is bound somewhere (`ip netns add`, an nsfs mount). One held only by a
/// file descriptor is not seen.
pub fn netns_alive(netns: u64) -> bool {
    let name = format!("net:[{netns}]");
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split(' ').nth(3) == Some(name.as_str()))
    });
    mounted
        || std::fs::read_dir("/proc").is_ok_and(|rd| {
            rd.flatten().any(|e| {
                let pid = e.file_name();
                let pid = pid.to_string_lossy();
                pid.bytes().all(|b| b.is_ascii_digit()) && netns_of(&pid) == Some(netns)
            })
        })
}

/// Give this user rwx on every directory under `dir` that it owns and may not enter (lstat: no
/// symlink is followed), so the tree can be removed.
fn open_own_dirs(dir: &std::path::Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let uid = nix::unistd::geteuid().as_raw();
    let Ok(md) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !md.is_dir() {
        return;
    }
    if md.uid() == uid && md.mode() & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(
            dir,
            std::fs::Permissions::from_mode((md.mode() | 0o700) & 0o7777),
        );
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                open_own_dirs(&e.path());
            }
        }
    }
}
