//! The manifest: what a user writes, as serde types that keep source spans.
//!
//! These types only describe the *shape* of a manifest. Meaning (units, cross-field rules, what the
//! host can do) is checked by [`crate::validate`], which turns a [`Manifest`] into a
//! [`crate::plan::Plan`]. Every field is documented here because the same text becomes the JSON
//! Schema's descriptions, which editors show on hover.

mod compose;
pub mod dotenv;
mod keys;
mod load;
mod network;
mod security;
mod source;
mod spanned;
pub mod units;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use compose::{Origin, origins};
pub(crate) use load::first_line;
pub use load::parse;
pub use network::{HostPort, Network, NetworkMode, Port, PortProtocol};
pub use security::{CapChanges, Capabilities, Security, SecurityProfile, WordOrList};
pub use source::{FileKind, MAX_FILE, STDIN_NAME, Source, SourceFile};
pub use spanned::Sp;
pub use units::Quantity;

/// A `launch` manifest (version 1).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema-gen", schemars(title = "launch manifest"))]
pub struct Manifest {
    /// Path or URL of this schema; accepted and ignored (editors use it).
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    /// A manifest this one is based on, relative to this file (docs/environments.md): its
    /// tables merge key by key under this file's, `[[mounts]]` and `[[ports]]` append, every
    /// other value is replaced. That file may extend another.
    #[serde(default)]
    pub extends: Option<Sp<String>>,
    /// Keys the extended manifests set that this one removes, as dotted paths
    /// (`process.env.DEBUG`, `limits.memory`, `mounts`). Applied before this file's own keys.
    #[serde(default)]
    pub unset: Option<Vec<Sp<String>>>,
    /// Name of the container: names its state directory and cgroup. Letters, digits, `-`, `_`, `.`.
    pub name: Sp<String>,
    /// Hostname inside the container (needs a UTS namespace).
    #[serde(default)]
    pub hostname: Option<Sp<String>>,
    /// NIS domain name inside the container (needs a UTS namespace).
    #[serde(default)]
    pub domainname: Option<Sp<String>>,
    /// Where the root filesystem comes from.
    pub rootfs: Sp<Rootfs>,
    /// The process to run. Required, except with an image root whose config names a command
    /// (then every key here is an override of the image's default).
    #[serde(default)]
    pub process: Option<Sp<Process>>,
    /// Namespaces to create. Omitted: pid, mount, uts and ipc.
    #[serde(default)]
    pub namespaces: Option<Sp<Namespaces>>,
    /// Resource limits, applied through cgroups and setrlimit.
    #[serde(default)]
    pub limits: Option<Sp<Limits>>,
    /// Filesystems mounted in the container, in this order, after the root.
    #[serde(default)]
    pub mounts: Vec<Sp<Mount>>,
    /// Allow several running instances of this `name` at once (default: a second run of a
    /// running name is refused).
    #[serde(default)]
    pub multiple: Option<Sp<bool>>,
    /// What the process may do beyond its namespaces. Omitted: the secure defaults.
    #[serde(default)]
    pub security: Option<Sp<Security>>,
    /// The container's network. Omitted: a network namespace of its own with loopback only.
    #[serde(default)]
    pub network: Option<Sp<Network>>,
    /// Ports published on the host (`bridge`, `pasta` and `slirp` modes), in this order.
    #[serde(default)]
    pub ports: Vec<Sp<Port>>,
}

