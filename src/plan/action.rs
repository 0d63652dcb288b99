//! [`Action`]: what a plan step does, as data, and how it reads as a system call.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Side, Undo};
pub use crate::sys::clone::CloneFlag;
use crate::sys::devices::DeviceRule;
use crate::sys::idmap::OwnerShift;
pub use crate::sys::mount::{MountAttr, MountFlag};
use crate::sys::tar::Compression;

/// What a step does: on the host, in the launcher, or in the container process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Action {
    /// In the launcher, on the host: visible to the host, so it may have an undo.
    Host(HostAction),
    /// In the container process, inside its namespaces: gone when they are.
    Container(ContainerAction),
}

/// A step the launcher runs on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HostAction {
    /// Clean up after dead launchers (`launch gc`), then make sure no other instance of this
    /// name runs, unless the manifest allows several.
    Claim {
        /// The manifest's name.
        name: String,
        /// Several instances allowed.
        multiple: bool,
    },
    /// Create the instance's state directory (holds the undo journal); with `mount_point`, also
    /// `root` in it, where an archive is extracted. Otherwise the container's root is mounted on
    /// the state directory itself, in the container's own mount namespace: the host keeps
    /// seeing the journal, and a run makes one directory fewer.
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Also create `<path>/root` (plans of format 1 written before this field always did).
        #[serde(default = "yes")]
        mount_point: bool,
        /// The host gid of the container's root when a user namespace maps it to another host
        /// user: that group may traverse the directory (0710) to build the root; no other user
        /// may (0700), so no other user of the host reaches an extracted root or the journal.
        #[serde(default)]
        group: Option<u32>,
    },
    /// Create a cgroup directory shared by all containers (kept: others may be using it).
    CgroupParent {
        /// The directory.
        path: PathBuf,
    },
    /// Enable controllers for children in a v2 group's `cgroup.subtree_control`.
    CgroupEnable {
        /// The `cgroup.subtree_control` file.
        path: PathBuf,
        /// Controllers, without `+`.
        controllers: Vec<String>,
    },
    /// Create the container's own cgroup.
    CgroupCreate {
        /// The directory.
        path: PathBuf,
    },
    /// Write a limit into a cgroup file.
    CgroupWrite {
        /// The file.
        path: PathBuf,
        /// The exact text written.
        value: String,
    },
    /// cgroup v2: load the eBPF program that enforces a device allow-list and attach it to the
    /// container's group, before any process is in it (cgroup v1 takes `devices.*` writes).
    DeviceFilter {
        /// The container's cgroup v2 directory.
        cgroup: PathBuf,
        /// The rules, in order (the program is generated from them when the step runs).
        rules: Vec<DeviceRule>,
    },
    /// cgroup v1: give the container's `devices` group a device allow-list, before any process
    /// is in it. Nothing to write when `devices.list` shows the group inherited exactly these
    /// rules from its [`HostAction::DeviceParent`]; otherwise its default to `devices.deny` or
    /// `devices.allow`, then each exception, one write(2) per rule on one descriptor per file
    /// (each open of a cgroup file costs more than the write).
    DeviceList {
        /// The container's group in the `devices` hierarchy.
        cgroup: PathBuf,
        /// The rules, in order (what is written is the state they leave).
        rules: Vec<DeviceRule>,
    },
    /// cgroup v1: make sure the shared group whose device list is `rules` holds exactly that
    /// list (kept, like the parent above it). An existing group is read back (`devices.list`)
    /// and kept only when it shows exactly the list; one with another list is taken out of the
    /// way (removed when empty, else renamed `<name>.stale-<pid>`), and a missing one is made:
    /// configured under a temporary name, then renamed into place. The container joins the
    /// group (its `tasks` file is among the [`HostAction::CgroupOpen`]s); only where another
    /// controller it uses is co-mounted with `devices` does it get a group of its own, made
    /// under this one, which starts with a copy of its list (its [`HostAction::DeviceList`]
    /// then finds nothing to write).
    DeviceParent {
        /// The group, `devices-` and a digest of the list, under the shared parent.
        path: PathBuf,
        /// The rules.
        rules: Vec<DeviceRule>,
    },
    /// Hold an image's layers in the store for the run (a shared lock on each, which `launch
    /// prune` and `rmi` respect), checking that each is unpacked and complete.
    HoldLayers {
        /// The store.
        store: PathBuf,
        /// The layers' diff_ids.
        layers: Vec<String>,
    },
    /// Take the directory an overlay root's writes are kept in (`[rootfs] persist`) for the
    /// run: made 0700 if missing; else it must be a directory of the launcher's user that no
    /// one else may write. Locked (`flock(LOCK_EX|LOCK_NB)`) so one container at a time uses
    /// it, and bound to the lower layers it was first used over (`lowers.json`): writes made
    /// over other layers are refused, not mixed. Kept after the run.
    PersistDir {
        /// The directory (absolute).
        dir: PathBuf,
        /// The overlay's lower directories, top first.
        lowers: Vec<PathBuf>,
    },
    /// Make the overlay's upper and work directories (in the state directory, which they go
    /// with; or in a `persist` directory, where existing ones are kept).
    OverlayDirs {
        /// The upper directory: the container's writes.
        upper: PathBuf,
        /// overlayfs's work directory.
        work: PathBuf,
        /// The host uid and gid of the container's root, when a user namespace maps it to
        /// another host user: new directories are given to it, so it may write them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<(u32, u32)>,
    },
    /// For each layer, an idmapped, read-only copy (open_tree + mount_setattr
    /// MOUNT_ATTR_IDMAP with the container's user namespace), sent to the container process,
    /// which attaches it ([`ContainerAction::AttachLayers`]). After the id maps are written.
    IdmapLayers {
        /// The layers' directories, in the order [`ContainerAction::AttachLayers`] lists them.
        layers: Vec<PathBuf>,
        /// Where the container attaches each (directories it makes in its tmpfs on the state
        /// directory).
        at: Vec<PathBuf>,
    },
    /// Make sure bridge `name` exists, has the subnet's first address and is up, that its
    /// `route_localnet` is on (ports published on the host's loopback reach containers), and
    /// that nftables table `inet launch` and the bridge's rules (masquerade, the loopback
    /// guard) exist. Kept, like the cgroup parent: shared by every container on it.
    NetBridge {
        /// The bridge.
        name: String,
        /// Its subnet.
        subnet: crate::spec::Subnet,
    },
    /// `net.ipv4.ip_forward = 1` on the host, because the manifest asks (kept: it is the
    /// host's setting for every interface).
    IpForward,
    /// Lease the container an address on the bridge (the lowest free one, or `address`), in
    /// `dir`'s lease file under its lock; held by the launcher.
    LeaseAddress {
        /// The directory of the lease file (the state root).
        dir: PathBuf,
        /// The bridge.
        bridge: String,
        /// Its subnet.
        subnet: crate::spec::Subnet,
        /// The address asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<std::net::Ipv4Addr>,
    },
    /// Publish the container's ports: elements of the port maps of nftables table
    /// `inet launch` (`create element`, in one transaction: a port another container holds
    /// fails it), each mapping a host address and port to the leased address and the
    /// container's port.
    PublishPorts {
        /// The published ports.
        ports: Vec<crate::spec::Port>,
    },
    /// Write the container's /etc/resolv.conf, /etc/hosts and /etc/hostname into `dir` (the
    /// state directory), which the container binds over its own.
    NetworkFiles {
        /// Where.
        dir: PathBuf,
        /// The files, as they are written (`{address}`: the container's address).
        files: crate::sys::net::files::Files,
    },
    /// A veth pair: `host` on the bridge and up, `peer` made in the container's network
    /// namespace with the leased address, up, and a default route via the bridge.
    Veth {
        /// The bridge.
        bridge: String,
        /// The host's end (at most 15 bytes).
        host: String,
        /// The container's end.
        peer: String,
        /// The bridge's subnet.
        subnet: crate::spec::Subnet,
    },
    /// Start the helper that connects a rootless container's network namespace (pasta or
    /// slirp4netns) and wait until it has configured it.
    NetHelper {
        /// The helper's argv (`{pid}`: the container process).
        argv: Vec<String>,
    },
    /// Extract a rootfs archive into a fresh directory.
    ExtractRootfs {
        /// The archive.
        archive: PathBuf,
        /// Its compression.
        compression: Compression,
        /// The directory it is extracted into.
        dest: PathBuf,
        /// With a user namespace (and a privileged launcher): the archive's owners are ids
        /// inside the container, so each is written as the host id its maps give it.
        #[serde(default)]
        owners: Option<OwnerShift>,
        /// Stop once this many bytes of file content are written (`[rootfs] max_size`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_size: Option<u64>,
    },
    /// Create the container process with its namespaces, stopped until released.
    Spawn {
        /// Namespaces (and CLONE_INTO_CGROUP).
        flags: Vec<CloneFlag>,
        /// The v2 cgroup the child starts in, with CLONE_INTO_CGROUP.
        cgroup: Option<PathBuf>,
        /// The container has no pid namespace of its own, whose end would kill everything it
        /// started: the launcher becomes the subreaper of its processes (orphans are re-parented
        /// to it) and kills those left when the run ends.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        subreaper: bool,
    },
    /// Write the container's id map or setgroups policy (`/proc/{pid}/...`).
    WriteIdMap {
        /// `/proc/{pid}/uid_map`, `gid_map` or `setgroups`.
        path: PathBuf,
        /// The exact text written.
        value: String,
    },
    /// A non-root launcher maps ids beyond its own through a setuid helper: `newuidmap PID
    /// inside outside count ...` or `newgidmap ...`, which checks each range against
    /// /etc/subuid or /etc/subgid and writes the map (and, for gids, setgroups).
    IdMapHelper {
        /// The helper's argv, absolute path first (`{pid}`: the container process).
        argv: Vec<String>,
    },
    /// A non-root launcher in a delegated cgroup moves itself into this leaf of it (made if
    /// missing, kept): a group with processes cannot give its children controllers.
    CgroupLeaf {
        /// The leaf (`<delegated group>/launchers`).
        path: PathBuf,
    },
    /// Open a v1 group's `tasks` file for the container process, which inherits the descriptor
    /// and moves itself with [`Action::CgroupEnter`].
    CgroupOpen {
        /// The group's `tasks` file.
        path: PathBuf,
    },
    /// Let the container process continue past the handshake, and wait until it runs its
    /// command.
    Release,
    /// Let the container process continue past the handshake with its own setup, which stops
    /// before the command at [`ContainerAction::AwaitNetwork`]: the launcher connects its network
    /// meanwhile (`Veth`), then sends [`HostAction::NetworkReady`].
    ReleaseUntilNetwork,
    /// Tell the container process its network is connected, and wait until it runs its command.
    NetworkReady,
    /// Let the container process continue past the handshake with its own setup, without
    /// waiting for it: the launcher does [`HostAction::PrepareProc`] meanwhile, then
    /// [`HostAction::AwaitStart`].
    ReleaseEarly,
    /// Meanwhile, make the container's /proc (crate::sys::procfs): a procfs instance for its
    /// pid namespace, made detached with `attrs`, `readonly` then `masked` applied on it (paths
    /// inside the container, all under /proc, where this kernel has them), sent to the container
    /// process for [`ContainerAction::AttachProc`]. A kernel that cannot (before Linux 6.15)
    /// gets the word sent instead, and the container process mounts its /proc itself.
    PrepareProc {
        /// Attributes of the proc mount.
        attrs: Vec<crate::sys::mount::MountAttr>,
        /// Masked paths under /proc.
        masked: Vec<PathBuf>,
        /// Read-only paths under /proc.
        readonly: Vec<PathBuf>,
    },
    /// Wait until the container process runs its command (or reports what failed).
    AwaitStart,
    /// Wait for the container to exit; its status becomes launch's.
    Wait,
}

