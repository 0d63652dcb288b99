//! Device rules spelled for this host: cgroup v1 writes to the container's `devices` group, or,
//! on cgroup v2, one [`HostAction::DeviceFilter`] step (an eBPF program attached to the
//! container's group). Built and tested, not yet called by [`super::lower`].
//!
//! # Wiring it in
//!
//! 1. **Spec.** A field `devices: Vec<DeviceRule>` (src/spec), defaulting to
//!    [`crate::sys::devices::DEFAULT`]. The manifest gives extra rules as strings in the text
//!    form `DeviceRule::from_str` reads (`devices = ["allow c 10:229 rwm", "deny c 10:200
//!    rwm"]`: its [`crate::sys::devices::RuleError`] has the byte span for a miette label, the
//!    message and the help), appended **after** the default so they can both add and take away;
//!    `devices = "unconfined"` could give `[allow a]`. Validation reports every
//!    [`crate::sys::devices::check`] problem at its rule (each names the rule's index), and
//!    [`gap`] at the key. (runc appends its own defaults *after* the user's rules, so a bundle
//!    that denies a default device still gets it under runc; `launch export oci` should say so in
//!    docs/oci.md. OCI import: `linux.resources.devices` maps one to one, in order; a `type`
//!    absent is `a`, `major`/`minor` absent or -1 is `*`.)
//! 2. **Where in lowering.** In `cgroups::cgroups`, right after the container's group is
//!    created and its limits written, before the rootfs archive and the spawn: call
//!    `steps(&spec.devices, facts, &group)` with the group in the `devices` hierarchy (v1,
//!    hybrid) or the one group (v2), and push what it returns. v2 clones into the group
//!    (CLONE_INTO_CGROUP), so the program is in force from the container's first instruction;
//!    v1's container process writes itself into the `devices` group first thing after the
//!    handshake, before it makes any node (`minimal_dev`'s mknods are then checked too: the
//!    default allows them). The plan's step order (docs/plan-format.md and its test) is
//!    unchanged: these are cgroup steps.
//! 3. **What must change in cgroups.rs.** Today a container gets cgroups only when it has a
//!    limit: `cgroups()` returns early when `writes()` is empty, and `hierarchies()` lists only
//!    the hierarchies of limit writes. With device rules (the default list: always):
//!    - `cgroups()` must go on when `spec.devices` is not empty (and the launcher can apply
//!      them, below) even with no limit;
//!    - `hierarchies()` must add `("devices", facts.cgroup.v1["devices"])` on v1 and hybrid, so
//!      the group is created, `cgroup_dirs()` lists it and the container joins it through its
//!      `tasks` file like the others (CgroupOpen / CgroupEnter). Because `out` is then never
//!      empty on v1, the freezer group is added for every container without a pid namespace:
//!      intended (teardown freezes before killing);
//!    - on v2 the group is needed with no controller at all: skip the `CgroupEnable` steps
//!      when the controller list is empty instead of writing nothing to `subtree_control`.
//! 4. **Who can.** Loading the program needs root (CAP_BPF and CAP_NET_ADMIN, or
//!    CAP_SYS_ADMIN), and so do writes to `devices.*` (CAP_SYS_ADMIN): for an unprivileged
//!    launcher (`facts.uid != 0`) leave the steps out when the rules are the default (crun
//!    ignores the failure for rootless containers too: in a user namespace mknod is refused
//!    anyway, and a bound node is one the user could open already), and report explicit rules
//!    as a gap.
//! 5. **Cost.** Measured on the dev host (debug build, kernel time dominates): the default
//!    list's 12 v1 writes take about 0.09 ms, the v2 load (verifier) and attach of its
//!    64-instruction program about 0.23 ms; plus, on v1, one more group (mkdir, open of
//!    `tasks`, the container's write into it). bench/ should measure it once wired.

use std::path::Path;

use crate::host::{CgroupLayout, HostFacts};
use crate::plan::{HostAction, Step};
use crate::sys::devices::{DeviceRule, v1_writes};

/// Why this host cannot enforce device rules, if it cannot (validation reports it at the rules).
pub fn gap(facts: &HostFacts) -> Option<String> {
    let cg = &facts.cgroup;
    match cg.layout {
        CgroupLayout::V2 if cg.v2_root.is_some() => None,
        CgroupLayout::V1 | CgroupLayout::Hybrid if cg.v1.contains_key("devices") => None,
        CgroupLayout::V2 => Some("no cgroup2 mount to attach a device program to".to_owned()),
        CgroupLayout::V1 | CgroupLayout::Hybrid => Some(
            "no `devices` cgroup v1 hierarchy is mounted: mount it (as systemd does), or run on \
             cgroup v2"
                .to_owned(),
        ),
        CgroupLayout::None => Some("this host has no cgroups to enforce device rules".to_owned()),
    }
}

