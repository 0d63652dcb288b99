//! Masked and read-only paths on the real kernel. A forked child enters a new mount namespace
//! (private, so nothing reaches the host), mounts a fresh proc and sysfs under a scratch root,
//! looks at them, applies the default lists, and looks again: the report it sends back pairs
//! each denial with the same access succeeding before the masks.
//!
//! The child allocates: glibc's fork(3) holds malloc's locks across the fork, so the child's
//! allocator is consistent even though the test process has other threads.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use launch::sys::fs::Root;
use launch::sys::masked_paths::{self, DEFAULT_MASKED, DEFAULT_READONLY, Done, Outcome};
use nix::mount::MsFlags;

/// A scratch directory (on the host; only the child mounts anything in it).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("launch-masked-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the child saw: named observations, and what `apply` did.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Report {
    seen: BTreeMap<String, String>,
    done: Vec<Done>,
    error: Option<String>,
}

/// Fork; the child enters a new, private mount namespace, runs `body` and sends its report.
fn in_new_mount_ns(body: impl FnOnce(&mut Report) -> Result<(), String>) -> Report {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child runs `body` and leaves with _exit (see the module comment).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(r);
        let mut report = Report::default();
        let run = |report: &mut Report| -> Result<(), String> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| format!("unshare: {e}"))?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| format!("make / private: {e}"))?;
            body(report)
        };
        if let Err(e) = run(&mut report) {
            report.error = Some(e);
        }
        let _ = nix::unistd::write(&w, &serde_json::to_vec(&report).unwrap_or_default());
        // SAFETY: leave without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
    drop(w);
    let mut sent = Vec::new();
    std::fs::File::from(r).read_to_end(&mut sent).unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    let report: Report = serde_json::from_slice(&sent).unwrap();
    assert_eq!(report.error, None);
    report
}

fn mount_fresh(fstype: &str, at: &Path) -> Result<(), String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    nix::mount::mount(
        Some(fstype),
        at,
        Some(fstype),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mount {fstype} on {}: {e}", at.display()))
}

