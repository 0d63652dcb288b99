//! Host facts: what this machine can do, read once by one probe.
//!
//! Validation and planning read the host only through [`Host`], so tests inject a [`FakeHost`]
//! and plans are reproducible; the plan's header shows the facts it was made from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sys::caps::CapSet;

/// How cgroups are mounted on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupLayout {
    /// Pure cgroup v2: one unified hierarchy holds every controller.
    V2,
    /// Legacy: one v1 hierarchy per controller.
    V1,
    /// v1 controllers plus a cgroup2 mount (systemd's hybrid mode); limits go through v1.
    Hybrid,
    /// No cgroup filesystem mounted: no limits can be applied.
    None,
}

/// The cgroup side of the host facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupFacts {
    /// v1, v2, hybrid or none.
    pub layout: CgroupLayout,
    /// Where the cgroup2 hierarchy is mounted, if any.
    pub v2_root: Option<PathBuf>,
    /// Controllers the v2 root offers (its `cgroup.controllers`).
    pub v2_controllers: Vec<String>,
    /// v1 controller name → mount point of its hierarchy.
    pub v1: BTreeMap<String, PathBuf>,
    /// Whether memory+swap can be limited (v1 `memory.memsw.*` exists; v2 always).
    pub memory_swap: bool,
    /// The v1 cpuset root's `cpuset.cpus` and `cpuset.mems`: a new v1 cpuset group starts empty and
    /// must be given both before a task can join it.
    pub cpuset_root: Option<(String, String)>,
    /// v1: the blkio hierarchy has `blkio.weight` (only an I/O scheduler with proportional
    /// weights, CFQ, makes it; mq-deadline and none do not). v2: always (io.weight).
    #[serde(default = "yes")]
    pub io_weight: bool,
    /// A non-root launcher on pure v2: its own cgroup, which a delegation (systemd's
    /// `Delegate=yes`) may have given it. `None` for root and on other layouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own: Option<OwnCgroup>,
}

/// The launcher's own v2 cgroup (`0::` in /proc/self/cgroup), as a non-root launcher finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnCgroup {
    /// Its directory under the cgroup2 mount.
    pub dir: PathBuf,
    /// The directory, its `cgroup.procs` and `cgroup.subtree_control` belong to this user
    /// (a delegated subtree: the user may create groups in it and move processes).
    pub delegated: bool,
    /// Its `cgroup.controllers`: what it can give its children.
    pub controllers: Vec<String>,
    /// Processes in it other than the launcher (`cgroup.procs`): with any, the group cannot
    /// give its children controllers (the "no internal processes" rule).
    pub others: usize,
}

/// The leaf of a delegated cgroup a non-root launcher moves itself into, so that the group can
/// give controllers to the containers' groups beside it.
pub const LAUNCHER_LEAF: &str = "launchers";

impl CgroupFacts {
    /// Can `controller` be used to apply limits on this host?
    pub fn has(&self, controller: &str) -> bool {
        match self.layout {
            CgroupLayout::V2 => self.v2_controllers.iter().any(|c| c == controller),
            CgroupLayout::V1 | CgroupLayout::Hybrid => self.v1.contains_key(v1_name(controller)),
            CgroupLayout::None => false,
        }
    }
}

impl CgroupFacts {
    /// The root of the hierarchy that holds `controller`'s files (v2: the one hierarchy).
    pub fn hierarchy(&self, controller: &str) -> Option<&Path> {
        match self.layout {
            CgroupLayout::V2 => self.v2_root.as_deref(),
            CgroupLayout::V1 | CgroupLayout::Hybrid => {
                self.v1.get(v1_name(controller)).map(PathBuf::as_path)
            }
            CgroupLayout::None => None,
        }
    }
}

/// The v1 hierarchy that carries a v2 controller's job.
pub fn v1_name(controller: &str) -> &str {
    match controller {
        "io" => "blkio",
        other => other,
    }
}

