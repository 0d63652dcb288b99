//! The Spec: what the container *is*, typed and independent of the host it runs on.
//!
//! A manifest is validated into a [`Spec`]; an OCI runtime bundle's config.json converts to and
//! from one (`oci`); [`crate::lower`] turns a Spec and the host's facts into the
//! [`crate::plan::Plan`] of what will be done to this host. So the Spec holds no cgroup file
//! name, no v1/v2 spelling and no host path this host decides (state root, cgroup mount points):
//! only what the author asked for, in kernel units (bytes, microseconds, ids).
//!
//! Inputs from outside the manifest (a bind source's kind, a device's numbers, a user name's id
//! in the root filesystem) are resolved before a Spec is made, so lowering needs nothing but the
//! host's facts.

mod limits;
mod network;
mod security;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::sys::idmap::IdMapLine;
pub use crate::sys::rlimit::{Rlimit, RlimitResource};
use crate::sys::tar::Compression;
pub use limits::{CpuQuota, IoDevice, Limits};
pub use network::{Bridge, Network, NetworkMode, Port, Protocol, Subnet};
pub use security::{CapChoice, CapSet, Paths, Seccomp, SeccompProfile, Security};

/// A container, as its author described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Names the instance, its state directory and its cgroup.
    pub name: String,
    /// Hostname in the container's UTS namespace.
    pub hostname: Option<String>,
    /// NIS domain name in the container's UTS namespace.
    pub domainname: Option<String>,
    /// The root filesystem.
    pub root: Root,
    /// Which namespaces are new, shared with the host, or joined.
    pub namespaces: Namespaces,
    /// The process to run.
    pub process: Process,
    /// Resource limits applied through cgroups.
    pub limits: Limits,
    /// Filesystems mounted after the root, in order.
    pub mounts: Vec<Mount>,
    /// Several live instances of this name may run at once.
    pub multiple: bool,
    /// Capabilities, no_new_privs, seccomp, masked and read-only paths.
    #[serde(default)]
    pub security: Security,
    /// What the network namespace is connected to; names and ports.
    #[serde(default)]
    pub network: Network,
}

/// Whether `n` may name a container (its state directory and cgroup): 1 to 64 letters, digits,
/// `-`, `_` or `.`, starting with a letter or digit. Every front end (manifest, OCI bundle)
/// checks names with this one rule.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The longest label of a hostname or domain name (RFC 1123).
pub const UTS_LABEL_MAX: usize = 63;
/// The longest hostname or domain name `sethostname(2)` takes (HOST_NAME_MAX).
pub const UTS_NAME_MAX: usize = 64;

/// The rule every hostname and domain name diagnostic states, so message and check agree.
pub const UTS_NAME_RULE: &str = "dot-separated labels of 1 to 63 letters, digits and `-` (not first or last), 64 characters in all";

/// Whether `v` is a valid hostname or domain name: dot-separated labels of letters, digits and
/// `-` (not first or last), each 1 to 63 characters (RFC 1123), 64 in all (the kernel's limit).
pub fn valid_uts_name(v: &str) -> bool {
    uts_name_error(v).is_none()
}

/// What is wrong with `v` as a hostname or domain name, in a few words; `None`: nothing.
pub fn uts_name_error(v: &str) -> Option<String> {
    if v.len() > UTS_NAME_MAX {
        return Some(format!(
            "{} characters; at most {UTS_NAME_MAX} in all",
            v.chars().count()
        ));
    }
    for l in v.split('.') {
        if l.is_empty() {
            return Some("an empty label (`..`, or a leading or trailing `.`)".into());
        }
        if l.len() > UTS_LABEL_MAX {
            return Some(format!(
                "label `{l}` has {} characters; at most {UTS_LABEL_MAX}",
                l.chars().count()
            ));
        }
        if let Some(c) = l
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Some(format!("`{c}` is not a letter, digit or `-`"));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Some(format!("label `{l}` starts or ends with `-`"));
        }
    }
    None
}

/// The root filesystem and how the process is confined to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// Where it comes from.
    pub source: RootSource,
    /// Mounted read-only.
    pub readonly: bool,
    /// `true`: pivot_root and detach the host's mounts; `false`: chroot, as asked explicitly.
    pub pivot_root: bool,
    /// A `path` or `host` root under an overlay whose writes die with the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub writable: bool,
    /// Where an overlay root's upper and work directories are kept across runs (absolute);
    /// `None`: in the state directory, removed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<PathBuf>,
}

impl Root {
    /// Whether the root is an overlay (an image, a stored `tar` root, or `writable`).
    pub fn is_overlay(&self) -> bool {
        self.writable || self.source.store_layers().is_some()
    }
}