/// The steps that apply `rules` to the container's group `cgroup_dir`: its group in the
/// `devices` hierarchy (v1, hybrid), or its one group (v2). None when the host cannot ([`gap`])
/// or there are no rules. Run them after the group is created and before anything enters it.
pub fn steps(rules: &[DeviceRule], facts: &HostFacts, cgroup_dir: &Path) -> Vec<Step> {
    if rules.is_empty() || gap(facts).is_some() {
        return Vec::new();
    }
    match facts.cgroup.layout {
        CgroupLayout::V2 => vec![Step::new(
            "allow only the listed devices (a device program on the group)",
            HostAction::DeviceFilter {
                cgroup: cgroup_dir.to_path_buf(),
                rules: rules.to_vec(),
            },
        )],
        CgroupLayout::V1 | CgroupLayout::Hybrid => v1_writes(rules)
            .into_iter()
            .map(|(file, value)| {
                let summary = match (file, value.as_str()) {
                    ("devices.deny", "a") => "deny every device, but what follows (devices)".into(),
                    ("devices.allow", "a") => {
                        "allow every device, but what follows (devices)".into()
                    }
                    ("devices.allow", v) => format!("allow device {v} (devices)"),
                    (_, v) => format!("deny device {v} (devices)"),
                };
                Step::new(
                    summary,
                    HostAction::CgroupWrite {
                        path: cgroup_dir.join(file),
                        value,
                    },
                )
            })
            .collect(),
        CgroupLayout::None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{FakeHost, Host};
    use crate::lower::DEV_NODES;
    use crate::sys::devices::{Access, DEFAULT, DeviceKind, Filter};

    #[test]
    fn launchs_minimal_dev_is_allowed_by_default() {
        let f = Filter::of(DEFAULT);
        for &(name, major, minor) in DEV_NODES {
            assert!(
                f.allows(DeviceKind::Char, major, minor, Access::ALL),
                "/dev/{name} ({major}:{minor}) must stay usable: launch makes it"
            );
        }
    }

    #[test]
    fn v1_writes_the_default_then_each_exception() {
        let host = FakeHost::hybrid();
        let dir = Path::new("/sys/fs/cgroup/devices/launch/x-{id}");
        let s = steps(DEFAULT, host.facts(), dir);
        assert_eq!(s.len(), DEFAULT.len());
        assert_eq!(
            s[0].effect(),
            r#"write "/sys/fs/cgroup/devices/launch/x-{id}/devices.deny" ← "a""#
        );
        assert_eq!(s[3].summary, "allow device c 1:3 rwm (devices)");
        assert_eq!(
            s[3].effect(),
            r#"write "/sys/fs/cgroup/devices/launch/x-{id}/devices.allow" ← "c 1:3 rwm""#
        );
        assert!(s.iter().all(|s| s.undo().is_none()));
    }

    #[test]
    fn v2_attaches_one_program() {
        let host = FakeHost::v2();
        let dir = Path::new("/sys/fs/cgroup/launch/x-{id}");
        let s = steps(DEFAULT, host.facts(), dir);
        assert_eq!(s.len(), 1);
        let json = serde_json::to_value(&s[0]).unwrap();
        assert_eq!(json["action"]["op"], "device_filter");
        assert_eq!(json["action"]["rules"][3]["kind"], "c");
        assert_eq!(json["undo"], serde_json::Value::Null);
        assert!(
            s[0].effect().starts_with(
                "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, 64 instructions from [deny a; \
                 allow c *:* m; "
            ),
            "{}",
            s[0].effect()
        );
        assert!(s[0].effect().ends_with(
            r#"bpf(BPF_PROG_ATTACH, "/sys/fs/cgroup/launch/x-{id}", BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)"#
        ));
        let back: Step = serde_json::from_value(json).unwrap();
        assert_eq!(back, s[0]);
    }

    #[test]
    fn no_steps_where_the_host_cannot() {
        let mut facts = FakeHost::hybrid().facts().clone();
        facts.cgroup.v1.remove("devices");
        assert!(gap(&facts).is_some());
        assert!(steps(DEFAULT, &facts, Path::new("/x")).is_empty());
        assert!(steps(&[], FakeHost::v2().facts(), Path::new("/x")).is_empty());
    }
}
