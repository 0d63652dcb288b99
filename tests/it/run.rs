//! `launch run` against the real kernel: each test starts real containers (as root) and checks
//! what the process sees inside (PID 1, hostname, mounts, id maps, network, IPC, files), what the
//! host sees while and after it runs, exit codes, hostile archives, and that the steps executed
//! (`-v`) are exactly the printed plan. Every run uses its own state root, which must be empty
//! afterwards.

use std::fs;

use crate::common::repo;
use crate::fixtures::*;

/// `examples/manifests/hello.toml` as shipped.
#[test]
fn hello_example_greets_as_pid_1() {
    need_root();
    let sb = Sandbox::new("hello");
    let host = Host::snapshot();
    let out = sb.run(&repo().join("examples/manifests/hello.toml"));
    out.expect_stdout("hello from hello, running as PID 1\n");
    host.assert_clean(&sb, None, &out);
}

/// `launch MANIFEST` is `launch run MANIFEST`: same output, same exit code.
#[test]
fn launch_manifest_is_launch_run() {
    need_root();
    let sb = Sandbox::new("bare");
    let hello = repo().join("examples/manifests/hello.toml");
    let out = sb.launch(&[hello.to_str().unwrap()]);
    out.expect_stdout("hello from hello, running as PID 1\n");
    sb.assert_state_empty(&out);

    let m = App::new("seven", "echo out; echo err >&2; exit 7").write(&sb);
    let bare = sb.launch(&[m.to_str().unwrap()]);
    let run = sb.run(&m);
    for out in [&bare, &run] {
        out.expect_code(7);
        assert_eq!(out.stdout, "out\n", "{out}");
        assert!(out.stderr.contains("err\n"), "{out}");
        sb.assert_state_empty(out);
    }
}

/// With a pid namespace and /proc mounted, the command is PID 1 and /proc lists only the
/// container's own processes.
#[test]
fn command_is_pid_1_and_sees_no_host_process() {
    need_root();
    let sb = Sandbox::new("pid1");
    let m = App::new("pid1", "echo $$; ls /proc | grep -E '^[0-9]+$'").write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines.first().map(String::as_str), Some("1"), "{out}");
    let pids: Vec<u32> = lines[1..]
        .iter()
        .map(|l| {
            l.parse()
                .unwrap_or_else(|_| panic!("not a pid: {l:?}\n{out}"))
        })
        .collect();
    assert!(
        pids.contains(&1),
        "PID 1 not in the container's /proc\n{out}"
    );
    // sh, ls and grep: a handful of pids numbered from 1, none of the host's.
    assert!(
        pids.len() <= 4 && pids.iter().all(|&p| p <= 8),
        "host processes visible inside: {pids:?}\n{out}"
    );
    assert!(!pids.contains(&std::process::id()), "{out}");
    sb.assert_state_empty(&out);
}

/// The hostname and domain name are set inside the UTS namespace only.
#[test]
fn hostname_and_domainname_are_set_inside_only() {
    need_root();
    let sb = Sandbox::new("uts");
    let name = unique("box");
    let host_name = nix::unistd::gethostname().unwrap();
    let host_domain = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let m = App::new(
        "uts",
        "cat /proc/sys/kernel/hostname; hostname; cat /proc/sys/kernel/domainname; echo \"$HOSTNAME\"",
    )
    .top(&format!("hostname = {}\ndomainname = \"it.example\"", q(&name)))
    .write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    assert_eq!(out.lines(), [&name, &name, "it.example", &name], "{out}");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_domain
    );
    sb.assert_state_empty(&out);
}

