//! [`Undo`]: what reverts a host step, as data.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the executor reverts a host step that left something on the host. The executor records
/// it in the journal (with the container's pid for [`Undo::KillContainer`]) before the step acts,
/// so `launch gc` can revert it after a SIGKILL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// Remove a directory and all it holds.
    RemoveTree {
        /// The directory.
        path: PathBuf,
    },
    /// Kill the processes in a cgroup, then remove it.
    RemoveCgroup {
        /// The group.
        path: PathBuf,
    },
    /// SIGKILL the container process and reap it.
    KillContainer,
    /// Give the container's address back to the bridge's lease file.
    ReleaseAddress {
        /// The lease file's directory.
        dir: PathBuf,
        /// The bridge.
        bridge: String,
    },
    /// Take the container's published ports out of the nftables maps (by key).
    UnpublishPorts {
        /// The ports.
        ports: Vec<crate::spec::Port>,
    },
    /// Delete a link on the host (a veth's host end takes its peer with it).
    DeleteLink {
        /// The link.
        name: String,
    },
    /// SIGKILL the network helper process.
    KillHelper,
}

impl fmt::Display for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undo::RemoveTree { path } => write!(f, "remove {} and all it holds", path.display()),
            Undo::RemoveCgroup { path } => {
                write!(f, "kill its processes, then rmdir {}", path.display())
            }
            Undo::KillContainer => f.write_str("SIGKILL the container process and reap it"),
            Undo::ReleaseAddress { dir, bridge } => write!(
                f,
                "release the address in {:?}",
                dir.join(format!("{bridge}.leases"))
            ),
            Undo::UnpublishPorts { ports } => write!(
                f,
                "nft -f -: {}",
                crate::sys::net::firewall::unpublish_lines(ports).join("; ")
            ),
            Undo::DeleteLink { name } => write!(f, "delete link {name:?} (and its peer)"),
            Undo::KillHelper => f.write_str("SIGKILL the network helper"),
        }
    }
}