/// A step the container process runs on itself, inside its namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ContainerAction {
    /// The container process moves itself into its v1 groups: `write(fd, "0")` to each `tasks`
    /// file opened by [`HostAction::CgroupOpen`] (one thread moving itself takes no threadgroup lock,
    /// so no RCU grace period; the file's opener, root, is whose permission counts).
    CgroupEnter {
        /// The `tasks` files, in the order they were opened.
        paths: Vec<PathBuf>,
    },
    /// unshare(2) a namespace that must start after the handshake (cgroup: after the join).
    Unshare {
        /// The namespace.
        flags: Vec<CloneFlag>,
    },
    /// Join a new anonymous session keyring, so the caller's keys are not the container's.
    SessionKeyring,
    /// setns(2) into an existing namespace by path (before pivot_root: the path is the host's).
    Setns {
        /// The namespace file (`/proc/PID/ns/net`, `/run/netns/NAME`).
        path: PathBuf,
        /// Its kind (the kernel checks the file is one).
        kind: CloneFlag,
    },
    /// Bring the loopback interface up in the new network namespace.
    LoopbackUp,
    /// Wait for the launcher to say the network is connected ([`HostAction::NetworkReady`]).
    AwaitNetwork,
    /// Attach the /proc the launcher made ([`HostAction::PrepareProc`]) on `target`; if the
    /// launcher's kernel could not make it, mount proc there with `flags` and apply `readonly`
    /// then `masked` here, as the launcher would have.
    AttachProc {
        /// The mount point (made by the step before).
        target: PathBuf,
        /// mount(2) flags of the proc mount, when made here.
        flags: Vec<MountFlag>,
        /// Masked paths under /proc (paths inside the container).
        masked: Vec<PathBuf>,
        /// Read-only paths under /proc.
        readonly: Vec<PathBuf>,
    },
    /// Change mount propagation of a mount tree.
    Propagation {
        /// The mount point.
        target: PathBuf,
        /// MS_REC with MS_PRIVATE or MS_SLAVE.
        flags: Vec<MountFlag>,
    },
    /// Create a directory (and its parents) unless it exists.
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// Mode of what is created.
        mode: u32,
    },
    /// Create an empty file unless it exists (a mount point for a file bind).
    Touch {
        /// The file.
        path: PathBuf,
    },
    /// mknod(2) a character device (a minimal /dev without a user namespace, as crun does).
    Mknod {
        /// The device node.
        path: PathBuf,
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
        /// Permission bits (applied exactly: the umask is cleared around the call).
        mode: u32,
    },
    /// Create a symbolic link.
    Symlink {
        /// What the link points to.
        target: String,
        /// The link itself.
        link: PathBuf,
    },
    /// mount(2).
    Mount {
        /// Source (a path for binds, else the filesystem's name).
        source: String,
        /// Mount point.
        target: PathBuf,
        /// Filesystem type (`none` for binds).
        fstype: String,
        /// Flags.
        flags: Vec<MountFlag>,
        /// Filesystem options, if any.
        data: Option<String>,
    },
    /// Mount an overlay: the image's layers as its lower layers (top first), and, for a
    /// writable root, an upper and a work directory. With the new mount API each layer is its
    /// own `lowerdir+` option, so no option string limits how many there are.
    Overlay {
        /// Mount point.
        target: PathBuf,
        /// The lower layers, top first.
        lowers: Vec<PathBuf>,
        /// Upper and work directories; `None`: a read-only overlay.
        upper: Option<(PathBuf, PathBuf)>,
        /// `userxattr`: overlayfs keeps its own attributes as `user.overlay.*`, which a mount in
        /// a user namespace may write (`trusted.*` needs the host's CAP_SYS_ADMIN).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        userxattr: bool,
        /// `volatile`: the upper directory dies with the run, so overlayfs need not sync it
        /// (Linux 5.10+). Never with a `persist` directory.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        volatile: bool,
    },
    /// Attach, over each layer's path (in this mount namespace only), the idmapped copy of it
    /// the launcher made ([`HostAction::IdmapLayers`]), so the overlay's lowers show the
    /// store's ids as the container's.
    AttachLayers {
        /// The layers, in the order the launcher sent their copies.
        layers: Vec<PathBuf>,
    },
    /// mount_setattr(2): change attributes of a mount (read-only, nosuid...) without clearing
    /// the locked ones, as a remount would try to.
    SetAttr {
        /// Mount point.
        target: PathBuf,
        /// Attributes to set.
        attrs: Vec<MountAttr>,
        /// Apply to every mount below too (AT_RECURSIVE).
        recursive: bool,
    },
    /// pivot_root(2) into the new root and detach the old one.
    PivotRoot {
        /// The new root.
        new_root: PathBuf,
    },
    /// chroot(2): only when the manifest asks (`pivot_root = false`).
    Chroot {
        /// The new root.
        path: PathBuf,
    },
    /// sethostname(2).
    SetHostname {
        /// The name.
        name: String,
    },
    /// setdomainname(2).
    SetDomainname {
        /// The name.
        name: String,
    },
    /// setrlimit(2).
    Setrlimit {
        /// `RLIMIT_NOFILE` etc.
        resource: crate::sys::rlimit::RlimitResource,
        /// Soft limit (`None`: unlimited).
        soft: Option<u64>,
        /// Hard limit (`None`: unlimited).
        hard: Option<u64>,
    },
    /// setgroups, setgid, setuid, in that order.
    SetIds {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
        /// Supplementary groups.
        groups: Vec<u32>,
        /// PR_SET_KEEPCAPS around the change: leaving uid 0 with capabilities to keep (the
        /// kernel clears the permitted set otherwise).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_caps: bool,
    },
    /// Hide paths of the new root from the container (before pivot_root, resolved inside the
    /// root): /dev/null bound over files, an empty read-only tmpfs over directories. Paths this
    /// kernel (or the root) lacks are skipped.
    MaskPaths {
        /// The new root.
        root: PathBuf,
        /// Paths inside it.
        paths: Vec<PathBuf>,
    },
    /// Make paths of the new root read-only (bound onto themselves, then mount_setattr
    /// MOUNT_ATTR_RDONLY recursively). Paths this kernel (or the root) lacks are skipped.
    ReadonlyPaths {
        /// The new root.
        root: PathBuf,
        /// Paths inside it.
        paths: Vec<PathBuf>,
    },
    /// Drop from the bounding set every capability not kept: nothing the process executes can
    /// ever hold more.
    CapBounding {
        /// The capabilities kept.
        keep: crate::sys::caps::CapSet,
    },
    /// capset(2) the effective, permitted and inheritable sets, then the ambient set.
    Capabilities {
        /// The sets.
        sets: crate::sys::caps::CapSets,
    },
    /// prctl(PR_SET_NO_NEW_PRIVS): execve never grants privileges from here on.
    NoNewPrivs,
    /// seccomp(2) a filter: every later call of the process and its children goes through it.
    Seccomp {
        /// The compiled filter (name, rule count, digest, BPF instructions).
        filter: crate::sys::seccomp::Program,
        /// The rules it was compiled from, as the profile gave them.
        profile: crate::sys::seccomp::Profile,
        /// SECCOMP_FILTER_FLAG_LOG: denials are logged.
        log: bool,
    },
    /// chdir(2).
    Chdir {
        /// The working directory.
        path: PathBuf,
    },
    /// If the run uses a terminal: open a pty in the container's devpts, make its slave the
    /// controlling terminal and standard streams of a new session, and pass the master to launch.
    Terminal,
    /// execve(2) of the command (PATH lookup when argv\[0\] has no `/`).
    Exec {
        /// Arguments, argv\[0\] first.
        argv: Vec<String>,
        /// The environment, `NAME=value`, sorted.
        env: Vec<String>,
        /// Fork first: PID 1 stays as `launch-init`, reaping zombies and forwarding signals.
        #[serde(default)]
        init: bool,
        /// Descriptors 3 to 3+N-1 are passed on to the command on purpose; every other one
        /// above 2 is closed by the execve (and in init).
        #[serde(default)]
        preserve_fds: u32,
    },
}

