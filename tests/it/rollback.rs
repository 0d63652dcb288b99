//! The rollback matrix: each test makes one step of a real run fail (a missing bind source, a
//! corrupt archive, an id map, a mount option or a cgroup value the kernel refuses, a missing
//! command) and checks the host is exactly as before: the same mounts, an empty state root, no
//! process left, no container cgroup left under the test's own `limits.parent`. To get past
//! validation, which would refuse most of these, a saved plan's Spec is edited and lowered again
//! (a consistent plan of a Spec no manifest would give); a plan whose steps were edited by hand
//! is refused before anything runs.

use std::collections::BTreeSet;
use std::fs;

use crate::fixtures::*;

/// `sh -c` text whose command line names the sandbox, so a leftover container is found.
fn marked(sb: &Sandbox, script: &str) -> String {
    format!(": {}; {script}", sb.dir.display())
}

/// Edit a saved plan's Spec and lower it again on the plan's own host facts: a plan that runs
/// (its steps are what its Spec gives) though validation would have refused the Spec.
fn edit_spec(
    plan: &serde_json::Value,
    f: impl FnOnce(&mut launch::spec::Spec),
) -> serde_json::Value {
    let mut p: launch::plan::Plan = serde_json::from_value(plan.clone()).unwrap();
    f(&mut p.spec);
    let p = launch::lower::lower(&p.spec, &p.host, &p.manifest);
    serde_json::from_str(&p.to_json()).unwrap()
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
        .per_run_extraction()
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

    // Through the store (no user namespace): found before validation, nothing kept.
    let m = App::new("gz", &marked(&sb, "echo RAN"))
        .rootfs("tar = \"root.tar.gz\"")
        .limits(&cg)
        .write(&sb);
    let out = sb.run(&m);
    out.expect_code(2);
    assert!(out.stderr.contains("launch::rootfs::extract"), "{out}");
    assert!(!out.stdout.contains("RAN"), "{out}");
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
    inject(&sb, &cg, &m, "write_id_map", "/uid_map", "EINVAL", |s| {
        let line = |inside, outside| launch::spec::IdMapLine {
            inside,
            outside,
            count: 1,
        };
        s.namespaces.user = launch::spec::UserNamespace::New(launch::spec::IdMaps::Explicit {
            uid: vec![line(0, 0), line(0, 1)],
            gid: vec![line(0, 0)],
        });
    });
}

/// A mount the kernel refuses inside the container: sysfs in a user namespace that does not own
/// a network namespace (EPERM): the host's network, asked for.
#[test]
fn refused_mount_is_rolled_back() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-mount"), Cgroups::new());
    let m = App::new("mnt", &marked(&sb, "echo RAN"))
        .limits(&cg)
        .tables(
            "[namespaces]\nuser = { map_root = true }\n\
             [network]\nmode = \"host\"\n\
             [[mounts]]\ntype = \"tmpfs\"\ntarget = \"/sys\"",
        )
        .write(&sb);
    let plan = edit_spec(&sb.plan(&m), |s| {
        let last = s.mounts.len() - 1;
        s.mounts[last].kind = launch::spec::MountKind::Sysfs;
    });
    let idx = find_step(&plan, |a| a["op"] == "mount" && a["fstype"] == "sysfs");
    let host = Host::snapshot();
    let out = sb.run_plan(&plan);
    expect_step_failed(&out, &plan, idx, "EPERM");
    assert!(!out.stdout.contains("RAN"), "{out}");
    host.assert_clean(&sb, Some(&cg), &out);
}