/// While a container runs, none of its mounts (root, /proc, /dev, /tmp) shows in the host's
/// mountinfo; afterwards the host's mounts are exactly as before.
#[test]
fn container_mounts_stay_out_of_the_host() {
    need_root();
    let sb = Sandbox::new("mounts");
    let script = format!(
        ": {}; echo READY; read line; echo \"got $line\"",
        sb.dir.display()
    );
    let m = App::new("mounts", &script)
        .tables("[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"")
        .write(&sb);
    let host = Host::snapshot();
    let mut running = Running::start(&sb, &["run", m.to_str().unwrap()]);
    running.wait_for("READY");
    let during = mountinfo();
    let state = sb.state.to_str().unwrap();
    let entries = sb.state_entries();
    let leaked: Vec<&str> = during.lines().filter(|l| l.contains(state)).collect();
    let changed = mount_diff(&host.mounts, &mounts());
    // The leftover-process check can see both `launch` and the command (their command lines
    // mention the sandbox).
    let procs = processes_with(sb.dir.to_str().unwrap());
    let out = running.finish("go\n");
    assert!(
        procs.len() >= 2,
        "launch and its container not found: {procs:?}\n{out}"
    );
    assert!(
        leaked.is_empty(),
        "container mounts visible on the host while it runs:\n{}\n{out}",
        leaked.join("\n")
    );
    assert!(
        changed.is_empty(),
        "host mounts changed while it ran:\n{changed}\n{out}"
    );
    // The instance's state directory existed while it ran: `NAME-<8 hex>`.
    assert!(
        entries.len() == 1
            && entries[0]
                .strip_prefix("mounts-")
                .is_some_and(|id| id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())),
        "state root while running: {entries:?}\n{out}"
    );
    out.expect_stdout("READY\ngot go\n");
    host.assert_clean(&sb, None, &out);
}

/// A file on the host outside the rootfs cannot be reached by its path, with pivot_root (from a
/// directory or a tarball) and with chroot.
#[test]
fn host_files_outside_the_rootfs_are_unreachable() {
    need_root();
    let sb = Sandbox::new("escape");
    let sentinel = sb.write(&format!("{}.sentinel", unique("s")), "SECRET\n");
    assert_eq!(fs::read_to_string(&sentinel).unwrap(), "SECRET\n");
    let (s, d) = (sentinel.display(), sb.dir.display());
    let script = format!(
        "cat /etc/passwd; cat {s} || echo no-file; cat /../../..{s} || echo no-dotdot; \
         ls {d} || echo no-dir"
    );
    let cases = [
        (
            "directory, pivot_root",
            App::new("escape", &script).rootfs_dir(),
        ),
        (
            "tarball, pivot_root",
            App::new("escape", &script).rootfs_tar(),
        ),
        (
            "directory, chroot",
            App::new("escape", &script).rootfs(&format!(
                "path = {}\nreadonly = true\npivot_root = false",
                qp(rootfs_dir())
            )),
        ),
    ];
    for (label, app) in cases {
        let m = app.write(&sb);
        let out = sb.run(&m);
        assert_eq!(out.code(), Some(0), "{label}\n{out}");
        assert_eq!(
            out.stdout,
            format!("{ROOTFS_PASSWD}no-file\nno-dotdot\nno-dir\n"),
            "{label}: the container saw the host\n{out}"
        );
        assert!(!out.stdout.contains("SECRET"), "{label}\n{out}");
        assert!(
            out.stderr.contains("No such file or directory"),
            "{label}\n{out}"
        );
        sb.assert_state_empty(&out);
    }
}

/// `readonly = true` and `ro = true` binds refuse writes (EROFS); a tmpfs inside a read-only
/// root and a writable bind accept them.
#[test]
fn read_only_root_and_binds_refuse_writes() {
    need_root();
    let sb = Sandbox::new("ro");
    let (ro, rw) = (sb.mkdir("ro"), sb.mkdir("rw"));
    let m = App::new(
        "ro",
        "touch /x; echo \"root $?\"; touch /ro/y; echo \"ro $?\"; touch /scratch/z; \
         echo \"tmpfs $?\"; echo hi > /rw/w; echo \"rw $?\"",
    )
    .no_proc()
    .tables(
        "[[mounts]]\ntype = \"bind\"\nsource = \"ro\"\ntarget = \"/ro\"\nro = true\n\n\
         [[mounts]]\ntype = \"bind\"\nsource = \"rw\"\ntarget = \"/rw\"\n\n\
         [[mounts]]\ntype = \"tmpfs\"\ntarget = \"/scratch\"",
    )
    .write(&sb);
    let out = sb.run(&m);
    out.expect_stdout("root 1\nro 1\ntmpfs 0\nrw 0\n");
    for path in ["'/x'", "'/ro/y'"] {
        assert!(
            out.stderr
                .contains(&format!("{path}: Read-only file system")),
            "no EROFS for {path}\n{out}"
        );
    }
    assert!(!ro.join("y").exists(), "{out}");
    assert_eq!(fs::read_to_string(rw.join("w")).unwrap(), "hi\n");
    sb.assert_state_empty(&out);

    // A directory root with `readonly`: nothing reaches the directory.
    let m = App::new("rodir", "touch /x; echo \"root $?\"")
        .rootfs_dir()
        .no_proc()
        .write(&sb);
    let out = sb.run(&m);
    out.expect_stdout("root 1\n");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!rootfs_dir().join("x").exists());
    sb.assert_state_empty(&out);
}