/// The root filesystem: exactly one of `path`, `tar`, `host`, `image`, `oci` or
/// `docker_archive`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Rootfs {
    /// A directory used in place (bind-mounted). Relative to the manifest's folder.
    #[serde(default)]
    pub path: Option<Sp<String>>,
    /// A tar archive (.tar, .tar.gz, .tgz, .tar.zst), e.g. from `docker export`, extracted per run.
    #[serde(default)]
    pub tar: Option<Sp<String>>,
    /// `true`: a fresh root made of read-only binds of the host's /usr, /bin, /lib*, /sbin and /etc.
    #[serde(default)]
    pub host: Option<Sp<bool>>,
    /// An image in a registry, `docker.io/library/debian:bookworm` or `host:port/name@sha256:...`:
    /// pulled into launch's store (see `pull`), its layers the lower layers of an overlay root.
    #[serde(default)]
    pub image: Option<Sp<String>>,
    /// An OCI image layout (a directory, or a .tar of one), imported into the store. Relative to
    /// the manifest's folder.
    #[serde(default)]
    pub oci: Option<Sp<String>>,
    /// A `docker save` (or `skopeo copy docker-archive:`) file, imported into the store.
    /// Relative to the manifest's folder.
    #[serde(default)]
    pub docker_archive: Option<Sp<String>>,
    /// For `image`: `"missing"` (default) pulls it unless the store has it, `"always"` pulls
    /// again, `"never"` uses the store's copy or fails.
    #[serde(default)]
    pub pull: Option<Sp<String>>,
    /// For `image`, `oci` and `docker_archive`: the platform to take from a multi-platform
    /// image, `os/arch[/variant]` (default: this machine's).
    #[serde(default)]
    pub platform: Option<Sp<String>>,
    /// With `path` or `host = true`: an overlay over the root whose upper layer lives and dies
    /// with the run (the directory itself, or the host's, is never written). Image and `tar`
    /// roots are such an overlay already.
    #[serde(default)]
    pub writable: Option<Sp<bool>>,
    /// Keep an overlay root's writes in this directory (relative to the manifest; made 0700
    /// when missing, and then only used by this launcher's user and over the same layers)
    /// instead of the state directory: the next run starts with them.
    #[serde(default)]
    pub persist: Option<Sp<String>>,
    /// Make the root filesystem read-only.
    #[serde(default)]
    pub readonly: Option<Sp<bool>>,
    /// `true` (default): pivot_root into the root and detach the old one. `false`: chroot, which
    /// leaves the host's mounts reachable to a process that can escape a chroot.
    #[serde(default)]
    pub pivot_root: Option<Sp<bool>>,
    /// For `tar`: the most file content extraction may write (`"2GiB"`); an archive that
    /// expands past it stops the run before it fills the disk. Default: no bound.
    #[serde(default)]
    pub max_size: Option<Sp<Quantity>>,
}

/// The process to run, and how.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// Program and its first arguments; a name without `/` is looked up in the container's PATH.
    /// Required, except with an image root: there it replaces the image's Entrypoint and Cmd,
    /// and without it the image's Entrypoint runs with `args`, or with its Cmd.
    #[serde(default)]
    pub command: Option<Sp<Vec<Sp<String>>>>,
    /// More arguments, appended to `command` (with an image root and no `command`: they replace
    /// the image's Cmd).
    #[serde(default)]
    pub args: Vec<Sp<String>>,
    /// Environment variables, on top of the defaults (PATH, HOME, TERM, HOSTNAME).
    #[serde(default)]
    pub env: BTreeMap<Sp<String>, Sp<String>>,
    /// Files of `NAME=value` lines (dotenv format) whose variables the process gets, in order,
    /// relative to the manifest that names them. `env` wins over them; they win over the image.
    #[serde(default)]
    pub env_file: Option<Sp<Vec<Sp<String>>>>,
    /// Working directory inside the container (absolute). Default `/`.
    #[serde(default)]
    pub cwd: Option<Sp<String>>,
    /// User inside the container: a uid, or a name from the root filesystem's /etc/passwd.
    /// Default 0.
    #[serde(default)]
    pub user: Option<Sp<IdSpec>>,
    /// Group inside the container: a gid, or a name from its /etc/group. Default: the named
    /// user's primary group, else 0.
    #[serde(default)]
    pub group: Option<Sp<IdSpec>>,
    /// Supplementary groups (gids or names). Default: for a named user, the groups that list it
    /// in /etc/group; else none.
    #[serde(default)]
    pub groups: Option<Sp<Vec<Sp<IdSpec>>>>,
    /// Allocate a pseudo-terminal. Default: when standard input is a terminal.
    #[serde(default)]
    pub terminal: Option<Sp<bool>>,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals to the command.
    #[serde(default)]
    pub init: Option<Sp<bool>>,
    /// Pass the caller's file descriptors 3 to 3+N-1 on to the command (e.g. sockets from
    /// systemd socket activation). Default 0: no descriptor above 2 reaches the container.
    #[serde(default)]
    pub preserve_fds: Option<Sp<i64>>,
    /// Signal `launch stop` sends first, e.g. `"SIGTERM"` (default) or `"SIGINT"`.
    #[serde(default)]
    pub stop_signal: Option<Sp<String>>,
    /// How long `launch stop` waits after the stop signal before killing everything: `"10s"`
    /// (default), `"500ms"`, `"1m"`, or a number of seconds.
    #[serde(default)]
    pub stop_timeout: Option<Sp<Quantity>>,
}

