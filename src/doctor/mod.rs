//! `launch doctor`: can this host, for this user, run a manifest (or each kind of container)?
//!
//! The host is probed once into [`DoctorFacts`] ([`probe`]); [`checks`] turns those facts into
//! one [`Check`] per capability launch relies on, each with a verdict and the exact fix, without
//! touching the host again (so fake facts test every verdict). What a manifest *needs* comes from
//! its validated Spec ([`Needs::of`]); without a manifest, from the built-in [`kinds`]. A
//! manifest or kind can run when every check it needs is `ok` (or `n/a`). docs/doctor.md.

mod checks;
pub mod probe;
mod render;

use std::path::PathBuf;

use serde::Serialize;

pub use checks::checks;
pub use render::{render_json, render_text};

use crate::host::HostFacts;
use crate::spec::{NetworkMode, Seccomp, Spec, UserNamespace};

/// Everything `launch doctor` looks at, probed once (see [`probe::probe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorFacts {
    /// The facts validation and planning use (uid, kernel, cgroups, pasta, tun, state root).
    pub host: HostFacts,
    /// The effective uid (what the kernel checks privilege against).
    pub euid: u32,
    /// The user's name in /etc/passwd, if it has one.
    pub user: Option<String>,
    /// /etc/os-release `ID` then the words of `ID_LIKE` (`debian`, `ubuntu`, `fedora`): which
    /// package manager a fix names.
    pub distro: Vec<String>,
    /// The sysctls that allow or restrict user namespaces.
    pub userns: UsernsFacts,
    /// This user's ranges in /etc/subuid.
    pub subuid: Vec<IdRange>,
    /// This user's ranges in /etc/subgid.
    pub subgid: Vec<IdRange>,
    /// The first id after every range of any user in /etc/subuid and /etc/subgid (at least
    /// 100000): where a new range for this user can start.
    pub subid_free: u64,
    /// newuidmap(1).
    pub newuidmap: Option<Helper>,
    /// newgidmap(1).
    pub newgidmap: Option<Helper>,
    /// overlayfs: registered in /proc/filesystems, or a module that loads on first mount.
    pub overlay: Overlay,
    /// mount_setattr(2) (idmapped mounts): `None` when it exists, else the errno it returned.
    pub mount_setattr: Option<String>,
    /// seccomp support.
    pub seccomp: SeccompFacts,
    /// Where nft(8) is installed (the bridge mode's firewall for published ports).
    pub nft: Option<PathBuf>,
    /// /dev/net/tun exists (whether this user may open it is in `host.network.tun`).
    pub tun_exists: bool,
    /// The state root ([`HostFacts::state_root`]) as found.
    pub state_root: DirState,
    /// The image store's root (`LAUNCH_STORE`, /var/lib/launch, `$XDG_DATA_HOME/launch`).
    pub store_root: PathBuf,
    /// The store root as found.
    pub store: DirState,
}

/// The kernel settings that decide whether an unprivileged user may create user namespaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsernsFacts {
    /// `user.max_user_namespaces` (0: none for anyone).
    pub max_user_namespaces: Option<u64>,
    /// `kernel.unprivileged_userns_clone` (Debian's and Ubuntu's switch; absent upstream).
    pub unprivileged_userns_clone: Option<u64>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+: 1 gives unconfined
    /// programs a user namespace without capabilities).
    pub apparmor_restrict: Option<u64>,
    /// This process's AppArmor label (`unconfined`, or a profile), if AppArmor is on.
    pub apparmor_label: Option<String>,
    /// A child's unshare(CLONE_NEWUSER): `None` when not tried, `Some(None)` when it worked,
    /// `Some(Some(errno))` when it failed.
    pub probe: Option<Option<String>>,
}

/// One line of /etc/subuid or /etc/subgid for this user.
pub use crate::host::IdRange;

/// A setuid helper (newuidmap, newgidmap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    /// Where it is.
    pub path: PathBuf,
    /// Owned by root with the setuid bit.
    pub setuid_root: bool,
    /// Has file capabilities (`security.capability`), as Fedora ships them.
    pub file_caps: bool,
}

/// Whether overlayfs can be mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// `overlay` is in /proc/filesystems.
    Registered,
    /// Not registered yet, but the module is installed: the first mount loads it.
    Module,
    /// Neither.
    Missing,
}

/// What the kernel says about seccomp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompFacts {
    /// prctl(PR_GET_SECCOMP): this process's mode (0 none, 2 filtered); `None`: EINVAL, a
    /// kernel without CONFIG_SECCOMP.
    pub mode: Option<u32>,
    /// Filters can be loaded (CONFIG_SECCOMP_FILTER): prctl(PR_SET_SECCOMP,
    /// SECCOMP_MODE_FILTER, NULL) fails with EFAULT, not EINVAL.
    pub filters: bool,
}