/// Everything about the host that validation and planning depend on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Online CPUs.
    pub cpus: u32,
    /// The invoking user's uid and gid (targets of `map_root`).
    pub uid: u32,
    /// The invoking user's gid.
    pub gid: u32,
    /// User namespaces can be created.
    pub user_namespaces: bool,
    /// The kernel has cgroup namespaces.
    pub cgroup_namespace: bool,
    /// The kernel has time namespaces (5.6+).
    pub time_namespace: bool,
    /// Cgroup layout and controllers.
    pub cgroup: CgroupFacts,
    /// Where per-container state lives: `$LAUNCH_STATE_ROOT`, else `/run/launch` for root,
    /// `$XDG_RUNTIME_DIR/launch` for other users.
    pub state_root: PathBuf,
    /// The host's system directories a `host` root is made of, as they are here (merged /usr
    /// makes /bin a symlink).
    #[serde(default)]
    pub host_root: Vec<HostDir>,
    /// The capabilities launch's process may pass on: its bounding set. A container can keep
    /// no other.
    #[serde(default = "every_capability")]
    pub capabilities: CapSet,
    /// What a connected container is told and connected with.
    #[serde(default)]
    pub network: NetworkFacts,
    /// The memory (NUMA) nodes online, as /sys/devices/system/node/online lists them
    /// (`0`, `0-1`); `None` when the kernel does not say.
    #[serde(default)]
    pub numa_nodes: Option<String>,
    /// `fs.nr_open`: the most file descriptors a process may have open (the ceiling of
    /// RLIMIT_NOFILE); `None` when unreadable.
    #[serde(default)]
    pub nr_open: Option<u64>,
    /// A non-root launcher's subordinate ids and the helpers that map them.
    #[serde(default, skip_serializing_if = "SubIds::is_empty")]
    pub subids: SubIds,
}

/// One range of /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// The first id.
    pub start: u64,
    /// How many.
    pub count: u64,
}

impl IdRange {
    /// Whether `[start, start + count)` lies inside this range.
    pub fn holds(&self, start: u64, count: u64) -> bool {
        start >= self.start && start + count <= self.start + self.count
    }
}

/// The caller's subordinate ids (/etc/subuid and /etc/subgid, by user name and by uid, as
/// shadow-utils reads them) and where newuidmap(1) and newgidmap(1) are. Empty for root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubIds {
    /// The caller's name in /etc/passwd.
    #[serde(default)]
    pub user: Option<String>,
    /// Its ranges in /etc/subuid.
    #[serde(default)]
    pub uid: Vec<IdRange>,
    /// Its ranges in /etc/subgid.
    #[serde(default)]
    pub gid: Vec<IdRange>,
    /// newuidmap(1), by absolute path.
    #[serde(default)]
    pub newuidmap: Option<PathBuf>,
    /// newgidmap(1), by absolute path.
    #[serde(default)]
    pub newgidmap: Option<PathBuf>,
}

impl SubIds {
    fn is_empty(&self) -> bool {
        *self == SubIds::default()
    }

    /// Read them for `uid` from the texts of /etc/passwd, /etc/subuid and /etc/subgid.
    pub fn parse(uid: u32, passwd: &str, subuid: &str, subgid: &str) -> SubIds {
        let user = user_name(passwd, uid);
        SubIds {
            uid: sub_ranges(subuid, user.as_deref(), uid),
            gid: sub_ranges(subgid, user.as_deref(), uid),
            user,
            newuidmap: None,
            newgidmap: None,
        }
    }
}

/// The name of `uid` in the text of /etc/passwd.
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// The ranges of /etc/subuid or /etc/subgid (`name:start:count`) that belong to `name` or `uid`.
pub fn sub_ranges(text: &str, name: Option<&str>, uid: u32) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let who = f.next()?;
            let start = f.next()?.parse().ok()?;
            let count = f.next()?.parse().ok()?;
            let mine = Some(who) == name || who.parse::<u32>() == Ok(uid);
            (mine && count > 0).then_some(IdRange { start, count })
        })
        .collect()
}