/// The id maps inside are the manifest's, and the process has the uid/gid it asks for.
#[test]
fn id_maps_are_what_the_manifest_says() {
    need_root();
    let sb = Sandbox::new("userns");
    let script = "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g";
    let m = App::new("maproot", script)
        .tables("[namespaces]\nuser = { map_root = true }")
        .write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    // Root inside is the invoking user (root) outside.
    assert_eq!(out.lines(), ["0 0 1", "0 0 1", "0", "0"], "{out}");
    sb.assert_state_empty(&out);

    let m = App::new("maps", script)
        .process("user = 1000\ngroup = 1000")
        .tables(
            "[namespaces.user]\n\
             uid_map = [{ inside = 0, outside = 100000, count = 1000 }, \
                        { inside = 1000, outside = 300000, count = 1 }]\n\
             gid_map = [{ inside = 0, outside = 200000, count = 65536 }]",
        )
        .write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    assert_eq!(
        out.lines(),
        [
            "0 100000 1000",
            "1000 300000 1",
            "0 200000 65536",
            "1000",
            "1000"
        ],
        "{out}"
    );
    sb.assert_state_empty(&out);
}

/// A tarball root in a user namespace with its own maps: the archive's owners are ids inside the
/// container, so root's files are root's inside (and writable by it), not the overflow id.
#[test]
fn tar_root_owners_follow_the_id_maps() {
    need_root();
    let sb = Sandbox::new("tarmaps");
    let script = "stat -c '%u:%g %n' / /etc/passwd /bin/bash; \
                  touch /made-inside && stat -c '%u:%g %n' /made-inside";
    let m = App::new("tarmaps", script)
        .rootfs_tar()
        .tables(
            "[namespaces.user]\n\
             uid_map = [{ inside = 0, outside = 100000, count = 65536 }]\n\
             gid_map = [{ inside = 0, outside = 200000, count = 65536 }]",
        )
        .write(&sb);
    let plan = sb.plan(&m);
    let extract = &plan["steps"][find_step(&plan, |a| a["op"] == "extract_rootfs")];
    assert_eq!(
        extract["action"]["owners"]["uid"][0]["outside"], 100000,
        "{extract}"
    );
    let out = sb.run(&m);
    out.expect_code(0);
    assert_eq!(
        out.lines(),
        [
            "0:0 /",
            "0:0 /etc/passwd",
            "0:0 /bin/bash",
            "0:0 /made-inside"
        ],
        "{out}"
    );
    sb.assert_state_empty(&out);
}

/// `user = "nobody"` is looked up in the container's own /etc/passwd and /etc/group when the plan
/// is made, from a tarball and from a directory: its uid, primary group, the groups that list it,
/// and its home become the process's; the plan holds the numbers.
#[test]
fn user_names_come_from_the_roots_own_files() {
    need_root();
    let sb = Sandbox::new("names");
    let script = "id -u; id -g; id -G; echo $HOME";
    for (tag, app) in [
        ("nametar", App::new("nametar", script).rootfs_tar()),
        ("namedir", App::new("namedir", script).rootfs_dir()),
    ] {
        let m = app.process("user = \"nobody\"").write(&sb);
        let plan = sb.plan(&m);
        // No user namespace: the one set_ids step is the process's.
        let ids = &plan["steps"][find_step(&plan, |a| a["op"] == "set_ids")];
        assert_eq!(
            ids["summary"], "become user nobody (uid 65534 gid 65534)",
            "{tag}: {ids}"
        );
        assert_eq!(
            ids["action"]["groups"],
            serde_json::json!([5]),
            "{tag}: {ids}"
        );
        let out = sb.run(&m);
        out.expect_code(0);
        // make-rootfs.sh: nobody is 65534:65534, listed in tty (5), home /.
        assert_eq!(
            out.lines(),
            ["65534", "65534", "65534 5", "/"],
            "{tag}\n{out}"
        );
        sb.assert_state_empty(&out);
    }
}

