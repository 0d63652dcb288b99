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

/// An image root in a user namespace whose ids are not the host's: the launcher gives the
/// container idmapped copies of the store's layers, so the image's root-owned files are the
/// container root's, the container writes its upper layer, and the shared store is never
/// chowned. With `user = true` (root maps to root) the layers are used as they are.
#[test]
fn an_image_root_runs_in_a_user_namespace_through_idmapped_layers() {
    need_root();
    let s = Scratch::new("imguserns");
    let (oci, _) = busybox_images(&s);
    let sb = Sandbox::new("imguserns");
    let store = s.dir.join("store");
    let script = "busybox stat -c '%u:%g' /bin/busybox; echo w > /written && busybox stat -c \
                  '%u' /written; busybox id -u";
    for (name, ns, want) in [
        (
            "imgmapped",
            "user = { uid_map = [{ inside = 0, outside = 200000, count = 65536 }], \
             gid_map = [{ inside = 0, outside = 200000, count = 65536 }] }",
            "0:0\n0\n0\n",
        ),
        ("imgmaproot", "user = true", "0:0\n0\n0\n"),
    ] {
        let m = sb.write(
            &format!("{name}.toml"),
            format!(
                "name = {}\n[rootfs]\noci = {}\n[process]\ncommand = [\"/bin/sh\", \"-c\", {}]\n\
                 [namespaces]\n{ns}\n",
                q(name),
                qp(&oci),
                q(script)
            ),
        );
        let out = run_with_store(&sb, &store, &["run", m.to_str().unwrap()]);
        out.expect_code(0);
        assert_eq!(out.stdout, want, "{name}\n{out}");
        sb.assert_state_empty(&out);
        let plan = run_with_store(&sb, &store, &["plan", m.to_str().unwrap()]);
        assert_eq!(
            plan.stdout.contains("MOUNT_ATTR_IDMAP"),
            name == "imgmapped",
            "{plan}"
        );
        assert!(plan.stdout.contains("userxattr"), "{plan}");
    }
    // The store's files keep the host's ids.
    let owners = std::process::Command::new("sh")
        .args([
            "-c",
            "find \"$0\"/layers -path '*/root/*' ! -uid 0 | head -3",
        ])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        owners.stdout.is_empty(),
        "the store was chowned: {}",
        String::from_utf8_lossy(&owners.stdout)
    );
}