/// The host's resolvers and network helpers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFacts {
    /// Name servers a container reaches (systemd-resolved's stub resolved; none on loopback).
    #[serde(default)]
    pub nameservers: Vec<std::net::IpAddr>,
    /// Search domains.
    #[serde(default)]
    pub search: Vec<String>,
    /// Where pasta is installed.
    #[serde(default)]
    pub pasta: Option<PathBuf>,
    /// Where slirp4netns is installed.
    #[serde(default)]
    pub slirp4netns: Option<PathBuf>,
    /// /dev/net/tun can be opened by this user (the rootless helpers need it).
    #[serde(default)]
    pub tun: bool,
}

impl NetworkFacts {
    /// Probe: two small reads and a PATH lookup.
    pub fn probe() -> NetworkFacts {
        let (nameservers, search) = crate::sys::net::files::host_resolvers();
        NetworkFacts {
            nameservers,
            search,
            pasta: find_program("pasta"),
            slirp4netns: find_program("slirp4netns"),
            tun: nix::unistd::access(
                "/dev/net/tun",
                nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
            )
            .is_ok(),
        }
    }
}

fn every_capability() -> CapSet {
    CapSet::ALL
}

/// Host directories a `host = true` root is made of, in mount order.
pub const HOST_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];

/// One top-level entry of a `host` root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostDir {
    /// A directory, bound read-only.
    Bind(PathBuf),
    /// A symlink (`/bin -> usr/bin`), recreated as one.
    Symlink(PathBuf, PathBuf),
}

/// The [`HOST_DIRS`] this host has, as `kind` sees them.
pub fn host_root(kind: impl Fn(&Path) -> Option<PathKind>) -> Vec<HostDir> {
    HOST_DIRS
        .iter()
        .filter_map(|d| {
            let p = PathBuf::from(d);
            match kind(&p) {
                Some(PathKind::Dir) => Some(HostDir::Bind(p)),
                Some(PathKind::Symlink(t)) => Some(HostDir::Symlink(p, t)),
                Some(PathKind::File | PathKind::BlockDevice(..) | PathKind::Other) | None => None,
            }
        })
        .collect()
}

impl HostFacts {
    /// How `self` (the facts a plan was made from) differs from `here`, one line per fact, in
    /// words: what `launch run --plan` refuses to run on.
    pub fn differences(&self, here: &HostFacts) -> Vec<String> {
        let HostFacts {
            kernel,
            cpus,
            uid,
            gid,
            user_namespaces,
            cgroup_namespace,
            time_namespace,
            cgroup,
            state_root,
            host_root,
            capabilities,
            network: _,
            numa_nodes: _,
            nr_open: _,
            subids,
        } = self;
        let mut out = Vec::new();
        let mut diff = |what: &str, plan: String, host: String| {
            if plan != host {
                out.push(format!("{what}: {plan} in the plan, {host} here"));
            }
        };
        diff("kernel", kernel.clone(), here.kernel.clone());
        diff("CPUs", cpus.to_string(), here.cpus.to_string());
        diff("uid", uid.to_string(), here.uid.to_string());
        diff("gid", gid.to_string(), here.gid.to_string());
        let yes = |b: bool| if b { "available" } else { "unavailable" }.to_string();
        diff(
            "user namespaces",
            yes(*user_namespaces),
            yes(here.user_namespaces),
        );
        diff(
            "cgroup namespaces",
            yes(*cgroup_namespace),
            yes(here.cgroup_namespace),
        );
        diff(
            "time namespaces",
            yes(*time_namespace),
            yes(here.time_namespace),
        );
        let c = &here.cgroup;
        diff(
            "cgroup layout",
            format!("{:?}", cgroup.layout).to_lowercase(),
            format!("{:?}", c.layout).to_lowercase(),
        );
        diff(
            "cgroup2 mount",
            format!("{:?}", cgroup.v2_root),
            format!("{:?}", c.v2_root),
        );
        diff(
            "cgroup v2 controllers",
            cgroup.v2_controllers.join(" "),
            c.v2_controllers.join(" "),
        );
        diff(
            "cgroup v1 hierarchies",
            format!("{:?}", cgroup.v1),
            format!("{:?}", c.v1),
        );
        diff(
            "swap accounting",
            yes(cgroup.memory_swap),
            yes(c.memory_swap),
        );
        diff(
            "root cpuset",
            format!("{:?}", cgroup.cpuset_root),
            format!("{:?}", c.cpuset_root),
        );
        diff(
            "subordinate ids and helpers",
            format!("{subids:?}"),
            format!("{:?}", here.subids),
        );
        diff(
            "the launcher's own cgroup",
            format!(
                "{:?}",
                cgroup
                    .own
                    .as_ref()
                    .map(|o| (&o.dir, o.delegated, &o.controllers))
            ),
            format!(
                "{:?}",
                c.own
                    .as_ref()
                    .map(|o| (&o.dir, o.delegated, &o.controllers))
            ),
        );
        diff(
            "state root",
            state_root.display().to_string(),
            here.state_root.display().to_string(),
        );
        diff(
            "host system directories",
            format!("{host_root:?}"),
            format!("{:?}", here.host_root),
        );
        diff(
            "launch's bounding capabilities",
            capabilities.names().join(","),
            here.capabilities.names().join(","),
        );
        out
    }
}