impl From<HostAction> for Action {
    fn from(a: HostAction) -> Action {
        Action::Host(a)
    }
}

impl From<ContainerAction> for Action {
    fn from(a: ContainerAction) -> Action {
        Action::Container(a)
    }
}

impl Action {
    /// Where the action runs.
    pub fn side(&self) -> Side {
        match self {
            Action::Host(_) => Side::Host,
            Action::Container(_) => Side::Container,
        }
    }

    /// How the executor undoes this action, if it leaves something on the host. Steps inside the
    /// container's namespaces need none: the namespaces die with their last process.
    pub fn undo(&self) -> Option<Undo> {
        match self {
            Action::Host(a) => a.undo(),
            Action::Container(_) => None,
        }
    }

    /// Apply `f` to every host path this action names (not to the command's arguments,
    /// environment or symlink contents, which are the user's data). Bind sources are strings
    /// in the plan; absolute ones are mapped as paths.
    pub fn map_paths(&mut self, f: &mut dyn FnMut(&Path) -> PathBuf) {
        match self {
            Action::Host(a) => a.map_paths(f),
            Action::Container(a) => a.map_paths(f),
        }
    }
}

impl HostAction {
    /// How the executor undoes this action, if it leaves something on the host.
    pub fn undo(&self) -> Option<Undo> {
        use HostAction::*;
        match self {
            StateDir { path, .. } => Some(Undo::RemoveTree { path: path.clone() }),
            CgroupCreate { path } => Some(Undo::RemoveCgroup { path: path.clone() }),
            ExtractRootfs { dest, .. } => Some(Undo::RemoveTree { path: dest.clone() }),
            Spawn { .. } => Some(Undo::KillContainer),
            LeaseAddress { dir, bridge, .. } => Some(Undo::ReleaseAddress {
                dir: dir.clone(),
                bridge: bridge.clone(),
            }),
            PublishPorts { ports } => Some(Undo::UnpublishPorts {
                ports: ports.clone(),
            }),
            Veth { host, .. } => Some(Undo::DeleteLink { name: host.clone() }),
            NetHelper { .. } => Some(Undo::KillHelper),
            // Kept on purpose: shared by every container (like the cgroup parent), or written
            // into something another undo removes (a device program goes with its group).
            Claim { .. }
            | NetBridge { .. }
            | IpForward
            | NetworkFiles { .. }
            | DeviceFilter { .. }
            | DeviceList { .. }
            | DeviceParent { .. }
            | HoldLayers { .. }
            | PersistDir { .. }
            | OverlayDirs { .. }
            | IdmapLayers { .. }
            | CgroupParent { .. }
            | CgroupEnable { .. }
            | CgroupWrite { .. }
            | WriteIdMap { .. }
            | IdMapHelper { .. }
            | CgroupLeaf { .. }
            | CgroupOpen { .. }
            | Release
            | ReleaseUntilNetwork
            | NetworkReady
            | ReleaseEarly
            | PrepareProc { .. }
            | AwaitStart
            | Wait => None,
        }
    }