/// A directory launch keeps its files in, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirState {
    /// A directory of this user's that nobody else can write: usable.
    Private,
    /// It does not exist; `ancestor` is the nearest existing one, and whether this user can
    /// create directories in it.
    Missing {
        /// The nearest existing ancestor.
        ancestor: PathBuf,
        /// This user can write it.
        writable: bool,
    },
    /// Something other than a directory (a symlink, a file).
    NotDir,
    /// Owned by another uid.
    OtherOwner(u32),
    /// Group- or world-writable (mode).
    OthersWritable(u32),
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Works.
    Ok,
    /// Missing or unusable, but only some containers need it.
    Warn,
    /// Missing or broken where most containers need it.
    Fail,
    /// Does not apply to this user or host (e.g. subordinate ids for root).
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl Verdict {
    /// Whether a container that needs this check can run.
    pub fn usable(self) -> bool {
        match self {
            Verdict::Ok | Verdict::NotApplicable => true,
            Verdict::Warn | Verdict::Fail => false,
        }
    }

    /// The marker the text output shows.
    pub fn marker(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable => "n/a",
        }
    }
}

/// One capability, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable id (`userns`, `cgroup.memory`).
    pub id: &'static str,
    /// What it is about, in words.
    pub title: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was found, naming the file and value.
    pub detail: String,
    /// The exact commands or edits that fix it (empty when there is nothing to fix).
    pub fix: Vec<String>,
}

/// What a container needs from the host, as far as `launch doctor` checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Runs in the host's user namespace (its ids are host ids): root only.
    pub host_ids: bool,
    /// A new user namespace.
    pub user_namespace: bool,
    /// A user namespace that maps ids other than the caller's own (root, or a user's
    /// subordinate ids through newuidmap).
    pub other_ids: bool,
    /// The cgroup controllers its limits write (v2 names: `cpu`, `io`).
    pub controllers: Vec<&'static str>,
    /// The root is an overlay (an image, a stored tar root, `writable`).
    pub overlay: bool,
    /// The root's layers come from the image store.
    pub store: bool,
    /// The store layers are seen through idmapped mounts.
    pub idmapped: bool,
    /// A seccomp filter is loaded.
    pub seccomp: bool,
    /// How the network is connected.
    pub network: NetworkNeed,
}

/// The network side of [`Needs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkNeed {
    /// Nothing from the host (none, host).
    #[default]
    Nothing,
    /// A bridge on the host; `ports`: published ports (nft).
    Bridge {
        /// Publishes ports.
        ports: bool,
    },
    /// pasta.
    Pasta,
    /// slirp4netns.
    Slirp,
}

impl Needs {
    /// What `spec` needs when `facts.uid` runs it. `spec` is validated as root would see it,
    /// so that a non-root user learns what is missing instead of only that validation fails.
    pub fn of(spec: &Spec, facts: &HostFacts) -> Needs {
        let (host_ids, user_namespace, other_ids) = match &spec.namespaces.user {
            UserNamespace::Host => (true, false, false),
            UserNamespace::Join(_) => (false, false, false),
            UserNamespace::New(maps) => {
                let (uid, gid) = maps.lines(facts.uid, facts.gid);
                let own = |lines: &[crate::spec::IdMapLine], id: u32| {
                    lines.len() == 1 && lines[0].outside == id && lines[0].count == 1
                };
                (false, true, !own(&uid, facts.uid) || !own(&gid, facts.gid))
            }
        };
        let mut controllers: Vec<&'static str> = Vec::new();
        for w in crate::lower::cgroups::writes(&spec.limits, &permissive(facts, 0)) {
            if !controllers.contains(&w.controller) {
                controllers.push(w.controller);
            }
        }
        let network = match &spec.network.mode {
            NetworkMode::None | NetworkMode::Host => NetworkNeed::Nothing,
            NetworkMode::Bridge(_) => NetworkNeed::Bridge {
                ports: !spec.network.ports.is_empty(),
            },
            NetworkMode::Pasta => NetworkNeed::Pasta,
            NetworkMode::Slirp => NetworkNeed::Slirp,
        };
        Needs {
            host_ids,
            user_namespace,
            other_ids,
            controllers,
            overlay: spec.root.is_overlay(),
            store: spec.root.source.store_layers().is_some(),
            idmapped: crate::lower::idmapped_lowers(spec, facts),
            seccomp: match spec.security.seccomp {
                Seccomp::Default | Seccomp::Custom(_) => true,
                Seccomp::Unconfined => false,
            },
            network,
        }
    }