/// What a host path is, as far as validation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link and its target, unresolved.
    Symlink(PathBuf),
    /// A block device with its major and minor numbers.
    BlockDevice(u32, u32),
    /// Anything else (char device, socket, fifo).
    Other,
}

/// A root filesystem whose files validation reads: to look user and group names up.
#[derive(Debug, Clone, Copy)]
pub enum RootRef<'a> {
    /// A directory (`rootfs.path`): paths resolve inside it, symlinks included.
    Dir(&'a Path),
    /// An archive (`rootfs.tar`): read to its end.
    Archive(&'a Path, crate::sys::tar::Compression),
    /// The host's own files (`rootfs.host`).
    Host,
    /// An image's unpacked layers, top first: a file is taken from the highest layer that has
    /// it (a whiteout above it is not looked at: an image that deletes /etc/passwd is not one
    /// to name users in).
    Layers(&'a [PathBuf]),
}

/// The host, as validation sees it.
pub trait Host {
    /// The probed facts.
    fn facts(&self) -> &HostFacts;
    /// What `path` is, without following a final symlink; `None` if it does not exist.
    fn path_kind(&self, path: &Path) -> Option<PathKind>;
    /// A file the manifest names (a seccomp profile), at most `max` bytes: its text, or why it
    /// cannot be read.
    fn read_text(&self, path: &Path, max: u64) -> Result<String, String> {
        use std::io::Read;
        let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut text = String::new();
        f.take(max.saturating_add(1))
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        if text.len() as u64 > max {
            return Err(format!("larger than {max} bytes"));
        }
        Ok(text)
    }
    /// Whether `rel` is a directory inside the directory root `root` (symlinks resolved inside
    /// it); `None` when that cannot be said.
    fn dir_in_root(&self, root: &Path, rel: &Path) -> Option<bool> {
        let r = crate::sys::fs::Root::open(root).ok()?;
        Some(match r.open_path(rel) {
            Ok(fd) => nix::sys::stat::fstat(&fd)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR),
            Err(e) if e.errno() == nix::errno::Errno::ENOENT => false,
            Err(_) => return None,
        })
    }
    /// The image a manifest's root names, resolved before validation (pulled or imported, and
    /// unpacked): `key` is [`crate::image::resolve::key`] of the manifest's value.
    fn image(&self, _key: &str) -> Option<&crate::image::resolve::Resolved> {
        None
    }
    /// The files `names` (relative to the root, e.g. `etc/passwd`) of a root filesystem: each
    /// `None` if it has no such file; an error if one cannot be read.
    fn root_files(&self, root: RootRef, names: &[&str]) -> Result<Vec<Option<Vec<u8>>>, String> {
        const MAX: u64 = 8 << 20;
        let err = |e: crate::error::SysError| e.to_string();
        match root {
            RootRef::Dir(dir) => {
                let root = crate::sys::fs::Root::open(dir).map_err(err)?;
                names
                    .iter()
                    .map(|n| root.read(Path::new(n), MAX).map_err(err))
                    .collect()
            }
            RootRef::Archive(archive, compression) => {
                crate::sys::tar::read_files(archive, compression, names).map_err(err)
            }
            RootRef::Host => {
                let root = crate::sys::fs::Root::open(Path::new("/")).map_err(err)?;
                names
                    .iter()
                    .map(|n| root.read(Path::new(n), MAX).map_err(err))
                    .collect()
            }
            RootRef::Layers(layers) => {
                let roots = layers
                    .iter()
                    .map(|l| crate::sys::fs::Root::open(l).map_err(err))
                    .collect::<Result<Vec<_>, _>>()?;
                names
                    .iter()
                    .map(|n| {
                        for r in &roots {
                            if let Some(bytes) = r.read(Path::new(n), MAX).map_err(err)? {
                                return Ok(Some(bytes));
                            }
                        }
                        Ok(None)
                    })
                    .collect()
            }
        }
    }
}

/// The first executable file `name` in `PATH`, /usr/bin or /usr/local/bin.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The real machine.
#[derive(Debug, Clone)]
pub struct RealHost {
    facts: HostFacts,
    images: Vec<crate::image::resolve::Resolved>,
}

impl RealHost {
    /// Probe the machine: a handful of small reads, no subprocesses.
    pub fn probe() -> RealHost {
        RealHost {
            facts: probe_facts(),
            images: Vec::new(),
        }
    }

    /// The same host with an image resolved (see [`Host::image`]).
    pub fn with_image(mut self, image: crate::image::resolve::Resolved) -> RealHost {
        self.images.push(image);
        self
    }
}

impl Host for RealHost {
    fn facts(&self) -> &HostFacts {
        &self.facts
    }
    fn image(&self, key: &str) -> Option<&crate::image::resolve::Resolved> {
        self.images.iter().find(|i| i.key == key)
    }
    fn path_kind(&self, path: &Path) -> Option<PathKind> {
        real_path_kind(path)
    }
}

fn real_path_kind(path: &Path) -> Option<PathKind> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::symlink_metadata(path).ok()?;
    let ft = md.file_type();
    Some(if ft.is_symlink() {
        PathKind::Symlink(std::fs::read_link(path).unwrap_or_default())
    } else if ft.is_dir() {
        PathKind::Dir
    } else if ft.is_file() {
        PathKind::File
    } else if ft.is_block_device() {
        let rdev = md.rdev();
        PathKind::BlockDevice(
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        )
    } else {
        PathKind::Other
    })
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn probe_facts() -> HostFacts {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    // SAFETY: sysconf has no preconditions; it returns -1 on error, which we map to 1.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u32;
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let user_namespaces = read_trim("/proc/sys/user/max_user_namespaces").is_some_and(|v| v != "0");
    let state_root = state_root();
    let mut cgroup =
        probe_cgroups(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let mut subids = SubIds::default();
    if uid != 0 {
        cgroup.own = probe_own_cgroup(&cgroup, uid);
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        subids = SubIds::parse(
            uid,
            &read("/etc/passwd"),
            &read("/etc/subuid"),
            &read("/etc/subgid"),
        );
        subids.newuidmap = find_program("newuidmap");
        subids.newgidmap = find_program("newgidmap");
    }
    HostFacts {
        kernel,
        cpus,
        uid,
        gid,
        user_namespaces,
        cgroup_namespace: Path::new("/proc/self/ns/cgroup").exists(),
        time_namespace: Path::new("/proc/self/ns/time").exists(),
        cgroup,
        state_root,
        host_root: host_root(real_path_kind),
        capabilities: crate::sys::caps::bounding_now(),
        network: NetworkFacts::probe(),
        numa_nodes: read_trim("/sys/devices/system/node/online"),
        nr_open: read_trim("/proc/sys/fs/nr_open").and_then(|v| v.parse().ok()),
        subids,
    }
}

/// A non-root launcher's own v2 cgroup, on a pure v2 host.
fn probe_own_cgroup(cg: &CgroupFacts, uid: u32) -> Option<OwnCgroup> {
    use std::os::unix::fs::MetadataExt;
    if cg.layout != CgroupLayout::V2 {
        return None;
    }
    let root = cg.v2_root.as_ref()?;
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = root.join(path.trim_start_matches('/'));
    let owned = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.uid() == uid);
    let delegated = owned(&dir)
        && owned(&dir.join("cgroup.procs"))
        && owned(&dir.join("cgroup.subtree_control"));
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let me = std::process::id().to_string();
    let others = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim() != me && !l.trim().is_empty())
        .count();
    Some(OwnCgroup {
        dir,
        delegated,
        controllers,
        others,
    })
}

