//! Device rules on the real kernel: cgroup v1's `devices.*` files and the cgroup v2 program
//! (attached to a group under the cgroup2 mount: `/sys/fs/cgroup/unified` on this hybrid host,
//! `/sys/fs/cgroup` in the pure v2 guest of scripts/vm). A forked child is moved into a group of
//! our own, then opens and creates device nodes with raw calls; every denial (EPERM) is paired
//! with the same call in a group without rules, and every list of rules is checked against what
//! [`Filter::allows`] (the model both forms are generated from) says, access by access.
//!
//! Each test makes its groups under a parent of its own and removes both, even when it fails.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use launch::sys::cgroup;
use launch::sys::devices::{
    Access, DEFAULT, DeviceKind, DeviceRule, Filter, apply_v2, attach, load, program, v1_writes,
};

use crate::fixtures::{mountinfo, need_root, pure_v2, unique, v1_root};

const EPERM: i32 = libc::EPERM;

/// A group of ours: `<root>/<unique>/c`, removed (both levels) on drop.
struct Group {
    parent: PathBuf,
    dir: PathBuf,
}

impl Group {
    fn new(root: &Path) -> Group {
        let parent = root.join(unique("launch-devices-test"));
        std::fs::create_dir(&parent).unwrap();
        let g = Group {
            dir: parent.join("c"),
            parent,
        };
        std::fs::create_dir(&g.dir).unwrap();
        g
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let child = cgroup::destroy(&self.dir);
        let parent = cgroup::destroy(&self.parent);
        if !std::thread::panicking() {
            child.unwrap();
            parent.unwrap();
        }
    }
}

/// A scratch directory (not `nodev`: nodes in it can be opened), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let d = std::env::temp_dir().join(unique("launch-devices"));
        std::fs::create_dir(&d).unwrap();
        Scratch(d)
    }

    fn c(&self, name: &str) -> CString {
        CString::new(self.0.join(name).as_os_str().as_bytes()).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where cgroup2 is mounted.
fn v2_root() -> PathBuf {
    mountinfo()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            (f.get(dash + 1) == Some(&"cgroup2") && f[3] == "/").then(|| PathBuf::from(f[4]))
        })
        .expect("a cgroup2 mount (hybrid: /sys/fs/cgroup/unified)")
}

/// The `devices` v1 hierarchy: None on pure cgroup v2 (the guest of scripts/vm), where there is
/// no such controller and the v2 tests below are what runs.
fn devices_root() -> Option<PathBuf> {
    let root = v1_root("devices");
    assert!(
        root.is_some() || pure_v2(),
        "this hybrid host should have the `devices` v1 hierarchy"
    );
    root
}

/// One raw call the child makes, prepared before the fork (the child allocates nothing).
enum Try {
    /// open(path, flags); closed again at once.
    Open(CString, libc::c_int),
    /// mknod(path, mode, dev).
    Mknod(CString, libc::mode_t, libc::dev_t),
}

/// Fork a child, move it into `group` (its `cgroup.procs`), and let it make `tries`; the errno
/// of each (0: success).
fn in_group(group: &Path, tries: &[Try]) -> Vec<i32> {
    assert!(tries.len() <= 256);
    let (go_r, go_w) = nix::unistd::pipe().unwrap();
    let (res_r, res_w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child makes raw calls on prepared buffers only and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let mut out = [0i32; 256];
        // SAFETY: raw calls on prepared C strings and stack buffers.
        unsafe {
            let mut b = 0u8;
            if libc::read(go_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(3);
            }
            for (i, t) in tries.iter().enumerate() {
                let r = match t {
                    Try::Open(p, flags) => {
                        let fd =
                            libc::open(p.as_ptr(), *flags | libc::O_CLOEXEC | libc::O_NONBLOCK);
                        if fd >= 0 {
                            libc::close(fd);
                        }
                        fd
                    }
                    Try::Mknod(p, mode, dev) => libc::mknod(p.as_ptr(), *mode, *dev),
                };
                out[i] = if r < 0 {
                    nix::errno::Errno::last_raw()
                } else {
                    0
                };
            }
            let bytes = tries.len() * 4;
            let w = libc::write(res_w.as_raw_fd(), out.as_ptr().cast(), bytes);
            libc::_exit(if w == bytes as isize { 0 } else { 4 });
        }
    }
    drop(go_r);
    drop(res_w);
    let moved = cgroup::write(&group.join("cgroup.procs"), &pid.to_string());
    if moved.is_ok() {
        nix::unistd::write(&go_w, b"g").unwrap();
    }
    drop(go_w);
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(res_r), &mut buf).unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    moved.unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: {status:#x}"
    );
    buf.chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Apply `rules` to a v1 `devices` group, as the plan's writes would.