    /// The ids of the checks these needs depend on, for a launcher running as `uid`, in the
    /// order [`checks`] reports them.
    pub fn checks(&self, uid: u32) -> Vec<&'static str> {
        let root = uid == 0;
        let bridge = matches!(self.network, NetworkNeed::Bridge { .. });
        let mut ids = Vec::new();
        let mut need = |on: bool, id: &'static str| {
            if on && !ids.contains(&id) {
                ids.push(id);
            }
        };
        need(!root && (self.host_ids || bridge), "privilege");
        need(self.user_namespace, "userns");
        // Without root, ids beyond the caller's own are its subordinate ids, mapped by the
        // setuid helpers.
        need(!root && self.other_ids, "subuid");
        need(!root && self.other_ids, "newuidmap");
        need(!self.controllers.is_empty(), "cgroup.layout");
        for c in CONTROLLERS {
            need(self.controllers.contains(c), checks::controller_id(c));
        }
        need(!root && !self.controllers.is_empty(), "cgroup.delegation");
        need(self.overlay, "overlayfs");
        need(self.idmapped, "idmapped");
        need(self.seccomp, "seccomp");
        need(self.network == NetworkNeed::Pasta, "pasta");
        need(self.network == NetworkNeed::Slirp, "slirp4netns");
        need(
            matches!(self.network, NetworkNeed::Pasta | NetworkNeed::Slirp),
            "tun",
        );
        need(self.network == NetworkNeed::Bridge { ports: true }, "nft");
        need(true, "state_root");
        need(self.store, "store_root");
        ids
    }
}

/// The cgroup controllers limits use, in the order they are checked.
pub const CONTROLLERS: &[&str] = &["cpu", "cpuset", "io", "memory", "pids"];

/// A kind of container `launch doctor` answers for without a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    /// Stable id.
    pub id: &'static str,
    /// What it is, and the example that shows it.
    pub title: &'static str,
    /// What it needs.
    pub needs: Needs,
}

/// The kinds of container the examples show, as `uid` would run them (a non-root user in a
/// user namespace of their own id, as validation requires; a network through pasta only for a
/// non-root user, since pasta is a rootless mode).
pub fn kinds(uid: u32) -> Vec<Kind> {
    let root = uid == 0;
    let base = Needs {
        host_ids: root,
        user_namespace: !root,
        seccomp: true,
        ..Needs::default()
    };
    let mut kinds = vec![
        Kind {
            id: "container",
            title: "namespaces and a host root (hello.toml; without root, with `user = true`)",
            needs: base.clone(),
        },
        Kind {
            id: "userns",
            title: "a user namespace (userns.toml: 65536 ids as root; your own id without)",
            needs: Needs {
                host_ids: false,
                user_namespace: true,
                other_ids: root,
                ..base.clone()
            },
        },
        Kind {
            id: "limits",
            title: "cgroup limits on CPU, memory and pids (limits.toml)",
            needs: Needs {
                controllers: vec!["cpu", "memory", "pids"],
                ..base.clone()
            },
        },
        Kind {
            id: "image",
            title: "an image or tar root: an overlay of store layers (images/debian.toml)",
            needs: Needs {
                overlay: true,
                store: true,
                ..base.clone()
            },
        },
        Kind {
            id: "bridge",
            title: "a bridge network with a published port (network/bridge.toml)",
            needs: Needs {
                network: NetworkNeed::Bridge { ports: true },
                ..base.clone()
            },
        },
    ];
    // pasta and slirp4netns are rootless modes (root uses a bridge).
    if !root {
        kinds.push(Kind {
            id: "rootless-network",
            title: "a network through pasta (network/pasta.toml)",
            needs: Needs {
                host_ids: false,
                user_namespace: true,
                network: NetworkNeed::Pasta,
                ..base
            },
        });
    }
    kinds
}

/// Whether something that needs the checks `ids` can run, given `checks`' verdicts: the ids
/// of those that stop it (none: it can run).
pub fn blocked_by(ids: &[&'static str], checks: &[Check]) -> Vec<&'static str> {
    ids.iter()
        .copied()
        .filter(|id| {
            checks
                .iter()
                .find(|c| c.id == *id)
                .is_none_or(|c| !c.verdict.usable())
        })
        .collect()
}

/// One thing the report answers for: the manifest, or a kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdicts {
    /// The manifest's path, or the kind's id.
    pub id: String,
    /// What it is.
    pub title: String,
    /// The checks it needs.
    pub needs: Vec<&'static str>,
    /// The needed checks that are not usable.
    pub blocked_by: Vec<&'static str>,
    /// It can run here.
    pub can_run: bool,
}

impl Verdicts {
    /// The verdicts for something needing `needs`.
    pub fn new(id: String, title: String, needs: Vec<&'static str>, checks: &[Check]) -> Self {
        let blocked_by = blocked_by(&needs, checks);
        Verdicts {
            id,
            title,
            needs,
            can_run: blocked_by.is_empty(),
            blocked_by,
        }
    }
}

/// A whole `launch doctor` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The effective uid.
    pub uid: u32,
    /// Its name.
    pub user: Option<String>,
    /// The kernel release.
    pub kernel: String,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
    /// With a manifest: what it needs and whether it can run. Without: one per kind.
    pub targets: Vec<Verdicts>,
    /// Everything in `targets` can run here.
    pub can_run: bool,
}

