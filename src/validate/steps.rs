//! Lay out the resolved manifest as ordered plan steps. No checks here: everything was decided by
//! validation. The order is the one in docs/design.md and is pinned by a test:
//!
//! host: state dir → cgroups → rootfs archive → spawn → id maps → cgroup join → release;
//! container: late namespaces → loopback → propagation → root → /dev → mounts → read-only root →
//! pivot_root → hostname → rlimits → ids → chdir → execve; host: wait.

use std::path::{Path, PathBuf};

use super::Resolved;
use super::mounts::Mnt;
use super::rootfs::{HostEntry, RootSource};
use crate::host::{CgroupLayout, HostFacts, v1_name};
use crate::manifest::MountKind;
use crate::plan::{
    Action, CloneFlag, ID_PLACEHOLDER, MountAttr, MountFlag, PID_PLACEHOLDER, PLAN_FORMAT, Plan,
    Step, Stop,
};

/// Device nodes bound from the host into a minimal /dev, as bubblewrap and crun do (binding works
/// in a user namespace, where mknod does not).
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Inside-root path → path under the new root before pivot_root.
fn under(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

struct B {
    steps: Vec<Step>,
}

impl B {
    fn push(&mut self, summary: impl Into<String>, action: Action) {
        self.steps.push(Step::new(summary, action));
    }
}

pub(crate) fn build(r: &Resolved, facts: &HostFacts, manifest: &str) -> Plan {
    let instance = format!("{}-{ID_PLACEHOLDER}", r.name);
    let state = facts.state_root.join(&instance);
    let root = state.join("root");
    let mut b = B { steps: Vec::new() };

    b.push(
        if r.multiple {
            "clean up after dead launchers"
        } else {
            "clean up after dead launchers; refuse a second live instance"
        },
        Action::Claim {
            name: r.name.clone(),
            multiple: r.multiple,
        },
    );
    b.push(
        "create the state directory (undo journal, root mount point)",
        Action::StateDir {
            path: state.clone(),
        },
    );
    let into_cgroup = cgroups(&mut b, r, facts, &instance);
    if let RootSource::Tar(archive, compression) = &r.rootfs.source {
        b.push(
            "extract the root filesystem archive",
            Action::ExtractRootfs {
                archive: archive.clone(),
                compression: *compression,
                dest: root.clone(),
            },
        );
    }
    spawn(&mut b, r, into_cgroup.clone());
    if let Some(maps) = &r.ns.user {
        let proc = PathBuf::from(format!("/proc/{PID_PLACEHOLDER}"));
        let lines = |ls: &[crate::plan::IdMapLine]| {
            ls.iter()
                .map(|l| format!("{} {} {}\n", l.inside, l.outside, l.count))
                .collect::<String>()
        };
        if maps.deny_setgroups {
            b.push(
                "deny setgroups (required before an unprivileged gid_map)",
                Action::WriteIdMap {
                    path: proc.join("setgroups"),
                    value: "deny".into(),
                },
            );
        }
        b.push(
            "map user ids",
            Action::WriteIdMap {
                path: proc.join("uid_map"),
                value: lines(&maps.uid),
            },
        );
        b.push(
            "map group ids",
            Action::WriteIdMap {
                path: proc.join("gid_map"),
                value: lines(&maps.gid),
            },
        );
    }
    if into_cgroup.is_none() {
        for dir in cgroup_dirs(r, facts, &instance) {
            b.push(
                "move the container into its cgroup",
                Action::CgroupJoin {
                    path: dir.join("cgroup.procs"),
                },
            );
        }
    }
    b.push("release the container process", Action::Release);

    if r.ns.user.is_some() {
        // Until it sets its ids, the process keeps the launcher's host ids, which the new
        // namespace may not map: files it created would fail with EOVERFLOW.
        b.push(
            "become root of the new user namespace",
            Action::SetIds {
                uid: 0,
                gid: 0,
                groups: vec![],
            },
        );
    }

    if r.ns.cgroup {
        b.push(
            "enter a new cgroup namespace rooted at the container's cgroup",
            Action::Unshare {
                flags: vec![CloneFlag::CLONE_NEWCGROUP],
            },
        );
    }
    if r.ns.net {
        b.push(
            "bring up loopback in the new network namespace",
            Action::LoopbackUp,
        );
    }
    b.push(
        "stop mount events propagating to or from the host",
        Action::Propagation {
            target: "/".into(),
            flags: vec![MountFlag::MS_REC, MountFlag::MS_PRIVATE],
        },
    );
    rootfs(&mut b, r, &root);
    if !r.mounts.iter().any(|m| m.target == Path::new("/dev")) {
        minimal_dev(&mut b, &root);
    }
    for m in &r.mounts {
        mount(&mut b, m, &root);
    }
    if r.rootfs.readonly {
        b.push(
            "make the root filesystem read-only (its own mount only; mounts below keep their flags)",
            Action::SetAttr { target: root.clone(), attrs: vec![MountAttr::MOUNT_ATTR_RDONLY], recursive: false },
        );
    }
    if r.rootfs.pivot_root {
        b.push(
            "switch to the new root and detach the host's",
            Action::PivotRoot {
                new_root: root.clone(),
            },
        );
    } else {
        b.push(
            "chroot into the new root (asked by `pivot_root = false`; the host's mounts stay attached)",
            Action::Chroot { path: root.clone() },
        );
    }
    if let Some(h) = &r.hostname {
        b.push("set the hostname", Action::SetHostname { name: h.clone() });
    }
    if let Some(d) = &r.domainname {
        b.push(
            "set the domain name",
            Action::SetDomainname { name: d.clone() },
        );
    }
    b.push(
        "give the process a terminal, if the run uses one",
        Action::Terminal,
    );
    for (res, soft, hard) in &r.limits.rlimits {
        b.push(
            format!("limit {}", res.trim_start_matches("RLIMIT_").to_lowercase()),
            Action::Setrlimit {
                resource: res.clone(),
                soft: *soft,
                hard: *hard,
            },
        );
    }
    let p = &r.process;
    b.push(
        format!("become uid {} gid {}", p.uid, p.gid),
        Action::SetIds {
            uid: p.uid,
            gid: p.gid,
            groups: p.groups.clone(),
        },
    );
    b.push(
        "enter the working directory",
        Action::Chdir {
            path: p.cwd.clone(),
        },
    );
    b.push(
        "run the command",
        Action::Exec {
            argv: p.argv.clone(),
            env: p.env.clone(),
            init: p.init,
        },
    );
    b.push("wait for the container to exit", Action::Wait);

    Plan {
        format: PLAN_FORMAT,
        name: r.name.clone(),
        manifest: manifest.to_owned(),
        instance,
        host: facts.clone(),
        terminal: r.process.terminal,
        stop: Stop {
            signal: r.process.stop_signal.clone(),
            timeout_ms: r.process.stop_timeout_ms,
        },
        steps: b.steps,
    }
}

/// The container's cgroup directories, one per hierarchy used (v1) or the one (v2).
fn cgroup_dirs(r: &Resolved, facts: &HostFacts, instance: &str) -> Vec<PathBuf> {
    hierarchies(r, facts)
        .into_iter()
        .map(|(_, base)| base.join(&r.limits.parent).join(instance))
        .collect()
}

/// (controller, hierarchy root) pairs for the limits in use, in first-use order.
fn hierarchies(r: &Resolved, facts: &HostFacts) -> Vec<(&'static str, PathBuf)> {
    let cg = &facts.cgroup;
    let mut out: Vec<(&'static str, PathBuf)> = Vec::new();
    for (c, _, _) in &r.limits.writes {
        let base = match cg.layout {
            CgroupLayout::V2 => cg.v2_root.clone().unwrap_or_default(),
            _ => cg.v1.get(v1_name(c)).cloned().unwrap_or_default(),
        };
        if !out.iter().any(|(_, b)| *b == base) {
            out.push((c, base));
        }
    }
    // On v1, two more groups earn their place: cpuacct counts the CPU time of a CPU-limited
    // container (cpu and cpuacct are often separate hierarchies), and freezer lets teardown
    // freeze the whole group before killing it, so nothing forks away during the kill.
    if cg.layout != CgroupLayout::V2 && !out.is_empty() {
        let extra: &[&'static str] = if out.iter().any(|(c, _)| *c == "cpu") {
            &["cpuacct", "freezer"]
        } else {
            &["freezer"]
        };
        for c in extra {
            if let Some(base) = cg.v1.get(*c) {
                if !out.iter().any(|(_, b)| b == base) {
                    out.push((c, base.clone()));
                }
            }
        }
    }
    out
}

/// Cgroup steps. Returns the group to clone into (v2), if any.
fn cgroups(b: &mut B, r: &Resolved, facts: &HostFacts, instance: &str) -> Option<PathBuf> {
    let writes = &r.limits.writes;
    if writes.is_empty() {
        return None;
    }
    let parent_rel = &r.limits.parent;
    if facts.cgroup.layout == CgroupLayout::V2 {
        let base = facts.cgroup.v2_root.clone().unwrap_or_default();
        let mut controllers: Vec<String> = Vec::new();
        for (c, _, _) in writes {
            if !controllers.iter().any(|x| x == c) {
                controllers.push((*c).to_owned());
            }
        }
        // Delegate the controllers down every level from the root to our parent.
        let mut dir = base.clone();
        b.push(
            "let children of the cgroup root use the controllers",
            Action::CgroupEnable {
                path: dir.join("cgroup.subtree_control"),
                controllers: controllers.clone(),
            },
        );
        for comp in parent_rel.components() {
            dir = dir.join(comp);
            b.push(
                "create the shared parent cgroup",
                Action::CgroupParent { path: dir.clone() },
            );
            b.push(
                "let the parent's children use the controllers",
                Action::CgroupEnable {
                    path: dir.join("cgroup.subtree_control"),
                    controllers: controllers.clone(),
                },
            );
        }
        let group = dir.join(instance);
        b.push(
            "create the container's cgroup",
            Action::CgroupCreate {
                path: group.clone(),
            },
        );
        for (c, file, value) in writes {
            b.push(
                limit_summary(c, file),
                Action::CgroupWrite {
                    path: group.join(file),
                    value: value.clone(),
                },
            );
        }
        return Some(group);
    }
    for (first, base) in hierarchies(r, facts) {
        let name = v1_name(first);
        let is_cpuset = facts.cgroup.v1.get("cpuset") == Some(&base);
        let mut parent = base.clone();
        for comp in parent_rel.components() {
            parent = parent.join(comp);
            b.push(
                format!("create the shared parent cgroup ({name})"),
                Action::CgroupParent {
                    path: parent.clone(),
                },
            );
            // New v1 cpusets start empty; every level must be filled in before a child can be.
            if let (true, Some((cpus, mems))) = (is_cpuset, &facts.cgroup.cpuset_root) {
                b.push(
                    "give the parent cpuset all CPUs",
                    Action::CgroupWrite {
                        path: parent.join("cpuset.cpus"),
                        value: cpus.clone(),
                    },
                );
                b.push(
                    "give the parent cpuset all memory nodes",
                    Action::CgroupWrite {
                        path: parent.join("cpuset.mems"),
                        value: mems.clone(),
                    },
                );
            }
        }
        let group = parent.join(instance);
        b.push(
            format!("create the container's cgroup ({name})"),
            Action::CgroupCreate {
                path: group.clone(),
            },
        );
        for (c, file, value) in writes {
            if facts.cgroup.v1.get(v1_name(c)) == Some(&base) {
                b.push(
                    limit_summary(c, file),
                    Action::CgroupWrite {
                        path: group.join(file),
                        value: value.clone(),
                    },
                );
            }
        }
    }
    None
}

fn limit_summary(controller: &str, file: &str) -> String {
    let what = match file {
        "cpu.max" | "cpu.cfs_quota_us" => "limit CPU time",
        "cpu.cfs_period_us" => "set the CPU period",
        "cpu.weight" | "cpu.shares" => "set CPU weight",
        "cpuset.cpus" => "pin to CPUs",
        "cpuset.mems" => "pin to memory nodes",
        "memory.max" | "memory.limit_in_bytes" => "limit memory",
        "memory.swap.max" | "memory.memsw.limit_in_bytes" => "limit swap",
        "memory.low" | "memory.soft_limit_in_bytes" => "reserve memory",
        "memory.high" => "throttle memory above",
        "pids.max" => "limit the number of processes",
        "io.weight" | "blkio.weight" => "set I/O weight",
        _ => "limit I/O bandwidth",
    };
    format!("{what} ({controller})")
}

fn spawn(b: &mut B, r: &Resolved, into: Option<PathBuf>) {
    let ns = &r.ns;
    let mut flags = vec![];
    for (on, f) in [
        (ns.user.is_some(), CloneFlag::CLONE_NEWUSER),
        (ns.pid, CloneFlag::CLONE_NEWPID),
        (ns.mount, CloneFlag::CLONE_NEWNS),
        (ns.uts, CloneFlag::CLONE_NEWUTS),
        (ns.ipc, CloneFlag::CLONE_NEWIPC),
        (ns.net, CloneFlag::CLONE_NEWNET),
        (ns.time, CloneFlag::CLONE_NEWTIME),
        (into.is_some(), CloneFlag::CLONE_INTO_CGROUP),
    ] {
        if on {
            flags.push(f);
        }
    }
    b.push(
        "create the container process in its namespaces, waiting for the handshake",
        Action::Spawn {
            flags,
            cgroup: into,
        },
    );
}

fn rootfs(b: &mut B, r: &Resolved, root: &Path) {
    let bind = vec![MountFlag::MS_BIND, MountFlag::MS_REC];
    match &r.rootfs.source {
        RootSource::Dir(dir) => {
            b.push(
                "bind the root directory",
                Action::Mount {
                    source: dir.display().to_string(),
                    target: root.to_path_buf(),
                    fstype: "none".into(),
                    flags: bind,
                    data: None,
                },
            );
        }
        RootSource::Tar(..) => b.push(
            "make the extracted root a mount point",
            Action::Mount {
                source: root.display().to_string(),
                target: root.to_path_buf(),
                fstype: "none".into(),
                flags: bind,
                data: None,
            },
        ),
        RootSource::Host(entries) => {
            b.push(
                "mount a fresh tmpfs as the root",
                Action::Mount {
                    source: "tmpfs".into(),
                    target: root.to_path_buf(),
                    fstype: "tmpfs".into(),
                    flags: vec![MountFlag::MS_NOSUID, MountFlag::MS_NODEV],
                    data: Some("mode=0755".into()),
                },
            );
            for e in entries {
                match e {
                    HostEntry::Symlink(link, target) => b.push(
                        format!("recreate the host's {} symlink", link.display()),
                        Action::Symlink {
                            target: target.display().to_string(),
                            link: under(root, link),
                        },
                    ),
                    HostEntry::Bind(dir) => {
                        let at = under(root, dir);
                        b.push(
                            format!("create {}", dir.display()),
                            Action::Mkdir {
                                path: at.clone(),
                                mode: 0o755,
                            },
                        );
                        b.push(
                            format!("bind the host's {}", dir.display()),
                            Action::Mount {
                                source: dir.display().to_string(),
                                target: at.clone(),
                                fstype: "none".into(),
                                flags: bind.clone(),
                                data: None,
                            },
                        );
                        b.push(
                            format!(
                                "make {} read-only, with every mount below it",
                                dir.display()
                            ),
                            Action::SetAttr {
                                target: at,
                                attrs: vec![
                                    MountAttr::MOUNT_ATTR_RDONLY,
                                    MountAttr::MOUNT_ATTR_NODEV,
                                ],
                                recursive: true,
                            },
                        );
                    }
                }
            }
        }
    }
}

fn minimal_dev(b: &mut B, root: &Path) {
    let dev = root.join("dev");
    let devp = |n: &str| dev.join(n);
    b.push(
        "create /dev",
        Action::Mkdir {
            path: dev.clone(),
            mode: 0o755,
        },
    );
    b.push(
        "mount a tmpfs for a minimal /dev",
        Action::Mount {
            source: "tmpfs".into(),
            target: dev.clone(),
            fstype: "tmpfs".into(),
            flags: vec![MountFlag::MS_NOSUID, MountFlag::MS_NOEXEC],
            data: Some("mode=0755,size=65536k".into()),
        },
    );
    for n in DEV_NODES {
        b.push(format!("create /dev/{n}"), Action::Touch { path: devp(n) });
        b.push(
            format!("bind the host's /dev/{n}"),
            Action::Mount {
                source: format!("/dev/{n}"),
                target: devp(n),
                fstype: "none".into(),
                flags: vec![MountFlag::MS_BIND],
                data: None,
            },
        );
    }
    b.push(
        "create /dev/pts",
        Action::Mkdir {
            path: devp("pts"),
            mode: 0o755,
        },
    );
    b.push(
        "mount a private devpts instance",
        Action::Mount {
            source: "devpts".into(),
            target: devp("pts"),
            fstype: "devpts".into(),
            flags: vec![MountFlag::MS_NOSUID, MountFlag::MS_NOEXEC],
            data: Some("newinstance,ptmxmode=0666,mode=0620".into()),
        },
    );
    b.push(
        "create /dev/shm",
        Action::Mkdir {
            path: devp("shm"),
            mode: 0o1777,
        },
    );
    b.push(
        "mount a tmpfs on /dev/shm",
        Action::Mount {
            source: "shm".into(),
            target: devp("shm"),
            fstype: "tmpfs".into(),
            flags: vec![
                MountFlag::MS_NOSUID,
                MountFlag::MS_NODEV,
                MountFlag::MS_NOEXEC,
            ],
            data: Some("mode=1777".into()),
        },
    );
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        b.push(
            format!("link /dev/{link}"),
            Action::Symlink {
                target: target.into(),
                link: devp(link),
            },
        );
    }
}

fn mount(b: &mut B, m: &Mnt, root: &Path) {
    let at = under(root, &m.target);
    let shown = m.target.display();
    if m.file {
        b.push(
            format!("create the mount point {shown}"),
            Action::Touch { path: at.clone() },
        );
    } else {
        b.push(
            format!("create the mount point {shown}"),
            Action::Mkdir {
                path: at.clone(),
                mode: 0o755,
            },
        );
    }
    let what = match m.kind {
        MountKind::Proc => "mount proc".to_string(),
        MountKind::Sysfs => "mount sysfs".to_string(),
        MountKind::Tmpfs => "mount a tmpfs".to_string(),
        MountKind::Bind => format!("bind {}", m.source),
        MountKind::Devpts => "mount a private devpts instance".to_string(),
        MountKind::Mqueue => "mount the message queue filesystem".to_string(),
    };
    b.push(
        format!("{what} on {shown}"),
        Action::Mount {
            source: m.source.clone(),
            target: at.clone(),
            fstype: m.kind.fstype().into(),
            flags: m.flags.clone(),
            data: m.data.clone(),
        },
    );
    if !m.attrs.is_empty() {
        let words: Vec<&str> = m
            .attrs
            .iter()
            .map(|a| match a {
                MountAttr::MOUNT_ATTR_RDONLY => "read-only",
                MountAttr::MOUNT_ATTR_NOSUID => "nosuid",
                MountAttr::MOUNT_ATTR_NODEV => "nodev",
                MountAttr::MOUNT_ATTR_NOEXEC => "noexec",
            })
            .collect();
        b.push(
            format!("make {shown} {}", words.join(", ")),
            Action::SetAttr {
                target: at,
                attrs: m.attrs.clone(),
                recursive: m.recursive,
            },
        );
    }
}