/// A saved plan whose step was edited by hand is refused before anything is done: the steps must
/// be what the plan's Spec lowers to, so what was reviewed is what runs.
#[test]
fn edited_plan_is_refused() {
    need_root();
    let (sb, cg) = (Sandbox::new("rb-edit"), Cgroups::new());
    let m = App::new("edit", &marked(&sb, "echo RAN"))
        .limits(&cg)
        .write(&sb);
    let mut plan = sb.plan(&m);
    let idx = find_step(&plan, |a| a["op"] == "exec");
    plan["steps"][idx]["action"]["argv"] = serde_json::json!(["/bin/sh", "-c", "echo EDITED"]);
    let host = Host::snapshot();
    let out = sb.run_plan(&plan);
    out.expect_code(2);
    assert!(
        out.stderr.contains("was changed after it was made"),
        "{out}"
    );
    assert!(out.stderr.contains(&format!("step {}", idx + 1)), "{out}");
    assert!(
        !out.stdout.contains("EDITED") && !out.stdout.contains("RAN"),
        "{out}"
    );
    host.assert_clean(&sb, Some(&cg), &out);

    // Made for other host facts: each difference is named.
    let mut other = sb.plan(&m);
    other["host"]["kernel"] = serde_json::json!("0.0.1-elsewhere");
    other["host"]["uid"] = serde_json::json!(4242);
    let out = sb.run_plan(&other);
    out.expect_code(2);
    assert!(out.stderr.contains("was made for another host"), "{out}");
    assert!(
        out.stderr.contains("kernel: 0.0.1-elsewhere in the plan"),
        "{out}"
    );
    assert!(
        out.stderr.contains("uid: 4242 in the plan, 0 here"),
        "{out}"
    );
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

/// A cgroup value the kernel refuses (a CPU quota under the kernel's 1 ms minimum: EINVAL),
/// after other cgroups were made.
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
    inject(&sb, &cg, &m, "cgroup_write", file, "EINVAL", |s| {
        s.limits.cpu = Some(launch::spec::CpuQuota {
            quota_us: 1,
            period_us: 100_000,
        });
    });
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

/// Plan `m`, edit its Spec with `f` and lower it again, run that plan: the `op` step whose path
/// ends with `path_end` must fail with `errno`, nothing of the container may have run, and the
/// host must be as before.
fn inject(
    sb: &Sandbox,
    cg: &Cgroups,
    m: &std::path::Path,
    op: &str,
    path_end: &str,
    errno: &str,
    f: impl FnOnce(&mut launch::spec::Spec),
) {
    let plan = edit_spec(&sb.plan(m), f);
    let idx = find_step(&plan, |a| {
        a["op"] == op && a["path"].as_str().unwrap().ends_with(path_end)
    });
    let host = Host::snapshot();
    let out = sb.run_plan(&plan);
    expect_step_failed(&out, &plan, idx, errno);
    assert!(!out.stdout.contains("RAN"), "{out}");
    host.assert_clean(sb, Some(cg), &out);
}

/// SIGTERM during start-up cancels it, at whichever step it lands: the container never runs its
/// command, everything done is undone, and launch exits 143. The signal is sent when `-v` logs
/// step k, for every step k up to the release (it lands on k or a little later: steps take
/// microseconds); an archive of 2000 files makes the extraction a wide target.
#[test]
fn sigterm_at_every_start_up_step_leaves_nothing() {
    use std::io::BufRead;
    need_root();
    let (sb, cg) = (Sandbox::new("rb-cancel"), Cgroups::new());
    big_rootfs(&sb, 2000);
    // With init, a SIGTERM that lands after the execve reaches the command (a shell as PID 1
    // would ignore it): 143 either way.
    let m = App::new("cancel", &marked(&sb, "sleep 10; echo RAN"))
        .rootfs("tar = \"big.tar\"")
        .process("init = true")
        .limits(&cg)
        .write(&sb);
    let plan = sb.plan(&m);
    let steps = plan["steps"].as_array().unwrap();
    // The last step before the container runs its command: the release, or the wait for
    // the start after an early release.
    let release = steps
        .iter()
        .position(|s| s["action"]["op"] == "release" || s["action"]["op"] == "await_start")
        .unwrap();
    let host = Host::snapshot();
    let mut cancelled = 0;
    for k in 1..=release + 1 {
        let mut cmd = sb.command(&["-v", "run", m.to_str().unwrap()]);
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
            s
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let needle = format!("launch: step {k}/");
        // Until the step is logged, however long the steps before it take (the extraction is
        // slow under emulation): a pause between two lines is not the end.
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut sent = false;
        while !sent && std::time::Instant::now() < deadline {
            match rx.recv_timeout(std::time::Duration::from_secs(1)) {
                Ok(line) if line.starts_with(&needle) => {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child.id() as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    sent = true;
                }
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        assert!(sent, "step {k} was never logged");
        let what = format!("launch -v run (SIGTERM at step {k})");
        let status = wait_timeout(&mut child, TIMEOUT, &what);
        let out = Out {
            what,
            status,
            stdout: t_out.join().unwrap_or_default(),
            stderr: reader.join().unwrap_or_default(),
        };
        out.expect_code(143);
        if out.stderr.contains("start-up cancelled by SIGTERM") {
            cancelled += 1;
            assert!(
                !out.stdout.contains("RAN"),
                "step {k}: the command ran\n{out}"
            );
        }
        host.assert_clean(&sb, Some(&cg), &out);
    }
    // Most land in start-up (the last ones may find the command already running, which then
    // gets the signal: 143 as well).
    assert!(
        cancelled >= release / 2,
        "only {cancelled} of {} runs cancelled",
        release + 1
    );
}

/// `launch stop` during start-up (here while a large archive is extracted: per run, as a step,
/// and into the store, before validation) cancels it through the launcher: stop succeeds, the
/// launcher exits 143 with nothing left, the command never ran.
#[test]
fn stop_during_start_up_cancels_it() {
    need_root();
    for per_run in [true, false] {
        stop_during_start_up(per_run);
    }
}

fn stop_during_start_up(per_run: bool) {
    let (sb, cg) = (Sandbox::new("rb-stopstart"), Cgroups::new());
    big_rootfs(&sb, 4000);
    let app = App::new("stopstart", &marked(&sb, "echo RAN"))
        .rootfs("tar = \"big.tar\"")
        .limits(&cg);
    let m = match per_run {
        true => app.per_run_extraction(),
        false => app,
    }
    .write(&sb);
    let host = Host::snapshot();
    let run = sb.command(&["run", m.to_str().unwrap()]).spawn().unwrap();
    // As soon as the instance's journal is locked, stop can find it.
    let start = std::time::Instant::now();
    let stop = loop {
        let s = sb.launch(&["stop", "stopstart"]);
        if s.code() != Some(2) || start.elapsed() > std::time::Duration::from_secs(10) {
            break s;
        }
    };
    let out = finish(run, "launch run (stopped during start-up)".into());
    stop.expect_code(0);
    out.expect_code(143);
    assert!(!out.stdout.contains("RAN"), "{out}");
    assert!(
        out.stderr.contains("start-up cancelled by SIGTERM"),
        "{out}\n{stop}"
    );
    host.assert_clean(&sb, Some(&cg), &out);
}

/// `big.tar` in the sandbox: the test root filesystem plus `n` files of 4 KiB, so that its
/// extraction takes long enough to be interrupted.
fn big_rootfs(sb: &Sandbox, n: u64) {
    let tree = sb.mkdir("big");
    let run = |args: &[&str]| {
        let st = std::process::Command::new("tar")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "tar {args:?}");
    };
    run(&[
        "-C",
        tree.to_str().unwrap(),
        "-xf",
        rootfs_tar().to_str().unwrap(),
    ]);
    fs::create_dir_all(tree.join("data")).unwrap();
    for i in 0..n {
        fs::write(tree.join(format!("data/f{i:04}")), noise(4 << 10, i + 1)).unwrap();
    }
    let archive = sb.dir.join("big.tar");
    run(&[
        "-C",
        tree.to_str().unwrap(),
        "-cf",
        archive.to_str().unwrap(),
        ".",
    ]);
    fs::remove_dir_all(&tree).unwrap();
}
