//! Plans of every example, as text and JSON, on a hybrid and a pure v2 host.

use launch::cli::plan_for;
use launch::plan::{Action, HostAction, Plan, render_text};

use crate::common::{self, hybrid, manifests, source, v2};

fn stem(p: &std::path::Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_example_plans_and_round_trips() {
    for path in manifests("examples/manifests") {
        for (host_name, host) in [("hybrid", hybrid()), ("v2", v2())] {
            let src = source(&path);
            let plan =
                plan_for(&src, &host).unwrap_or_else(|p| panic!("{}: {p:#?}", path.display()));
            let json = plan.to_json();
            let back: Plan = serde_json::from_str(&json).unwrap();
            assert_eq!(
                back,
                plan,
                "{} does not round-trip through JSON",
                path.display()
            );
            let name = format!("{}-{host_name}", stem(&path));
            insta::assert_snapshot!(format!("plan-{name}"), render_text(&plan));
            if host_name == "hybrid" {
                insta::assert_snapshot!(format!("plan-json-{name}"), json);
            }
        }
    }
}

/// The seed, step by step: what a container engineer expects from the hand-made container.
#[test]
fn seed_is_the_hand_made_container() {
    let src = source(&common::repo().join("examples/manifests/seed.toml"));
    let plan = plan_for(&src, &hybrid()).unwrap();
    let effects: Vec<String> = plan.steps.iter().map(|s| s.effect()).collect();
    let has = |needle: &str| effects.iter().any(|e| e.contains(needle));
    assert!(has("cpu.cfs_quota_us\" ← \"30000\""), "{effects:#?}");
    // A new v1 group's period is the kernel's default, 100000 µs: not written again.
    assert!(!has("cpu.cfs_period_us"), "{effects:#?}");
    assert!(has("memory.limit_in_bytes\" ← \"268435456\""));
    assert!(has(
        "clone3(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWNET)"
    ));
    assert!(has("uid_map\" ← \"0 0 1\\n\""));
    assert!(has(
        "mount(\"proc\", \"/run/launch/seed-{id}/root/proc\", \"proc\""
    ));
    assert!(has("pivot_root("));
    assert!(has("sethostname(\"chemimotty\")"));
    assert!(has("execve(\"/bin/bash\""));
    let v2plan = plan_for(&src, &v2()).unwrap();
    assert!(
        v2plan
            .steps
            .iter()
            .any(|s| s.effect().contains("cpu.max\" ← \"30000 100000\""))
    );
}

/// The step order lives in one place (validate/steps.rs); this pins it.
#[test]
fn step_order_is_pinned() {
    let text = r#"
name = "order"
hostname = "h"
[rootfs]
tar = "seed-rootfs.tar"
readonly = true
[process]
command = ["/bin/sh"]
[namespaces]
net = true
cgroup = true
user = true
[limits]
pids = 10
[limits.rlimits]
nofile = 10
[[mounts]]
type = "proc"
target = "/proc"
"#;
    let src = launch::manifest::Source::from_text(
        "order.toml",
        std::path::Path::new("/src/examples/manifests"),
        text,
    );
    let plan = plan_for(&src, &hybrid()).unwrap();
    let mut kinds: Vec<String> = Vec::new();
    for s in &plan.steps {
        let k = serde_json::to_value(&s.action).unwrap()["op"]
            .as_str()
            .unwrap()
            .to_owned();
        if kinds.last() != Some(&k) {
            kinds.push(k);
        }
    }
    let expected = [
        "claim",
        "state_dir",
        "cgroup_parent",
        "cgroup_create",
        "cgroup_write",
        // The shared group holding the device list (hybrid: v1), checked or made; the
        // container joins it (no group of its own in the devices hierarchy).
        "cgroup_parent",
        "device_parent",
        "extract_rootfs",
        "cgroup_open",
        "spawn",
        "write_id_map",
        "release",
        "cgroup_enter",
        "set_ids",
        "session_keyring",
        "unshare",
        "loopback_up",
        "propagation",
        "mount",
        "set_attr",
        "mkdir",
        "mount",
        "touch",
        "mount",
        "touch",
        "mount",
        "touch",
        "mount",
        "touch",
        "mount",
        "touch",
        "mount",
        "touch",
        "mount",
        "mkdir",
        "mount",
        "mkdir",
        "mount",
        "symlink",
        "mkdir",
        "mount",
        "set_attr",
        "mask_paths",
        "readonly_paths",
        "pivot_root",
        "set_hostname",
        "terminal",
        "setrlimit",
        "cap_bounding",
        "set_ids",
        "capabilities",
        "chdir",
        "no_new_privs",
        "seccomp",
        "exec",
        "wait",
    ];
    assert_eq!(kinds, expected);
    // Host steps with an undo are exactly the ones that leave something on the host.
    for s in &plan.steps {
        let undoable = matches!(
            s.action,
            Action::Host(
                HostAction::StateDir { .. }
                    | HostAction::CgroupCreate { .. }
                    | HostAction::ExtractRootfs { .. }
                    | HostAction::Spawn { .. }
            )
        );
        assert_eq!(s.undo().is_some(), undoable, "{}", s.effect());
    }
}

#[test]
fn plans_are_deterministic() {
    let src = source(&common::repo().join("examples/manifests/limits.toml"));
    let a = plan_for(&src, &hybrid()).unwrap().to_json();
    let b = plan_for(&src, &hybrid()).unwrap().to_json();
    assert_eq!(a, b);
}

/// The network examples plan: the bridge as root, pasta as another user (its plan names
/// pasta's argv).
#[test]
fn network_examples_plan() {
    let dir = common::repo().join("examples/manifests/network");
    let bridge = plan_for(&source(&dir.join("bridge.toml")), &hybrid()).unwrap();
    insta::assert_snapshot!("plan-network-bridge", render_text(&bridge));
    let mut user = hybrid();
    user.facts.uid = 1000;
    user.facts.gid = 1000;
    let pasta = plan_for(&source(&dir.join("pasta.toml")), &user).unwrap();
    insta::assert_snapshot!("plan-network-pasta", render_text(&pasta));
}