impl Report {
    /// The report for `facts`: for the manifest `manifest` (its display name and needs, and
    /// the problems validation found against this host and user), or for every kind.
    pub fn new(facts: &DoctorFacts, manifest: Option<ManifestFindings>) -> Report {
        let mut checks = checks(facts);
        let targets = match manifest {
            Some(m) => {
                let mut needs = m.needs.checks(facts.euid);
                checks.push(checks::manifest(&m.name, &m.problems));
                needs.push("manifest");
                vec![Verdicts::new(
                    m.name.clone(),
                    "the manifest, as this user runs it".to_string(),
                    needs,
                    &checks,
                )]
            }
            None => kinds(facts.euid)
                .into_iter()
                .map(|k| {
                    Verdicts::new(
                        k.id.to_owned(),
                        k.title.to_owned(),
                        k.needs.checks(facts.euid),
                        &checks,
                    )
                })
                .collect(),
        };
        Report {
            uid: facts.euid,
            user: facts.user.clone(),
            kernel: facts.host.kernel.clone(),
            can_run: targets.iter().all(|t| t.can_run),
            checks,
            targets,
        }
    }
}

/// What validating a manifest told: its name, what it needs, and the problems validation found
/// against this host and user (`(code, message, help)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFindings {
    /// The manifest as named on the command line.
    pub name: String,
    /// What its Spec needs.
    pub needs: Needs,
    /// Validation's problems against the real host: code, message and help.
    pub problems: Vec<(String, String, Option<String>)>,
}

/// `facts` with every capability a manifest could ask for: validating against them gives the
/// Spec a manifest describes, whatever this host and user lack (root, controllers, helpers);
/// what is lacking is then the checks' business.
/// `uid`: root, unless the manifest is for a non-root user only (pasta, slirp).
pub fn permissive(facts: &HostFacts, uid: u32) -> HostFacts {
    let mut f = facts.clone();
    f.uid = uid;
    f.gid = uid;
    f.user_namespaces = true;
    f.cgroup_namespace = true;
    f.time_namespace = true;
    f.cgroup = crate::host::CgroupFacts {
        layout: crate::host::CgroupLayout::V2,
        v2_root: Some(PathBuf::from("/sys/fs/cgroup")),
        v2_controllers: CONTROLLERS.iter().map(|c| c.to_string()).collect(),
        v1: Default::default(),
        memory_swap: true,
        cpuset_root: None,
        io_weight: true,
        // A non-root user's own cgroup, delegated with every controller.
        own: (uid != 0).then(|| crate::host::OwnCgroup {
            dir: PathBuf::from(format!(
                "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service/launch.scope"
            )),
            delegated: true,
            controllers: CONTROLLERS.iter().map(|c| c.to_string()).collect(),
            others: 0,
        }),
    };
    // Every id subordinate, and the helpers that map them.
    if uid != 0 {
        let all = crate::host::IdRange {
            start: 0,
            count: u32::MAX as u64,
        };
        f.subids.uid = vec![all];
        f.subids.gid = vec![all];
        f.subids.newuidmap = Some(PathBuf::from("/usr/bin/newuidmap"));
        f.subids.newgidmap = Some(PathBuf::from("/usr/bin/newgidmap"));
    }
    f.capabilities = crate::sys::caps::CapSet::ALL;
    f.network.pasta = Some(f.network.pasta.unwrap_or_else(|| "/usr/bin/pasta".into()));
    f.network.slirp4netns = Some(
        f.network
            .slirp4netns
            .unwrap_or_else(|| "/usr/bin/slirp4netns".into()),
    );
    f.network.tun = true;
    f.numa_nodes = None;
    f.nr_open = None;
    f
}

/// The exit code: 0 when everything asked about can run here, 1 when something cannot.
pub fn exit_code(report: &Report) -> u8 {
    match report.can_run {
        true => crate::exit::OK,
        false => CANNOT_RUN,
    }
}

/// `launch doctor`'s exit code when the manifest (or a kind) cannot run here.
pub const CANNOT_RUN: u8 = 1;

#[cfg(test)]
mod tests;
