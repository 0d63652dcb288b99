//! Cgroup limits spelled for this host: v2 files in one hierarchy, or v1 files spread over one
//! hierarchy per controller (hybrid hosts use their v1 controllers). This is the only place that
//! knows cgroup file names for limits; [`gaps`] tells validation what this host cannot apply.

use std::path::{Path, PathBuf};

use super::B;
use crate::host::{CgroupLayout, HostFacts, v1_name};
use crate::plan::HostAction;
use crate::spec::{Limits, Spec};
use crate::sys::devices::DeviceRule;

/// A limit of the Spec, by name: what a [`Gap`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey {
    /// `cpu`.
    Cpu,
    /// `cpu_weight`.
    CpuWeight,
    /// `cpuset_cpus`.
    CpusetCpus,
    /// `cpuset_mems`.
    CpusetMems,
    /// `memory`.
    Memory,
    /// `memory_swap`.
    MemorySwap,
    /// `memory_reservation`.
    MemoryReservation,
    /// `memory_high`.
    MemoryHigh,
    /// `pids`.
    Pids,
    /// `io_weight`.
    IoWeight,
    /// The n-th entry of `io`.
    Io(usize),
}

/// A limit this host cannot apply, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The limit.
    pub key: LimitKey,
    /// Diagnostic code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Said at the limit.
    pub label: String,
    /// The fix.
    pub help: String,
}

/// One file write: (controller, file, value). The controller is the v2 name; on v1 it selects
/// the hierarchy ([`v1_name`]).
pub(crate) struct Write {
    key: LimitKey,
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

/// v2 `cpu.weight` (1–10000) → v1 `cpu.shares` (2–262144): the inverse of the conversion runc
/// and crun apply the other way, so a weight round-trips through them.
pub fn weight_to_shares(w: u64) -> u64 {
    2 + ((w.clamp(1, 10_000) - 1) * 262_142) / 9_999
}

/// v1 `cpu.shares` → v2 `cpu.weight`, as runc and crun convert it.
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares.clamp(2, 262_144) - 2) * 9_999) / 262_142
}

/// v2 `io.weight` (1–10000) → v1 `blkio.weight` (10–1000), linear.
pub fn io_weight_to_v1(w: u64) -> u64 {
    10 + ((w.clamp(1, 10_000) - 1) * 990) / 9_999
}

/// v1 `blkio.weight` (10–1000) → v2 `io.weight` (1–10000), as runc converts it.
pub fn blkio_weight_to_io(w: u64) -> u64 {
    1 + ((w.clamp(10, 1000) - 10) * 9_999) / 990
}

/// The v1 period of a new group: what the kernel starts a group with.
const V1_DEFAULT_PERIOD_US: u64 = 100_000;

