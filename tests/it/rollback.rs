//! The rollback matrix: each test makes one step of a real run fail (a missing bind source, a
//! corrupt archive, an id map, a mount option or a cgroup value the kernel refuses, a missing
//! command) and checks the host is exactly as before: the same mounts, an empty state root, no
//! process left, no container cgroup left under the test's own `limits.parent`. Plans are edited
//! (`launch run --plan`) to get past validation, which would refuse most of these.

use std::collections::BTreeSet;
use std::fs;

use crate::fixtures::*;

/// `sh -c` text whose command line names the sandbox, so a leftover container is found.
fn marked(sb: &Sandbox, script: &str) -> String {
    format!(": {}; {script}", sb.dir.display())
}

/// Set a string field of step `idx`'s action (the effect is kept as printed).
fn edit(plan: &mut serde_json::Value, idx: usize, field: &str, value: &str) {
    plan["steps"][idx]["action"][field] = serde_json::Value::from(value);
}

/// A bind source deleted between `launch plan` and `launch run --plan`: the container's mount
/// fails with ENOENT after cgroups, the extracted root and the container process exist.
#[test]
fn missing_bind_source_is_rolled_back() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-bind"), Cgroups::new());
    let src = sb.mkdir("bindsrc");
    let m = App::new("bind", &marked(&sb, "echo RAN"))
        .rootfs_tar()
        .limits(&cg)
        .tables("[[mounts]]\ntype = \"bind\"\nsource = \"bindsrc\"\ntarget = \"/mnt/b\"")
        .write(&sb);
    let plan = sb.plan(&m);
    let src = src.to_str().unwrap();
    let idx = find_step(&plan, |a| a["op"] == "mount" && a["source"] == src);
    fs::remove_dir(src).unwrap();
    let host = Host::snapshot();
    let out = sb.run_plan(&plan);
    expect_step_failed(&out, &plan, idx, "ENOENT");
    assert!(!out.stdout.contains("RAN"), "{out}");
    host.assert_clean(&sb, Some(&cg), &out);
}

/// A truncated .tar.gz fails mid-extraction, after cgroups were made and entries written.
#[test]
fn corrupt_tarball_is_rolled_back() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-gz"), Cgroups::new());
    let mut ar = Ar::new();
    ar.dir("data/");
    for i in 0..64 {
        ar.file(&format!("data/f{i:02}"), &noise(16 << 10, i + 1));
    }
    let gz = gzip(&ar.finish());
    sb.write("root.tar.gz", &gz[..gz.len() * 6 / 10]);
    let m = App::new("gz", &marked(&sb, "echo RAN"))
        .rootfs("tar = \"root.tar.gz\"")
        .limits(&cg)
        .write(&sb);
    let plan = sb.plan(&m);
    let idx = find_step(&plan, |a| a["op"] == "extract_rootfs");
    let host = Host::snapshot();
    let out = sb.run_plan(&plan);
    expect_step_failed(&out, &plan, idx, "root.tar.gz");
    host.assert_clean(&sb, Some(&cg), &out);

    // The same through `launch run MANIFEST`.
    let out = sb.run(&m);
    out.expect_launch_error(&["root.tar.gz"]);
    host.assert_clean(&sb, Some(&cg), &out);
}

/// An id map the kernel rejects (overlapping ranges: EINVAL), written after the spawn.
#[test]
fn rejected_id_map_is_rolled_back() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-idmap"), Cgroups::new());
    let m = App::new("idmap", &marked(&sb, "echo RAN"))
        .limits(&cg)
        .tables("[namespaces]\nuser = { map_root = true }")
        .write(&sb);
    inject(
        &sb,
        &cg,
        &m,
        "write_id_map",
        "/uid_map",
        "value",
        "0 0 1\n0 1 1\n",
        "EINVAL",
    );
}