/// A name is looked up inside the root: an `etc/passwd` symlink to the absolute `/etc/passwd`
/// resolves within the root (here to itself), never to the host's file.
#[test]
fn name_lookup_stays_inside_the_root() {
    let sb = Sandbox::new("namelink");
    let root = sb.mkdir("root");
    fs::create_dir_all(root.join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("etc/passwd")).unwrap();
    // The host has `root`; the rootfs has no passwd of its own.
    let m = sb.manifest(
        "name = \"namelink\"\n[rootfs]\npath = \"root\"\n\
         [process]\ncommand = [\"/bin/true\"]\nuser = \"root\"\n",
    );
    let out = sb.launch(&["validate", m.to_str().unwrap()]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("launch::process::lookup") && out.stderr.contains("/etc/passwd"),
        "{out}"
    );
}

/// Without root: an unprivileged user (nobody) runs a container in a user namespace of its own
/// (`map_root`), from a tarball it extracts as itself, with its state under
/// `$XDG_RUNTIME_DIR/launch`, and leaves nothing there.
#[test]
fn runs_unprivileged_with_map_root() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    need_root(); // to become nobody
    let sb = Sandbox::new("rootless");
    // Copies in nobody's own directory: the checkout may be where nobody cannot read.
    let home = sb.mkdir("home");
    let bin = home.join("launch");
    fs::copy(launch_bin(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(rootfs_tar(), home.join("rootfs.tar")).unwrap();
    let runtime = sb.mkdir("home/run");
    fs::write(
        home.join("app.toml"),
        "name = \"rootless\"\n\
         [rootfs]\ntar = \"rootfs.tar\"\n\
         [process]\ncommand = [\"/bin/bash\", \"-c\", \
           \"id -u; read a b c < /proc/self/uid_map; echo $a $b $c; stat -c %u /etc/passwd; \
             echo written > /tmp/x && cat /tmp/x; ps -o pid= -p 1\"]\n\
         [namespaces]\nuser = { map_root = true }\n\
         [[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n",
    )
    .unwrap();
    for e in ["", "launch", "rootfs.tar", "run", "app.toml"] {
        std::os::unix::fs::chown(home.join(e), Some(65534), Some(65534)).unwrap();
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["run", "app.toml"])
        .current_dir(&home)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = finish(cmd.spawn().unwrap(), "setpriv (nobody) launch run".into());
    out.expect_code(0);
    let lines: Vec<String> = out.lines().iter().map(|l| l.trim().to_string()).collect();
    // Root inside is nobody outside; the archive's files are the caller's, so root's inside.
    assert_eq!(lines, ["0", "0 65534 1", "0", "written", "1"], "{out}");
    let state: Vec<_> = fs::read_dir(runtime.join("launch")).unwrap().collect();
    assert!(state.is_empty(), "left in the state root: {state:?}\n{out}");
}

/// The minimal /dev works the same whether its nodes were made with mknod (no user namespace)
/// or bound from the host (user namespace): character devices with the kernel's numbers, usable
/// by the container's root, and a private devpts, shm and the /proc/self/fd links.
#[test]
fn minimal_dev_nodes_work_with_and_without_a_user_namespace() {
    need_root();
    let sb = Sandbox::new("dev");
    let script = "for n in null zero full random urandom tty; do \
                      stat -c \"%n %F %t:%T\" /dev/$n; done; \
                  echo gone > /dev/null && echo null-ok; \
                  head -c 3 /dev/zero | od -An -tx1; \
                  head -c 16 /dev/urandom | wc -c; \
                  echo x > /dev/full 2>/dev/null || echo full-refuses; \
                  ls -d /dev/pts /dev/shm; readlink /dev/ptmx /dev/fd";
    let expected = [
        "/dev/null character special file 1:3",
        "/dev/zero character special file 1:5",
        "/dev/full character special file 1:7",
        "/dev/random character special file 1:8",
        "/dev/urandom character special file 1:9",
        "/dev/tty character special file 5:0",
        "null-ok",
        "00 00 00",
        "16",
        "full-refuses",
        "/dev/pts",
        "/dev/shm",
        "pts/ptmx",
        "/proc/self/fd",
    ];
    for (tag, tables, op) in [
        ("devplain", "", "mknod"),
        (
            "devuserns",
            "[namespaces]\nuser = { map_root = true }",
            "mount",
        ),
    ] {
        let m = App::new(tag, script).tables(tables).write(&sb);
        let plan = sb.plan(&m);
        let null_step = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|s| {
                s["effect"]
                    .as_str()
                    .unwrap_or("")
                    .contains("{id}/dev/null\"")
            })
            .unwrap_or_else(|| panic!("no /dev/null step in {plan}"));
        assert_eq!(null_step["action"]["op"], op, "{null_step}");
        let out = sb.run(&m);
        out.expect_code(0);
        let lines: Vec<String> = out.lines().iter().map(|l| l.trim().to_string()).collect();
        assert_eq!(lines, expected, "{tag}\n{out}");
        sb.assert_state_empty(&out);
    }
}

