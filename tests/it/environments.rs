//! Version-controlled environments, for real: `extends` and env files run as merged, problems
//! point into the file that has them, `plan --explain` names each value's file, and
//! `launch.lock` catches drift of each kind of input (a base, an env file, a tar archive, an
//! image) before anything runs.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::repo;
use crate::fixtures::*;
use crate::store::{Scratch, busybox_images};

const BASE: &str = r#"name = "base"
hostname = "base-host"

[rootfs]
host = true

[process]
command = ["/bin/sh", "-c", "echo \"$GREETING/$WHO/${DEBUG:-none}\"; hostname; grep -cE ' /tmp | /run/extra ' /proc/self/mountinfo"]
env = { DEBUG = "1", WHO = "base" }

[limits]
memory = "256M"
pids = 64

[[mounts]]
type = "proc"
target = "/proc"

[[mounts]]
type = "tmpfs"
target = "/tmp"
"#;

const APP: &str = r#"extends = "../base.toml"
unset = ["process.env.DEBUG", "limits.pids"]
name = "app"

[process]
env_file = ["app.env"]

[[mounts]]
type = "tmpfs"
target = "/run/extra"
"#;

/// A sandbox with base.toml, app/app.toml and app/app.env.
fn composed(tag: &str) -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new(tag);
    sb.write("base.toml", BASE);
    sb.write(
        "app/app.env",
        "# for app.toml\nGREETING=hello\nWHO=from-file\n",
    );
    let app = sb.write("app/app.toml", APP);
    (sb, app)
}

#[test]
fn a_composed_manifest_runs_as_merged() {
    need_root();
    let (sb, _) = composed("env-run");
    let out = sb.launch(&["run", "app/app.toml"]);
    out.expect_code(0);
    // WHO: the base's process.env wins over the env file; DEBUG was unset; both tmpfs mounts.
    assert_eq!(out.lines(), ["hello/base/none", "base-host", "2"], "{out}");
    sb.assert_state_empty(&out);
}

#[test]
fn plan_explain_names_the_file_of_each_value() {
    let (sb, _) = composed("env-explain");
    let out = sb.launch(&["plan", "--explain", "app/app.toml"]);
    out.expect_code(0);
    let (plan, origins) = out
        .stdout
        .split_once("\nwhere each value came from:\n")
        .unwrap_or_else(|| panic!("no origins section\n{out}"));
    insta::assert_snapshot!("explain-origins", origins);
    // The header names the files with their digests.
    let digest =
        |p: &str| launch::image::Digest::of(&fs::read(sb.dir.join(p)).unwrap()).to_string();
    assert!(
        plan.contains(&format!(
            "inputs: env_file app.env ({})",
            digest("app/app.env")
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "        extends ../base.toml ({})",
            digest("base.toml")
        )),
        "{plan}"
    );
    // The JSON plan carries them, and the origins with --explain.
    let json = sb.launch(&["plan", "--format", "json", "--explain", "app/app.toml"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["inputs"].as_array().unwrap().len(), 2, "{json}");
    assert!(
        v["origins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["key"] == "process.env.GREETING" && o["place"] == "app/app.env:2"),
        "{json}"
    );
}

#[test]
fn problems_point_into_the_file_that_has_them() {
    let (sb, app) = composed("env-diag");
    sb.write(
        "base.toml",
        BASE.replace("pids = 64", "pids = 64\nmemroy = \"1G\""),
    );
    sb.write("app/app.env", "GREETING=hello\n2BAD=x\n");
    let out = sb.launch(&["validate", "app/app.toml"]);
    out.expect_code(2);
    insta::assert_snapshot!("diag-in-base", out.stderr);
    // Fixed in the base, the env file's problem is next.
    sb.write("base.toml", BASE);
    let out = sb.launch(&["validate", "--format", "json", app.to_str().unwrap()]);
    out.expect_code(2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "launch::env_file::name", "{out}");
    assert!(
        d["file"].as_str().unwrap().ends_with("app/app.env"),
        "{out}"
    );
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(2), Some(1))
    );
}