/// Where the root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RootSource {
    /// A directory, used in place.
    Path {
        /// The directory (absolute).
        path: PathBuf,
    },
    /// An archive: extracted once into the store and mounted as the lower layer of an overlay
    /// (`stored`), or, in a user namespace, extracted for each run with its owners shifted.
    Tar {
        /// The archive (absolute).
        archive: PathBuf,
        /// Its compression.
        compression: Compression,
        /// The most file content extraction may write, in bytes (`None`: no bound).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_size: Option<u64>,
        /// Its layer in the store, found or extracted before validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stored: Option<StoredTar>,
    },
    /// A fresh root of read-only binds of the host's system directories (`/usr`, `/etc`, ...).
    Host,
    /// An image from launch's store (pulled from a registry or imported from a local OCI layout
    /// or `docker save` file before validation), pinned by digest: its unpacked layers are the
    /// lower layers of an overlay whose upper layer lives and dies with the run.
    Image {
        /// How the manifest named it (`docker.io/library/debian:bookworm`, an OCI layout's path).
        name: String,
        /// The store holding its layers.
        store: PathBuf,
        /// The image manifest's digest.
        manifest: String,
        /// The layers' diff_ids, bottom first.
        layers: Vec<String>,
        /// The ports its config exposes (`80/tcp`): recorded, not published.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exposed_ports: Vec<String>,
    },
}

/// A `tar` root's layer in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTar {
    /// The store.
    pub store: PathBuf,
    /// The archive's digest when it was read (`sha256:…`).
    pub digest: String,
    /// The layer's diff_id (the digest of its uncompressed tar stream).
    pub layer: String,
}

impl RootSource {
    /// The store and layers (bottom first) of a root mounted as an overlay of store layers.
    pub fn store_layers(&self) -> Option<(&std::path::Path, &[String])> {
        match self {
            RootSource::Image { store, layers, .. } => Some((store, layers)),
            RootSource::Tar {
                stored: Some(t), ..
            } => Some((&t.store, std::slice::from_ref(&t.layer))),
            RootSource::Tar { stored: None, .. } | RootSource::Path { .. } | RootSource::Host => {
                None
            }
        }
    }
}

/// One namespace: the host's, a new one, or an existing one joined by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    /// The launcher's own (the host's): not isolated.
    Host,
    /// A new namespace for the container.
    New,
    /// An existing namespace, entered with setns(2) (e.g. `/proc/PID/ns/net`).
    Join(PathBuf),
}

impl Namespace {
    /// Whether the container gets a namespace of its own (new or joined), not the host's.
    pub fn isolated(&self) -> bool {
        match self {
            Namespace::Host => false,
            Namespace::New | Namespace::Join(_) => true,
        }
    }

    /// Whether a new namespace is created.
    pub fn is_new(&self) -> bool {
        matches!(self, Namespace::New)
    }
}

/// The container's namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    /// Process ids.
    pub pid: Namespace,
    /// Mount table (always isolated: the root is built in it).
    pub mount: Namespace,
    /// Hostname and domain name.
    pub uts: Namespace,
    /// System V IPC and POSIX message queues.
    pub ipc: Namespace,
    /// Network stack.
    pub net: Namespace,
    /// Cgroup tree view.
    pub cgroup: Namespace,
    /// Monotonic and boot-time clocks.
    pub time: Namespace,
    /// User and group ids.
    pub user: UserNamespace,
}

/// The user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserNamespace {
    /// The host's: container ids are host ids.
    Host,
    /// A new one with these maps.
    New(IdMaps),
    /// An existing one, entered with setns(2).
    Join(PathBuf),
}

/// A new user namespace's id maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdMaps {
    /// Root inside is whoever runs the container, outside (`unshare -r`): the one id a user may
    /// map without privilege.
    MapRoot,
    /// Explicit ranges.
    Explicit {
        /// uid ranges.
        uid: Vec<IdMapLine>,
        /// gid ranges.
        gid: Vec<IdMapLine>,
    },
}

impl IdMaps {
    /// The uid and gid maps, given the ids of the user who runs the container.
    pub fn lines(&self, uid: u32, gid: u32) -> (Vec<IdMapLine>, Vec<IdMapLine>) {
        match self {
            IdMaps::MapRoot => (
                vec![IdMapLine {
                    inside: 0,
                    outside: uid,
                    count: 1,
                }],
                vec![IdMapLine {
                    inside: 0,
                    outside: gid,
                    count: 1,
                }],
            ),
            IdMaps::Explicit { uid, gid } => (uid.clone(), gid.clone()),
        }
    }
}