/// A mount the kernel refuses inside the container (tmpfs `size=bogus`: EINVAL).
#[test]
fn refused_mount_is_rolled_back() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-mount"), Cgroups::new());
    let m = App::new("mnt", &marked(&sb, "echo RAN"))
        .limits(&cg)
        .tables("[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/scratch\"\nsize = \"1MiB\"")
        .write(&sb);
    let mut plan = sb.plan(&m);
    let idx = find_step(&plan, |a| {
        a["op"] == "mount"
            && a["fstype"] == "tmpfs"
            && a["target"].as_str().unwrap().ends_with("/scratch")
    });
    edit(&mut plan, idx, "data", "size=bogus");
    let host = Host::snapshot();
    let out = sb.run_plan(&plan);
    expect_step_failed(&out, &plan, idx, "EINVAL");
    assert!(!out.stdout.contains("RAN"), "{out}");
    host.assert_clean(&sb, Some(&cg), &out);
}

/// A command that does not exist: 127, and everything made for it is gone.
#[test]
fn missing_command_is_rolled_back() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-nocmd"), Cgroups::new());
    let m = App::new("nocmd", "")
        .command(&["/no/such/command"])
        .rootfs_tar()
        .limits(&cg)
        .write(&sb);
    let host = Host::snapshot();
    let out = sb.run(&m);
    out.expect_code(127);
    host.assert_clean(&sb, Some(&cg), &out);
}

/// A cgroup value the kernel refuses (`cpu.cfs_quota_us` on v1, `cpu.max` on pure v2 ← "abc":
/// EINVAL; note "-5" would be accepted as "no limit" by current v1 kernels), after other cgroups
/// were made.
#[test]
fn refused_cgroup_write_is_rolled_back() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-cgroup"), Cgroups::new());
    let m = App::new("cg", &marked(&sb, "echo RAN"))
        .limits(&cg)
        .write(&sb);
    let file = if pure_v2() {
        "/cpu.max"
    } else {
        "/cpu.cfs_quota_us"
    };
    inject(&sb, &cg, &m, "cgroup_write", file, "value", "abc", "EINVAL");
}

/// 20 containers from one manifest at once, each with cgroups and an extracted root: all
/// succeed, each in its own instance, and nothing is left.
#[test]
fn twenty_in_parallel_leave_nothing() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-par"), Cgroups::new());
    let m = App::new("par", &marked(&sb, "cat /proc/self/cgroup; echo $$"))
        .top("multiple = true")
        .rootfs_tar()
        .limits(&cg)
        .write(&sb);
    let host = Host::snapshot();
    let outs: Vec<Out> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..20).map(|_| s.spawn(|| sb.run(&m))).collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut groups = BTreeSet::new();
    for out in &outs {
        out.expect_code(0);
        assert_eq!(out.lines().last().map(String::as_str), Some("1"), "{out}");
        let group = group_of(&out.lines(), "cpu").unwrap_or_default();
        assert!(
            group.starts_with(&format!("{}/par-", cg.parent)),
            "not in its own cgroup\n{out}"
        );
        groups.insert(group);
    }
    assert_eq!(groups.len(), 20, "instances shared a cgroup: {groups:?}");
    let all = outs
        .iter()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    host.assert_clean(&sb, Some(&cg), &all);
}

/// Plan `m`, set `field` of the `op` step whose path ends with `path_end` to `value`, run that
/// plan: the step must fail with `errno`, nothing of the container may have run, and the host
/// must be as before.
#[allow(clippy::too_many_arguments)]
fn inject(
    sb: &Sandbox,
    cg: &Cgroups,
    m: &std::path::Path,
    op: &str,
    path_end: &str,
    field: &str,
    value: &str,
    errno: &str,
) {
    let mut plan = sb.plan(m);
    let idx = find_step(&plan, |a| {
        a["op"] == op && a["path"].as_str().unwrap().ends_with(path_end)
    });
    edit(&mut plan, idx, field, value);
    let host = Host::snapshot();
    let out = sb.run_plan(&plan);
    expect_step_failed(&out, &plan, idx, errno);
    assert!(!out.stdout.contains("RAN"), "{out}");
    host.assert_clean(sb, Some(cg), &out);
}