/// Which namespaces the container gets.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    /// Own process ids: the command is PID 1.
    #[serde(default)]
    pub pid: Option<Sp<bool>>,
    /// Own mount table (required: the root filesystem is built in it).
    #[serde(default)]
    pub mount: Option<Sp<bool>>,
    /// Own hostname and domain name.
    #[serde(default)]
    pub uts: Option<Sp<bool>>,
    /// Own System V IPC objects and POSIX message queues.
    #[serde(default)]
    pub ipc: Option<Sp<bool>>,
    /// Own network stack (the default): `true` is `[network] mode = "none"`, `false` is
    /// `mode = "host"`. Prefer `[network]`, which says what the container is connected to.
    #[serde(default)]
    pub net: Option<Sp<bool>>,
    /// Own user ids: `true` maps root to the invoking user; a table gives explicit maps.
    #[serde(default)]
    pub user: Option<Sp<UserNs>>,
    /// Own view of the cgroup tree (rooted at the container's cgroup).
    #[serde(default)]
    pub cgroup: Option<Sp<bool>>,
    /// Own CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets.
    #[serde(default)]
    pub time: Option<Sp<bool>>,
}

/// A user or group: a numeric id, or a name looked up in the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema-gen", schemars(untagged))]
pub enum IdSpec {
    /// A numeric id.
    Id(i64),
    /// A name.
    Name(String),
}

impl<'de> Deserialize<'de> for IdSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IdSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a numeric id or a name")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IdSpec, E> {
                Ok(IdSpec::Id(v))
            }
            /// toml gives integers above i64::MAX as u64: refused, not saturated, so the
            /// diagnostic shows the number as written.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IdSpec, E> {
                i64::try_from(v)
                    .map(IdSpec::Id)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IdSpec, E> {
                Ok(IdSpec::Name(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The user namespace: `true`, `false`, or a table of maps.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema-gen", schemars(untagged))]
pub enum UserNs {
    /// `true`: like `{ map_root = true }`; `false`: no user namespace.
    Enabled(bool),
    /// Explicit settings.
    Config(UserNsConfig),
}

/// User namespace settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UserNsConfig {
    /// Map root (0) inside to the invoking user and group outside, like `unshare -r`.
    #[serde(default)]
    pub map_root: Option<Sp<bool>>,
    /// Explicit uid mappings (at most 340, non-overlapping).
    #[serde(default)]
    pub uid_map: Option<Sp<Vec<Sp<IdMapEntry>>>>,
    /// Explicit gid mappings.
    #[serde(default)]
    pub gid_map: Option<Sp<Vec<Sp<IdMapEntry>>>>,
}

/// One line of /proc/PID/uid_map or gid_map.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IdMapEntry {
    /// First id inside the namespace.
    pub inside: Sp<i64>,
    /// First id outside (on the host).
    pub outside: Sp<i64>,
    /// How many consecutive ids.
    pub count: Sp<i64>,
}

impl<'de> Deserialize<'de> for UserNs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UserNs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a boolean or a table with map_root, uid_map, gid_map")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<UserNs, E> {
                Ok(UserNs::Enabled(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<UserNs, A::Error> {
                UserNsConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(UserNs::Config)
            }
        }
        d.deserialize_any(V)
    }
}

/// Resource limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU bandwidth: `"30%"` of one CPU, a number of CPUs (`1.5`, `"0.5"`), millicpus (`"300m"`),
    /// or `"max"` (no limit).
    #[serde(default)]
    pub cpu: Option<Sp<Quantity>>,
    /// Relative CPU weight, 1–10000 (cgroup v2 `cpu.weight`; converted to v1 `cpu.shares`).
    #[serde(default)]
    pub cpu_weight: Option<Sp<i64>>,
    /// CPUs the container may run on, e.g. `"0-1"` or `"0,2"`.
    #[serde(default)]
    pub cpuset_cpus: Option<Sp<String>>,
    /// Memory nodes the container may use, e.g. `"0"`.
    #[serde(default)]
    pub cpuset_mems: Option<Sp<String>>,
    /// Hard memory limit: `"512MiB"`, `"1Gi"`, `"1G"` (all powers of 1024), bytes, or `"max"` (no
    /// limit).
    #[serde(default)]
    pub memory: Option<Sp<Quantity>>,
    /// Limit of memory plus swap together (like docker's --memory-swap); needs `memory`.
    #[serde(default)]
    pub memory_swap: Option<Sp<Quantity>>,
    /// Soft guarantee: memory kept under pressure (v2 `memory.low`, v1 `soft_limit_in_bytes`).
    #[serde(default)]
    pub memory_reservation: Option<Sp<Quantity>>,
    /// Throttle point above which the kernel reclaims hard (v2 `memory.high`; v2 only).
    #[serde(default)]
    pub memory_high: Option<Sp<Quantity>>,
    /// Maximum number of processes and threads.
    #[serde(default)]
    pub pids: Option<Sp<i64>>,
    /// Relative I/O weight, 1–10000 (v2 `io.weight`; v1 `blkio.weight` 10–1000).
    #[serde(default)]
    pub io_weight: Option<Sp<i64>>,
    /// Per-device I/O bandwidth limits.
    #[serde(default)]
    pub io: Vec<Sp<IoLimit>>,
    /// Parent cgroup (relative to each hierarchy's root). Default `launch`.
    #[serde(default)]
    pub parent: Option<Sp<String>>,
    /// Process resource limits (setrlimit), e.g. `nofile = 1024` or `nofile = { soft = 1024, hard = 4096 }`.
    #[serde(default)]
    pub rlimits: BTreeMap<Sp<String>, Sp<Rlimit>>,
}