#[test]
fn image_roots_refuse_what_does_not_work_yet() {
    need_root();
    let s = Scratch::new("imgrefuse");
    let sb = Sandbox::new("imgrefuse");
    let store = s.dir.join("store");
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

/// A copy of the busybox OCI layout whose config sets every process default, or (with `bare`)
/// none: `umoci config` writes a new config and manifest and moves the tag.
fn configured(s: &Scratch, oci: &Path, dir: &str, bare: bool) -> std::path::PathBuf {
    let to = s.dir.join(dir);
    let script = if bare {
        "cp -a \"$0\" \"$1\" && umoci config --image \"$1\":latest --clear=config.cmd \
         --clear=config.env"
    } else {
        "cp -a \"$0\" \"$1\" && umoci config --image \"$1\":latest \
         --config.entrypoint /bin/sh --config.entrypoint -c \
         --config.cmd 'echo $GREETING in $(pwd) as $(busybox id -u):$(busybox id -g)' \
         --config.env GREETING=hi --config.env PATH=/bin --config.workingdir /etc \
         --config.user 1000:1001 --config.stopsignal SIGINT --config.exposedports 80/tcp"
    };
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .arg(oci)
        .arg(&to)
        .output()
        .unwrap();
    assert!(out.status.success(), "umoci config: {out:?}");
    to
}

/// The image's Entrypoint, Cmd, Env, WorkingDir, User and StopSignal fill in what the manifest
/// leaves out; `args` alone replace the Cmd; what the manifest writes wins; the plan says which
/// settings came from the image.
#[test]
fn an_image_config_gives_the_defaults_the_manifest_leaves_out() {
    need_root();
    let s = Scratch::new("imgcfg");
    let (oci, _) = busybox_images(&s);
    let img = configured(&s, &oci, "cfg", false);
    let sb = Sandbox::new("imgcfg");
    let store = s.dir.join("store");
    let rootfs = format!("[rootfs]\noci = {}\n", qp(&img));
    // No [process] at all: Entrypoint + Cmd, as the image's user in its working directory.
    let bare = sb.write("bare.toml", format!("name = \"imgcfg\"\n{rootfs}"));
    let out = run_with_store(&sb, &store, &["run", bare.to_str().unwrap()]);
    out.expect_code(0);
    assert_eq!(out.stdout, "hi in /etc as 1000:1001\n", "{out}");
    sb.assert_state_empty(&out);
    let out = run_with_store(&sb, &store, &["plan", bare.to_str().unwrap()]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("from the image: command, env GREETING, env PATH, cwd, user, stop_signal\n"),
        "{out}"
    );
    assert!(out.stdout.contains("image: "), "{out}");
    let json = run_with_store(
        &sb,
        &store,
        &["plan", "--format", "json", bare.to_str().unwrap()],
    );
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let p = &plan["spec"]["process"];
    assert_eq!(p["args"][0], "/bin/sh", "{p}");
    assert_eq!(p["cwd"], "/etc", "{p}");
    assert_eq!(p["user"]["uid"], 1000, "{p}");
    assert_eq!(p["stop"]["signal"], "SIGINT", "{p}");
    assert_eq!(p["env"]["PATH"], "/bin", "{p}");
    let root = plan["spec"]["root"].to_string();
    assert!(root.contains(r#""exposed_ports":["80/tcp"]"#), "{root}");
    // `args` alone: the Entrypoint with them instead of the Cmd.
    let args = sb.write(
        "args.toml",
        format!("name = \"imgcfg\"\n{rootfs}[process]\nargs = [\"echo args-$GREETING\"]\n"),
    );
    let out = run_with_store(&sb, &store, &["run", args.to_str().unwrap()]);
    out.expect_code(0);
    assert_eq!(out.stdout, "args-hi\n", "{out}");
    // The manifest wins, key by key and name by name.
    let over = sb.write(
        "over.toml",
        format!(
            "name = \"imgcfg\"\n{rootfs}[process]\ncommand = [\"/bin/sh\", \"-c\", \
             \"echo $GREETING in $(pwd) as $(busybox id -u) $PATH\"]\ncwd = \"/bin\"\nuser = 0\n\
             [process.env]\nGREETING = \"manifest\"\n"
        ),
    );
    let out = run_with_store(&sb, &store, &["run", over.to_str().unwrap()]);
    out.expect_code(0);
    assert_eq!(out.stdout, "manifest in /bin as 0 /bin\n", "{out}");
    let out = run_with_store(&sb, &store, &["plan", over.to_str().unwrap()]);
    assert!(
        out.stdout
            .contains("from the image: env PATH, stop_signal\n"),
        "{out}"
    );
}

/// An image with no command and a manifest with none is a diagnostic at the image.
#[test]
fn an_image_without_a_command_needs_one_in_the_manifest() {
    need_root();
    let s = Scratch::new("imgnocmd");
    let (oci, _) = busybox_images(&s);
    let img = configured(&s, &oci, "nocmd", true);
    let sb = Sandbox::new("imgnocmd");
    let store = s.dir.join("store");
    let m = sb.write(
        "nocmd.toml",
        format!("name = \"imgnocmd\"\n[rootfs]\noci = {}\n", qp(&img)),
    );
    let out = run_with_store(&sb, &store, &["validate", m.to_str().unwrap()]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("missing required key `command`"),
        "{out}"
    );
    assert!(
        out.stderr.contains("this image sets no Entrypoint or Cmd"),
        "{out}"
    );
    sb.assert_state_empty(&out);
}

/// A `tar` root is extracted into the store once, then mounted from there under an overlay: the
/// plan names the archive's digest and its layer; writes die with the run; a changed archive
/// is extracted again; a corrupt one or one past `max_size` is a diagnostic with nothing kept.
#[test]
fn a_tar_root_is_extracted_once_into_the_store() {
    need_root();
    let sb = Sandbox::new("tarstore");
    let archive = sb.dir.join("root.tar");
    std::fs::copy(rootfs_tar(), &archive).unwrap();
    let store = sb.dir.join("store");
    let m = App::new(
        "tarstore",
        "test -e /left && echo LEFTOVER; echo x > /left; echo ran",
    )
    .rootfs("tar = \"root.tar\"")
    .write(&sb);
    for first in [true, false] {
        let out = sb.run(&m);
        out.expect_code(0);
        assert_eq!(out.stdout, "ran\n", "{out}");
        sb.assert_state_empty(&out);
        // Progress when it is extracted, silence when it is not.
        assert_eq!(out.stderr.contains("extracting "), first, "{out}");
        assert_eq!(out.stderr.contains("unpacked "), first, "{out}");
    }
    let layers = || {
        std::fs::read_dir(store.join("layers/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    };
    assert_eq!(layers().len(), 1);
    let out = sb.launch(&["plan", m.to_str().unwrap()]);
    out.expect_code(0);
    let layer = layers()[0].to_string_lossy().into_owned();
    assert!(
        out.stdout.contains(&format!(
            "extracted once into the store as layer sha256:{layer}"
        )),
        "{out}"
    );
    assert!(out.stdout.contains("lowerdir+="), "{out}");
    assert!(
        !out.stdout.contains("extract the root filesystem archive"),
        "{out}"
    );
    // New content: extracted again, as a second layer.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&archive)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0u8; 1024]).unwrap();
    drop(f);
    sb.run(&m).expect_code(0);
    // (Trailing zeros change the tar stream, so its diff_id: a layer of its own.)
    assert_eq!(layers().len(), 2);
    // A cached layer bigger than max_size is refused as well.
    let small = App::new("tarsmall", "true")
        .rootfs("tar = \"root.tar\"\nmax_size = \"4KiB\"")
        .write(&sb);
    let out = sb.launch(&["validate", small.to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("launch::rootfs::extract"), "{out}");
    assert!(
        out.stderr_unwrapped()
            .contains("than max_size (4096 bytes)"),
        "{out}"
    );
    // A corrupt archive: a diagnostic at the value, nothing left in the store's tmp/.
    sb.write("bad.tar.gz", b"not gzip at all, not at all");
    let bad = App::new("tarbad", "true")
        .rootfs("tar = \"bad.tar.gz\"")
        .write(&sb);
    let out = sb.run(&bad);
    out.expect_code(2);
    assert!(out.stderr.contains("launch::rootfs::extract"), "{out}");
    assert!(out.stderr.contains("bad.tar.gz"), "{out}");
    let tmp = std::fs::read_dir(store.join("tmp")).map_or(0, |d| d.count());
    assert_eq!(tmp, 0, "a half-extracted archive was kept");
    sb.assert_state_empty(&out);
}

/// A launcher that is not root runs an image: its own store (every file the user's, which
/// `map_root` makes the container's root), an overlay mounted in the user namespace with
/// `userxattr`, writes in an upper layer of its own, whiteouts honoured.
#[test]
fn a_rootless_launcher_runs_an_image_on_an_overlay() {
    use std::os::unix::fs::PermissionsExt;
    need_root(); // to become nobody
    let s = Scratch::new("imgrootless");
    let (oci, _) = busybox_images(&s);
    let sb = Sandbox::new("imgrootless");
    let home = sb.mkdir("home");
    let bin = home.join("launch");
    std::fs::copy(launch_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let st = std::process::Command::new("cp")
        .args(["-a"])
        .arg(&oci)
        .arg(home.join("img"))
        .status()
        .unwrap();
    assert!(st.success());
    sb.write(
        "home/app.toml",
        "name = \"imgrootless\"\n[rootfs]\noci = \"img\"\n[process]\ncommand = [\"/bin/sh\", \
         \"-c\", \"busybox stat -c %u /bin/busybox; test -e /etc/motd || echo motd-gone; \
         test -e /w && echo LEFTOVER; echo x > /w && busybox stat -c %u /w\"]\n\
         [namespaces]\nuser = { map_root = true }\n",
    );
    sb.mkdir("home/run");
    let st = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&home)
        .status()
        .unwrap();
    assert!(st.success());
    for _ in 0..2 {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .args(["run", "app.toml"])
            .current_dir(&home)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .env("LAUNCH_STORE", home.join("store"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let out = finish(cmd.spawn().unwrap(), "setpriv (nobody) launch run".into());
        out.expect_code(0);
        assert_eq!(out.stdout, "0\nmotd-gone\n0\n", "{out}");
    }
    // The store is the user's own.
    let md = std::fs::metadata(home.join("store")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), 65534);
}