/// A network namespace holds only `lo`, and it is up.
#[test]
fn network_namespace_has_only_loopback_up() {
    need_root();
    let sb = Sandbox::new("net");
    let m = App::new(
        "net",
        "cat /proc/net/dev; echo ---; cat /sys/class/net/lo/flags; echo ---; ls /sys/class/net",
    )
    .tables("[namespaces]\nnet = true\n\n[[mounts]]\ntype = \"sysfs\"\ntarget = \"/sys\"")
    .write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    let parts: Vec<&str> = out.stdout.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    let ifaces: Vec<&str> = parts[0]
        .lines()
        .skip(2) // two header lines
        .filter_map(|l| l.split(':').next().map(str::trim))
        .collect();
    assert_eq!(ifaces, ["lo"], "/proc/net/dev\n{out}");
    let flags = u32::from_str_radix(parts[1].trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("flags: {:?}\n{out}", parts[1]));
    assert_eq!(
        flags & libc::IFF_UP as u32,
        1,
        "lo is down (flags {flags:#x})\n{out}"
    );
    assert_eq!(
        parts[2].split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "{out}"
    );
    sb.assert_state_empty(&out);
}

/// A System V shared memory segment removed on drop.
struct Shm(i32);

impl Shm {
    fn new() -> Shm {
        // SAFETY: plain syscall; IPC_PRIVATE always makes a new segment.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        Shm(id)
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: removes only the segment this test created.
        unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// shmids listed in a `/proc/sysvipc/shm` text (after its header line).
fn shmids(text: &str) -> Vec<i32> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// The container's IPC namespace does not see the host's SysV objects (and, as a control,
/// without one it does).
#[test]
fn sysv_ipc_is_not_shared() {
    need_root();
    let sb = Sandbox::new("ipc");
    let shm = Shm::new();
    assert!(
        shmids(&fs::read_to_string("/proc/sysvipc/shm").unwrap()).contains(&shm.0),
        "the host does not list its own segment"
    );
    let m = App::new("ipc", "cat /proc/sysvipc/shm").write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "segments visible inside\n{out}"
    );
    assert!(out.stdout.contains("shmid"), "not the header\n{out}");
    sb.assert_state_empty(&out);

    let m = App::new("noipc", "cat /proc/sysvipc/shm")
        .tables("[namespaces]\nipc = false")
        .write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    assert!(shmids(&out.stdout).contains(&shm.0), "{out}");
    sb.assert_state_empty(&out);
}

/// The container's exit code, 128+N for signal N, 127 not found, 126 not executable.
#[test]
fn exit_codes() {
    need_root();
    let sb = Sandbox::new("exit");
    let nopid = "[namespaces]\npid = false";
    let missing = unique("no-such-command");
    let cg = Cgroups::new();
    let oom = format!("[limits]\nmemory = \"8MiB\"\nparent = {}", q(&cg.parent));
    let cases: Vec<(&str, App, i32)> = vec![
        ("exit 3", App::new("code", "exit 3").no_proc(), 3),
        (
            "SIGTERM",
            App::new("term", "kill -TERM $$").no_proc().tables(nopid),
            143,
        ),
        (
            "SIGKILL",
            App::new("kill", "kill -KILL $$").no_proc().tables(nopid),
            137,
        ),
        (
            "absolute path not found",
            App::new("nf", "").command(&["/no/such/command"]),
            127,
        ),
        (
            "not found in PATH",
            App::new("nfpath", "").command(&[&missing]),
            127,
        ),
        (
            "not executable",
            App::new("noexec", "").command(&["/etc/passwd"]),
            126,
        ),
        // Through launch-init, which forks the command: the same codes, the same diagnostic.
        (
            "not found, with init",
            App::new("nfinit", "")
                .command(&["/no/such/command"])
                .process("init = true"),
            127,
        ),
        (
            "not executable, with init",
            App::new("noexinit", "")
                .command(&["/etc/passwd"])
                .process("init = true"),
            126,
        ),
        (
            "exit 3, with init",
            App::new("codeinit", "exit 3").process("init = true"),
            3,
        ),
        // PID 1 of its pid namespace, killed by the kernel: out of memory in its cgroup.
        (
            "SIGKILL by the OOM killer",
            App::new("oom", "tail /dev/zero").no_proc().tables(&oom),
            137,
        ),
    ];
    for (label, app, code) in cases {
        let m = app.write(&sb);
        let out = sb.run(&m);
        assert_eq!(out.code(), Some(code), "{label}\n{out}");
        if code == 126 || code == 127 {
            assert!(
                out.stderr.contains("execve"),
                "{label}: no diagnostic\n{out}"
            );
        }
        sb.assert_state_empty(&out);
        cg.assert_empty(&out);
    }
}

/// Archives that would write outside the root are refused before anything runs, the entry
/// named, nothing written outside: exit 125 from the per-run extraction (in a user namespace),
/// exit 2 from the store's (a diagnostic at the `tar` value, before validation).
#[test]
fn hostile_tarballs_are_refused() {
    need_root();
    let sb = Sandbox::new("evil");
    let host = Host::snapshot();
    let outside = sb.mkdir("outside");
    let abs = sb.dir.join("abs-sentinel");
    let abs = abs.to_str().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "../../../dotdot-sentinel",
            Ar::new()
                .dir("etc/")
                .file("etc/hostname", b"x\n")
                .file("../../../dotdot-sentinel", b"pwned")
                .finish(),
        ),
        (abs, Ar::new().dir("etc/").file(abs, b"pwned").finish()),
        (
            "link/file",
            Ar::new()
                .symlink("link", outside.to_str().unwrap())
                .file("link/file", b"pwned")
                .finish(),
        ),
    ];
    for ((entry, tar), per_run) in cases
        .iter()
        .flat_map(|c| [(c.clone(), true), (c.clone(), false)])
    {
        sb.write("evil.tar", tar);
        let app = App::new("evil", "echo RAN").rootfs("tar = \"evil.tar\"");
        // Per run under the state directory, or once into the store before validation.
        let m = match per_run {
            true => app.per_run_extraction(),
            false => app,
        }
        .write(&sb);
        let out = sb.run(&m);
        match per_run {
            true => out.expect_launch_error(&[entry]),
            false => out.expect_code(2),
        };
        // A diagnostic wraps long lines (at a hyphen too, where the path is long): compare
        // without the wrapping's line breaks, indentation and frame.
        let last = entry.rsplit('/').next().unwrap();
        let unwrapped: String = out
            .stderr
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect();
        assert!(unwrapped.contains(last), "{out}");
        assert!(!out.stdout.contains("RAN"), "{out}");
        assert!(!sb.dir.join("dotdot-sentinel").exists(), "{out}");
        assert!(!sb.state.join("dotdot-sentinel").exists(), "{out}");
        assert!(!std::path::Path::new(abs).exists(), "{out}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "{out}");
        host.assert_clean(&sb, None, &out);
    }
}

