//! Cancelling the start of an image root (issue 13 §3): SIGTERM, SIGINT and `launch stop NAME`
//! while its layers are unpacked stop the unpack, leave nothing the store trusts (no layer, no
//! temporary directory, no lock held), no state directory and no cgroup, and exit 143 / 130;
//! a later run succeeds. A launcher killed (SIGKILL) in the middle of a pull takes its
//! `launch-registry` helper with it, keeps the partial download, and the next run resumes it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use launch::image::Digest;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::fixtures::*;
use crate::store::{Scratch, plain, write_layout};

/// Busybox as `/bin/sh`, then a layer of `files` files of 16 KiB (slow enough to unpack that a
/// signal lands in the middle). Returns the layout and the big layer's diff_id.
fn image(s: &Scratch, files: usize) -> (PathBuf, Digest) {
    let busybox = std::fs::read("/bin/busybox")
        .expect("busybox (apt-get install busybox-static; .ci/run installs it)");
    let base = Ar::new()
        .dir("bin")
        .file("bin/busybox", &busybox)
        .symlink("bin/sh", "busybox")
        .dir("proc")
        .finish();
    let mut ar = Ar::new();
    let mut data = vec![0u8; 16 << 10];
    for d in 0..files.div_ceil(500) {
        ar.dir(&format!("many{d}"));
    }
    for i in 0..files {
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        ar.file(&format!("many{}/f{i:05}", i / 500), &data);
    }
    let big = plain(ar.finish());
    let diff_id = Digest::parse(&big.diff_id).unwrap();
    let layout = s.dir.join("layout");
    write_layout(&layout, &[plain(base), big], None);
    (layout, diff_id)
}

fn manifest(sb: &Sandbox, name: &str, rootfs: &str, cg: &Cgroups) -> PathBuf {
    sb.write(
        &format!("{name}.toml"),
        format!(
            "name = {}\n[rootfs]\n{rootfs}\n[process]\ncommand = [\"/bin/sh\", \"-c\", \"echo ran\"]\n\
             [limits]\nparent = {}\nmemory = \"64MiB\"\n",
            q(name),
            q(&cg.parent)
        ),
    )
}