/// Write the lock, then change `file` (relative to the sandbox): a run refuses with a drift
/// diagnostic naming `input`; `lock --check` agrees; `lock --update` records it and the run
/// goes on.
fn drift_is_caught(sb: &Sandbox, manifest: &str, input: &str, change: &dyn Fn()) {
    let lock = |args: &[&str]| {
        let mut a = vec!["lock"];
        a.extend_from_slice(args);
        a.push(manifest);
        sb.launch(&a)
    };
    lock(&[]).expect_code(0);
    lock(&["--check"]).expect_code(0);
    sb.launch(&["run", "--locked", manifest]).expect_code(0);
    change();
    let out = sb.launch(&["run", manifest]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("launch::lock::drift")
            && out
                .stderr
                .contains(&format!("{input} changed since it was locked")),
        "{out}"
    );
    sb.assert_state_empty(&out);
    lock(&["--check"]).expect_code(2);
    // Without --update, a changed entry is left as it was.
    let kept = lock(&[]);
    kept.expect_code(2);
    assert!(kept.stderr.contains("was left as it is"), "{kept}");
    lock(&["--update"]).expect_code(0);
    sb.launch(&["run", manifest]).expect_code(0);
}

#[test]
fn the_lock_catches_a_changed_base_and_env_file() {
    need_root();
    let (sb, _) = composed("lock-files");
    let base = sb.dir.join("base.toml");
    drift_is_caught(&sb, "app/app.toml", "extends ../base.toml", &|| {
        fs::write(
            &base,
            BASE.replace("memory = \"256M\"", "memory = \"300M\""),
        )
        .unwrap();
    });
    let env = sb.dir.join("app/app.env");
    drift_is_caught(&sb, "app/app.toml", "env_file app.env", &|| {
        fs::write(&env, "GREETING=changed\n").unwrap();
    });
    let lock = fs::read_to_string(sb.dir.join("app/launch.lock")).unwrap();
    assert!(lock.contains("manifest = \"app.toml\""), "{lock}");
}

#[test]
fn the_lock_catches_a_changed_archive() {
    need_root();
    let sb = Sandbox::new("lock-tar");
    let tar = sb.dir.join("root.tar");
    fs::copy(rootfs_tar(), &tar).unwrap();
    sb.write(
        "app.toml",
        "name = \"tarred\"\n[rootfs]\ntar = \"root.tar\"\n[process]\ncommand = [\"/bin/true\"]\n",
    );
    sb.write("extra/note", "appended\n");
    drift_is_caught(&sb, "app.toml", "tar root.tar", &|| {
        let st = Command::new("tar")
            .args([
                "-rf",
                tar.to_str().unwrap(),
                "-C",
                sb.dir.join("extra").to_str().unwrap(),
                "note",
            ])
            .status()
            .unwrap();
        assert!(st.success());
    });
}