/// Limits land in the container's own cgroups (v1 files on a hybrid host, v2 files on pure
/// cgroup v2, as the kernel reports them), rlimits in the process.
#[test]
fn limits_are_written_to_the_containers_cgroups() {
    need_root();
    let sb = Sandbox::new("limits");
    let cg = Cgroups::new();
    let m = App::new(
        "limited",
        "cat /proc/self/cgroup; ulimit -n; echo READY; read x",
    )
    .tables(&format!(
        "[limits]\ncpu = \"30%\"\nmemory = \"64MiB\"\npids = 32\nparent = {}\n\n\
         [limits.rlimits]\nnofile = 123",
        q(&cg.parent)
    ))
    .write(&sb);
    let host = Host::snapshot();
    let mut running = Running::start(&sb, &["run", m.to_str().unwrap()]);
    let lines = running.wait_for("READY");
    let group = group_of(&lines, "cpu").unwrap_or_default();
    let read = |ctl: &str, file: &str| {
        let root = if pure_v2() {
            Some(std::path::PathBuf::from("/sys/fs/cgroup"))
        } else {
            v1_root(ctl)
        };
        root.and_then(|r| fs::read_to_string(r.join(&group).join(file)).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let (got, want) = if pure_v2() {
        (
            vec![
                read("cpu", "cpu.max"),
                read("memory", "memory.max"),
                read("pids", "pids.max"),
            ],
            ["30000 100000", "67108864", "32"].as_slice(),
        )
    } else {
        (
            vec![
                read("cpu", "cpu.cfs_period_us"),
                read("cpu", "cpu.cfs_quota_us"),
                read("memory", "memory.limit_in_bytes"),
                read("pids", "pids.max"),
            ],
            ["100000", "30000", "67108864", "32"].as_slice(),
        )
    };
    let procs = read("pids", "cgroup.procs");
    let out = running.finish("\n");
    assert!(
        group.starts_with(&format!("{}/limited-", cg.parent)),
        "not in its cgroup: {lines:?}\n{out}"
    );
    assert_eq!(got, want, "{group}\n{out}");
    assert!(!procs.is_empty(), "no process in {group}\n{out}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("123"),
        "nofile\n{out}"
    );
    out.expect_code(0);
    host.assert_clean(&sb, Some(&cg), &out);
}

/// One `launch: step N/M SIDE: EFFECT` line of the `-v` log.
#[derive(Debug)]
struct Logged {
    n: usize,
    m: usize,
    side: String,
    effect: String,
}

fn logged_steps(stderr: &str) -> Vec<Logged> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("launch: step ")?;
            let (nm, rest) = rest.split_once(' ')?;
            let (n, m) = nm.split_once('/')?;
            let (side, effect) = rest.split_once(": ")?;
            Some(Logged {
                n: n.parse().ok()?,
                m: m.parse().ok()?,
                side: side.into(),
                effect: effect.into(),
            })
        })
        .collect()
}