/// `launch run MANIFEST` with `store`, its stderr read line by line as it comes.
fn start(sb: &Sandbox, store: &Path, manifest: &Path) -> (Child, Receiver<String>) {
    let mut c = sb.command(&["run", manifest.to_str().unwrap()]);
    c.env("LAUNCH_STORE", store);
    let mut child = c.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Wait for a stderr line containing `want`; the lines so far.
#[track_caller]
fn wait_line(rx: &Receiver<String>, want: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => {
                let hit = l.contains(want);
                seen.push(l);
                if hit {
                    return;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    panic!("no line with {want:?} on stderr: {seen:#?}");
}

/// Wait for the end; the exit code and the rest of stderr.
fn end(mut child: Child, rx: &Receiver<String>, seen: &mut Vec<String>) -> Option<i32> {
    let status = wait_timeout(&mut child, TIMEOUT, "launch run");
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        seen.push(l);
    }
    status.code()
}

/// Whether someone holds the lock file `path` (an flock that cannot be taken exclusively).
fn held(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err()
}

/// Nothing of the cancelled unpack of `diff_id` is trusted or held, and nothing was started.
#[track_caller]
fn assert_nothing_left(s: &Scratch, sb: &Sandbox, cg: &Cgroups, diff_id: &Digest, ctx: &str) {
    let store = s.store_dir();
    assert!(
        !store.join("layers/sha256").join(diff_id.hex()).exists(),
        "the cancelled layer is in layers/\n{ctx}"
    );
    assert_eq!(
        s.names("tmp"),
        Vec::<String>::new(),
        "tmp/ not empty\n{ctx}"
    );
    let ingest: Vec<String> = s
        .names("ingest")
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(ingest, Vec::<String>::new(), "ingest/ not empty\n{ctx}");
    for lock in s.names("locks") {
        assert!(
            !held(&store.join("locks").join(&lock)),
            "{lock} held\n{ctx}"
        );
    }
    sb.assert_state_empty(&ctx);
    cg.assert_empty(&ctx);
}

/// Start a run, wait until the big layer is being unpacked, `stop` it; check what is left and
/// that a second run then works.
fn cancel_mid_unpack(tag: &str, stop: impl FnOnce(&Sandbox, &str, u32), want: i32, says: &str) {
    need_root();
    let s = Scratch::new(tag);
    let (layout, diff_id) = image(&s, 6000);
    let (sb, cg) = (Sandbox::new(tag), Cgroups::new());
    let name = unique(tag).replace('-', "");
    let m = manifest(&sb, &name, &format!("oci = {}", qp(&layout)), &cg);
    let store = s.store_dir();
    let (child, rx) = start(&sb, &store, &m);
    let mut seen = Vec::new();
    wait_line(&rx, "unpacking", &mut seen);
    wait_line(&rx, "(layer 2/2", &mut seen);
    // Under way: its temporary directory fills.
    let deadline = Instant::now() + TIMEOUT;
    while s.names("tmp").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop(&sb, &name, child.id());
    let code = end(child, &rx, &mut seen);
    let ctx = seen.join("\n");
    assert_eq!(code, Some(want), "{ctx}");
    assert!(ctx.contains(says), "{ctx}");
    assert!(!ctx.contains("ran"), "the container ran\n{ctx}");
    assert!(
        !ctx.contains(&format!("unpacked sha256:{} ", diff_id.short())),
        "the layer was unpacked before the signal\n{ctx}"
    );
    assert_nothing_left(&s, &sb, &cg, &diff_id, &ctx);

    let mut c = sb.command(&["run", m.to_str().unwrap()]);
    c.env("LAUNCH_STORE", &store);
    let out = sb.launch_with(c, &["run"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "ran\n", "{out}");
    assert!(out.stderr.contains("unpacked sha256:"), "{out}");
    sb.assert_state_empty(&out);
    cg.assert_empty(&out);
}

#[test]
fn sigterm_during_an_unpack_cancels_it_and_leaves_nothing() {
    cancel_mid_unpack(
        "cancelterm",
        |_, _, pid| kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap(),
        143,
        "launch: start-up cancelled by SIGTERM while the root was brought into the store",
    );
}

#[test]
fn sigint_during_an_unpack_cancels_it_with_130() {
    cancel_mid_unpack(
        "cancelint",
        |_, _, pid| kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap(),
        130,
        "launch: start-up cancelled by SIGINT",
    );
}

#[test]
fn launch_stop_during_an_unpack_cancels_the_run() {
    cancel_mid_unpack(
        "cancelstop",
        |sb, name, pid| {
            // The start is listed, as starting, by its launcher.
            let ps = sb.launch(&["ps", "--format", "json"]);
            ps.expect_code(0);
            let rows: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
            let row = rows
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap_or_else(|| panic!("`launch ps` does not list the start\n{ps}"));
            assert_eq!(row["starting"], true, "{ps}");
            assert_eq!(row["launcher_pid"], pid, "{ps}");
            let text = sb.launch(&["ps"]);
            assert!(text.stdout.contains("starting"), "{text}");
            // exec has nothing to enter yet.
            let exec = sb.launch(&["exec", name, "--", "/bin/true"]);
            assert!(exec.stderr.contains("still starting"), "{exec}");
            let stop = sb.launch(&["stop", name]);
            stop.expect_code(0);
            assert!(
                stop.stdout.starts_with(&format!("stopped {name}-")),
                "{stop}"
            );
        },
        143,
        "launch: start-up cancelled by SIGTERM",
    );
}

/// The start record is where `launch stop` looks for the run, while it lives; `launch gc`
/// removes the record of a launcher that died (SIGKILL), and a run of the same name is not
/// refused because of another one still starting.
#[test]
fn a_dead_launchers_start_record_is_collected() {
    need_root();
    let s = Scratch::new("cancelgc");
    let (layout, _) = image(&s, 6000);
    let (sb, cg) = (Sandbox::new("cancelgc"), Cgroups::new());
    let m = manifest(&sb, "cancelgc", &format!("oci = {}", qp(&layout)), &cg);
    let (mut child, rx) = start(&sb, &s.store_dir(), &m);
    let mut seen = Vec::new();
    wait_line(&rx, "(layer 2/2", &mut seen);
    child.kill().unwrap();
    child.wait().unwrap();
    let left = sb.state_entries();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("cancelgc-"), "{left:?}");
    let gc = sb.launch(&["gc"]);
    gc.expect_code(0);
    assert!(
        gc.stdout.contains(&format!("cleaned up {}", left[0])),
        "{gc}"
    );
    sb.assert_state_empty(&gc);
    cg.assert_empty(&gc);
}

/// A launcher SIGKILLed in the middle of a pull: its `launch-registry` helper stops too (it is
/// never left pulling on its own), the partial download stays, and the next run resumes it
/// with a Range request and runs.
#[test]
fn a_pull_killed_halfway_resumes_on_the_next_run() {
    use crate::registry::{Auth, Lab, manifest_digest};
    need_root();
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    let s = Scratch::new("cancelpull");
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let base = Ar::new()
        .dir("bin")
        .file("bin/busybox", &busybox)
        .symlink("bin/sh", "busybox")
        .finish();
    // 32 MiB that nothing compresses.
    let mut big = vec![0u8; 32 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let layer = Ar::new().file("big.bin", &big).finish();
    drop(big);
    let layout = s.dir.join("layout");
    write_layout(&layout, &[plain(base), plain(layer)], None);
    lab.push(
        &format!("{}:latest", layout.display()),
        &format!("{reg}/test/big:1"),
        &[],
    );
    let (_, manifest) = manifest_digest(&reg, "test/big:1");
    let blob = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // 8 MiB/s: the big layer takes about 4 s.
    let (front, _log) = lab.proxy("slow", &reg, &["--rate", "8388608"]);
    let partial = lab.path("store/ingest").join(format!(
        "sha256-{}.partial",
        blob.trim_start_matches("sha256:")
    ));
    let (sb, cg) = (Sandbox::new("cancelpull"), Cgroups::new());
    let m = manifest_at(&sb, &format!("image = \"{front}/test/big:1\""), &cg);

    let run = || {
        let mut cmd = lab.launch_cmd(&["run", m.to_str().unwrap()], &[]);
        cmd.env("LAUNCH_STATE_ROOT", &sb.state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let until = |child: &mut Child, bytes: u64| {
        let deadline = Instant::now() + TIMEOUT;
        while std::fs::metadata(&partial).map_or(0, |m| m.len()) < bytes {
            assert!(
                Instant::now() < deadline,
                "the big layer never got to {bytes}"
            );
            assert!(child.try_wait().unwrap().is_none(), "the run ended early");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // SIGTERM: passed on to the helper, which stops and keeps its partial download.
    let mut child = run();
    until(&mut child, 4 << 20);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = finish(child, "launch run (SIGTERM)".into());
    out.expect_code(143);
    assert!(out.stderr.contains("cancelled by SIGTERM"), "{out}");
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept >= 4 << 20, "partial has {kept}\n{out}");
    sb.assert_state_empty(&out);

    // SIGKILL: the helper dies with its launcher.
    let mut child = run();
    until(&mut child, kept + (4 << 20));
    let pid = child.id();
    let helpers: Vec<i32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(helpers.len(), 1, "one pull helper: {helpers:?}");
    let helper = helpers[0];
    let exe = std::fs::read_link(format!("/proc/{helper}/exe")).unwrap();
    assert!(exe.ends_with("launch-registry"), "{exe:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The helper goes too (PR_SET_PDEATHSIG), keeping its partial download.
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(helper) {
        assert!(
            Instant::now() < deadline,
            "launch-registry {helper} outlived its launcher"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let now = std::fs::metadata(&partial).unwrap().len();
    assert!(now >= kept + (4 << 20), "partial has {now}");
    assert!(!lab.blob(&blob).exists());

    let out = finish(run(), "launch run (resumed)".into());
    out.expect_code(0);
    assert_eq!(out.stdout, "ran\n", "{out}");
    assert!(out.stderr.contains("resuming at"), "{out}");
    assert!(lab.blob(&blob).is_file());
    assert!(!partial.exists());
    // The record the killed launcher left went with the second run's claim.
    sb.assert_state_empty(&out);
    cg.assert_empty(&out);
}

fn manifest_at(sb: &Sandbox, rootfs: &str, cg: &Cgroups) -> PathBuf {
    manifest(sb, "cancelpull", rootfs, cg)
}

/// Whether `pid` is a process that has not ended (a zombie has).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// `launch import` reports each layer it unpacks: plain lines without a terminal, one line
/// redrawn in place on one (script(1) gives it a terminal); a layer already unpacked is silent.
#[test]
fn unpack_progress_is_plain_lines_or_a_redrawn_line() {
    need_root();
    let s = Scratch::new("progress");
    let (layout, _) = image(&s, 3000);
    let import = |args: &[&str]| {
        let mut c = std::process::Command::new(launch_bin());
        c.args(args)
            .env("LAUNCH_STORE", s.store_dir())
            .stdin(Stdio::null());
        c.output().unwrap()
    };
    let out = import(&["import", "oci", layout.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "two lines per layer: {err}");
    assert!(lines[0].starts_with("unpacking sha256:") && lines[0].contains("(layer 1/2, "));
    assert!(lines[1].starts_with("unpacked sha256:") && lines[1].contains("(layer 1/2): "));
    assert!(
        lines[3].contains("(layer 2/2): ") && lines[3].contains("3006 entries"),
        "{err}"
    );
    assert!(!err.contains('\r'), "{err:?}");
    // Already unpacked: nothing to say.
    let out = import(&["import", "oci", layout.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    // On a terminal, into a fresh store.
    let store = s.dir.join("store2");
    let line = format!(
        "LAUNCH_STORE={} {} import oci {}",
        store.display(),
        launch_bin(),
        layout.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("\r\x1b[2Kunpacking sha256:"),
        "no redrawn line: {text:?}"
    );
    assert!(text.contains("B/s"), "no rate: {text:?}");
    assert!(text.contains("unpacked sha256:"), "{text:?}");
    assert!(
        !text.contains("(layer 1/2, "),
        "plain lines on a terminal: {text:?}"
    );
}

/// `launch import` stops on SIGTERM too, mid-unpack, keeping only complete layers.
#[test]
fn sigterm_during_launch_import_cancels_it() {
    need_root();
    let s = Scratch::new("cancelimport");
    let (layout, diff_id) = image(&s, 6000);
    let mut c = std::process::Command::new(launch_bin());
    c.args(["import", "oci", layout.to_str().unwrap()])
        .env("LAUNCH_STORE", s.store_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    wait_line(&rx, "(layer 2/2", &mut seen);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let code = end(child, &rx, &mut seen);
    let ctx = seen.join("\n");
    assert_eq!(code, Some(143), "{ctx}");
    assert!(ctx.contains("launch: import cancelled by SIGTERM"), "{ctx}");
    assert!(
        !s.store_dir()
            .join("layers/sha256")
            .join(diff_id.hex())
            .exists()
    );
    assert_eq!(s.names("tmp"), Vec::<String>::new(), "{ctx}");
}