fn apply_v1(rules: &[DeviceRule], group: &Path) {
    for (file, line) in v1_writes(rules) {
        cgroup::write(&group.join(file), &line).unwrap();
    }
}

/// A block device this process can open for reading, as a node in `scratch`: the first disk of
/// `/proc/partitions` (what a hostile root would ship), else loop0 (on the dev host the sandbox
/// itself refuses opens of its disk, whatever our cgroups say).
fn block_device(scratch: &Scratch) -> (CString, String) {
    let p = std::fs::read_to_string("/proc/partitions").unwrap();
    let disks = p.lines().skip(2).filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        Some((
            f.first()?.parse().ok()?,
            f.get(1)?.parse().ok()?,
            f.get(3)?.to_string(),
        ))
    });
    for (major, minor, name) in disks.chain([(7, 0, "loop0".to_owned())]) {
        let path = scratch.0.join(&name);
        let node = node(scratch, &name, libc::S_IFBLK, major, minor);
        if std::fs::File::open(&path).is_ok() {
            return (node, format!("{name} ({major}:{minor})"));
        }
    }
    panic!("no block device that this test process can open for reading");
}

fn node(scratch: &Scratch, name: &str, kind: libc::mode_t, major: u32, minor: u32) -> CString {
    let p = scratch.c(name);
    // SAFETY: a prepared C string.
    let r = unsafe { libc::mknod(p.as_ptr(), kind | 0o600, libc::makedev(major, minor)) };
    assert_eq!(r, 0, "mknod {name}: {}", std::io::Error::last_os_error());
    p
}

/// The incident, on one version: a root ships the host's disk as a node. With the default list
/// it cannot be read, /dev/null still works, and a node outside the list can be made (the
/// default allows mknod, as runc's does) but not opened; with the list without mknod it cannot
/// even be made. Without rules the same calls all succeed. The node made has numbers no driver
/// can have (majors from 512 up are never registered): opened, it says ENXIO.
fn default_list_stops_the_host_disk(apply: impl Fn(&[DeviceRule], &Path), root: &Path) {
    let scratch = Scratch::new();
    let (disk, name) = block_device(&scratch);
    let made = scratch.c("made");
    let tries = [
        Try::Open(c"/dev/null".into(), libc::O_RDWR),
        Try::Open(disk, libc::O_RDONLY),
        Try::Mknod(made.clone(), libc::S_IFCHR | 0o600, libc::makedev(700, 0)),
        Try::Open(made, libc::O_RDONLY),
    ];
    let strict: Vec<DeviceRule> = DEFAULT
        .iter()
        .filter(|r| r.access != Access::MKNOD)
        .copied()
        .collect();
    let cases: [(&str, &[DeviceRule], [i32; 4]); 3] = [
        ("no rules", &[], [0, 0, 0, libc::ENXIO]),
        ("the default list", DEFAULT, [0, EPERM, 0, EPERM]),
        (
            "the default list without mknod",
            &strict,
            [0, EPERM, EPERM, libc::ENOENT],
        ),
    ];
    for (what, rules, want) in cases {
        let g = Group::new(root);
        apply(rules, &g.dir);
        let got = in_group(&g.dir, &tries);
        let _ = std::fs::remove_file(scratch.0.join("made"));
        assert_eq!(
            got,
            want,
            "{what} in {}: [open /dev/null rw, open {name} r, mknod c 700:0, open it r]",
            g.dir.display()
        );
    }
}

#[test]
fn v1_default_list_stops_the_host_disk() {
    need_root();
    let Some(root) = devices_root() else { return };
    default_list_stops_the_host_disk(apply_v1, &root);
}

#[test]
fn v2_default_list_stops_the_host_disk() {
    need_root();
    default_list_stops_the_host_disk(|rules, dir| apply_v2(rules, dir).unwrap(), &v2_root());
}

/// Lists of rules, on device numbers no driver can have (majors from 512 up are never
/// registered): an allowed open fails with ENXIO, a denied one with EPERM, so every access of a
/// small grid is observed without touching a real device.
const LISTS: &[&[&str]] = &[
    &[
        "deny a",
        "allow c 600:1 rw",
        "allow c 601:* r",
        "allow b 600:* m",
        "allow c *:2 w",
        "allow c 600:1 m",
    ],
    &[
        "allow a",
        "deny c 600:1 w",
        "deny b *:* r",
        "deny c 601:* rwm",
        "deny c *:3 m",
    ],
    &[
        "deny a",
        "allow c *:* rwm",
        "deny c 600:1 rwm",
        "allow b 601:2 rwm",
        "deny b 601:2 w",
    ],
];