/// The pid a logged effect has where `template` (its `{id}` filled in) says `{pid}`.
fn pid_in(template: &str, logged: &str) -> Option<String> {
    let (pre, _) = template.split_once("{pid}")?;
    let rest = logged.strip_prefix(pre)?;
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0).then(|| rest[..n].to_string())
}

/// Check a `-v` log against the plan: every step logged once, in order, with its side and its
/// effect exactly (placeholders filled in consistently); the final `wait` may come later.
fn check_log(plan: &serde_json::Value, out: &Out) {
    let steps = plan["steps"].as_array().unwrap();
    let total = steps.len();
    let mut log = logged_steps(&out.stderr);
    assert_eq!(log.len(), total, "not one log line per plan step\n{out}");
    assert!(log.iter().all(|l| l.m == total), "step counts\n{out}");
    // The host may log `wait` while the container still logs its own steps.
    let wait = log.iter().position(|l| l.n == total).expect("wait logged");
    let wait = log.remove(wait);
    log.push(wait);
    let instance = plan["instance"].as_str().unwrap();
    let name = instance.strip_suffix("{id}").unwrap();
    let id = out
        .stderr
        .match_indices(name)
        .find_map(|(i, _)| {
            let s = out.stderr.get(i + name.len()..i + name.len() + 8)?;
            s.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| s.to_string())
        })
        .unwrap_or_else(|| panic!("no instance id in the log\n{out}"));
    let mut pid: Option<String> = None;
    for (i, (step, logged)) in steps.iter().zip(&log).enumerate() {
        assert_eq!(logged.n, i + 1, "steps out of order\n{out}");
        assert_eq!(
            logged.side,
            step["side"].as_str().unwrap(),
            "step {}\n{out}",
            i + 1
        );
        let template = step["effect"].as_str().unwrap().replace("{id}", &id);
        if template.contains("{pid}") {
            let p = pid_in(&template, &logged.effect)
                .unwrap_or_else(|| panic!("step {}: no pid in {:?}\n{out}", i + 1, logged.effect));
            assert!(
                pid.get_or_insert(p.clone()) == &p,
                "step {}: pid {p} is not {pid:?}\n{out}",
                i + 1
            );
        }
        let expected = template.replace("{pid}", pid.as_deref().unwrap_or("{pid}"));
        assert_eq!(
            logged.effect,
            expected,
            "step {} differs from the plan\n{out}",
            i + 1
        );
    }
}