/// Spell the limits as file writes for this host, and say what it cannot apply.
fn spell(l: &Limits, facts: &HostFacts) -> (Vec<Write>, Vec<Gap>) {
    let cg = &facts.cgroup;
    let layout = cg.layout;
    let v2 = layout == CgroupLayout::V2;
    let mut writes = Vec::new();
    let mut gaps: Vec<Gap> = Vec::new();
    // Limits this layout has no file for at all (the closure below holds `gaps`).
    let mut unsupported: Vec<Gap> = Vec::new();
    let mut w = |key: LimitKey, controller: &'static str, file: &'static str, value: String| {
        let rootless = cg
            .has(controller)
            .then(|| rootless_block(facts, controller))
            .flatten();
        if let Some((label, help)) = rootless {
            if !gaps.iter().any(|g| g.key == key) {
                gaps.push(Gap {
                    key,
                    code: "launch::limits::rootless",
                    message: format!(
                        "without root, this host cannot apply this limit (uid {})",
                        facts.uid
                    ),
                    label,
                    help,
                });
            }
        } else if cg.has(controller) {
            writes.push(Write {
                key,
                controller,
                file,
                value,
            });
        } else if !gaps.iter().any(|g| g.key == key) {
            let (name, layout_words) = match layout {
                CgroupLayout::V2 => (controller, "cgroup v2"),
                CgroupLayout::V1 => (v1_name(controller), "cgroup v1"),
                CgroupLayout::Hybrid => (v1_name(controller), "hybrid (v1 controllers)"),
                CgroupLayout::None => (controller, "no cgroups"),
            };
            gaps.push(Gap {
                key,
                code: "launch::limits::controller_missing",
                message: format!("this host cannot apply this limit: no `{name}` controller"),
                label: format!("needs the `{name}` controller; this host has {layout_words}"),
                help: match layout {
                    CgroupLayout::V2 => format!(
                        "enable `{name}` in the parent's cgroup.subtree_control, or remove this limit"
                    ),
                    CgroupLayout::V1 | CgroupLayout::Hybrid | CgroupLayout::None => {
                        format!("mount the `{name}` cgroup hierarchy, or remove this limit")
                    }
                },
            });
        }
    };
    if let Some(q) = l.cpu {
        if v2 {
            w(
                LimitKey::Cpu,
                "cpu",
                "cpu.max",
                format!("{} {}", q.quota_us, q.period_us),
            );
        } else {
            // A new v1 group's period already is the kernel's default: writing it again costs a
            // bandwidth update and ~0.1 ms of start-up for nothing.
            if q.period_us != V1_DEFAULT_PERIOD_US {
                w(
                    LimitKey::Cpu,
                    "cpu",
                    "cpu.cfs_period_us",
                    q.period_us.to_string(),
                );
            }
            w(
                LimitKey::Cpu,
                "cpu",
                "cpu.cfs_quota_us",
                q.quota_us.to_string(),
            );
        }
    }
    if let Some(weight) = l.cpu_weight {
        if v2 {
            w(LimitKey::CpuWeight, "cpu", "cpu.weight", weight.to_string());
        } else {
            let shares = weight_to_shares(weight).to_string();
            w(LimitKey::CpuWeight, "cpu", "cpu.shares", shares);
        }
    }
    if let Some(cpus) = &l.cpuset_cpus {
        w(LimitKey::CpusetCpus, "cpuset", "cpuset.cpus", cpus.clone());
        // A v1 cpuset group cannot take tasks until both cpus and mems are set.
        if !v2 && l.cpuset_mems.is_none() {
            let mems = cg
                .cpuset_root
                .as_ref()
                .map_or_else(|| "0".to_owned(), |r| r.1.clone());
            w(LimitKey::CpusetCpus, "cpuset", "cpuset.mems", mems);
        }
    }
    if let Some(mems) = &l.cpuset_mems {
        w(LimitKey::CpusetMems, "cpuset", "cpuset.mems", mems.clone());
    }
    if let Some(m) = l.memory {
        let file = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        w(LimitKey::Memory, "memory", file, m.to_string());
    }
    if let Some(r) = l.memory_reservation {
        let file = if v2 {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        };
        w(LimitKey::MemoryReservation, "memory", file, r.to_string());
    }
    if let Some(h) = l.memory_high {
        if v2 {
            w(LimitKey::MemoryHigh, "memory", "memory.high", h.to_string());
        } else {
            unsupported.push(Gap {
                key: LimitKey::MemoryHigh,
                code: "launch::limits::unsupported",
                message: "memory_high needs cgroup v2".into(),
                label: format!("this host's memory controller is v1 ({layout:?})").to_lowercase(),
                help: "use `memory_reservation` (v1 soft limit) or `memory` instead".into(),
            });
        }
    }
    if let (Some(s), Some(m)) = (l.memory_swap, l.memory) {
        if !cg.memory_swap {
            unsupported.push(Gap {
                key: LimitKey::MemorySwap,
                code: "launch::limits::controller_missing",
                message: "this host cannot limit swap".into(),
                label: "no memory.memsw.* files: swap accounting is off".into(),
                help: "boot with swapaccount=1, or remove memory_swap".into(),
            });
        } else if v2 {
            // v2 limits swap alone; the Spec (like docker) counts memory and swap together.
            let swap = s.saturating_sub(m).to_string();
            w(LimitKey::MemorySwap, "memory", "memory.swap.max", swap);
        } else {
            let file = "memory.memsw.limit_in_bytes";
            w(LimitKey::MemorySwap, "memory", file, s.to_string());
        }
    }
    if let Some(p) = l.pids {
        w(LimitKey::Pids, "pids", "pids.max", p.to_string());
    }
    if let Some(weight) = l.io_weight {
        if !v2 && !cg.io_weight {
            unsupported.push(Gap {
                key: LimitKey::IoWeight,
                code: "launch::limits::controller_missing",
                message: "this host has no proportional I/O weights".into(),
                label: "no blkio.weight: the disks' I/O scheduler (mq-deadline, none) has no \
                        weights"
                    .into(),
                help: "remove io_weight, or use a scheduler with weights (bfq: \
                       `echo bfq > /sys/block/DEV/queue/scheduler`); `io` rate limits work \
                       with any"
                    .into(),
            });
        } else if v2 {
            w(
                LimitKey::IoWeight,
                "io",
                "io.weight",
                format!("default {weight}"),
            );
        } else {
            let v = io_weight_to_v1(weight).to_string();
            w(LimitKey::IoWeight, "io", "blkio.weight", v);
        }
    }
    for (i, d) in l.io.iter().enumerate() {
        let key = LimitKey::Io(i);
        let dev = format!("{}:{}", d.major, d.minor);
        let rates = [
            (d.read_bps, "rbps", "blkio.throttle.read_bps_device"),
            (d.write_bps, "wbps", "blkio.throttle.write_bps_device"),
            (d.read_iops, "riops", "blkio.throttle.read_iops_device"),
            (d.write_iops, "wiops", "blkio.throttle.write_iops_device"),
        ];
        if v2 {
            let v: Vec<String> = rates
                .iter()
                .filter_map(|(v, k, _)| v.map(|v| format!("{k}={v}")))
                .collect();
            if !v.is_empty() {
                w(key, "io", "io.max", format!("{dev} {}", v.join(" ")));
            }
        } else {
            for (v, _, file) in rates {
                if let Some(v) = v {
                    w(key, "io", file, format!("{dev} {v}"));
                }
            }
        }
    }
    gaps.extend(unsupported);
    (writes, gaps)
}