/// Where per-container state lives: `$LAUNCH_STATE_ROOT`, else `/run/launch` for root,
/// `$XDG_RUNTIME_DIR/launch` (or `/tmp/launch-UID`) for other users.
pub fn state_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAUNCH_STATE_ROOT").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let uid = nix::unistd::getuid().as_raw();
    if uid == 0 {
        return PathBuf::from("/run/launch");
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("launch"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/launch-{uid}")))
}

fn yes() -> bool {
    true
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Read the cgroup layout from the text of /proc/self/mountinfo (and the files it points at).
pub fn probe_cgroups(mountinfo: &str) -> CgroupFacts {
    let mut v1 = BTreeMap::new();
    let mut v2_root = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(root), Some(mnt), Some(fstype)) = (pre.get(3), pre.get(4), post.first()) else {
            continue;
        };
        if *root != "/" {
            continue;
        }
        match *fstype {
            "cgroup2" if v2_root.is_none() => v2_root = Some(PathBuf::from(unescape(mnt))),
            "cgroup" => {
                for opt in post.get(2).map(|o| o.split(',')).into_iter().flatten() {
                    if matches!(
                        opt,
                        "cpu"
                            | "cpuacct"
                            | "cpuset"
                            | "memory"
                            | "pids"
                            | "blkio"
                            | "freezer"
                            | "devices"
                    ) {
                        v1.entry(opt.to_owned())
                            .or_insert_with(|| PathBuf::from(unescape(mnt)));
                    }
                }
            }
            _ => {}
        }
    }
    let v2_controllers: Vec<String> = v2_root
        .as_ref()
        .and_then(|r| std::fs::read_to_string(r.join("cgroup.controllers")).ok())
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let layout = match (v1.is_empty(), v2_root.is_some()) {
        (false, true) => CgroupLayout::Hybrid,
        (false, false) => CgroupLayout::V1,
        (true, true) => CgroupLayout::V2,
        (true, false) => CgroupLayout::None,
    };
    let memory_swap = match layout {
        CgroupLayout::V2 => true,
        CgroupLayout::V1 | CgroupLayout::Hybrid => v1
            .get("memory")
            .is_some_and(|m: &PathBuf| m.join("memory.memsw.limit_in_bytes").exists()),
        CgroupLayout::None => false,
    };
    let cpuset_root = v1.get("cpuset").and_then(|m: &PathBuf| {
        let cpus = std::fs::read_to_string(m.join("cpuset.cpus")).ok()?;
        let mems = std::fs::read_to_string(m.join("cpuset.mems")).ok()?;
        Some((cpus.trim().to_owned(), mems.trim().to_owned()))
    });
    let io_weight = match layout {
        CgroupLayout::V2 => true,
        CgroupLayout::V1 | CgroupLayout::Hybrid => v1
            .get("blkio")
            .is_some_and(|m: &PathBuf| m.join("blkio.weight").exists()),
        CgroupLayout::None => false,
    };
    CgroupFacts {
        layout,
        v2_root,
        v2_controllers,
        v1,
        memory_swap,
        cpuset_root,
        io_weight,
        own: None,
    }
}