/// How reading a file ends: `N bytes`, or the error.
fn read(p: &Path) -> String {
    match std::fs::read(p) {
        Ok(b) => format!("{} bytes", b.len()),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// How listing a directory ends: `N entries`, or the error.
fn list(p: &Path) -> String {
    match std::fs::read_dir(p) {
        Ok(d) => format!("{} entries", d.count()),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// How opening a file for writing ends (nothing is written): `ok`, or the errno.
fn open_for_write(p: &Path) -> String {
    match std::fs::OpenOptions::new().write(true).open(p) {
        Ok(_) => "ok".into(),
        Err(e) => format!(
            "{:?}",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
        ),
    }
}

/// How creating a file ends (removed again if made): `ok`, or the errno.
fn create(p: &Path) -> String {
    match std::fs::File::create_new(p) {
        Ok(_) => {
            let _ = std::fs::remove_file(p);
            "ok".into()
        }
        Err(e) => format!(
            "{:?}",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
        ),
    }
}

/// The observations made before and after the masks.
fn look(root: &Path, when: &str, seen: &mut BTreeMap<String, String>) {
    let mut put = |k: &str, v: String| seen.insert(format!("{when} {k}"), v);
    put("read timer_list", read(&root.join("proc/timer_list")));
    put("read interrupts", read(&root.join("proc/interrupts")));
    put("list sys/firmware", list(&root.join("sys/firmware")));
    put(
        "create in sys/firmware",
        create(&root.join("sys/firmware/x")),
    );
    put(
        "write proc/sys",
        open_for_write(&root.join("proc/sys/kernel/hostname")),
    );
    put(
        "create in a mount beneath proc/sys",
        create(&root.join("proc/sys/fs/binfmt_misc/x")),
    );
}

#[test]
fn the_default_lists_hide_and_freeze_what_they_name() {
    default_lists_in_a_child("defaults");
}

/// Mount a fresh proc and sysfs under a scratch root in a child, apply the default lists there,
/// and check what changed.
fn default_lists_in_a_child(name: &str) {
    let s = Scratch::new(name);
    let root = s.0.clone();
    let masked = masked_paths::expand(DEFAULT_MASKED);
    let readonly = masked_paths::expand(DEFAULT_READONLY);
    let (m, ro) = (masked.clone(), readonly.clone());
    let report = in_new_mount_ns(move |report| {
        mount_fresh("proc", &root.join("proc"))?;
        mount_fresh("sysfs", &root.join("sys"))?;
        // A mount beneath /proc/sys (where binfmt_misc is mounted on many hosts): read-only too.
        mount_fresh("tmpfs", &root.join("proc/sys/fs/binfmt_misc"))?;
        look(&root, "before", &mut report.seen);
        let r = Root::open(&root).map_err(|e| e.to_string())?;
        report.done = masked_paths::apply(&r, &m, &ro).map_err(|e| e.to_string())?;
        look(&root, "after", &mut report.seen);
        Ok(())
    });
    let seen = |k: &str| report.seen[k].as_str();

    // Before: the host's data, readable, writable.
    assert_ne!(seen("before read timer_list"), "0 bytes");
    assert_ne!(seen("before read interrupts"), "0 bytes");
    assert_ne!(seen("before list sys/firmware"), "0 entries");
    assert_eq!(seen("before write proc/sys"), "ok");
    assert_eq!(seen("before create in a mount beneath proc/sys"), "ok");
    // After: masked files read empty, masked directories are empty and read-only, /proc/sys is
    // read-only all the way down.
    assert_eq!(seen("after read timer_list"), "0 bytes");
    assert_eq!(seen("after read interrupts"), "0 bytes");
    assert_eq!(seen("after list sys/firmware"), "0 entries");
    assert_eq!(seen("after create in sys/firmware"), "EROFS");
    assert_eq!(seen("after write proc/sys"), "EROFS");
    assert_eq!(seen("after create in a mount beneath proc/sys"), "EROFS");

    // Each path in order (read-only first), done the way its kind asks, and skipped exactly
    // when this kernel lacks it (here /proc/kcore and /proc/sysrq-trigger, among others).
    let paths: Vec<&PathBuf> = readonly.iter().chain(&masked).collect();
    assert_eq!(
        report.done.iter().map(|d| &d.path).collect::<Vec<_>>(),
        paths
    );
    for d in &report.done {
        let on_host = Path::new(&d.path);
        let expected = match on_host.metadata() {
            Err(_) => Outcome::Missing,
            Ok(_) if readonly.contains(&d.path) => Outcome::ReadOnly,
            Ok(m) if m.is_dir() => Outcome::MaskedDir,
            Ok(_) => Outcome::MaskedFile,
        };
        assert_eq!(d.outcome, expected, "{}", d.path.display());
    }
}

#[test]
fn the_host_keeps_its_own_proc_and_sys() {
    // Run the masks in a child, then look from the test process's own namespace.
    default_lists_in_a_child("host");
    assert_ne!(read(Path::new("/proc/timer_list")), "0 bytes");
    assert_ne!(list(Path::new("/sys/firmware")), "0 entries");
    assert_eq!(open_for_write(Path::new("/proc/sys/kernel/hostname")), "ok");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("launch-masked-"), "{mounts}");
}

#[test]
fn a_symlink_in_the_root_cannot_aim_a_mask_at_the_host() {
    // The root's `sys` points at a host directory; resolved inside the root, it leads nowhere.
    let s = Scratch::new("symlink");
    let outside = Scratch::new("outside");
    std::fs::create_dir_all(outside.0.join("firmware")).unwrap();
    std::fs::write(outside.0.join("firmware/secret"), b"host").unwrap();
    std::os::unix::fs::symlink(&outside.0, s.0.join("sys")).unwrap();
    let (root, host) = (s.0.clone(), outside.0.clone());
    let report = in_new_mount_ns(move |report| {
        let r = Root::open(&root).map_err(|e| e.to_string())?;
        let firmware = [PathBuf::from("/sys/firmware")];
        report.done = masked_paths::apply(&r, &firmware, &[]).map_err(|e| e.to_string())?;
        // The twin: the same path, followed as the host resolves it, is there.
        report.seen.insert(
            "through the symlink".into(),
            read(&root.join("sys/firmware/secret")),
        );
        report
            .seen
            .insert("outside".into(), read(&host.join("firmware/secret")));
        Ok(())
    });
    assert_eq!(report.done[0].outcome, Outcome::Missing);
    assert_eq!(report.seen["through the symlink"], "4 bytes");
    assert_eq!(report.seen["outside"], "4 bytes");
}