/// How a non-root launcher gets limits: a scope of its own that systemd delegates to it.
pub const DELEGATE_SCOPE: &str = "systemd-run --user --scope -p Delegate=yes launch run APP.toml";

/// Why a non-root launcher cannot use `controller` on this host, if it cannot: (what is
/// wrong, how to get it). `None` for root. A non-root launcher's groups go in the cgroup v2
/// subtree delegated to it (its own cgroup, owned by it: systemd's `Delegate=yes`).
pub fn rootless_block(facts: &HostFacts, controller: &str) -> Option<(String, String)> {
    if facts.uid == 0 {
        return None;
    }
    let cg = &facts.cgroup;
    let scope = format!("run launch in a scope delegated to you: {DELEGATE_SCOPE}");
    if cg.layout != CgroupLayout::V2 {
        return Some((
            format!(
                "cgroup {} belongs to root and cannot be delegated to a user",
                match cg.layout {
                    CgroupLayout::None => "(none is mounted)",
                    _ => "v1",
                }
            ),
            "run launch as root (sudo launch run APP.toml), or boot with cgroup v2 alone \
             (systemd.unified_cgroup_hierarchy=1 on the kernel command line) and run launch in \
             a scope delegated to you: systemd-run --user --scope -p Delegate=yes launch run \
             APP.toml"
                .into(),
        ));
    }
    let Some(own) = &cg.own else {
        return Some((
            "launch's own cgroup is unknown (no `0::` line in /proc/self/cgroup)".into(),
            scope,
        ));
    };
    if !own.delegated {
        return Some((
            format!(
                "your cgroup {} is not delegated to you (it, its cgroup.procs and \
                 cgroup.subtree_control are not owned by uid {})",
                own.dir.display(),
                facts.uid
            ),
            format!("{scope} (or run launch as root)"),
        ));
    }
    if own.others > 0 {
        return Some((
            format!(
                "your delegated cgroup {} holds {} other process{}: a group with processes \
                 cannot give its children controllers",
                own.dir.display(),
                own.others,
                if own.others == 1 { "" } else { "es" }
            ),
            format!("run launch in a scope of its own: {DELEGATE_SCOPE}"),
        ));
    }
    if !own.controllers.iter().any(|c| c == controller) {
        return Some((
            format!(
                "the `{controller}` controller is not delegated to you (your cgroup {} has: {})",
                own.dir.display(),
                if own.controllers.is_empty() {
                    "none".to_string()
                } else {
                    own.controllers.join(" ")
                }
            ),
            "systemd delegates only memory and pids to users by default: put \
             `[Service]` and `Delegate=cpu cpuset io memory pids` in \
             /etc/systemd/system/user@.service.d/delegate.conf, run `systemctl daemon-reload`, \
             and log in again"
                .into(),
        ));
    }
    None
}