/// A host made of given facts and a table of paths: for tests and reproducible snapshots.
#[derive(Debug, Clone)]
pub struct FakeHost {
    /// The facts to report.
    pub facts: HostFacts,
    /// Paths that exist.
    pub paths: BTreeMap<PathBuf, PathKind>,
    /// Contents of files in root filesystems, by `<root>/etc/passwd` for a directory or an
    /// archive, `/etc/passwd` for the host's.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// Images resolved before validation.
    pub images: Vec<crate::image::resolve::Resolved>,
}

impl Host for FakeHost {
    fn facts(&self) -> &HostFacts {
        &self.facts
    }
    fn image(&self, key: &str) -> Option<&crate::image::resolve::Resolved> {
        self.images.iter().find(|i| i.key == key)
    }
    fn path_kind(&self, path: &Path) -> Option<PathKind> {
        self.paths.get(path).cloned()
    }
    fn root_files(&self, root: RootRef, names: &[&str]) -> Result<Vec<Option<Vec<u8>>>, String> {
        let base = match root {
            RootRef::Dir(p) | RootRef::Archive(p, _) => p,
            RootRef::Host => Path::new("/"),
            RootRef::Layers(l) => l.first().map_or(Path::new("/"), PathBuf::as_path),
        };
        Ok(names
            .iter()
            .map(|n| self.files.get(&base.join(n)).cloned())
            .collect())
    }
    fn dir_in_root(&self, root: &Path, rel: &Path) -> Option<bool> {
        // Only roots whose insides the fake host lists are known.
        let inside = self.paths.keys().any(|p| p != root && p.starts_with(root));
        inside.then(|| matches!(self.paths.get(&root.join(rel)), Some(PathKind::Dir)))
    }
    fn read_text(&self, path: &Path, max: u64) -> Result<String, String> {
        let bytes = self
            .files
            .get(path)
            .ok_or_else(|| "No such file or directory (os error 2)".to_string())?;
        if bytes.len() as u64 > max {
            return Err(format!("larger than {max} bytes"));
        }
        String::from_utf8(bytes.clone()).map_err(|e| e.to_string())
    }
}

