//! `[rootfs] writable` and `persist`: an overlay over a `path` or `host` root whose writes never
//! reach the directory (or the host) and die with the run, and a `persist` directory that keeps
//! an overlay root's writes for the next run — taken by one container at a time, bound to the
//! layers it was first used over, and checked like any other input before use.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::repo;
use crate::fixtures::*;
use crate::store::{Scratch, busybox_images};

/// A private copy of the test root filesystem (the shared one must not be written).
fn root_copy(sb: &Sandbox, name: &str) -> std::path::PathBuf {
    let dir = sb.mkdir(name);
    let st = std::process::Command::new("tar")
        .args(["-C", dir.to_str().unwrap(), "-xf"])
        .arg(rootfs_tar())
        .status()
        .unwrap();
    assert!(st.success());
    dir
}

const WRITE: &str = "test -e /left && echo LEFTOVER; echo x > /left; rm /bin/true; echo ran";

#[test]
fn a_writable_path_root_never_writes_the_directory() {
    need_root();
    let sb = Sandbox::new("wpath");
    let dir = root_copy(&sb, "root");
    let m = App::new("wpath", WRITE)
        .rootfs(&format!("path = {}\nwritable = true", qp(&dir)))
        .write(&sb);
    for _ in 0..2 {
        let out = sb.run(&m);
        out.expect_code(0).expect_stdout("ran\n");
        sb.assert_state_empty(&out);
    }
    assert!(!dir.join("left").exists(), "a write reached the directory");
    assert!(
        dir.join("bin/true").exists(),
        "a removal reached the directory"
    );
    let out = sb.launch(&["plan", m.to_str().unwrap()]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains(&format!("lowerdir+={:?}", dir.display().to_string())),
        "{out}"
    );
    // Its upper directory dies with the run: no sync of it.
    assert!(out.stdout.contains("; volatile"), "{out}");
}

#[test]
fn a_writable_host_root_never_writes_the_host() {
    need_root();
    let sb = Sandbox::new("whost");
    let marker = format!("launch-it-whost-{}", std::process::id());
    let m = App::new(
        "whost",
        &format!("echo x > /usr/{marker} && echo x > /etc/{marker} && echo wrote"),
    )
    .rootfs("host = true\nwritable = true")
    .write(&sb);
    let out = sb.run(&m);
    out.expect_code(0).expect_stdout("wrote\n");
    sb.assert_state_empty(&out);
    for d in ["/usr", "/etc"] {
        assert!(
            !Path::new(d).join(&marker).exists(),
            "a write reached the host's {d}"
        );
    }
    // Without `writable` the same writes are refused (read-only binds).
    let m = App::new("whost", &format!("echo x > /usr/{marker} || echo refused"))
        .rootfs("host = true")
        .write(&sb);
    sb.run(&m).expect_code(0).expect_stdout("refused\n");
}

#[test]
fn a_persist_directory_keeps_writes_for_the_next_run_and_only_for_it() {
    need_root();
    let sb = Sandbox::new("persist");
    let dir = root_copy(&sb, "root");
    let keep = sb.dir.join("keep");
    let app = |name: &str, root: &Path, script: &str| {
        App::new(name, script)
            .rootfs(&format!(
                "path = {}\nwritable = true\npersist = \"keep\"",
                qp(root)
            ))
            .top("multiple = true")
            .write(&sb)
    };
    let m = app(
        "persist",
        &dir,
        "cat /count 2>/dev/null || echo none; echo kept > /count",
    );
    sb.run(&m).expect_code(0).expect_stdout("none\n");
    let out = sb.run(&m);
    out.expect_code(0).expect_stdout("kept\n");
    sb.assert_state_empty(&out);
    assert!(
        !dir.join("count").exists(),
        "a write reached the lower directory"
    );
    // Kept writes are synced: never volatile.
    let plan = sb.launch(&["plan", m.to_str().unwrap()]);
    assert!(!plan.stdout.contains("volatile"), "{plan}");
    let mode = fs::metadata(&keep).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the persist directory was made {mode:o}");

    // One container at a time.
    let slow = app("persist", &dir, "echo READY; sleep 3");
    let mut first = Running::start(&sb, &["run", slow.to_str().unwrap()]);
    first.wait_for("READY");
    let out = sb.run(&slow);
    out.expect_launch_error(&["another container is using this persist directory"]);
    first.finish("").expect_code(0);

    // Writes made over other layers are not mixed with these.
    let other = root_copy(&sb, "other");
    let out = sb.run(&app("persist", &other, "echo RAN"));
    out.expect_launch_error(&["made over other layers"]);
    assert!(!out.stdout.contains("RAN"), "{out}");

    // Others' directories are input: one others may write, or a symlink, is refused.
    fs::set_permissions(&keep, fs::Permissions::from_mode(0o777)).unwrap();
    sb.run(&m)
        .expect_launch_error(&["may be written by others"]);
    fs::set_permissions(&keep, fs::Permissions::from_mode(0o700)).unwrap();
    let real = sb.dir.join("keep-real");
    fs::rename(&keep, &real).unwrap();
    std::os::unix::fs::symlink(&real, &keep).unwrap();
    sb.run(&m).expect_launch_error(&["not a directory"]);
    sb.assert_state_empty(&"after the refusals");
}

#[test]
fn an_image_root_can_persist_its_writes() {
    need_root();
    let s = Scratch::new("persistimg");
    let (oci, _) = busybox_images(&s);
    let sb = Sandbox::new("persistimg");
    let m = sb.write(
        "img.toml",
        format!(
            "name = \"persistimg\"\n[rootfs]\noci = {}\npersist = \"keep\"\n[process]\n\
             command = [\"/bin/sh\", \"-c\", \"read x < /count || echo none; echo $x; echo \
             img > /count\"]\n",
            qp(&oci)
        ),
    );
    sb.run(&m).expect_code(0);
    let out = sb.run(&m);
    out.expect_code(0);
    assert!(out.stdout.contains("img"), "{out}");
    sb.assert_state_empty(&out);
    // The layers in the store were not written.
    let leaked = std::process::Command::new("sh")
        .args(["-c", "find \"$0\" -name count | grep -v keep | head -1"])
        .arg(&sb.dir)
        .output()
        .unwrap();
    assert!(leaked.stdout.is_empty(), "a write reached a layer");
}

#[test]
fn writable_and_persist_are_refused_where_they_mean_nothing() {
    let sb = Sandbox::new("wrefuse");
    let cases = [
        (
            "tar = \"x.tar\"\nwritable = true",
            "launch::rootfs::writable",
        ),
        (
            "host = true\nreadonly = true\nwritable = true",
            "launch::rootfs::writable",
        ),
        ("host = true\npersist = \"keep\"", "launch::rootfs::persist"),
    ];
    sb.write("x.tar", std::fs::read(rootfs_tar()).unwrap());
    for (rootfs, code) in cases {
        let m = App::new("wrefuse", "true").rootfs(rootfs).write(&sb);
        let out = sb.launch(&["validate", m.to_str().unwrap()]);
        out.expect_code(2);
        assert!(out.stderr.contains(code), "{rootfs}: {out}");
    }
    assert!(!sb.dir.join("keep").exists());
}

/// The example of examples/manifests/images/ that needs no download runs as it says.
#[test]
fn the_scratch_host_example_runs() {
    need_root();
    let sb = Sandbox::new("wexample");
    let m = repo().join("examples/manifests/images/scratch-host.toml");
    let out = sb.launch(&["run", m.to_str().unwrap()]);
    out.expect_code(0).expect_stdout("changed\n");
    sb.assert_state_empty(&out);
}
