//! Cgroup steps: parents, the container's groups, limit writes, spelled for the host's layout.

use std::path::PathBuf;

use super::B;
use crate::host::{CgroupLayout, HostFacts, v1_name};
use crate::plan::Action;
use crate::validate::Resolved;

/// The container's cgroup directories, one per hierarchy used (v1) or the one (v2).
pub(super) fn cgroup_dirs(r: &Resolved, facts: &HostFacts, instance: &str) -> Vec<PathBuf> {
    hierarchies(r, facts)
        .into_iter()
        .map(|(_, base)| base.join(&r.limits.parent).join(instance))
        .collect()
}

/// (controller, hierarchy root) pairs for the limits in use, in first-use order.
pub(super) fn hierarchies(r: &Resolved, facts: &HostFacts) -> Vec<(&'static str, PathBuf)> {
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
    // On v1, two more groups can earn their place: cpuacct counts the CPU time of a CPU-limited
    // container (cpu and cpuacct are often separate hierarchies), and freezer lets teardown
    // freeze the whole group before killing it, so nothing forks away during the kill. With a
    // pid namespace the freezer is not needed: when its PID 1 dies the kernel kills everything
    // in it, atomically.
    if cg.layout != CgroupLayout::V2 && !out.is_empty() {
        let mut extra: Vec<&'static str> = Vec::new();
        if out.iter().any(|(c, _)| *c == "cpu") {
            extra.push("cpuacct");
        }
        if !r.ns.pid {
            extra.push("freezer");
        }
        for c in extra {
            if let Some(base) = cg.v1.get(c) {
                if !out.iter().any(|(_, b)| b == base) {
                    out.push((c, base.clone()));
                }
            }
        }
    }
    out
}

/// Cgroup steps. Returns the group to clone into (v2), if any.
pub(super) fn cgroups(
    b: &mut B,
    r: &Resolved,
    facts: &HostFacts,
    instance: &str,
) -> Option<PathBuf> {
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

pub(super) fn limit_summary(controller: &str, file: &str) -> String {
    let what = match file {
        "cpu.max" | "cpu.cfs_quota_us" => "limit CPU time",
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