const MAJORS: [u32; 3] = [600, 601, 602];
const MINORS: [u32; 3] = [1, 2, 3];

fn grid_agrees(apply: impl Fn(&[DeviceRule], &Path), root: &Path, version: &str) {
    let scratch = Scratch::new();
    let mut tries = Vec::new();
    let mut asked = Vec::new();
    for (kind, ifmt, k) in [
        (DeviceKind::Char, libc::S_IFCHR, "c"),
        (DeviceKind::Block, libc::S_IFBLK, "b"),
    ] {
        for major in MAJORS {
            for minor in MINORS {
                let name = format!("{k}-{major}-{minor}");
                let p = node(&scratch, &name, ifmt, major, minor);
                for (flags, access) in [
                    (libc::O_RDONLY, Access::READ),
                    (libc::O_WRONLY, Access::WRITE),
                    (libc::O_RDWR, Access::READ | Access::WRITE),
                ] {
                    tries.push(Try::Open(p.clone(), flags));
                    asked.push((kind, major, minor, access));
                }
                tries.push(Try::Mknod(
                    scratch.c(&format!("{name}-made")),
                    ifmt | 0o600,
                    libc::makedev(major, minor),
                ));
                asked.push((kind, major, minor, Access::MKNOD));
            }
        }
    }
    for list in LISTS {
        let rules: Vec<DeviceRule> = list.iter().map(|r| r.parse().unwrap()).collect();
        let filter = Filter::of(&rules);
        let g = Group::new(root);
        apply(&rules, &g.dir);
        let got = in_group(&g.dir, &tries);
        for name in std::fs::read_dir(&scratch.0).unwrap() {
            let p = name.unwrap().path();
            if p.to_string_lossy().ends_with("-made") {
                std::fs::remove_file(p).unwrap();
            }
        }
        assert_eq!(got.len(), asked.len());
        let mut wrong = Vec::new();
        let mut seen = [false; 2];
        for (&(kind, major, minor, access), &errno) in asked.iter().zip(&got) {
            let want = filter.allows(kind, major, minor, access);
            let ok = match errno {
                EPERM => false,
                // Opened but no driver, or made.
                0 | libc::ENXIO | libc::ENODEV => true,
                other => panic!("{} {major}:{minor} {access}: errno {other}", kind.letter()),
            };
            seen[usize::from(ok)] = true;
            if ok != want {
                wrong.push(format!(
                    "{} {major}:{minor} {access}: kernel {ok}, model {want}",
                    kind.letter()
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{version} {list:?}:\n{}",
            wrong.join("\n")
        );
        assert_eq!(
            seen,
            [true, true],
            "{version} {list:?}: both denials and grants"
        );
    }
}

#[test]
fn v1_grid_agrees_with_the_model() {
    need_root();
    let Some(root) = devices_root() else { return };
    grid_agrees(apply_v1, &root, "cgroup v1");
}

#[test]
fn v2_grid_agrees_with_the_model() {
    need_root();
    grid_agrees(|r, d| apply_v2(r, d).unwrap(), &v2_root(), "cgroup v2");
}

/// What the kernel lists after the writes is the model's state, in its order.
#[test]
fn v1_devices_list_is_the_models() {
    need_root();
    let Some(root) = devices_root() else { return };
    for rules in [
        DEFAULT.to_vec(),
        LISTS[0].iter().map(|r| r.parse().unwrap()).collect(),
    ] {
        let g = Group::new(&root);
        apply_v1(&rules, &g.dir);
        let listed = std::fs::read_to_string(g.dir.join("devices.list")).unwrap();
        let model: Vec<String> = Filter::of(&rules)
            .exceptions
            .iter()
            .map(|e| e.rule(true).v1_line())
            .collect();
        assert_eq!(listed.lines().collect::<Vec<_>>(), model);
    }
}

/// Errors name the call, its arguments and the path.
#[test]
fn attach_errors_say_what_and_where() {
    need_root();
    let scratch = Scratch::new();
    let prog = load(&program(DEFAULT)).unwrap();
    let e = attach(prog.as_fd(), &scratch.0).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "bpf({}, BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI): ",
            scratch.0.display()
        )),
        "{text}"
    );
    let e = apply_v2(DEFAULT, &scratch.0.join("missing")).unwrap_err();
    assert!(e.to_string().starts_with("open("), "{e}");
    // A program the verifier refuses: its log comes back.
    let bad = [launch::sys::devices::Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    }];
    let e = load(&bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, 1 instructions")
            && e.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("verifier: ")),
        "{e}"
    );
}