/// The steps `launch -v run` executes are exactly `launch plan`'s, one by one; `LAUNCH_LOG=1`
/// logs the same.
#[test]
fn verbose_log_is_the_plan() {
    need_root();
    let sb = Sandbox::new("log");
    let cg = Cgroups::new();
    let data = sb.mkdir("data");
    fs::write(data.join("f"), "data\n").unwrap();
    // In its own cgroup namespace every group reads `/`: no line may end otherwise.
    let m = App::new(
        "logged",
        "cat /data/f; hostname; grep -cv ':/$' /proc/self/cgroup; id -u",
    )
    .rootfs_tar()
    .top("hostname = \"logged\"\ndomainname = \"example\"")
    .process("cwd = \"/tmp\"\nenv = { GREETING = \"hi\" }")
    .limits(&cg)
    .tables(
        "[limits.rlimits]\nnofile = 256\n\n\
             [namespaces]\nuser = { map_root = true }\nnet = true\ncgroup = true\n\n\
             [[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\nsize = \"1MiB\"\n\n\
             [[mounts]]\ntype = \"sysfs\"\ntarget = \"/sys\"\n\n\
             [[mounts]]\ntype = \"bind\"\nsource = \"data\"\ntarget = \"/data\"\nro = true",
    )
    .write(&sb);
    let plan = sb.plan(&m);
    let host = Host::snapshot();

    let out = sb.launch(&["-v", "run", m.to_str().unwrap()]);
    out.expect_stdout("data\nlogged\n0\n0\n");
    check_log(&plan, &out);
    host.assert_clean(&sb, Some(&cg), &out);

    let mut cmd = sb.command(&["run", m.to_str().unwrap()]);
    cmd.env("LAUNCH_LOG", "1");
    let out = sb.launch_with(cmd, &["run", m.to_str().unwrap()]);
    out.expect_stdout("data\nlogged\n0\n0\n");
    check_log(&plan, &out);
    host.assert_clean(&sb, Some(&cg), &out);

    // Without -v or LAUNCH_LOG, no step is logged.
    let out = sb.run(&m);
    out.expect_stdout("data\nlogged\n0\n0\n");
    assert!(logged_steps(&out.stderr).is_empty(), "{out}");
    host.assert_clean(&sb, Some(&cg), &out);
}

/// `{id}` and `{pid}` are placeholders only where the plan puts them (state and cgroup paths,
/// /proc/PID files): text from the manifest that happens to contain them, such as a shell's
/// `${id}`, runs as written, as `launch plan` prints it.
#[test]
fn placeholder_text_from_the_manifest_runs_as_written() {
    need_root();
    let sb = Sandbox::new("braces");
    let m = App::new("braces", "id=abc; echo \"${id}\" '{pid}' \"$X\"")
        .no_proc()
        .process("env = { X = \"{id}\" }")
        .write(&sb);
    let plan = sb.plan(&m);
    let exec = &plan["steps"][find_step(&plan, |a| a["op"] == "exec")];
    assert!(
        exec["effect"]
            .as_str()
            .unwrap()
            .contains("echo \\\"${id}\\\" '{pid}'")
    );
    sb.run(&m).expect_stdout("abc {pid} {id}\n");
}
