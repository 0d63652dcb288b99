//! Image roots from inside real containers: `[rootfs] oci` and `docker_archive` (imported into a
//! store of the test's own) run on an overlay of the store's layers, whose writes live and die
//! with the run; the layers are held while it runs; what cannot work yet is refused up front.

use std::path::Path;

use crate::fixtures::*;
use crate::store::{Scratch, busybox_images};

/// Shell builtins only: the image holds busybox as /bin/sh and nothing else.
const SCRIPT: &str = "test ! -e /etc/motd && echo motd-whited-out; test -d /etc/added && echo \
                      added-dir; test -e /new && echo LEFTOVER; echo written > /new; read x < \
                      /new; echo got-$x; test -e /proc/self/status && echo proc";

fn manifest(sb: &Sandbox, name: &str, rootfs: &str, script: &str) -> std::path::PathBuf {
    sb.write(
        &format!("{name}.toml"),
        format!(
            "name = {}\n[rootfs]\n{rootfs}\n[process]\ncommand = [\"/bin/sh\", \"-c\", {}]\n\
             [[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n",
            q(name),
            q(script)
        ),
    )
}

fn run_with_store(sb: &Sandbox, store: &Path, args: &[&str]) -> Out {
    let mut c = sb.command(args);
    c.env("LAUNCH_STORE", store);
    sb.launch_with(c, args)
}

#[test]
fn an_oci_layout_and_a_docker_archive_run_on_an_ephemeral_overlay() {
    need_root();
    let s = Scratch::new("imgroot");
    let (oci, archive) = busybox_images(&s);
    let sb = Sandbox::new("imgroot");
    let store = s.dir.join("store");
    for (name, rootfs) in [
        ("imgoci", format!("oci = {}", qp(&oci))),
        ("imgarchive", format!("docker_archive = {}", qp(&archive))),
    ] {
        let m = manifest(&sb, name, &rootfs, SCRIPT);
        // Twice: the second run must not see the first one's write.
        for _ in 0..2 {
            let out = run_with_store(&sb, &store, &["run", m.to_str().unwrap()]);
            out.expect_code(0);
            for want in [
                "motd-whited-out\n",
                "added-dir\n",
                "got-written\n",
                "proc\n",
            ] {
                assert!(out.stdout.contains(want), "{name}: no {want:?}\n{out}");
            }
            assert!(
                !out.stdout.contains("LEFTOVER"),
                "{name}: a write outlived its run\n{out}"
            );
            sb.assert_state_empty(&out);
        }
        // The plan names the image by digest and mounts its layers by their store paths.
        let mut c = sb.command(&["plan", m.to_str().unwrap()]);
        c.env("LAUNCH_STORE", &store);
        let out = sb.launch_with(c, &["plan"]);
        out.expect_code(0);
        assert!(out.stdout.contains("lowerdir+="), "{out}");
        assert!(out.stdout.contains("flock(LOCK_SH)"), "{out}");
        assert!(
            out.stdout
                .contains(&store.join("layers/sha256").display().to_string()),
            "{out}"
        );
    }
    // Nothing written into the layers.
    let leaked = std::process::Command::new("sh")
        .args(["-c", "find \"$0\"/layers -name new | head -1"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(leaked.stdout.is_empty(), "a container wrote into a layer");
}

#[test]
fn a_running_image_keeps_its_layers_through_prune() {
    need_root();
    let s = Scratch::new("imghold");
    let (oci, _) = busybox_images(&s);
    let sb = Sandbox::new("imghold");
    let store = s.dir.join("store");
    let m = manifest(
        &sb,
        "imghold",
        &format!("oci = {}", qp(&oci)),
        "echo READY; read x",
    );
    let mut c = sb.command(&["run", m.to_str().unwrap()]);
    c.env("LAUNCH_STORE", &store)
        .stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    // Wait until it runs, then remove the image and prune while it does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let layers = store.join("layers/sha256");
    // The container runs once an instance's journal holds its state (before that, the state
    // root may only hold the launcher's start record, while it unpacks the image).
    let running = || {
        std::fs::read_dir(sb.state.as_path())
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path().join("journal"))
                    .is_ok_and(|j| j.contains("{\"state\":"))
            })
    };
    while std::time::Instant::now() < deadline && !running() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = std::fs::read_dir(&layers).unwrap().count();
    assert!(before > 0);
    let rmi = run_with_store(&sb, &store, &["rmi", "localhost/img:latest"]);
    let prune = run_with_store(&sb, &store, &["prune"]);
    let after = std::fs::read_dir(&layers).unwrap().count();
    assert_eq!(before, after, "a held layer went\n{rmi}\n{prune}");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    // Released: now prune frees them.
    let prune = run_with_store(&sb, &store, &["prune"]);
    prune.expect_code(0);
    assert_eq!(std::fs::read_dir(&layers).unwrap().count(), 0, "{prune}");
}

#[test]
fn image_roots_refuse_what_does_not_work_yet() {
    need_root();
    let s = Scratch::new("imgrefuse");
    let (oci, _) = busybox_images(&s);
    let sb = Sandbox::new("imgrefuse");
    let store = s.dir.join("store");
    let m = sb.write(
        "userns.toml",
        format!(
            "name = \"imguserns\"\n[rootfs]\noci = {}\n[process]\ncommand = [\"/bin/sh\"]\n\
             [namespaces]\nuser = {{ map_root = true }}\n",
            qp(&oci)
        ),
    );
    let out = run_with_store(&sb, &store, &["run", m.to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("launch::rootfs::image_userns"), "{out}");
    let m = sb.write(
        "pullkey.toml",
        "name = \"imgpull\"\n[rootfs]\npath = \"/\"\npull = \"always\"\n[process]\ncommand = [\"/bin/true\"]\n",
    );
    let out = run_with_store(&sb, &store, &["validate", m.to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("launch::rootfs::image_key"), "{out}");
    let missing = s.dir.join("nothing-here");
    let m = sb.write(
        "missing.toml",
        format!(
            "name = \"imgmissing\"\n[rootfs]\noci = {}\n[process]\ncommand = [\"/bin/sh\"]\n",
            qp(&missing)
        ),
    );
    let out = run_with_store(&sb, &store, &["run", m.to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("launch::rootfs::image"), "{out}");
    sb.assert_state_empty(&out);
}

/// A saved plan is input: one that names another store (here one that does not exist) is not
/// run, nothing is created at the path it names, and nothing is left behind.
#[test]
fn a_plan_naming_another_store_is_refused() {
    need_root();
    let s = Scratch::new("imgplan");
    let (oci, _) = busybox_images(&s);
    let sb = Sandbox::new("imgplan");
    let store = s.dir.join("store");
    let m = manifest(&sb, "imgplan", &format!("oci = {}", qp(&oci)), "true");
    let mut c = sb.command(&["plan", "--format", "json", m.to_str().unwrap()]);
    c.env("LAUNCH_STORE", &store);
    let out = sb.launch_with(c, &["plan"]);
    out.expect_code(0);
    // Consistently: its spec and every step (else the plan is refused as changed, earlier).
    let elsewhere = s.dir.join("planted-store");
    let text = out
        .stdout
        .replace(store.to_str().unwrap(), elsewhere.to_str().unwrap());
    let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
    let out = sb.run_plan(&plan);
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(out.stderr.contains("no image store there"), "{out}");
    assert!(
        !elsewhere.exists(),
        "a directory was made where the plan said\n{out}"
    );
    sb.assert_state_empty(&out);
}