    fn map_paths(&mut self, f: &mut dyn FnMut(&Path) -> PathBuf) {
        use HostAction::*;
        match self {
            StateDir { path, .. }
            | CgroupParent { path }
            | CgroupEnable { path, .. }
            | CgroupCreate { path }
            | CgroupWrite { path, .. }
            | WriteIdMap { path, .. }
            | CgroupOpen { path }
            | CgroupLeaf { path }
            | DeviceParent { path, .. } => *path = f(path),
            DeviceFilter { cgroup, .. } | DeviceList { cgroup, .. } => *cgroup = f(cgroup),
            ExtractRootfs { archive, dest, .. } => {
                *archive = f(archive);
                *dest = f(dest);
            }
            HoldLayers { store, .. } => *store = f(store),
            LeaseAddress { dir, .. } | NetworkFiles { dir, .. } => *dir = f(dir),
            PersistDir { dir, lowers } => {
                *dir = f(dir);
                for l in lowers.iter_mut() {
                    *l = f(l);
                }
            }
            OverlayDirs { upper, work, .. } => {
                *upper = f(upper);
                *work = f(work);
            }
            IdmapLayers { layers, at } => {
                for l in layers.iter_mut().chain(at.iter_mut()) {
                    *l = f(l);
                }
            }
            Spawn { cgroup, .. } => {
                if let Some(c) = cgroup {
                    *c = f(c);
                }
            }
            Claim { .. }
            | NetBridge { .. }
            | IpForward
            | PublishPorts { .. }
            | Veth { .. }
            | NetHelper { .. }
            | IdMapHelper { .. }
            | Release
            | ReleaseUntilNetwork
            | NetworkReady
            | ReleaseEarly
            | PrepareProc { .. }
            | AwaitStart
            | Wait => {}
        }
    }