#[test]
fn the_lock_catches_a_changed_image() {
    need_root();
    let sb = Sandbox::new("lock-image");
    let s = Scratch::new("lock-image");
    let (oci, _) = busybox_images(&s);
    let img = sb.dir.join("img");
    let st = Command::new("cp")
        .args(["-a", oci.to_str().unwrap(), img.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    sb.write(
        "app.toml",
        "name = \"imaged\"\n[rootfs]\noci = \"img\"\n[process]\ncommand = [\"/bin/sh\", \"-c\", \"true\"]\n",
    );
    drift_is_caught(&sb, "app.toml", "image img", &|| {
        let out = Command::new("umoci")
            .args([
                "config",
                "--image",
                &format!("{}:latest", img.display()),
                "--config.env",
                "NEW=1",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let lock = fs::read_to_string(sb.dir.join("launch.lock")).unwrap();
    assert!(lock.contains("kind = \"layer\""), "{lock}");
}

#[test]
fn locked_refuses_a_manifest_without_an_entry() {
    let sb = Sandbox::new("lock-missing");
    let m =
        sb.manifest("name = \"x\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n");
    let out = sb.launch(&["run", "--locked", m.to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("launch::lock::missing"), "{out}");
    // A lock file that is not one is an error naming it, not a panic.
    sb.write("launch.lock", "version = 1\n[[lock]]\nmanifest = 3\n");
    let out = sb.launch(&["run", m.to_str().unwrap()]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("launch.lock:3:12: not a lock file"),
        "{out}"
    );
}

/// docs/environments.md's repository: both variants run, and their committed lock is current.
#[test]
fn the_environments_example_runs_and_its_lock_is_current() {
    need_root();
    let sb = Sandbox::new("env-example");
    let dir = repo().join("examples/environments");
    for (m, want) in [
        ("dev.toml", "hello from greeter-dev (mode=dev, log=debug)"),
        ("ci.toml", "hi from greeter (mode=ci, log=warn)"),
    ] {
        let path = dir.join(m);
        let path = path.to_str().unwrap();
        sb.launch(&["lock", "--check", path]).expect_code(0);
        let out = sb.launch(&["run", "--locked", path]);
        out.expect_code(0);
        assert_eq!(out.lines(), [want], "{out}");
    }
    assert!(Path::new(&dir.join("launch.lock")).exists());
}

/// `launch diff` output with this sandbox's paths made stable.
fn stable(sb: &Sandbox, s: &str) -> String {
    s.replace(sb.state.to_str().unwrap(), "<state>")
        .replace(sb.dir.to_str().unwrap(), "<sandbox>")
}

#[test]
fn diff_shows_the_spec_and_the_plan() {
    let (sb, _) = composed("diff-files");
    // Differences that lower the same on every cgroup layout (the snapshot is shared by the
    // hybrid host and the v2 guest): the hostname, and a mount appended.
    sb.write(
        "app/other.toml",
        format!("{APP}\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/srv\"\n")
            .replace("name = \"app\"", "name = \"app\"\nhostname = \"other\""),
    );
    let out = sb.launch(&["diff", "app/app.toml", "app/other.toml"]);
    out.expect_code(1);
    // The changed steps, without their numbers and the unchanged steps around them: how many
    // steps come before depends on the host's cgroup layout and CPUs (the guest shares this
    // snapshot).
    let text = stable(&sb, &out.stdout);
    let (spec, plan) = text
        .split_once("plan (what will be done to this host):\n")
        .unwrap();
    let changed: Vec<String> = plan
        .lines()
        .filter(|l| l.starts_with(['+', '-']))
        .map(|l| {
            let (op, rest) = l.split_at(1);
            let rest = rest.trim_start();
            match rest.split_once("  ") {
                Some((n, t)) if n.starts_with(['a', 'b']) => format!("{op} #  {}", t.trim_start()),
                _ => format!("{op}    {rest}"),
            }
        })
        .collect();
    insta::assert_snapshot!(
        "diff-text",
        format!("{spec}plan:\n{}\n", changed.join("\n"))
    );
    // The same file on both sides: exit 0.
    sb.launch(&["diff", "app/app.toml", "app/app.toml"])
        .expect_code(0);
    // JSON: the Spec's changes by path, and the steps with their numbers on each side.
    let out = sb.launch(&["diff", "--format", "json", "app/app.toml", "app/other.toml"]);
    out.expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let paths: Vec<&str> = v["spec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"hostname") && paths.contains(&"mounts[3]"),
        "{out}"
    );
    assert!(
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["op"] == "+" && l["b"].is_u64()),
        "{out}"
    );
    // A side that is nothing: exit 2, naming it.
    let bad = sb.launch(&["diff", "app/app.toml", "nope.toml"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("cannot read nope.toml"), "{bad}");
}

#[test]
fn diff_reads_saved_plans_and_git_revisions() {
    let (sb, _) = composed("diff-git");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .current_dir(&sb.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "base.toml", "app"]);
    git(&["commit", "-q", "-m", "base and app"]);
    // A saved plan of the committed state.
    let saved = sb.launch(&["plan", "--format", "json", "app/app.toml"]);
    saved.expect_code(0);
    sb.write("saved.json", &saved.stdout);
    // The base changes in the work tree: HEAD's app.toml extends HEAD's base, so the diff shows it.
    fs::write(
        sb.dir.join("base.toml"),
        BASE.replace("memory = \"256M\"", "memory = \"512M\""),
    )
    .unwrap();
    let out = sb.launch(&["diff", "HEAD:app/app.toml", "app/app.toml"]);
    out.expect_code(1);
    assert!(
        out.stdout
            .contains("~ limits.memory: 268435456 → 536870912"),
        "{out}"
    );
    assert!(
        out.stdout.contains("- input: extends ../base.toml"),
        "{out}"
    );
    let out = sb.launch(&["diff", "saved.json", "app/app.toml"]);
    out.expect_code(1);
    assert!(
        out.stdout
            .contains("~ limits.memory: 268435456 → 536870912"),
        "{out}"
    );
    sb.launch(&["diff", "saved.json", "HEAD:app/app.toml"])
        .expect_code(0);
    // A revision that does not exist: exit 2 with git's word.
    let out = sb.launch(&["diff", "nosuchrev:app/app.toml", "app/app.toml"]);
    out.expect_code(2);
    assert!(out.stderr.contains("git show"), "{out}");
}

#[test]
fn the_lock_catches_a_changed_bundle_config_and_root() {
    need_root();
    let sb = Sandbox::new("lock-bundle");
    let dir = sb.mkdir("bundle");
    let st = Command::new("cp")
        .args([
            "-a",
            rootfs_dir().to_str().unwrap(),
            dir.join("rootfs").to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let config = |script: &str| {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", script],
                        "env": ["PATH=/bin:/usr/bin"], "cwd": "/"},
            "root": {"path": "rootfs", "readonly": true},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    };
    let write_config = |script: &str| {
        fs::write(
            dir.join("config.json"),
            serde_json::to_vec_pretty(&config(script)).unwrap(),
        )
        .unwrap()
    };
    write_config("echo hi");
    let d = dir.to_str().unwrap();
    // Not locked yet: --locked refuses, naming the command that locks a bundle.
    let out = sb.launch(&["run", "--locked", "--bundle", d]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("launch::lock::missing") && out.stderr.contains("launch lock --bundle"),
        "{out}"
    );
    sb.launch(&["lock", "--bundle", d]).expect_code(0);
    let lock = fs::read_to_string(dir.join("launch.lock")).unwrap();
    assert!(
        lock.contains("kind = \"rootfs\"") && lock.contains("kind = \"config\""),
        "{lock}"
    );
    sb.launch(&["lock", "--check", "--bundle", d])
        .expect_code(0);
    let out = sb.launch(&["run", "--locked", "--bundle", d]);
    out.expect_code(0);
    assert_eq!(out.lines(), ["hi"], "{out}");
    // A file in the root changes: refused before anything runs.
    fs::write(dir.join("rootfs/etc/motd"), "changed\n").unwrap();
    let out = sb.launch(&["run", "--bundle", d]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("rootfs rootfs changed since it was locked"),
        "{out}"
    );
    assert!(!out.stdout.contains("hi"), "{out}");
    sb.assert_state_empty(&out);
    sb.launch(&["lock", "--update", "--bundle", d])
        .expect_code(0);
    sb.launch(&["run", "--bundle", d]).expect_code(0);
    // The config changes.
    write_config("echo other");
    let out = sb.launch(&["run", "--bundle", d]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("config config.json changed since it was locked"),
        "{out}"
    );
}
