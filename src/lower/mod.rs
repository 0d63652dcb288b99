//! Lowering: a [`Spec`] and this host's facts become the [`Plan`], the ordered steps that will be
//! done to this host. Pure: no I/O, no checks (validation asked [`cgroups::gaps`] what this host
//! cannot do). Everything the Spec leaves to the host is decided here and only here: cgroup v1 or
//! v2 files and paths, the state directory, id map lines for `map_root`, the host root's binds.
//! The order is the one in docs/plan-format.md and is pinned by a test:
//!
//! host: claim → state dir → cgroups → rootfs archive → spawn → id maps → cgroup join → release;
//! container: root of the user ns → session keyring → joined namespaces → late namespaces →
//! loopback → propagation → root → /dev → mounts → read-only root → masked and read-only paths
//! → pivot_root → hostname → terminal → rlimits → (seccomp, without no_new_privs) → bounding
//! set → ids → capability sets → chdir → no_new_privs → seccomp → execve (via init if asked);
//! host: wait.

use std::path::{Path, PathBuf};

use crate::host::HostFacts;
use crate::plan::{
    Action, CloneFlag, ContainerAction, HostAction, ID_PLACEHOLDER, MountAttr, MountFlag,
    OwnerShift, PID_PLACEHOLDER, PLAN_FORMAT, Plan, Step,
};
use crate::spec::{Namespace, RootSource, Spec, UserNamespace};

pub mod cgroups;
pub mod devices;
mod fs;
mod network;
pub mod security;

use cgroups::{cgroup_dirs, cgroups};
pub(crate) use fs::DEV_NODES;
pub(crate) use fs::idmapped_lowers;
use fs::{minimal_dev, mount, rootfs};

struct B {
    steps: Vec<Step>,
}

impl B {
    fn push(&mut self, summary: impl Into<String>, action: impl Into<Action>) {
        self.steps.push(Step::new(summary, action));
    }
}

/// Where the store `store` keeps the unpacked tree of the layer `diff_id` (`sha256:<hex>`): the
/// directory overlayfs takes as a lower layer (docs/images.md, the store's layout).
pub fn layer_root(store: &Path, diff_id: &str) -> PathBuf {
    let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
    store.join("layers/sha256").join(hex).join("root")
}

/// The uid and gid maps this host writes for a new user namespace. `map_root` maps the
/// container's root to the caller; for a non-root caller with subordinate ids (/etc/subuid,
/// /etc/subgid) and newuidmap/newgidmap, ids from 1 on go to those ranges in order, as podman
/// maps them (so a container has the full range of ids its files and users need).
pub fn user_maps(
    maps: &crate::spec::IdMaps,
    facts: &HostFacts,
) -> (Vec<crate::plan::IdMapLine>, Vec<crate::plan::IdMapLine>) {
    let (mut uid, mut gid) = maps.lines(facts.uid, facts.gid);
    let sub = &facts.subids;
    if matches!(maps, crate::spec::IdMaps::MapRoot)
        && facts.uid != 0
        && sub.newuidmap.is_some()
        && sub.newgidmap.is_some()
        && !sub.uid.is_empty()
        && !sub.gid.is_empty()
    {
        let extend = |lines: &mut Vec<crate::plan::IdMapLine>, ranges: &[crate::host::IdRange]| {
            let mut inside: u64 = 1;
            for r in ranges.iter().take(MAX_SUB_LINES) {
                // Ids are 32 bits, and 4294967295 is no id.
                let count = r
                    .count
                    .min((u32::MAX as u64).saturating_sub(inside))
                    .min((u32::MAX as u64).saturating_sub(r.start));
                if count == 0 {
                    break;
                }
                lines.push(crate::plan::IdMapLine {
                    inside: inside as u32,
                    outside: r.start as u32,
                    count: count as u32,
                });
                inside += count;
            }
        };
        extend(&mut uid, &sub.uid);
        extend(&mut gid, &sub.gid);
    }
    (uid, gid)
}

/// At most this many subordinate ranges are mapped (with the caller's own line: the kernel's
/// 340).
const MAX_SUB_LINES: usize = 339;