    /// Names made from the instance's id, which are not paths: the rules' tag and the veth's
    /// host end.
    pub(crate) fn map_names(&mut self, f: &dyn Fn(&str) -> String) {
        use HostAction::*;
        match self {
            Veth { host, .. } => *host = f(host),
            NetHelper { argv } => {
                for a in argv.iter_mut() {
                    *a = f(a);
                }
            }
            Claim { .. }
            | StateDir { .. }
            | CgroupParent { .. }
            | CgroupEnable { .. }
            | CgroupCreate { .. }
            | CgroupWrite { .. }
            | DeviceFilter { .. }
            | DeviceList { .. }
            | DeviceParent { .. }
            | HoldLayers { .. }
            | PersistDir { .. }
            | OverlayDirs { .. }
            | IdmapLayers { .. }
            | NetBridge { .. }
            | IpForward
            | LeaseAddress { .. }
            | PublishPorts { .. }
            | NetworkFiles { .. }
            | ExtractRootfs { .. }
            | Spawn { .. }
            | WriteIdMap { .. }
            | IdMapHelper { .. }
            | CgroupLeaf { .. }
            | CgroupOpen { .. }
            | Release
            | ReleaseUntilNetwork
            | NetworkReady
            | ReleaseEarly
            | PrepareProc { .. }
            | AwaitStart
            | Wait => {}
        }
    }
}

impl ContainerAction {
    fn map_paths(&mut self, f: &mut dyn FnMut(&Path) -> PathBuf) {
        use ContainerAction::*;
        match self {
            Mkdir { path, .. }
            | Touch { path }
            | Mknod { path, .. }
            | Chroot { path }
            | Chdir { path } => *path = f(path),
            Propagation { target, .. } | SetAttr { target, .. } | AttachProc { target, .. } => {
                *target = f(target)
            }
            Symlink { link, .. } => *link = f(link),
            Mount { source, target, .. } => {
                *target = f(target);
                if source.starts_with('/') {
                    *source = f(Path::new(source.as_str())).to_string_lossy().into_owned();
                }
            }
            PivotRoot { new_root } => *new_root = f(new_root),
            AttachLayers { layers } => {
                for l in layers.iter_mut() {
                    *l = f(l);
                }
            }
            Overlay {
                target,
                lowers,
                upper,
                ..
            } => {
                *target = f(target);
                for l in lowers.iter_mut() {
                    *l = f(l);
                }
                if let Some((u, w)) = upper {
                    *u = f(u);
                    *w = f(w);
                }
            }
            MaskPaths { root, .. } | ReadonlyPaths { root, .. } => *root = f(root),
            CgroupEnter { paths } => {
                for p in paths.iter_mut() {
                    *p = f(p);
                }
            }
            Terminal
            | Unshare { .. }
            | SessionKeyring
            | Setns { .. }
            | LoopbackUp
            | AwaitNetwork
            | SetHostname { .. }
            | SetDomainname { .. }
            | Setrlimit { .. }
            | SetIds { .. }
            | CapBounding { .. }
            | Capabilities { .. }
            | NoNewPrivs
            | Seccomp { .. }
            | Exec { .. } => {}
        }
    }
}

fn join<T: fmt::Debug>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(sep)
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Host(a) => a.fmt(f),
            Action::Container(a) => a.fmt(f),
        }
    }
}

