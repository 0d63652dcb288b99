//! Resource limits against the real kernel, on whatever cgroup layout the machine has: this
//! host's hybrid v1 layout under `cargo test`, and pure cgroup v2 in the QEMU guest
//! (`scripts/vm/test-v2.sh` runs the whole suite there). Each test uses its own cgroup parent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fixtures::{Cgroups, Running, Sandbox, need_root, pure_v2};

/// `[limits]` plus a host-rootfs manifest running `script` under `sh -c`.
fn manifest(name: &str, cg: &Cgroups, limits: &str, script: &str) -> String {
    format!(
        "name = {name:?}\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/sh\", \"-c\", {script:?}]\n\
         [[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n[limits]\nparent = {:?}\n{limits}\n",
        cg.parent
    )
}

/// The container's group that counts CPU time, and how to read it in nanoseconds.
fn cpu_usage_reader(cg: &Cgroups) -> (PathBuf, fn(&Path) -> u64) {
    fn v1(g: &Path) -> u64 {
        std::fs::read_to_string(g.join("cpuacct.usage"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
    fn v2(g: &Path) -> u64 {
        let stat = std::fs::read_to_string(g.join("cpu.stat")).unwrap();
        let usec: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        usec * 1000
    }
    let groups = cg.children();
    if let Some(g) = groups.iter().find(|g| g.join("cpuacct.usage").exists()) {
        return (g.clone(), v1);
    }
    let g = groups
        .iter()
        .find(|g| g.join("cpu.stat").exists() && g.join("cgroup.procs").exists());
    (
        g.unwrap_or_else(|| panic!("no CPU-accounting group among {groups:?}"))
            .clone(),
        v2,
    )
}

/// `cpu = "30%"` holds a busy loop at 30 % ± 5 points of one CPU, measured over 3 s from the
/// cgroup's own usage counter.
#[test]
fn cpu_quota_holds_a_busy_loop_at_30_percent() {
    need_root();
    let sb = Sandbox::new("cpu");
    let cg = Cgroups::new();
    let m = sb.write(
        "cpu.toml",
        manifest(
            "cpu",
            &cg,
            "cpu = \"30%\"",
            "echo READY; exec timeout 5 sh -c 'while :; do :; done'",
        ),
    );
    let mut run = Running::start(&sb, &["run", m.to_str().unwrap()]);
    run.wait_for("READY");
    let (group, usage) = cpu_usage_reader(&cg);
    // Let the quota settle for a period or two, then measure a 3 s window.
    std::thread::sleep(Duration::from_millis(300));
    let (u0, t0) = (usage(&group), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let (u1, t1) = (usage(&group), Instant::now());
    let share = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    let out = run.finish("");
    out.expect_code(124);
    assert!(
        (0.25..=0.35).contains(&share),
        "CPU share {share:.3}, want 0.30 ± 0.05\n{out}"
    );
    sb.assert_state_empty(&out);
    cg.assert_empty(&out);
}

/// A 64 MiB limit OOM-kills a 256 MiB allocation; launch says so and exits 137.
#[test]
fn memory_limit_oom_kills_and_is_reported() {
    need_root();
    let sb = Sandbox::new("oom");
    let cg = Cgroups::new();
    // dd allocates its whole block size at once.
    let m = sb.write(
        "oom.toml",
        manifest(
            "oom",
            &cg,
            "memory = \"64MiB\"",
            "exec dd if=/dev/zero of=/dev/null bs=256M count=1",
        ),
    );
    let out = sb.launch(&["run", "--stats", m.to_str().unwrap()]);
    out.expect_code(137);
    assert!(
        out.stderr
            .contains("launch: killed: out of memory, limit 64 MiB"),
        "{out}"
    );
    assert!(out.stderr.contains("memory peak"), "{out}");
    sb.assert_state_empty(&out);
    cg.assert_empty(&out);
}

/// `pids = 16` contains a fork bomb (a loop forking long-lived children without end): the
/// container never holds more than 16 tasks, the host keeps forking, and teardown kills the
/// sleepers that are left.
#[test]
fn pids_limit_contains_a_fork_bomb() {
    need_root();
    let sb = Sandbox::new("bomb");
    let cg = Cgroups::new();
    let m = sb.write(
        "bomb.toml",
        manifest(
            "bomb",
            &cg,
            "pids = 16",
            "echo READY; exec timeout 3 bash -c 'while :; do sleep 10 & done' 2>/dev/null",
        ),
    );
    let mut run = Running::start(&sb, &["run", "--stats", m.to_str().unwrap()]);
    run.wait_for("READY");
    let group = cg
        .children()
        .into_iter()
        .find(|g| g.join("pids.max").exists())
        .expect("a pids group");
    // Wait (while the 3 s bomb lasts) until the kernel says the limit was hit: forks are slow
    // under emulation (the QEMU guest of scripts/vm/test-v2.sh), quick on a real machine.
    let deadline = Instant::now() + Duration::from_millis(2500);
    let events = loop {
        let events = std::fs::read_to_string(group.join("pids.events")).unwrap();
        if !events.contains("max 0") || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        !events.contains("max 0"),
        "the limit was never hit: {events}"
    );
    let current: u64 = std::fs::read_to_string(group.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(current <= 16, "pids.current = {current}");
    // The host is fine: it can still start processes.
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
    let out = run.finish("");
    out.expect_code(124);
    assert!(out.stderr.contains("pids peak 16"), "{out}");
    sb.assert_state_empty(&out);
    cg.assert_empty(&out);
}

/// The seed's limits, as `launch examples/manifests/seed.toml` applies them, read back from the
/// host while it runs: cpu.max "30000 100000" (v2) or cfs_quota 30000 / period 100000 (v1),
/// and the memory limit.
#[test]
fn seed_limits_are_applied() {
    need_root();
    let sb = Sandbox::new("seedlim");
    let cg = Cgroups::new();
    let seed = std::fs::read_to_string(crate::common::repo().join("examples/manifests/seed.toml"))
        .unwrap();
    // The seed's own [limits], under this test's parent; the host rootfs replaces its tarball.
    let text = seed
        .replace("tar = \"seed-rootfs.tar\"", "host = true")
        .replace(
            "[limits]\n",
            &format!("[limits]\nparent = {:?}\n", cg.parent),
        )
        .replace(
            "command = [\"/bin/bash\"]",
            "command = [\"/bin/sh\", \"-c\", \"echo READY; read x\"]",
        );
    let m = sb.write("seed.toml", text);
    let mut run = Running::start(&sb, &["run", m.to_str().unwrap()]);
    run.wait_for("READY");
    let groups = cg.children();
    let read = |file: &str| {
        groups
            .iter()
            .find_map(|g| std::fs::read_to_string(g.join(file)).ok())
            .map(|s| s.trim().to_owned())
    };
    if pure_v2() {
        assert_eq!(read("cpu.max").as_deref(), Some("30000 100000"));
        assert_eq!(read("memory.max").as_deref(), Some("268435456"));
    } else {
        assert_eq!(read("cpu.cfs_quota_us").as_deref(), Some("30000"));
        assert_eq!(read("cpu.cfs_period_us").as_deref(), Some("100000"));
        assert_eq!(read("memory.limit_in_bytes").as_deref(), Some("268435456"));
    }
    let out = run.finish("\n");
    out.expect_code(0);
    sb.assert_state_empty(&out);
    cg.assert_empty(&out);
}
