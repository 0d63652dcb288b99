//! The launcher's own trust boundary: its state is input it checks before acting on it as root,
//! and nothing it keeps is reachable by another user of the host.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use crate::fixtures::*;

/// `argv` run as `nobody` (uid and gid 65534, no supplementary groups): its exit status and
/// output.
fn as_nobody(argv: &[&str]) -> (bool, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(argv)
        .output()
        .expect("setpriv (util-linux) runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A journal another user planted (or a corrupted one) names a host directory and a cgroup
/// that are not its instance's: `launch gc` removes neither, says so, and leaves the instance.
#[test]
fn a_planted_journal_is_refused() {
    need_root();
    let sb = Sandbox::new("planted");
    let victim = sb.mkdir("victim");
    fs::write(victim.join("precious"), "keep me").unwrap();
    let cgvictim = sb.mkdir("victim-cgroup");
    fs::create_dir_all(&sb.state).unwrap();
    for (inst, entry) in [
        (
            "evil-0badc0de",
            format!(r#"{{"undo":"remove_tree","path":"{}"}}"#, victim.display()),
        ),
        (
            "evil-0badc0df",
            format!(
                r#"{{"undo":"remove_tree","path":"{}/evil-0badc0df/../../victim"}}"#,
                sb.state.display()
            ),
        ),
        (
            "evil-0badc0e0",
            format!(
                r#"{{"undo":"remove_cgroup","path":"{}"}}"#,
                cgvictim.display()
            ),
        ),
    ] {
        let dir = sb.state.join(inst);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("journal"), entry + "\n").unwrap();
    }
    let out = sb.launch(&["gc"]);
    out.expect_code(0);
    assert!(
        victim.join("precious").exists(),
        "gc removed a host directory\n{out}"
    );
    assert!(
        cgvictim.exists(),
        "gc removed a directory named as a cgroup\n{out}"
    );
    assert_eq!(
        out.stdout.matches("left ").count(),
        3,
        "each planted instance is reported\n{out}"
    );
    assert_eq!(
        sb.state_entries().len(),
        3,
        "planted instances are left alone\n{out}"
    );
    // `launch run` collects too: it must not act on them either.
    let m = App::new("after", "echo ok").write(&sb);
    sb.run(&m).expect_code(0);
    assert!(victim.join("precious").exists());
}

/// A state root the caller does not own, or that others can write, may hold anything: refused
/// before any journal in it is read (a non-root user's `/tmp/launch-UID` can be made first by
/// someone else).
#[test]
fn a_state_root_others_control_is_refused() {
    need_root();
    let sb = Sandbox::new("stateroot");
    let m = App::new("sr", "echo ran").write(&sb);
    for (what, setup) in [
        ("owned by nobody", 0),
        ("writable by others", 1),
        ("a symlink", 2),
    ] {
        let _ = fs::remove_dir_all(&sb.state);
        let _ = fs::remove_file(&sb.state);
        match setup {
            0 => {
                fs::create_dir(&sb.state).unwrap();
                std::os::unix::fs::chown(&sb.state, Some(65534), Some(65534)).unwrap();
            }
            1 => {
                fs::create_dir(&sb.state).unwrap();
                fs::set_permissions(&sb.state, fs::Permissions::from_mode(0o777)).unwrap();
            }
            _ => {
                let real = sb.mkdir("real-state");
                std::os::unix::fs::symlink(&real, &sb.state).unwrap();
            }
        }
        let out = sb.run(&m);
        out.expect_code(125);
        assert!(out.stderr.contains("refusing to use it"), "{what}\n{out}");
        assert!(!out.stdout.contains("ran"), "{what}\n{out}");
        let gc = sb.launch(&["gc"]);
        assert_ne!(gc.code(), Some(0), "{what}: gc used it\n{gc}");
    }
    let _ = fs::remove_file(&sb.state);
}

/// Another user of the host can reach neither a running container's extracted root (whose
/// setuid binaries and device nodes would be theirs to use) nor its journal (its environment);
/// the state directory is 0700 (0710 for the group of a user namespace's root).
#[test]
fn other_users_reach_no_root_and_no_journal() {
    need_root();
    let sb = Sandbox::new("reach");
    let host = Host::snapshot();
    for (name, ns) in [
        ("reachplain", ""),
        (
            "reachuserns",
            "[namespaces.user]\nuid_map = [{ inside = 0, outside = 300000, count = 65536 }]\n\
             gid_map = [{ inside = 0, outside = 300000, count = 65536 }]",
        ),
    ] {
        let m = App::new(name, "echo READY; read x; echo done")
            .rootfs_tar()
            .tables(ns)
            .write(&sb);
        let mut run = Running::start(&sb, &["run", m.to_str().unwrap()]);
        run.wait_for_within("READY", Duration::from_secs(10));
        let inst = sb
            .state_entries()
            .into_iter()
            .find(|e| e.starts_with(name))
            .unwrap();
        let dir = sb.state.join(&inst);
        let md = fs::metadata(&dir).unwrap();
        let journal_mode = fs::metadata(dir.join("journal")).unwrap().mode() & 0o777;
        let root = dir.join("root");
        let (ls_ok, ls) = as_nobody(&["ls", root.to_str().unwrap()]);
        let (cat_ok, cat) = as_nobody(&["cat", dir.join("journal").to_str().unwrap()]);
        let out = run.finish("\n");
        out.expect_code(0);
        assert!(!ls_ok, "{name}: nobody listed the extracted root: {ls}");
        assert!(!cat_ok, "{name}: nobody read the journal: {cat}");
        assert_eq!(journal_mode, 0o600, "{name}");
        if ns.is_empty() {
            assert_eq!(md.mode() & 0o777, 0o700, "{name}");
        } else {
            assert_eq!((md.mode() & 0o777, md.gid()), (0o710, 300000), "{name}");
        }
    }
    let out = sb.launch(&["gc"]);
    host.assert_clean(&sb, None, &out);
}

/// An archive swapped for a symlink after `launch plan` (to a file only root may read) is not
/// followed by `launch run --plan`, and no error shows a byte of what is read in place of an
/// archive.
#[test]
fn a_swapped_archive_is_not_followed_and_never_echoed() {
    need_root();
    let sb = Sandbox::new("swap");
    let secret = sb.write("secret", "root:TOPSECRET:20228:0:99999:7:::\n".repeat(20));
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let archive = sb.write("root.tar", b"");
    fs::copy(rootfs_tar(), &archive).unwrap();
    // The per-run extraction: a saved plan of a store root pins the layer and never reads the
    // archive again (a_tar_root_is_extracted_once_into_the_store).
    let m = App::new("swap", "echo RAN")
        .rootfs("tar = \"root.tar\"")
        .per_run_extraction()
        .write(&sb);
    let plan = sb.plan(&m);

    fs::remove_file(&archive).unwrap();
    std::os::unix::fs::symlink(&secret, &archive).unwrap();
    let out = sb.run_plan(&plan);
    out.expect_code(125);
    assert!(!out.stdout.contains("RAN"), "{out}");
    assert!(
        !out.stderr.contains("TOPSECRET"),
        "the secret was echoed\n{out}"
    );
    assert!(out.stderr.contains("symlink"), "{out}");
    assert!(sb.state_entries().is_empty(), "{out}");

    // The same bytes as a plain file: refused as an archive, still not echoed.
    fs::remove_file(&archive).unwrap();
    fs::copy(&secret, &archive).unwrap();
    let out = sb.run_plan(&plan);
    out.expect_code(125);
    assert!(
        !out.stderr.contains("TOPSECRET"),
        "the secret was echoed\n{out}"
    );
    assert!(out.stderr.contains("not a valid tar archive"), "{out}");
}

/// A device node an archive ships (here a 0666 copy of /dev/null at /opt/dev) cannot be opened in
/// the container: the extracted root is mounted nodev. launch's own /dev works as before.
#[test]
fn device_nodes_from_an_archive_do_not_work() {
    need_root();
    let sb = Sandbox::new("archdev");
    let tree = sb.mkdir("tree");
    let run = |argv: &[&str]| {
        let st = Command::new(argv[0]).args(&argv[1..]).status().unwrap();
        assert!(st.success(), "{argv:?}");
    };
    let t = tree.to_str().unwrap();
    run(&["tar", "-C", t, "-xf", rootfs_tar().to_str().unwrap()]);
    run(&["mkdir", "-p", &format!("{t}/opt")]);
    run(&[
        "mknod",
        "-m",
        "0666",
        &format!("{t}/opt/dev"),
        "c",
        "1",
        "3",
    ]);
    let archive = sb.dir.join("dev.tar");
    run(&["tar", "-C", t, "-cf", archive.to_str().unwrap(), "."]);
    let m = App::new(
        "archdev",
        "echo x > /dev/null && echo OWN-DEV-OK; echo x > /opt/dev && echo ARCHIVE-DEV-OPENED; true",
    )
    .rootfs("tar = \"dev.tar\"")
    .write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    assert!(out.stdout.contains("OWN-DEV-OK"), "{out}");
    assert!(!out.stdout.contains("ARCHIVE-DEV-OPENED"), "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
}

/// An archive that expands past `[rootfs] max_size` stops the run before it runs anything,
/// says why, and leaves nothing behind; under the bound the same archive runs.
#[test]
fn an_archive_past_max_size_stops_the_run() {
    need_root();
    let sb = Sandbox::new("maxsize");
    let host = Host::snapshot();
    let app = |max: &str, per_run: bool| {
        let app = App::new("maxsize", "echo RAN")
            .rootfs(&format!("tar = {}\nmax_size = \"{max}\"", qp(rootfs_tar())))
            .no_proc();
        match per_run {
            true => app.per_run_extraction(),
            false => app,
        }
        .write(&sb)
    };
    // Per run (exit 125 from the step) and into the store (exit 2 before validation).
    for (per_run, code) in [(true, 125), (false, 2)] {
        let out = sb.run(&app("64KiB", per_run));
        out.expect_code(code);
        // (A diagnostic wraps the line after `[rootfs]`.)
        assert!(out.stderr.contains("expands past `[rootfs]"), "{out}");
        assert!(out.stderr.contains("max_size` (65536 bytes)"), "{out}");
        assert!(!out.stdout.contains("RAN"), "{out}");
        host.assert_clean(&sb, None, &out);
        let out = sb.run(&app("1GiB", per_run));
        out.expect_code(0).expect_stdout("RAN\n");
        host.assert_clean(&sb, None, &out);
    }
}

/// A small compressed archive whose GNU long name claims 64 MiB: refused from its header, before
/// the name is read into memory, with a message of ordinary length; nothing is left.
#[test]
fn a_huge_long_name_is_refused_unread() {
    need_root();
    let sb = Sandbox::new("longname");
    let mut tar = Vec::new();
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    let name_len = 64u64 << 20;
    h.set_size(name_len);
    h.set_mode(0o644);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.resize(tar.len() + name_len as usize, b'a');
    tar.extend([0u8; 1024]);
    let archive = sb.write("root.tar.gz", gzip(&tar));
    drop(tar);
    assert!(fs::metadata(&archive).unwrap().len() < 1 << 20);
    let m = App::new("longname", "echo RAN")
        .rootfs("tar = \"root.tar.gz\"")
        .no_proc()
        .write(&sb);
    // Extracted into the store before validation: a diagnostic at the value.
    let out = sb.run(&m);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("GNU long name entry claims 67108864 bytes"),
        "{out}"
    );
    assert!(
        out.stderr.len() < 4096,
        "a message of {} bytes",
        out.stderr.len()
    );
    assert!(sb.state_entries().is_empty(), "{out}");
}