impl FakeHost {
    /// A typical hybrid host like the one `launch` is developed on (Debian 12, merged /usr).
    pub fn hybrid() -> FakeHost {
        let mut v1 = BTreeMap::new();
        for c in [
            "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids",
        ] {
            v1.insert(c.to_owned(), PathBuf::from(format!("/sys/fs/cgroup/{c}")));
        }
        let facts = HostFacts {
            kernel: "6.1.0-test".into(),
            cpus: 2,
            uid: 0,
            gid: 0,
            user_namespaces: true,
            cgroup_namespace: true,
            time_namespace: true,
            cgroup: CgroupFacts {
                layout: CgroupLayout::Hybrid,
                v2_root: Some(PathBuf::from("/sys/fs/cgroup/unified")),
                v2_controllers: vec![],
                v1,
                memory_swap: false,
                cpuset_root: Some(("0-1".into(), "0".into())),
                // mq-deadline, as here: no blkio.weight.
                io_weight: false,
                own: None,
            },
            state_root: PathBuf::from("/run/launch"),
            host_root: vec![],
            capabilities: CapSet::ALL,
            network: NetworkFacts {
                nameservers: vec![std::net::IpAddr::from([192, 0, 2, 53])],
                search: vec!["example.internal".into()],
                pasta: Some(PathBuf::from("/usr/bin/pasta")),
                slirp4netns: Some(PathBuf::from("/usr/bin/slirp4netns")),
                tun: true,
            },
            numa_nodes: Some("0".into()),
            nr_open: Some(1_048_576),
            subids: SubIds::default(),
        };
        let mut paths = BTreeMap::new();
        for d in ["/usr", "/etc", "/dev", "/tmp"] {
            paths.insert(PathBuf::from(d), PathKind::Dir);
        }
        for (l, t) in [
            ("/bin", "usr/bin"),
            ("/sbin", "usr/sbin"),
            ("/lib", "usr/lib"),
            ("/lib64", "usr/lib64"),
        ] {
            paths.insert(PathBuf::from(l), PathKind::Symlink(PathBuf::from(t)));
        }
        paths.insert(PathBuf::from("/dev/vda"), PathKind::BlockDevice(254, 0));
        let mut facts = facts;
        facts.host_root = host_root(|p| paths.get(p).cloned());
        FakeHost {
            facts,
            paths,
            files: BTreeMap::new(),
            images: Vec::new(),
        }
    }