/// Bandwidth limits for one block device.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IoLimit {
    /// The block device, as a path (`/dev/vda`) or `"MAJOR:MINOR"`.
    pub device: Sp<String>,
    /// Bytes read per second (`"10MiB"`).
    #[serde(default)]
    pub read_bps: Option<Sp<Quantity>>,
    /// Bytes written per second.
    #[serde(default)]
    pub write_bps: Option<Sp<Quantity>>,
    /// Read operations per second.
    #[serde(default)]
    pub read_iops: Option<Sp<i64>>,
    /// Write operations per second.
    #[serde(default)]
    pub write_iops: Option<Sp<i64>>,
}

/// A resource limit: one number for both soft and hard, or a table.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema-gen", schemars(untagged))]
pub enum Rlimit {
    /// Soft and hard limit alike; `"unlimited"` or a number.
    Both(Quantity),
    /// Separate soft and hard limits.
    Split {
        /// The limit the kernel enforces.
        soft: Quantity,
        /// The ceiling up to which an unprivileged process may raise the soft limit.
        hard: Quantity,
    },
}

impl<'de> Deserialize<'de> for Rlimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Split {
            soft: Quantity,
            hard: Quantity,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Rlimit;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, \"unlimited\", or a table with soft and hard")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Rlimit, E> {
                Ok(Rlimit::Both(Quantity::Int(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Rlimit, E> {
                Ok(Rlimit::Both(Quantity::Str(v.to_owned())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Rlimit, A::Error> {
                let s = Split::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Rlimit::Split {
                    soft: s.soft,
                    hard: s.hard,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A filesystem mounted inside the container.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Filesystem type.
    #[serde(rename = "type")]
    pub kind: Sp<MountKind>,
    /// Absolute path inside the container; created when missing.
    pub target: Sp<String>,
    /// For `bind`: the host path (relative to the manifest's folder).
    #[serde(default)]
    pub source: Option<Sp<String>>,
    /// Read-only.
    #[serde(default)]
    pub ro: Option<Sp<bool>>,
    /// Ignore set-user-id and set-group-id bits.
    #[serde(default)]
    pub nosuid: Option<Sp<bool>>,
    /// Do not interpret device nodes.
    #[serde(default)]
    pub nodev: Option<Sp<bool>>,
    /// Do not allow programs to be executed.
    #[serde(default)]
    pub noexec: Option<Sp<bool>>,
    /// For `bind`: include the mounts below the source (default `true`).
    #[serde(default)]
    pub recursive: Option<Sp<bool>>,
    /// For `tmpfs`: maximum size (`"64MiB"`).
    #[serde(default)]
    pub size: Option<Sp<Quantity>>,
    /// For `tmpfs`: mode of the root directory, octal (`"1777"` or `0o1777`).
    #[serde(default)]
    pub mode: Option<Sp<Quantity>>,
}

/// Filesystem types `launch` mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// The proc filesystem (`ps`, /proc/self).
    Proc,
    /// The sysfs filesystem (read-only unless the container has its own network namespace).
    Sysfs,
    /// A memory-backed filesystem.
    Tmpfs,
    /// A host directory or file.
    Bind,
    /// A new instance of the devpts filesystem (pseudo-terminals).
    Devpts,
    /// POSIX message queues.
    Mqueue,
}

impl MountKind {
    /// The fstype string given to mount(2).
    pub fn fstype(self) -> &'static str {
        match self {
            MountKind::Proc => "proc",
            MountKind::Sysfs => "sysfs",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Bind => "none",
            MountKind::Devpts => "devpts",
            MountKind::Mqueue => "mqueue",
        }
    }
}