/// What this host cannot apply of `l` (validation reports each at its key).
pub fn gaps(l: &Limits, facts: &HostFacts) -> Vec<Gap> {
    spell(l, facts).1
}

/// The file writes for `l` on this host (limits it cannot apply are left out: validation has
/// refused them already).
pub(crate) fn writes(l: &Limits, facts: &HostFacts) -> Vec<Write> {
    let (w, _) = spell(l, facts);
    w
}

/// The container's cgroup directories, one per hierarchy used (v1) or the one (v2).
pub(super) fn cgroup_dirs(spec: &Spec, facts: &HostFacts, instance: &str) -> Vec<PathBuf> {
    hierarchies(spec, facts)
        .into_iter()
        .map(|(_, base)| {
            let parent = base.join(&spec.limits.parent);
            match device_parent(spec, facts, &base) {
                Some(name) if shares_device_group(spec, facts, &base) => parent.join(name),
                Some(name) => parent.join(name).join(instance),
                None => parent.join(instance),
            }
        })
        .collect()
}

/// On v1, whether the container joins the shared group holding its device list in the
/// `devices` hierarchy `base` instead of getting a group of its own there. It does unless
/// another controller it may use is mounted in the same hierarchy (co-mounted with `devices`),
/// whose limits or freezing need a group of its own (made under the shared one, so it starts
/// with the list).
///
/// A group of its own would add nothing else: the `devices` controller only filters, and the
/// container is counted, limited, frozen and killed through its other groups (or its pid
/// namespace). Joining saves a mkdir, a read-back and an rmdir per start. What it shares is
/// only the list, which none of its processes can change: writing `devices.*` takes
/// CAP_SYS_ADMIN in the host's user namespace, and a process holding that can leave any v1
/// device group anyway (mount the hierarchy, write its pid into the root's `tasks`), shared or
/// not. Each start reads the shared group's list back before the container joins it
/// ([`crate::sys::devices::ensure_v1_group`]).
fn shares_device_group(spec: &Spec, facts: &HostFacts, base: &Path) -> bool {
    let v1 = &facts.cgroup.v1;
    let mut others: Vec<&str> = writes(&spec.limits, facts)
        .iter()
        .map(|w| v1_name(w.controller))
        .collect();
    others.extend(["cpuacct", "freezer"]);
    !others
        .iter()
        .any(|c| v1.get(*c).map(PathBuf::as_path) == Some(base))
}

/// On v1, the group between the shared parent and the container's group in the `devices`
/// hierarchy `base`: one per device list (`devices-` and a digest), holding the list, which the
/// kernel copies into each group made under it. A list `devices.list` cannot show (a default of
/// allow with exceptions) has none: its groups sit under the parent and get written.
fn device_parent(spec: &Spec, facts: &HostFacts, base: &Path) -> Option<String> {
    let rules = device_rules(spec, facts);
    let is_devices = facts.cgroup.v1.get("devices").map(PathBuf::as_path) == Some(base);
    match facts.cgroup.layout {
        CgroupLayout::V1 | CgroupLayout::Hybrid if is_devices && !rules.is_empty() => {
            crate::sys::devices::v1_parent_name(rules)
        }
        CgroupLayout::V1 | CgroupLayout::Hybrid | CgroupLayout::V2 | CgroupLayout::None => None,
    }
}