    /// The same machine booted with pure cgroup v2.
    pub fn v2() -> FakeHost {
        let mut h = FakeHost::hybrid();
        h.facts.cgroup = CgroupFacts {
            layout: CgroupLayout::V2,
            v2_root: Some(PathBuf::from("/sys/fs/cgroup")),
            v2_controllers: [
                "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc",
            ]
            .map(str::to_owned)
            .to_vec(),
            v1: BTreeMap::new(),
            memory_swap: true,
            cpuset_root: None,
            io_weight: true,
            own: None,
        };
        h
    }

    /// The same host as `alice` (uid and gid 1000) with 65536 subordinate ids from 100000 in
    /// /etc/subuid and /etc/subgid, and newuidmap and newgidmap in /usr/bin.
    pub fn rootless(mut self) -> FakeHost {
        let f = &mut self.facts;
        f.uid = 1000;
        f.gid = 1000;
        f.state_root = PathBuf::from("/run/user/1000/launch");
        let range = IdRange {
            start: 100_000,
            count: 65_536,
        };
        f.subids = SubIds {
            user: Some("alice".into()),
            uid: vec![range],
            gid: vec![range],
            newuidmap: Some(PathBuf::from("/usr/bin/newuidmap")),
            newgidmap: Some(PathBuf::from("/usr/bin/newgidmap")),
        };
        self
    }

    /// The same host with the launcher in `dir` under the cgroup2 root, delegated to the
    /// caller with `controllers` (systemd-run --user --scope -p Delegate=yes).
    pub fn delegated(mut self, dir: &str, controllers: &[&str]) -> FakeHost {
        let root = self.facts.cgroup.v2_root.clone().unwrap_or_default();
        self.facts.cgroup.own = Some(OwnCgroup {
            dir: root.join(dir),
            delegated: true,
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            others: 0,
        });
        self
    }

    /// Declare that a path exists.
    pub fn with_path(mut self, path: impl Into<PathBuf>, kind: PathKind) -> FakeHost {
        self.paths.insert(path.into(), kind);
        self
    }

    /// The same host with a file in a root filesystem (see [`FakeHost::files`]).
    pub fn with_file(mut self, path: impl Into<PathBuf>, text: &str) -> FakeHost {
        self.files.insert(path.into(), text.as_bytes().to_vec());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_mountinfo() {
        let mi = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
";
        let f = probe_cgroups(mi);
        assert_eq!(f.layout, CgroupLayout::Hybrid);
        assert_eq!(f.v1.get("cpu"), Some(&PathBuf::from("/sys/fs/cgroup/cpu")));
        assert_eq!(
            f.v1.get("cpuacct"),
            Some(&PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert!(!f.v1.contains_key("name=systemd"));
        assert_eq!(f.v2_root, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert!(f.has("memory") && !f.has("pids"));
    }

    #[test]
    fn pure_v2_and_none() {
        let f = probe_cgroups("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert_eq!(f.layout, CgroupLayout::V2);
        assert_eq!(probe_cgroups("").layout, CgroupLayout::None);
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
