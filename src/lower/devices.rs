//! Device rules spelled for this host: cgroup v1 writes to the container's `devices` group, or,
//! on cgroup v2, one [`HostAction::DeviceFilter`] step (an eBPF program attached to the
//! container's group). `cgroups::cgroups` pushes them right after the container's group is
//! created (and its limits written), before the archive is extracted and before the spawn: v2
//! clones the container into the group, so the program is in force from its first instruction;
//! on v1 the container process writes itself into its groups first thing after the handshake,
//! before it makes any node of its /dev (the default list allows those).
//!
//! The Spec's rules (`security.devices`, the default list unless the manifest says otherwise)
//! apply when the launcher is root on a host with a device controller
//! (`cgroups::device_rules`); validation refuses explicit rules elsewhere ([`gap`]). Because
//! of them every container gets a cgroup, limits or not: on v1 a group in the `devices`
//! hierarchy (joined through its `tasks` file like the others), on v2 a group with no
//! controller delegated. runc appends its own allowed devices after a bundle's rules; OCI import
//! does the same, so a bundle gets what runc gives it.

use std::path::Path;

use crate::host::{CgroupLayout, HostFacts};
use crate::plan::{HostAction, Step};
use crate::sys::devices::DeviceRule;

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
        CgroupLayout::V1 | CgroupLayout::Hybrid => vec![Step::new(
            "allow only the listed devices (devices)",
            HostAction::DeviceList {
                cgroup: cgroup_dir.to_path_buf(),
                rules: rules.to_vec(),
            },
        )],
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
    fn v1_reads_back_then_writes_the_default_then_each_exception() {
        let host = FakeHost::hybrid();
        let dir = Path::new("/sys/fs/cgroup/devices/launch/x-{id}");
        let s = steps(DEFAULT, host.facts(), dir);
        assert_eq!(s.len(), 1);
        let effect = s[0].effect();
        assert!(
            effect.starts_with(
                r#"unless "/sys/fs/cgroup/devices/launch/x-{id}/devices.list" shows exactly these rules (inherited): write "/sys/fs/cgroup/devices/launch/x-{id}/devices.deny" ← ["a"]; write "/sys/fs/cgroup/devices/launch/x-{id}/devices.allow" ← ["c *:* m", "b *:* m", "c 1:3 rwm""#
            ),
            "{effect}"
        );
        assert!(s[0].undo().is_none());
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