/// The process, and how it is run and stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// argv, argv\[0\] first (looked up in the container's PATH when it has no `/`).
    pub args: Vec<String>,
    /// The whole environment.
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container (absolute).
    pub cwd: PathBuf,
    /// Ids inside the container.
    pub user: User,
    /// setrlimit calls, in order.
    pub rlimits: Vec<Rlimit>,
    /// A pseudo-terminal: `None` decides at run time (when standard input is one).
    pub terminal: Option<bool>,
    /// PID 1 is a minimal init that reaps zombies and forwards signals.
    pub init: bool,
    /// Descriptors 3 to 3+N-1 of the launcher's caller pass on to the command on purpose
    /// (socket activation); every other descriptor above 2 is closed.
    #[serde(default)]
    pub preserve_fds: u32,
    /// How `launch stop` ends the container.
    pub stop: StopPolicy,
    /// The settings an image root's config gave because the manifest left them out
    /// (`command`, `env PATH`, `cwd`, `user`, `stop_signal`), for the plan to say so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_image: Vec<String>,
}

impl Process {
    /// The environment as execve(2) takes it: `NAME=value`, sorted by name.
    pub fn envp(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// Ids inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The user's name, when the author gave one (for the plan's words only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// How `launch stop` ends the container: this signal to its main process, then, after the
/// timeout, SIGKILL to everything in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopPolicy {
    /// Canonical signal name (`SIGTERM`).
    pub signal: String,
    /// Milliseconds to wait before SIGKILL.
    pub timeout_ms: u64,
}

/// A filesystem mounted in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// What is mounted.
    pub kind: MountKind,
    /// Where, inside the container (absolute, normalized).
    pub target: PathBuf,
    /// Read-only.
    pub readonly: bool,
    /// Ignore set-user-id and set-group-id bits.
    pub nosuid: bool,
    /// No device nodes.
    pub nodev: bool,
    /// No execution.
    pub noexec: bool,
    /// How access times are updated (`None`: the kernel's default, relatime). Kernel filesystems
    /// only: a bind keeps its source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atime: Option<Atime>,
}

/// Access-time updates of a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Atime {
    /// `relatime`: only when older than the last modification (or a day old).
    Relatime,
    /// `strictatime`: on every access.
    Strictatime,
    /// `noatime`: never.
    Noatime,
}

impl Atime {
    /// The mount option's name (`relatime`).
    pub fn option(self) -> &'static str {
        match self {
            Atime::Relatime => "relatime",
            Atime::Strictatime => "strictatime",
            Atime::Noatime => "noatime",
        }
    }
}

/// What a mount is, with the options that only it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountKind {
    /// procfs.
    Proc,
    /// sysfs.
    Sysfs,
    /// A memory-backed filesystem.
    Tmpfs {
        /// Size limit in bytes.
        size: Option<u64>,
        /// Mode of its root directory.
        mode: Option<u32>,
    },
    /// A host file or directory.
    Bind {
        /// The host path (absolute).
        source: PathBuf,
        /// The source is not a directory (the mount point is made as a file).
        file: bool,
        /// Include the mounts below the source.
        recursive: bool,
    },
    /// A new devpts instance.
    Devpts,
    /// POSIX message queues.
    Mqueue,
}

impl MountKind {
    /// The filesystem type given to mount(2) (`none` for a bind).
    pub fn fstype(&self) -> &'static str {
        match self {
            MountKind::Proc => "proc",
            MountKind::Sysfs => "sysfs",
            MountKind::Tmpfs { .. } => "tmpfs",
            MountKind::Bind { .. } => "none",
            MountKind::Devpts => "devpts",
            MountKind::Mqueue => "mqueue",
        }
    }
}

#[cfg(test)]
mod uts_tests {
    use super::*;

    #[test]
    fn uts_names_follow_rfc_1123_and_host_name_max() {
        let l63 = "a".repeat(63);
        assert!(valid_uts_name(&l63));
        assert!(valid_uts_name("builder-1.db.example"));
        let l64 = "a".repeat(64);
        assert_eq!(
            uts_name_error(&l64).as_deref(),
            Some(format!("label `{l64}` has 64 characters; at most 63").as_str())
        );
        // Labels of 63 are fine; the whole name is bounded by 64.
        let total = format!("{l63}.b");
        assert_eq!(
            uts_name_error(&total).as_deref(),
            Some("65 characters; at most 64 in all")
        );
        assert!(uts_name_error("my_box").unwrap().contains("`_`"));
        assert!(uts_name_error("-a").unwrap().contains("starts or ends"));
        assert!(uts_name_error("a..b").unwrap().contains("empty label"));
    }
}