/// The device rules this run applies: the Spec's, when this launcher can (root, on a host with
/// a device controller: validation refused explicit rules otherwise); none else. An
/// unprivileged launcher's container runs in a user namespace, where mknod is refused anyway.
pub(crate) fn device_rules<'s>(spec: &'s Spec, facts: &HostFacts) -> &'s [DeviceRule] {
    let rules = &spec.security.devices;
    if facts.uid != 0 || super::devices::gap(facts).is_some() {
        return &[];
    }
    rules
}

/// (controller, hierarchy root) pairs for the limits in use, in first-use order, then the
/// device controller's when device rules apply.
fn hierarchies(spec: &Spec, facts: &HostFacts) -> Vec<(&'static str, PathBuf)> {
    let cg = &facts.cgroup;
    let mut out: Vec<(&'static str, PathBuf)> = Vec::new();
    for w in writes(&spec.limits, facts) {
        let base = match cg.layout {
            CgroupLayout::V2 => cg.v2_root.clone().unwrap_or_default(),
            CgroupLayout::V1 | CgroupLayout::Hybrid | CgroupLayout::None => cg
                .v1
                .get(v1_name(w.controller))
                .cloned()
                .unwrap_or_default(),
        };
        if !out.iter().any(|(_, b)| *b == base) {
            out.push((w.controller, base));
        }
    }
    if cg.layout != CgroupLayout::V2 && !device_rules(spec, facts).is_empty() {
        if let Some(base) = cg.v1.get("devices") {
            if !out.iter().any(|(_, b)| b == base) {
                out.push(("devices", base.clone()));
            }
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
        if !spec.namespaces.pid.isolated() {
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
    spec: &Spec,
    facts: &HostFacts,
    instance: &str,
) -> Option<PathBuf> {
    let writes = writes(&spec.limits, facts);
    let devices = device_rules(spec, facts);
    if writes.is_empty() && devices.is_empty() {
        return None;
    }
    let parent_rel = &spec.limits.parent;
    if facts.cgroup.layout == CgroupLayout::V2 {
        // A non-root launcher's groups go in its delegated cgroup (validation refused the
        // limits otherwise), which it first leaves for a leaf of it.
        let delegated = facts
            .cgroup
            .own
            .as_ref()
            .filter(|_| facts.uid != 0)
            .map(|o| o.dir.clone());
        let base = delegated
            .clone()
            .unwrap_or_else(|| facts.cgroup.v2_root.clone().unwrap_or_default());
        if let Some(dir) = &delegated {
            b.push(
                "move launch into a leaf of its delegated cgroup (a group holding processes \
                 cannot give its children controllers)",
                HostAction::CgroupLeaf {
                    path: dir.join(crate::host::LAUNCHER_LEAF),
                },
            );
        }
        let mut controllers: Vec<String> = Vec::new();
        for w in &writes {
            if !controllers.iter().any(|x| x == w.controller) {
                controllers.push(w.controller.to_owned());
            }
        }
        // Delegate the controllers down every level from the root to our parent (none to
        // delegate when the group is only there for its device program).
        let mut dir = base.clone();
        if !controllers.is_empty() {
            b.push(
                if delegated.is_some() {
                    "let children of the delegated cgroup use the controllers"
                } else {
                    "let children of the cgroup root use the controllers"
                },
                HostAction::CgroupEnable {
                    path: dir.join("cgroup.subtree_control"),
                    controllers: controllers.clone(),
                },
            );
        }
        for comp in parent_rel.components() {
            dir = dir.join(comp);
            b.push(
                "create the shared parent cgroup",
                HostAction::CgroupParent { path: dir.clone() },
            );
            if !controllers.is_empty() {
                b.push(
                    "let the parent's children use the controllers",
                    HostAction::CgroupEnable {
                        path: dir.join("cgroup.subtree_control"),
                        controllers: controllers.clone(),
                    },
                );
            }
        }
        let group = dir.join(instance);
        b.push(
            "create the container's cgroup",
            HostAction::CgroupCreate {
                path: group.clone(),
            },
        );
        for w in &writes {
            b.push(
                limit_summary(w),
                HostAction::CgroupWrite {
                    path: group.join(w.file),
                    value: w.value.clone(),
                },
            );
        }
        // Before anything enters the group (the container clones into it).
        b.steps
            .extend(super::devices::steps(devices, facts, &group));
        return Some(group);
    }
    for (first, base) in hierarchies(spec, facts) {
        let name = v1_name(first);
        let is_cpuset = facts.cgroup.v1.get("cpuset") == Some(&base);
        let mut parent = base.clone();
        for comp in parent_rel.components() {
            parent = parent.join(comp);
            b.push(
                format!("create the shared parent cgroup ({name})"),
                HostAction::CgroupParent {
                    path: parent.clone(),
                },
            );
            // New v1 cpusets start empty; every level must be filled in before a child can be.
            if let (true, Some((cpus, mems))) = (is_cpuset, &facts.cgroup.cpuset_root) {
                b.push(
                    "give the parent cpuset all CPUs",
                    HostAction::CgroupWrite {
                        path: parent.join("cpuset.cpus"),
                        value: cpus.clone(),
                    },
                );
                b.push(
                    "give the parent cpuset all memory nodes",
                    HostAction::CgroupWrite {
                        path: parent.join("cpuset.mems"),
                        value: mems.clone(),
                    },
                );
            }
        }
        if let Some(list) = device_parent(spec, facts, &base) {
            parent = parent.join(list);
            let shared = shares_device_group(spec, facts, &base);
            b.push(
                match shared {
                    true => format!(
                        "check (or make) the shared group holding the device list, which the \
                         container joins ({name})"
                    ),
                    false => {
                        format!("check (or make) the shared group holding the device list ({name})")
                    }
                },
                HostAction::DeviceParent {
                    path: parent.clone(),
                    rules: devices.to_vec(),
                },
            );
            if shared {
                // No group of its own here: the container writes itself into this one.
                continue;
            }
        }
        let group = parent.join(instance);
        b.push(
            format!("create the container's cgroup ({name})"),
            HostAction::CgroupCreate {
                path: group.clone(),
            },
        );
        for w in &writes {
            if facts.cgroup.v1.get(v1_name(w.controller)) == Some(&base) {
                b.push(
                    limit_summary(w),
                    HostAction::CgroupWrite {
                        path: group.join(w.file),
                        value: w.value.clone(),
                    },
                );
            }
        }
        // Before anything enters the group (the container writes itself into it first thing).
        if facts.cgroup.v1.get("devices") == Some(&base) {
            b.steps
                .extend(super::devices::steps(devices, facts, &group));
        }
    }
    None
}

/// The step's words, from the limit it applies.
fn limit_summary(w: &Write) -> String {
    let what = match w.key {
        LimitKey::Cpu => "limit CPU time",
        LimitKey::CpuWeight => "set CPU weight",
        LimitKey::CpusetCpus if w.file == "cpuset.mems" => "pin to memory nodes",
        LimitKey::CpusetCpus => "pin to CPUs",
        LimitKey::CpusetMems => "pin to memory nodes",
        LimitKey::Memory => "limit memory",
        LimitKey::MemorySwap => "limit swap",
        LimitKey::MemoryReservation => "reserve memory",
        LimitKey::MemoryHigh => "throttle memory above",
        LimitKey::Pids => "limit the number of processes",
        LimitKey::IoWeight => "set I/O weight",
        LimitKey::Io(_) => "limit I/O bandwidth",
    };
    format!("{what} ({})", w.controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_convert_both_ways_at_the_ends() {
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        // runc: the default 1024 shares are weight 39.
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(io_weight_to_v1(1), 10);
        assert_eq!(io_weight_to_v1(10_000), 1000);
    }
}