/// Whether a non-root caller needs newuidmap/newgidmap for `lines`: anything but its own `id`
/// alone, which it may write itself.
pub fn needs_helper(lines: &[crate::plan::IdMapLine], id: u32) -> bool {
    !(lines.len() == 1 && lines[0].outside == id && lines[0].count == 1)
}

/// The id map steps. Root writes /proc/{pid}/uid_map and gid_map itself; a non-root caller
/// writes its own id alone itself (after denying setgroups, as the kernel requires), and
/// anything more through the setuid helpers newuidmap and newgidmap, which check the ranges
/// against /etc/subuid and /etc/subgid (and set setgroups themselves).
fn id_maps(
    b: &mut B,
    facts: &HostFacts,
    uid_map: &[crate::plan::IdMapLine],
    gid_map: &[crate::plan::IdMapLine],
) {
    let proc = PathBuf::from(format!("/proc/{PID_PLACEHOLDER}"));
    let lines = |ls: &[crate::plan::IdMapLine]| {
        ls.iter()
            .map(|l| format!("{} {} {}\n", l.inside, l.outside, l.count))
            .collect::<String>()
    };
    let helper_argv = |program: &Option<PathBuf>, name: &str, ls: &[crate::plan::IdMapLine]| {
        let mut argv = vec![
            program
                .as_ref()
                .map_or_else(|| format!("/usr/bin/{name}"), |p| p.display().to_string()),
            PID_PLACEHOLDER.to_string(),
        ];
        for l in ls {
            argv.extend([l.inside, l.outside, l.count].map(|n| n.to_string()));
        }
        argv
    };
    let rootless = facts.uid != 0;
    let sub_words = |ls: &[crate::plan::IdMapLine], own: u32| {
        ls.iter()
            .filter(|l| !(l.outside == own && l.count == 1))
            .map(|l| {
                format!(
                    "{}-{} \u{2192} {}-{}",
                    l.inside,
                    l.inside as u64 + l.count as u64 - 1,
                    l.outside,
                    l.outside as u64 + l.count as u64 - 1
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gid_helper = rootless && needs_helper(gid_map, facts.gid);
    // The kernel requires it before a gid_map written without privilege over the parent
    // namespace (newgidmap decides it itself: never "deny" before it).
    if rootless && !gid_helper {
        b.push(
            "deny setgroups (required before an unprivileged gid_map)",
            HostAction::WriteIdMap {
                path: proc.join("setgroups"),
                value: "deny".into(),
            },
        );
    }
    if rootless && needs_helper(uid_map, facts.uid) {
        b.push(
            format!(
                "map user ids with newuidmap (subordinate ids from /etc/subuid: {})",
                sub_words(uid_map, facts.uid)
            ),
            HostAction::IdMapHelper {
                argv: helper_argv(&facts.subids.newuidmap, "newuidmap", uid_map),
            },
        );
    } else {
        // `map_root` maps the caller: run by root, the container's root is the host's root.
        let root_is_root = crate::sys::idmap::host_id(uid_map, 0) == Some(0);
        b.push(
            if root_is_root {
                "map user ids (the container's root is the host's root: give explicit maps to isolate ids)"
            } else {
                "map user ids"
            },
            HostAction::WriteIdMap {
                path: proc.join("uid_map"),
                value: lines(uid_map),
            },
        );
    }
    if gid_helper {
        b.push(
            format!(
                "map group ids with newgidmap (subordinate ids from /etc/subgid: {}; it sets \
                 setgroups itself)",
                sub_words(gid_map, facts.gid)
            ),
            HostAction::IdMapHelper {
                argv: helper_argv(&facts.subids.newgidmap, "newgidmap", gid_map),
            },
        );
    } else {
        b.push(
            "map group ids",
            HostAction::WriteIdMap {
                path: proc.join("gid_map"),
                value: lines(gid_map),
            },
        );
    }
}

/// The plan that runs `spec` on the host `facts` describe. `manifest` names where the Spec came
/// from, for the plan's header.
pub fn lower(spec: &Spec, facts: &HostFacts, manifest: &str) -> Plan {
    let r = spec;
    let instance = format!("{}-{ID_PLACEHOLDER}", r.name);
    let state = facts.state_root.join(&instance);
    // An archive is extracted into `root` beside the journal; any other root is mounted on the
    // state directory itself, in the container's mount namespace only (see HostAction::StateDir).
    let extract = matches!(r.root.source, RootSource::Tar { stored: None, .. });
    // So is a writable host root's tmpfs: the upper directories of its overlays stay beside it,
    // reachable by path once it is mounted.
    // So are the network's files, which the container binds from the state directory.
    let beside = extract
        || (r.root.writable && matches!(r.root.source, RootSource::Host))
        || network::writes_files(r);
    // The user namespace's maps as this host writes them (`map_root` maps the caller's ids).
    let user_maps = match &r.namespaces.user {
        UserNamespace::New(maps) => Some(user_maps(maps, facts)),
        UserNamespace::Host | UserNamespace::Join(_) => None,
    };
    // The container's root, as a host user other than the launcher's, must traverse the state
    // directory to build its root: through its group, and no one else.
    let traverse_group = user_maps.as_ref().and_then(|(uid, gid)| {
        let root_uid = crate::sys::idmap::host_id(uid, 0)?;
        let root_gid = crate::sys::idmap::host_id(gid, 0)?;
        (root_uid != facts.uid && root_gid != facts.gid).then_some(root_gid)
    });
    let root = if beside {
        state.join("root")
    } else {
        state.clone()
    };
    let mut b = B { steps: Vec::new() };

    b.push(
        if r.multiple {
            "clean up after dead launchers"
        } else {
            "clean up after dead launchers; refuse a second live instance"
        },
        HostAction::Claim {
            name: r.name.clone(),
            multiple: r.multiple,
        },
    );
    b.push(
        if extract {
            "create the state directory (undo journal, root for the archive)"
        } else if beside {
            "create the state directory (undo journal, the root's mount point)"
        } else {
            "create the state directory (undo journal; the root is mounted on it)"
        },
        HostAction::StateDir {
            path: state.clone(),
            mount_point: beside,
            group: traverse_group,
        },
    );
    let into_cgroup = cgroups(&mut b, r, facts, &instance);
    network::before_spawn(&mut b, r, facts, &state);
    if let Some((store, layers)) = r.root.source.store_layers() {
        b.push(
            match r.root.source {
                RootSource::Tar { .. } => {
                    "hold the archive's layer in the store for the run (prune leaves it)"
                }
                RootSource::Image { .. } | RootSource::Path { .. } | RootSource::Host => {
                    "hold the image's layers in the store for the run (prune and rmi leave them)"
                }
            },
            HostAction::HoldLayers {
                store: store.to_path_buf(),
                layers: layers.to_vec(),
            },
        );
    }
    // A read-only root gets them too: launch's own mount points are made in the upper
    // layer before the root is made read-only, as for the other roots.
    let overlays = fs::root_overlays(r, facts, &state);
    // The container's root on the host, when a root launcher's maps put it elsewhere: it must
    // be able to write the overlay's upper directory.
    let owner = user_maps
        .as_ref()
        .filter(|_| facts.uid == 0)
        .and_then(|(uid, gid)| {
            let ids = (
                crate::sys::idmap::host_id(uid, 0)?,
                crate::sys::idmap::host_id(gid, 0)?,
            );
            (ids != (0, 0)).then_some(ids)
        });
    if let Some(dir) = &r.root.persist {
        b.push(
            "take the persist directory for the run: one container at a time, over the same \
             layers",
            HostAction::PersistDir {
                dir: dir.clone(),
                lowers: overlays.iter().flat_map(|o| o.sources.clone()).collect(),
            },
        );
    }
    // Kept writes live in the persist directory, made and checked here; a run's own writes
    // live in a tmpfs the container mounts on its state directory (fs::rootfs).
    if r.root.persist.is_some() {
        for o in &overlays {
            b.push(
                format!(
                    "make the upper and work directories of the overlay on {} unless they exist \
                     (kept)",
                    o.at.display()
                ),
                HostAction::OverlayDirs {
                    upper: o.upper.clone(),
                    work: o.work.clone(),
                    owner,
                },
            );
        }
    }
    if let RootSource::Tar {
        archive,
        compression,
        max_size,
        stored: None,
    } = &r.root.source
    {
        b.push(
            "extract the root filesystem archive",
            HostAction::ExtractRootfs {
                archive: archive.clone(),
                compression: *compression,
                dest: root.clone(),
                // Unprivileged, everything is the caller's (root inside with `map_root`): there
                // is nothing to shift, nor the right to chown.
                owners: user_maps
                    .as_ref()
                    .filter(|_| facts.uid == 0)
                    .map(|(uid, gid)| OwnerShift {
                        uid: uid.clone(),
                        gid: gid.clone(),
                    }),
                max_size: *max_size,
            },
        );
    }
    // v1 (v2 uses CLONE_INTO_CGROUP): the launcher opens each group's `tasks` file, and the
    // container process, a single thread, moves itself by writing "0" as its first act. Only
    // that form skips the cgroup threadgroup rwsem, whose write side waits an RCU grace period
    // (5-15 ms after the machine was idle; measured in bench/RESULTS.md). `cgroup.procs`, or a
    // pid written by the launcher, always takes it.
    let tasks: Vec<PathBuf> = if into_cgroup.is_none() {
        cgroup_dirs(r, facts, &instance)
            .into_iter()
            .map(|d| d.join("tasks"))
            .collect()
    } else {
        vec![]
    };
    for t in &tasks {
        b.push(
            "open the cgroup for the container process to enter",
            HostAction::CgroupOpen { path: t.clone() },
        );
    }
    spawn(&mut b, r, into_cgroup.clone());
    if let Some((uid_map, gid_map)) = &user_maps {
        id_maps(&mut b, facts, uid_map, gid_map);
    }
    if let Some(o) = overlays.iter().find(|o| o.idmap) {
        b.push(
            "make idmapped copies of the layers for the container's user namespace (the store \
             is shared and never chowned)",
            HostAction::IdmapLayers {
                layers: o.sources.clone(),
                at: o.lowers.clone(),
            },
        );
    }
    network::after_spawn(&mut b, r, facts);
    let masked = security::masked(r, facts);
    let readonly = security::readonly(r, facts);
    let launcher_proc = launcher_proc(r, facts, user_maps.is_some());
    let under_proc = |ps: &[PathBuf]| -> (Vec<PathBuf>, Vec<PathBuf>) {
        ps.iter()
            .cloned()
            .partition(|p| launcher_proc.is_some() && p.starts_with("/proc"))
    };
    let (proc_masked, masked) = under_proc(&masked);
    let (proc_readonly, readonly) = under_proc(&readonly);
    let prepare = launcher_proc.as_ref().map(|(_, _, attrs)| {
        let n = (proc_masked.len(), proc_readonly.len());
        Step::new(
            format!(
                "meanwhile, make the container's /proc: a proc instance for its pid namespace, \
                 {} paths masked and {} read-only (where this kernel has them)",
                n.0, n.1
            ),
            HostAction::PrepareProc {
                attrs: attrs.clone(),
                masked: proc_masked.clone(),
                readonly: proc_readonly.clone(),
            },
        )
    });
    network::release(&mut b, r, prepare);
    if !tasks.is_empty() {
        b.push(
            "enter the cgroups, before anything else runs",
            ContainerAction::CgroupEnter { paths: tasks },
        );
    }

    if user_maps.is_some() {
        // Until it sets its ids, the process keeps the launcher's host ids, which the new
        // namespace may not map: files it created would fail with EOVERFLOW.
        b.push(
            "become root of the new user namespace",
            ContainerAction::SetIds {
                uid: 0,
                gid: 0,
                groups: vec![],
                keep_caps: false,
            },
        );
    }
    b.push(
        "join a new session keyring (not the caller's)",
        ContainerAction::SessionKeyring,
    );

    joins(&mut b, r);
    if r.namespaces.cgroup.is_new() {
        b.push(
            "enter a new cgroup namespace rooted at the container's cgroup",
            ContainerAction::Unshare {
                flags: vec![CloneFlag::CLONE_NEWCGROUP],
            },
        );
    }
    if r.namespaces.net.is_new() {
        b.push(
            "bring up loopback in the new network namespace",
            ContainerAction::LoopbackUp,
        );
    }
    b.push(
        "stop mount events propagating to or from the host",
        ContainerAction::Propagation {
            target: "/".into(),
            flags: vec![MountFlag::MS_REC, MountFlag::MS_PRIVATE],
        },
    );
    rootfs(&mut b, r, facts, &root, &state, &overlays);
    network::binds(&mut b, r, &root, &state);
    if !r.mounts.iter().any(|m| m.target == Path::new("/dev")) {
        minimal_dev(&mut b, &root, user_maps.is_some());
    }
    for (i, m) in r.mounts.iter().enumerate() {
        match &launcher_proc {
            Some((at, flags, _)) if *at == i => fs::attach_proc(
                &mut b,
                m,
                &root,
                flags.clone(),
                proc_masked.clone(),
                proc_readonly.clone(),
            ),
            _ => mount(&mut b, m, &root),
        }
    }
    if r.root.readonly {
        b.push(
            "make the root filesystem read-only (its own mount only; mounts below keep their flags)",
            ContainerAction::SetAttr { target: root.clone(), attrs: vec![MountAttr::MOUNT_ATTR_RDONLY], recursive: false },
        );
    }
    if !masked.is_empty() {
        b.push(
            format!(
                "mask {} paths that show the host (where this kernel has them)",
                masked.len()
            ),
            ContainerAction::MaskPaths {
                root: root.clone(),
                paths: masked,
            },
        );
    }
    if !readonly.is_empty() {
        b.push(
            format!(
                "make {} paths that change the host read-only (where this kernel has them)",
                readonly.len()
            ),
            ContainerAction::ReadonlyPaths {
                root: root.clone(),
                paths: readonly,
            },
        );
    }
    if r.root.pivot_root {
        b.push(
            "switch to the new root and detach the host's",
            ContainerAction::PivotRoot {
                new_root: root.clone(),
            },
        );
    } else {
        b.push(
            "chroot into the new root (asked by `pivot_root = false`; the host's mounts stay attached)",
            ContainerAction::Chroot { path: root.clone() },
        );
    }
    if let Some(h) = &r.hostname {
        b.push(
            "set the hostname",
            ContainerAction::SetHostname { name: h.clone() },
        );
    }
    if let Some(d) = &r.domainname {
        b.push(
            "set the domain name",
            ContainerAction::SetDomainname { name: d.clone() },
        );
    }
    b.push(
        "give the process a terminal, if the run uses one",
        ContainerAction::Terminal,
    );
    if network::connected_during_setup(r) {
        b.push(
            "wait for the launcher to connect the network (it did so while the root was set up)",
            ContainerAction::AwaitNetwork,
        );
    }
    let p = &r.process;
    for l in &p.rlimits {
        b.push(
            format!("limit {}", l.resource.short_name()),
            ContainerAction::Setrlimit {
                resource: l.resource,
                soft: l.soft,
                hard: l.hard,
            },
        );
    }
    let mut c = security::confinement(&r.security, p.user.uid, facts.capabilities);
    let early = c.seccomp_early();
    if early {
        seccomp_step(
            &mut b,
            &mut c,
            "(now: without no_new_privs the kernel wants CAP_SYS_ADMIN, about to be dropped)",
        );
    }
    if let Some(caps) = &c.caps {
        let keep = caps.sets.bounding;
        let mut summary = match r.security.capabilities {
            Some(crate::spec::CapChoice::Default) => {
                format!(
                    "keep only the {} default capabilities in the bounding set",
                    keep.len()
                )
            }
            _ if keep.is_empty() => "empty the bounding set: no capability, ever".to_string(),
            _ => format!("keep only {} in the bounding set", keep.names().join(", ")),
        };
        if !caps.unavailable.is_empty() {
            summary.push_str(&format!(
                " ({} left out: not in launch's own bounding set)",
                caps.unavailable.names().join(", ")
            ));
        }
        b.push(summary, ContainerAction::CapBounding { keep });
    }
    let u = &p.user;
    b.push(
        match &u.name {
            Some(name) => format!("become user {name} (uid {} gid {})", u.uid, u.gid),
            None => format!("become uid {} gid {}", u.uid, u.gid),
        },
        ContainerAction::SetIds {
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            keep_caps: c.caps.is_some_and(|p| p.keep_caps),
        },
    );
    if let Some(caps) = &c.caps {
        let s = caps.sets;
        let summary = match (u.uid, s.ambient.is_empty(), s.effective.is_empty()) {
            (_, _, true) => "hold no capabilities".to_string(),
            (0, _, false) => format!("hold the {} kept capabilities", s.effective.len()),
            (_, false, false) => format!(
                "hold {} and keep them through execve (ambient)",
                s.ambient.names().join(", ")
            ),
            (_, true, false) => format!("hold {}", s.effective.names().join(", ")),
        };
        b.push(summary, ContainerAction::Capabilities { sets: s });
    }
    b.push(
        "enter the working directory",
        ContainerAction::Chdir {
            path: p.cwd.clone(),
        },
    );
    if c.no_new_privs {
        b.push(
            "forbid gaining privileges through execve (no_new_privs: setuid bits and file capabilities grant nothing)",
            ContainerAction::NoNewPrivs,
        );
    }
    if !early {
        seccomp_step(
            &mut b,
            &mut c,
            "last, so that it judges the command's calls only",
        );
    }
    b.push(
        "run the command",
        ContainerAction::Exec {
            argv: p.args.clone(),
            env: p.envp(),
            init: p.init,
            preserve_fds: p.preserve_fds,
        },
    );
    b.push("wait for the container to exit", HostAction::Wait);

    Plan {
        format: PLAN_FORMAT,
        name: r.name.clone(),
        manifest: manifest.to_owned(),
        instance,
        host: facts.clone(),
        spec: r.clone(),
        steps: b.steps,
        inputs: Vec::new(),
    }
}

/// The seccomp step of `c`, if it has a filter.
fn seccomp_step(b: &mut B, c: &mut security::Confinement, when: &str) {
    if let Some(f) = c.seccomp.take() {
        b.push(
            format!("install the seccomp filter `{}` {when}", f.profile.name),
            ContainerAction::Seccomp {
                filter: f.program,
                profile: f.profile,
                log: f.log,
            },
        );
    }
}

/// Why a saved plan must not run here: it was made for other host facts, or its steps are not
/// what its own Spec lowers to (edited by hand, or by someone else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Facts of this host that differ from the plan's, in words.
    OtherHost(Vec<String>),
    /// The first step (1-based) that differs, what the plan says and what the Spec gives.
    Tampered {
        /// 1-based step number (or the number past the shorter list).
        step: usize,
        /// The plan's step, as its effect (or "nothing").
        plan: String,
        /// The step the Spec lowers to (or "nothing").
        spec: String,
    },
}

/// Check a saved plan before it runs on the host `here`: the same host facts, and steps that are
/// exactly what the plan's Spec lowers to on them. A reviewed plan runs as reviewed, or not at
/// all.
pub fn verify(plan: &Plan, here: &HostFacts) -> Result<(), Refusal> {
    let diffs = plan.host.differences(here);
    if !diffs.is_empty() {
        return Err(Refusal::OtherHost(diffs));
    }
    let fresh = lower(&plan.spec, &plan.host, &plan.manifest);
    let mine = fresh.steps.iter().map(Some).chain(std::iter::repeat(None));
    let theirs = plan.steps.iter().map(Some).chain(std::iter::repeat(None));
    let n = plan.steps.len().max(fresh.steps.len());
    for (i, (a, b)) in theirs.zip(mine).take(n).enumerate() {
        if a != b {
            let text = |s: Option<&Step>| s.map_or("nothing".to_string(), Step::effect);
            return Err(Refusal::Tampered {
                step: i + 1,
                plan: text(a),
                spec: text(b),
            });
        }
    }
    let header = |p: &Plan| (p.format, p.name.clone(), p.instance.clone());
    if header(plan) != header(&fresh) {
        return Err(Refusal::Tampered {
            step: 0,
            plan: format!("{:?}", header(plan)),
            spec: format!("{:?}", header(&fresh)),
        });
    }
    Ok(())
}

/// setns steps for the namespaces the Spec joins by path. The user namespace comes first: joining
/// the others needs privilege over their owner, which the joined user namespace may give. They
/// run before pivot_root, while the paths still name the host's files.
fn joins(b: &mut B, r: &Spec) {
    let ns = &r.namespaces;
    if let UserNamespace::Join(path) = &ns.user {
        b.push(
            format!("join the user namespace {}", path.display()),
            ContainerAction::Setns {
                path: path.clone(),
                kind: CloneFlag::CLONE_NEWUSER,
            },
        );
    }
    for (n, kind, what) in [
        (&ns.pid, CloneFlag::CLONE_NEWPID, "pid"),
        (&ns.uts, CloneFlag::CLONE_NEWUTS, "UTS"),
        (&ns.ipc, CloneFlag::CLONE_NEWIPC, "IPC"),
        (&ns.net, CloneFlag::CLONE_NEWNET, "network"),
        (&ns.cgroup, CloneFlag::CLONE_NEWCGROUP, "cgroup"),
        (&ns.time, CloneFlag::CLONE_NEWTIME, "time"),
        // Last: the root is then built in the joined mount namespace, as the Spec asks.
        (&ns.mount, CloneFlag::CLONE_NEWNS, "mount"),
    ] {
        match n {
            Namespace::Join(path) => b.push(
                format!("join the {what} namespace {}", path.display()),
                ContainerAction::Setns {
                    path: path.clone(),
                    kind,
                },
            ),
            Namespace::Host | Namespace::New => {}
        }
    }
}

/// The container's /proc made by the launcher (crate::sys::procfs) while the container process
/// builds the rest of its root: which mount (its index in the Spec's), with its flags and
/// attributes. Only a root launcher without a user namespace for the container (a procfs
/// instance belongs to the user namespace that makes it) and without a bridge network (the
/// launcher makes the veth meanwhile), for a proc mount on /proc with no mount after it below
/// /proc (its masks go on with it), whose flags are all attributes.
fn launcher_proc(
    r: &Spec,
    facts: &HostFacts,
    userns: bool,
) -> Option<(usize, Vec<MountFlag>, Vec<MountAttr>)> {
    if facts.uid != 0 || userns || !matches!(r.namespaces.user, UserNamespace::Host) {
        return None;
    }
    // A bridge's veth is the launcher's work meanwhile already, and the longer one (its rtnl
    // requests wait for the kernel's lock): /proc on top would make the container wait longer
    // for its network than the masks take it to make.
    if network::connected_during_setup(r) {
        return None;
    }
    let at = r.mounts.iter().position(|m| {
        matches!(m.kind, crate::spec::MountKind::Proc) && m.target == Path::new("/proc")
    })?;
    if r.mounts[at + 1..]
        .iter()
        .any(|m| m.target.starts_with("/proc"))
    {
        return None;
    }
    let (flags, attrs) = fs::proc_attrs(&r.mounts[at])?;
    Some((at, flags, attrs))
}

fn spawn(b: &mut B, r: &Spec, into: Option<PathBuf>) {
    let ns = &r.namespaces;
    let mut flags = vec![];
    for (on, f) in [
        (
            matches!(ns.user, UserNamespace::New(_)),
            CloneFlag::CLONE_NEWUSER,
        ),
        (ns.pid.is_new(), CloneFlag::CLONE_NEWPID),
        (ns.mount.is_new(), CloneFlag::CLONE_NEWNS),
        (ns.uts.is_new(), CloneFlag::CLONE_NEWUTS),
        (ns.ipc.is_new(), CloneFlag::CLONE_NEWIPC),
        (ns.net.is_new(), CloneFlag::CLONE_NEWNET),
        (ns.time.is_new(), CloneFlag::CLONE_NEWTIME),
        (into.is_some(), CloneFlag::CLONE_INTO_CGROUP),
    ] {
        if on {
            flags.push(f);
        }
    }
    // Without a pid namespace of its own, nothing ends the processes the container leaves
    // behind: the launcher adopts them and kills them at the end.
    let subreaper = !ns.pid.is_new();
    b.push(
        if subreaper {
            "create the container process in its namespaces, waiting for the handshake; \
             no pid namespace of its own: launch adopts the processes it leaves and kills them at the end"
        } else {
            "create the container process in its namespaces, waiting for the handshake"
        },
        HostAction::Spawn {
            flags,
            cgroup: into,
            subreaper,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{FakeHost, Host};
    use crate::manifest::Source;
    use crate::spec::Namespace;

    /// A joined namespace is entered with setns after the handshake and before the root is
    /// built (its path is the host's), and is not also created by clone3.
    #[test]
    fn joined_namespaces_are_entered_before_the_root() {
        let host = FakeHost::v2();
        let src = Source::from_text(
            "app.toml",
            Path::new("/"),
            "name = \"j\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n",
        );
        let mut spec = crate::validate::spec(&src, &host).unwrap();
        spec.namespaces.net = Namespace::Join("/run/netns/blue".into());
        spec.namespaces.uts = Namespace::Join("/proc/1/ns/uts".into());
        let plan = lower(&spec, host.facts(), "app.toml");
        let at = |pred: &dyn Fn(&Action) -> bool| {
            plan.steps.iter().position(|s| pred(&s.action)).unwrap()
        };
        let spawn = at(&|a| matches!(a, Action::Host(HostAction::Spawn { .. })));
        let uts = at(&|a| {
            matches!(
                a,
                Action::Container(ContainerAction::Setns {
                    kind: CloneFlag::CLONE_NEWUTS,
                    ..
                })
            )
        });
        let net = at(&|a| {
            matches!(a, Action::Container(ContainerAction::Setns { path, kind: CloneFlag::CLONE_NEWNET })
                if path == Path::new("/run/netns/blue"))
        });
        let prop = at(&|a| matches!(a, Action::Container(ContainerAction::Propagation { .. })));
        assert!(spawn < uts && uts < net && net < prop);
        let Action::Host(HostAction::Spawn { flags, .. }) = &plan.steps[spawn].action else {
            unreachable!()
        };
        assert!(!flags.contains(&CloneFlag::CLONE_NEWNET));
        assert!(!flags.contains(&CloneFlag::CLONE_NEWUTS));
        assert!(
            !plan
                .steps
                .iter()
                .any(|s| s.action == Action::Container(ContainerAction::LoopbackUp))
        );
    }

    /// The launcher makes /proc (with the masks under it) for a root launcher's container
    /// without a user namespace; the container process keeps the other masks. Not with a user
    /// namespace, nor with a mount below /proc after it, nor for a non-root launcher.
    #[test]
    fn the_launcher_makes_proc_only_where_it_can() {
        let host = FakeHost::hybrid();
        let plan_of = |tables: &str, uid: u32| {
            let text = format!(
                "name = \"p\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n\
                 [[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n{tables}"
            );
            let src = Source::from_text("app.toml", Path::new("/"), &text);
            let spec = crate::validate::spec(&src, &host).unwrap();
            let mut facts = host.facts().clone();
            facts.uid = uid;
            lower(&spec, &facts, "app.toml")
        };
        let prepared = |plan: &Plan| {
            plan.steps.iter().find_map(|s| match &s.action {
                Action::Host(HostAction::PrepareProc { masked, .. }) => Some(masked.clone()),
                _ => None,
            })
        };
        let masks_here = |plan: &Plan| {
            plan.steps
                .iter()
                .filter_map(|s| match &s.action {
                    Action::Container(ContainerAction::MaskPaths { paths, .. }) => {
                        Some(paths.clone())
                    }
                    _ => None,
                })
                .flatten()
                .collect::<Vec<_>>()
        };

        let plan = plan_of("", 0);
        let made = prepared(&plan).expect("the launcher makes /proc");
        assert!(made.contains(&PathBuf::from("/proc/kcore")));
        assert!(made.iter().all(|p| p.starts_with("/proc")));
        let here = masks_here(&plan);
        assert!(here.iter().all(|p| !p.starts_with("/proc")), "{here:?}");
        assert!(here.contains(&PathBuf::from("/sys/firmware")));
        let kinds: Vec<_> = plan
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Host(HostAction::ReleaseEarly) => Some("release_early"),
                Action::Host(HostAction::PrepareProc { .. }) => Some("prepare_proc"),
                Action::Host(HostAction::AwaitStart) => Some("await_start"),
                Action::Host(HostAction::Release) => Some("release"),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["release_early", "prepare_proc", "await_start"]);

        for (tables, uid) in [
            ("[namespaces]\nuser = true\n", 0),
            (
                "[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/proc/driver\"\n",
                0,
            ),
            ("", 1000),
        ] {
            let plan = plan_of(tables, uid);
            assert_eq!(prepared(&plan), None, "{tables} uid {uid}");
            let here = masks_here(&plan);
            assert!(
                here.contains(&PathBuf::from("/proc/kcore")),
                "{tables} uid {uid}"
            );
        }
    }
}