impl fmt::Display for HostAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HostAction::*;
        match self {
            StateDir {
                path,
                mount_point,
                group,
            } => {
                match group {
                    Some(g) => write!(f, "mkdir({path:?}, 0710); chown({path:?}, -1, {g})")?,
                    None => write!(f, "mkdir({path:?}, 0700)")?,
                }
                if *mount_point {
                    write!(f, "; mkdir({:?}, 0755)", path.join("root"))?;
                }
                Ok(())
            }
            NetBridge { name, subnet } => write!(
                f,
                "unless it exists: RTM_NEWLINK(dev {name:?} type bridge); then RTM_NEWADDR({}/{} \
                 dev {name:?}), RTM_NEWLINK(dev {name:?} up); write \
                 /proc/sys/net/ipv4/conf/{name}/route_localnet \u{2190} \"1\"; unless \
                 NFT_MSG_GETCHAIN finds chain launch-v2: nft -f -: {}; unless it finds chain \
                 bridge-{name}: nft -f -: {} (kept)",
                subnet.gateway(),
                subnet.prefix(),
                crate::sys::net::firewall::TABLE_SCRIPT
                    .replace(['\n', '\t'], " ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                crate::sys::net::firewall::bridge_script(name, *subnet)
                    .trim_end()
                    .replace('\n', "; ")
            ),
            IpForward => f.write_str("write /proc/sys/net/ipv4/ip_forward \u{2190} \"1\" (kept)"),
            LeaseAddress {
                dir,
                bridge,
                subnet,
                address,
            } => {
                write!(
                    f,
                    "flock({:?}, LOCK_EX); ",
                    dir.join(format!("{bridge}.lock"))
                )?;
                match address {
                    Some(a) => write!(f, "lease {a} unless a live launcher holds it")?,
                    None => write!(f, "lease the lowest free address of {subnet}")?,
                }
                write!(
                    f,
                    " \u{2192} {{address}}, in {:?}",
                    dir.join(format!("{bridge}.leases"))
                )
            }
            PublishPorts { ports } => write!(
                f,
                "nft -f -: {}",
                crate::sys::net::firewall::publish_lines(ports, "{address}").join("; ")
            ),
            NetworkFiles { dir, files } => {
                let mut first = true;
                for (name, text) in files.contents(None) {
                    let text = if name == "hosts" && files.leased {
                        text.replace("127.0.1.1\t", "{address}\t")
                    } else {
                        text
                    };
                    if !first {
                        f.write_str("; ")?;
                    }
                    first = false;
                    write!(f, "write {:?} (0644) \u{2190} {:?}", dir.join(name), text)?;
                }
                Ok(())
            }
            Veth {
                bridge,
                host,
                peer,
                subnet,
            } => write!(
                f,
                "RTM_NEWLINK(dev {host:?} type veth master {bridge:?} up, peer {peer:?} in netns \
                 /proc/{{pid}}/ns/net); in that netns: RTM_NEWLINK(dev \"lo\" up), RTM_NEWADDR(\
                 {{address}}/{} dev {peer:?}), RTM_NEWLINK(dev {peer:?} up), RTM_NEWROUTE(default \
                 via {} dev {peer:?})",
                subnet.prefix(),
                subnet.gateway()
            ),
            NetHelper { argv } => write!(
                f,
                "run {} in the background; wait until it has configured the namespace",
                argv.iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            CgroupParent { path } => write!(f, "mkdir -p {:?} (kept)", path),
            IdMapHelper { argv } => write!(
                f,
                "run {} and wait for it to succeed",
                argv.iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            CgroupLeaf { path } => write!(
                f,
                "mkdir -p {:?} (kept); write {:?} \u{2190} \"0\" (launch moves itself)",
                path,
                path.join("cgroup.procs")
            ),
            CgroupEnable { path, controllers } => {
                let v: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
                write!(
                    f,
                    "write {:?} \u{2190} {:?} (those not yet enabled)",
                    path,
                    v.join(" ")
                )
            }
            CgroupCreate { path } => write!(f, "mkdir({:?}, 0755)", path),
            CgroupWrite { path, value } | WriteIdMap { path, value } => {
                write!(f, "write {:?} \u{2190} {:?}", path, value)
            }
            DeviceFilter { cgroup, rules } => {
                let r: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
                write!(
                    f,
                    "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, {} instructions from [{}]); \
                     bpf(BPF_PROG_ATTACH, {:?}, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)",
                    crate::sys::devices::program(rules).len(),
                    r.join("; "),
                    cgroup
                )
            }
            DeviceList { cgroup, rules } => {
                if crate::sys::devices::v1_listing(rules).is_some() {
                    write!(
                        f,
                        "unless {:?} shows exactly these rules (inherited): ",
                        cgroup.join("devices.list")
                    )?;
                }
                v1_list_writes(f, cgroup, rules)
            }
            HoldLayers { store, layers } => write!(
                f,
                "flock(LOCK_SH) each of {} layers in {:?} for the run: [{}]",
                layers.len(),
                store,
                layers.join(", ")
            ),
            PersistDir { dir, lowers } => write!(
                f,
                "mkdir({dir:?}, 0700) unless it is a directory of this user that no one else may \
                 write; flock(LOCK_EX|LOCK_NB) for the run; its lowers.json must list [{}] \
                 (written if absent)",
                lowers
                    .iter()
                    .map(|l| format!("{l:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            OverlayDirs { upper, work, owner } => {
                write!(
                    f,
                    "mkdir({:?}, 0755); mkdir({:?}, 0700) (existing ones kept)",
                    upper, work
                )?;
                match owner {
                    Some((u, g)) => write!(f, "; chown new ones to {u}:{g}"),
                    None => Ok(()),
                }
            }
            IdmapLayers { layers, at } => write!(
                f,
                "for each of [{}]: open_tree(OPEN_TREE_CLONE); mount_setattr(MOUNT_ATTR_IDMAP|\
                 MOUNT_ATTR_RDONLY, userns of /proc/{{pid}}/ns/user); send it to the container \
                 (attached at [{}])",
                layers
                    .iter()
                    .map(|l| format!("{l:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                at.iter()
                    .map(|l| format!("{l:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DeviceParent { path, rules } => {
                let mut stale = path.as_os_str().to_owned();
                stale.push(crate::sys::devices::STALE);
                stale.push("-<launcher pid>");
                write!(
                    f,
                    "unless {:?} shows exactly these rules in its devices.list: take it out of \
                     the way if there (rmdir; rename to {:?} while processes are in it); mkdir a \
                     temporary group; ",
                    path, stale
                )?;
                v1_list_writes(f, Path::new("…"), rules)?;
                write!(f, "; rename it to {:?} (kept)", path)
            }
            ExtractRootfs {
                archive,
                compression,
                dest,
                owners,
                max_size,
            } => {
                let format = match compression {
                    Compression::None => "tar",
                    Compression::Gzip => "tar+gzip",
                    Compression::Zstd => "tar+zstd",
                };
                write!(
                    f,
                    "extract {:?} ({format}) into {:?}, writing only beneath it",
                    archive, dest
                )?;
                if let Some(o) = owners {
                    write!(f, "; owners through the maps ({o})")?;
                }
                if let Some(m) = max_size {
                    write!(f, "; at most {m} bytes of content")?;
                }
                Ok(())
            }
            Spawn {
                flags,
                cgroup,
                subreaper,
            } => {
                if *subreaper {
                    f.write_str("prctl(PR_SET_CHILD_SUBREAPER, 1); ")?;
                }
                write!(f, "clone3({})", join(flags, "|"))?;
                if let Some(c) = cgroup {
                    write!(f, " into cgroup {:?}", c)?;
                }
                if *subreaper {
                    f.write_str("; at the end, SIGKILL every process re-parented to launch")?;
                }
                Ok(())
            }
            CgroupOpen { path } => write!(
                f,
                "open({:?}, O_WRONLY), inherited by the container process",
                path
            ),
            Release => f.write_str("handshake: tell the container process to go on"),
            ReleaseUntilNetwork => f.write_str(
                "handshake: tell the container process to go on with its setup (it stops before \
                 its command until its network is connected)",
            ),
            NetworkReady => f.write_str(
                "send \"network\" on the handshake channel; wait for its end of file (the \
                 command's execve)",
            ),
            ReleaseEarly => f.write_str(
                "handshake: tell the container process to go on with its setup (not waiting for it)",
            ),
            PrepareProc {
                attrs,
                masked,
                readonly,
            } => write!(
                f,
                "fsopen(\"proc\"); fsconfig(FSCONFIG_SET_FD, \"pidns\", /proc/{{pid}}/ns/pid); \
                 t = fsmount({}); on t, where they exist: read-only [{}], masked [{}] (as \
                 mask_paths and readonly_paths do); send t to the container process (a kernel \
                 without procfs's pidns option or mounts on detached trees: send its word that \
                 it cannot)",
                join(attrs, "|"),
                join(readonly, ", "),
                join(masked, ", ")
            ),
            AwaitStart => f.write_str(
                "wait for the handshake channel's end of file (the command's execve) or a \
                 failed step's report",
            ),
            Wait => {
                f.write_str("waitid(P_PID, {pid}): the container's exit status becomes launch's")
            }
            Claim { name, multiple } => write!(
                f,
                "flock(state root, LOCK_EX); gc: undo the journals of dead launchers; {}",
                if *multiple {
                    format!("several `{name}` instances allowed")
                } else {
                    format!("fail if a `{name}` instance is live")
                }
            ),
        }
    }
}

impl fmt::Display for ContainerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ContainerAction::*;
        match self {
            CgroupEnter { paths } => {
                let v: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
                write!(f, "write(fd, \"0\") for each of [{}]", v.join(", "))
            }
            Unshare { flags } => write!(f, "unshare({})", join(flags, "|")),
            SessionKeyring => f.write_str("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)"),
            Setns { path, kind } => write!(f, "setns(open({:?}), {:?})", path, kind),
            LoopbackUp => f.write_str("ioctl(SIOCSIFFLAGS, \"lo\", IFF_UP)"),
            AwaitNetwork => f.write_str("read the launcher's word on the handshake channel"),
            AttachProc {
                target,
                flags,
                masked,
                readonly,
            } => write!(
                f,
                "receive the launcher's /proc; move_mount(it, {:?}); if the launcher's kernel \
                 could not make it: mount(\"proc\", {:?}, \"proc\", {}, NULL), then read-only \
                 [{}] and masked [{}] here",
                target,
                target,
                join(flags, "|"),
                join(readonly, ", "),
                join(masked, ", ")
            ),
            Propagation { target, flags } => write!(
                f,
                "mount(NULL, {:?}, NULL, {}, NULL)",
                target,
                join(flags, "|")
            ),
            Mkdir { path, mode } => write!(
                f,
                "mkdir -p {:?} (mode {:04o}) unless it exists",
                path, mode
            ),
            Touch { path } => write!(f, "create empty file {:?} unless it exists", path),
            Mknod {
                path,
                major,
                minor,
                mode,
            } => write!(
                f,
                "mknod({:?}, S_IFCHR|{:04o}, makedev({}, {}))",
                path, mode, major, minor
            ),
            Symlink { target, link } => write!(f, "symlink({:?}, {:?})", target, link),
            AttachLayers { layers } => write!(
                f,
                "move_mount each idmapped copy from the launcher onto [{}]",
                layers
                    .iter()
                    .map(|l| format!("{l:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Overlay {
                target,
                lowers,
                upper,
                userxattr,
                volatile,
            } => {
                f.write_str("fsopen(\"overlay\")")?;
                for l in lowers {
                    write!(f, "; lowerdir+={:?}", l)?;
                }
                if let Some((u, w)) = upper {
                    write!(f, "; upperdir={:?}; workdir={:?}", u, w)?;
                }
                if *userxattr {
                    f.write_str("; userxattr")?;
                }
                if *volatile {
                    f.write_str("; volatile")?;
                }
                write!(f, "; fsmount; move_mount to {:?}", target)
            }
            Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                let fl = if flags.is_empty() {
                    "0".to_string()
                } else {
                    join(flags, "|")
                };
                match data {
                    Some(d) => write!(
                        f,
                        "mount({:?}, {:?}, {:?}, {}, {:?})",
                        source, target, fstype, fl, d
                    ),
                    None => write!(
                        f,
                        "mount({:?}, {:?}, {:?}, {}, NULL)",
                        source, target, fstype, fl
                    ),
                }
            }
            SetAttr {
                target,
                attrs,
                recursive,
            } => write!(
                f,
                "mount_setattr({:?}, {}, set={})",
                target,
                if *recursive { "AT_RECURSIVE" } else { "0" },
                join(attrs, "|")
            ),
            PivotRoot { new_root } => {
                write!(
                    f,
                    "pivot_root({:?}, {:?}); umount2(old root, MNT_DETACH); chdir(\"/\")",
                    new_root, new_root
                )
            }
            Chroot { path } => write!(f, "chroot({:?}); chdir(\"/\")", path),
            SetHostname { name } => write!(f, "sethostname({:?})", name),
            SetDomainname { name } => write!(f, "setdomainname({:?})", name),
            Setrlimit {
                resource,
                soft,
                hard,
            } => {
                let v = |x: &Option<u64>| x.map_or("RLIM_INFINITY".to_string(), |n| n.to_string());
                write!(
                    f,
                    "setrlimit({}, soft={}, hard={})",
                    resource,
                    v(soft),
                    v(hard)
                )
            }
            SetIds {
                uid,
                gid,
                groups,
                keep_caps,
            } => match keep_caps {
                true => write!(
                    f,
                    "prctl(PR_SET_KEEPCAPS, 1); setgroups({:?}); setgid({}); setuid({}); prctl(PR_SET_KEEPCAPS, 0)",
                    groups, gid, uid
                ),
                false => write!(
                    f,
                    "setgroups({:?}); setgid({}); setuid({})",
                    groups, gid, uid
                ),
            },
            MaskPaths { root, paths } => write!(
                f,
                "under {:?}, where they exist: move_mount(open_tree(\"/dev/null\", OPEN_TREE_CLONE), file) or move_mount(fsmount(tmpfs, MOUNT_ATTR_RDONLY), dir) over [{}]",
                root,
                join(paths, ", ")
            ),
            ReadonlyPaths { root, paths } => write!(
                f,
                "under {:?}, where they exist: t = open_tree(path, OPEN_TREE_CLONE|AT_RECURSIVE); mount_setattr(t, AT_RECURSIVE, set=MOUNT_ATTR_RDONLY); move_mount(t, path) for [{}]",
                root,
                join(paths, ", ")
            ),
            CapBounding { keep } => {
                let dropped = crate::sys::caps::CapSet::ALL.difference(*keep);
                write!(
                    f,
                    "prctl(PR_CAPBSET_DROP, cap) for the {} capabilities not in [{}]",
                    dropped.len(),
                    keep.names().join(", ")
                )
            }
            Capabilities { sets } => write!(
                f,
                "capset(effective=[{}], permitted=[{}], inheritable=[{}]); prctl(PR_CAP_AMBIENT_CLEAR_ALL); raise ambient [{}]",
                sets.effective.names().join(", "),
                sets.permitted.names().join(", "),
                sets.inheritable.names().join(", "),
                sets.ambient.names().join(", ")
            ),
            NoNewPrivs => f.write_str("prctl(PR_SET_NO_NEW_PRIVS, 1)"),
            Seccomp { filter, log, .. } => write!(
                f,
                "seccomp(SECCOMP_SET_MODE_FILTER, {}, `{}`: {} rules, {} BPF instructions, {})",
                if *log { "SECCOMP_FILTER_FLAG_LOG" } else { "0" },
                filter.name,
                filter.rules,
                filter.instructions.len(),
                filter.digest
            ),
            Chdir { path } => write!(f, "chdir({:?})", path),
            Terminal => f.write_str(
                "if a terminal is used: open(\"/dev/ptmx\"); setsid(); ioctl(TIOCSCTTY); dup2(pty, 0|1|2); send the master to launch",
            ),
            Exec {
                argv,
                env,
                init,
                preserve_fds,
            } => {
                if *init {
                    f.write_str("fork(): PID 1 becomes launch-init (reaps, forwards signals; closes every fd above 2); the child: ")?;
                }
                write!(
                    f,
                    "close_range({}, ~0U, CLOSE_RANGE_CLOEXEC); execve({:?}, {:?}, {:?})",
                    3 + u64::from(*preserve_fds),
                    argv.first().map_or("", |s| s),
                    argv,
                    env
                )
            }
        }
    }
}

/// `write FILE ← [LINES]` for each file of the v1 writes of `rules` into `cgroup`.
fn v1_list_writes(f: &mut fmt::Formatter<'_>, cgroup: &Path, rules: &[DeviceRule]) -> fmt::Result {
    let writes = crate::sys::devices::v1_writes(rules);
    for (i, (file, lines)) in group_by_file(&writes).into_iter().enumerate() {
        if i > 0 {
            f.write_str("; ")?;
        }
        write!(f, "write {:?} \u{2190} {:?}", cgroup.join(file), lines)?;
    }
    Ok(())
}

/// Consecutive writes to one file, together: (file, the lines in order).
fn group_by_file(writes: &[(&'static str, String)]) -> Vec<(&'static str, Vec<String>)> {
    let mut out: Vec<(&'static str, Vec<String>)> = Vec::new();
    for (file, line) in writes {
        match out.last_mut() {
            Some((f, lines)) if f == file => lines.push(line.clone()),
            _ => out.push((file, vec![line.clone()])),
        }
    }
    out
}

/// serde default for fields that older plans did not spell out and that were then always true.
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::{Action, HostAction};

    /// A plan saved before `state_dir` had `mount_point` made `root` in the state directory and
    /// mounted the container's root there: it still does.
    #[test]
    fn state_dir_without_mount_point_reads_as_older_plans_meant() {
        let old: Action =
            serde_json::from_str(r#"{"op":"state_dir","path":"/run/launch/x-{id}"}"#).unwrap();
        assert_eq!(
            old,
            Action::Host(HostAction::StateDir {
                path: "/run/launch/x-{id}".into(),
                mount_point: true,
                group: None,
            })
        );
        assert_eq!(
            old.to_string(),
            r#"mkdir("/run/launch/x-{id}", 0700); mkdir("/run/launch/x-{id}/root", 0755)"#
        );
    }
}
