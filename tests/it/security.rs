//! `[security]` from inside real containers: each default is paired with the same run opted
//! out, so every test can see the difference (and fail if the default did nothing).

use std::os::unix::fs::PermissionsExt;

use launch::sys::caps::{CapSet, DEFAULT, ProcStatus};

use crate::fixtures::*;

/// The bounding set of this test process: what launch can give a container here.
fn host_bounding() -> CapSet {
    ProcStatus::read_self().unwrap().sets.bounding
}

/// The `Name:\tvalue` lines of /proc/self/status a container printed.
fn status_of(out: &Out) -> ProcStatus {
    ProcStatus::parse(&out.stdout).unwrap_or_else(|| panic!("no status printed\n{out}"))
}

/// A field of a printed /proc/self/status (`Seccomp`, `NoNewPrivs`).
fn field(out: &Out, name: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} line\n{out}"))
        .trim()
        .to_string()
}

fn run(sb: &Sandbox, app: App) -> Out {
    let m = app.write(sb);
    let out = sb.run(&m);
    sb.assert_state_empty(&out);
    out
}

const STATUS: &str = "cat /proc/self/status";

/// Root in the container keeps podman's 11 (those this host has), nothing inheritable or
/// ambient, no_new_privs and a filter; unconfined keeps the launcher's bounding set and has
/// neither.
#[test]
fn root_gets_the_default_set_no_new_privs_and_a_filter_unless_unconfined() {
    need_root();
    let sb = Sandbox::new("sec-status");
    let out = run(&sb, App::new("secdef", STATUS));
    out.expect_code(0);
    let st = status_of(&out);
    let kept = DEFAULT.intersection(host_bounding());
    assert_eq!(st.sets.bounding, kept, "bounding\n{out}");
    assert_eq!(st.sets.permitted, kept, "permitted\n{out}");
    assert_eq!(st.sets.effective, kept, "effective\n{out}");
    assert_eq!(st.sets.inheritable, CapSet::EMPTY, "inheritable\n{out}");
    assert_eq!(st.sets.ambient, CapSet::EMPTY, "ambient\n{out}");
    assert_eq!(field(&out, "NoNewPrivs"), "1");
    assert_eq!(field(&out, "Seccomp"), "2");

    let out = run(
        &sb,
        App::new("secoff", STATUS).tables("[security]\nprofile = \"unconfined\""),
    );
    out.expect_code(0);
    let st = status_of(&out);
    assert_eq!(st.sets.bounding, host_bounding(), "bounding\n{out}");
    assert_eq!(st.sets.effective, host_bounding(), "effective\n{out}");
    assert_eq!(field(&out, "NoNewPrivs"), "0");
    assert_eq!(field(&out, "Seccomp"), "0");
}

/// A non-root user holds nothing by default; capabilities the manifest names reach it as
/// ambient capabilities, through execve: binding port 80 works only then.
#[test]
fn a_non_root_user_holds_only_the_capabilities_it_names() {
    need_root();
    let sb = Sandbox::new("sec-user");
    let script = format!(
        "{STATUS}; python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 80)); print(\"BOUND\")'"
    );
    let base = |name: &str| {
        App::new(name, &script)
            .process("user = 65534")
            .tables("[namespaces]\nnet = true")
    };
    let out = run(&sb, base("secnobody"));
    let st = status_of(&out);
    assert_eq!(st.sets.effective, CapSet::EMPTY, "effective\n{out}");
    assert_eq!(st.sets.permitted, CapSet::EMPTY, "permitted\n{out}");
    assert_eq!(st.sets.ambient, CapSet::EMPTY, "ambient\n{out}");
    assert_eq!(st.sets.bounding, DEFAULT.intersection(host_bounding()));
    assert!(
        !out.stdout.contains("BOUND"),
        "bound port 80 without the capability\n{out}"
    );

    let out = run(
        &sb,
        base("secnamed").tables("[security]\ncapabilities = [\"NET_BIND_SERVICE\"]"),
    );
    out.expect_code(0);
    let st = status_of(&out);
    let named = CapSet::parse(["CAP_NET_BIND_SERVICE"]).unwrap();
    assert_eq!(st.sets.effective, named, "effective\n{out}");
    assert_eq!(st.sets.ambient, named, "ambient\n{out}");
    assert_eq!(st.sets.bounding, named, "bounding\n{out}");
    assert!(out.stdout.contains("BOUND"), "{out}");
}

/// Raw packet sockets and device nodes need CAP_NET_RAW and CAP_MKNOD, which the default set
/// lacks; added back, both work.
#[test]
fn packet_sockets_and_mknod_are_refused_unless_added() {
    need_root();
    let sb = Sandbox::new("sec-raw");
    let script = "python3 -c '\nimport os, socket\ntry:\n socket.socket(socket.AF_PACKET, socket.SOCK_RAW); print(\"PACKET ok\")\nexcept OSError as e: print(\"PACKET\", e.errno)\ntry:\n os.mknod(\"/tmp/blk\", 0o600 | 0o060000, os.makedev(7, 0)); print(\"MKNOD ok\")\nexcept OSError as e: print(\"MKNOD\", e.errno)\n'";
    let tmp = "[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"";
    let out = run(&sb, App::new("secraw", script).tables(tmp));
    out.expect_code(0);
    assert!(out.stdout.contains("PACKET 1\n"), "{out}");
    assert!(out.stdout.contains("MKNOD 1\n"), "{out}");
    let out = run(
        &sb,
        App::new("secrawadd", script).tables(&format!(
            "{tmp}\n[security]\ncapabilities = {{ add = [\"NET_RAW\", \"CAP_MKNOD\"] }}"
        )),
    );
    assert!(out.stdout.contains("PACKET ok"), "{out}");
    assert!(out.stdout.contains("MKNOD ok"), "{out}");
}

/// A setuid-root program run by a non-root user: no_new_privs keeps its euid; without it the
/// program runs as root.
#[test]
fn no_new_privileges_keeps_setuid_programs_from_gaining_root() {
    need_root();
    let sb = Sandbox::new("sec-nnp");
    let dir = sb.mkdir("suid");
    let id = dir.join("id");
    std::fs::copy("/usr/bin/id", &id).unwrap();
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let bind = format!(
        "[[mounts]]\ntype = \"bind\"\nsource = {}\ntarget = \"/suid\"\nro = true\nnosuid = false",
        qp(&dir)
    );
    let app = |name: &str, sec: &str| {
        App::new(name, "/suid/id")
            .process("user = 65534")
            .tables(&format!("{bind}\n{sec}"))
    };
    let out = run(&sb, app("secnnp", ""));
    out.expect_code(0);
    assert!(out.stdout.starts_with("uid=65534"), "{out}");
    assert!(!out.stdout.contains("euid=0"), "setuid gave root\n{out}");
    let out = run(
        &sb,
        app("secnnpoff", "[security]\nno_new_privileges = false"),
    );
    out.expect_code(0);
    assert!(
        out.stdout.contains("euid=0"),
        "the setuid bit did not work\n{out}"
    );
}

/// Calls that work unfiltered (a new user namespace needs no capability; keyctl none either)
/// fail with the default filter.
#[test]
fn the_default_filter_denies_what_runs_unfiltered() {
    need_root();
    let sb = Sandbox::new("sec-filter");
    let script = format!(
        "python3 -c '\nimport ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nr = libc.syscall({keyctl}, 0, -3, 0)\nprint(\"KEYCTL\", r if r >= 0 else -ctypes.get_errno())\nr = libc.unshare(0x10000000)\nprint(\"UNSHARE\", r if r >= 0 else -ctypes.get_errno())\n'",
        keyctl = libc::SYS_keyctl
    );
    let out = run(&sb, App::new("secfilter", &script));
    out.expect_code(0);
    assert!(out.stdout.contains("KEYCTL -1\n"), "{out}");
    assert!(out.stdout.contains("UNSHARE -1\n"), "{out}");
    let out = run(
        &sb,
        App::new("secnofilter", &script).tables("[security]\nseccomp = \"unconfined\""),
    );
    out.expect_code(0);
    assert!(!out.stdout.contains("KEYCTL -"), "{out}");
    assert!(out.stdout.contains("UNSHARE 0\n"), "{out}");
}

/// A profile file of the user's: its rules apply (mkdir denied with EPERM, mkdir allowed
/// without it), the plan names it, and seccomp_log asks the kernel to log denials.
#[test]
fn a_profile_file_is_loaded_and_named_in_the_plan() {
    need_root();
    let sb = Sandbox::new("sec-profile");
    sb.write(
        "no-mkdir.json",
        r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
  ]
}"#,
    );
    let tmp = "[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"";
    let script = "mkdir /tmp/d && echo MADE";
    let m = App::new("secprof", script)
        .tables(&format!(
            "{tmp}\n[security]\nseccomp = \"no-mkdir.json\"\nseccomp_log = true"
        ))
        .write(&sb);
    let plan = sb.launch(&["plan", m.to_str().unwrap()]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("`no-mkdir.json`: 2 rules"), "{plan}");
    assert!(plan.stdout.contains("SECCOMP_FILTER_FLAG_LOG"), "{plan}");
    let out = sb.run(&m);
    assert!(!out.stdout.contains("MADE"), "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    sb.assert_state_empty(&out);
    let out = run(&sb, App::new("secprof2", script).tables(tmp));
    assert!(out.stdout.contains("MADE"), "{out}");
}

/// A mistake in a profile file is reported at the manifest's key, with the file's line and
/// column and a suggestion; nothing runs.
#[test]
fn a_mistake_in_a_profile_file_names_its_line_and_column() {
    need_root();
    let sb = Sandbox::new("sec-badprof");
    sb.write(
        "bad.json",
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    { \"names\": [\"mkdri\"], \"action\": \"SCMP_ACT_ALLOW\" }\n  ]\n}\n",
    );
    let m = App::new("secbad", "true")
        .tables("[security]\nseccomp = \"bad.json\"")
        .write(&sb);
    let out = sb.run(&m);
    out.expect_code(2);
    assert!(out.stderr.contains("bad.json:4:"), "{out}");
    assert!(out.stderr.contains("mkdir"), "no suggestion\n{out}");
    assert!(
        out.stderr.contains("launch::security::seccomp_profile"),
        "{out}"
    );
    sb.assert_state_empty(&out);
}

/// Masked files read empty and /proc/sys is read-only by default; unconfined, both are the
/// kernel's.
#[test]
fn masked_and_read_only_paths_unless_unconfined() {
    need_root();
    let sb = Sandbox::new("sec-masked");
    // A masked file this kernel has, with content on the host.
    let masked = ["/proc/timer_list", "/proc/keys", "/proc/interrupts"]
        .into_iter()
        .find(|p| std::fs::read(p).is_ok_and(|c| !c.is_empty()))
        .expect("none of the masked files exists here");
    let script = format!(
        "echo SIZE $(wc -c < {masked}); echo renamed > /proc/sys/kernel/hostname && echo WROTE; hostname"
    );
    let out = run(&sb, App::new("secmask", &script));
    assert!(
        out.stdout.contains("SIZE 0\n"),
        "{masked} not masked\n{out}"
    );
    assert!(!out.stdout.contains("WROTE"), "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    // Unconfined: the content, and a write to the container's own UTS namespace's hostname.
    let out = run(
        &sb,
        App::new("secunmask", &script).tables("[security]\nprofile = \"unconfined\""),
    );
    assert!(!out.stdout.contains("SIZE 0\n"), "{out}");
    assert!(out.stdout.contains("WROTE\nrenamed\n"), "{out}");
    // A list of the author's replaces the default one.
    let out = run(
        &sb,
        App::new(
            "seclist",
            "echo SIZE $(wc -c < /proc/cpuinfo); echo SIZE $(wc -c < /proc/version)",
        )
        .tables("[security]\nmasked_paths = [\"/proc/cpuinfo\"]"),
    );
    assert!(out.stdout.starts_with("SIZE 0\nSIZE "), "{out}");
    assert!(!out.stdout.ends_with("SIZE 0\n"), "{out}");
}

/// With `init = true`, PID 1 stays launch's binary for the container's life: no process of
/// the container may reach it through /proc/1/exe (it is not dumpable), while its own exe
/// link works.
#[test]
fn launch_init_is_out_of_the_containers_reach() {
    need_root();
    let sb = Sandbox::new("sec-exe");
    let script = "readlink /proc/self/exe >/dev/null && echo SELF; readlink /proc/1/exe && echo INIT; \
                  python3 -c 'open(\"/proc/1/exe\", \"rb\")' 2>/dev/null && echo OPENED; \
                  readlink /proc/1/fd/0 && echo FDS; echo END";
    for (name, sec) in [
        ("secexe", ""),
        (
            "secexeall",
            "[security]\nprofile = \"unconfined\"\ncapabilities = \"default\"",
        ),
    ] {
        let out = run(
            &sb,
            App::new(name, script).process("init = true").tables(sec),
        );
        assert!(out.stdout.contains("SELF\n"), "{name}\n{out}");
        assert!(
            !out.stdout.contains("INIT"),
            "{name}: /proc/1/exe readable\n{out}"
        );
        assert!(!out.stdout.contains("OPENED"), "{name}\n{out}");
        assert!(
            !out.stdout.contains("FDS"),
            "{name}: /proc/1/fd followed\n{out}"
        );
        assert!(out.stdout.contains("END"), "{name}\n{out}");
    }
}

/// `launch exec` enters with the container's capabilities, no_new_privs and filter, for root
/// and for a non-root user with a named capability.
#[test]
fn launch_exec_gets_the_containers_confinement() {
    need_root();
    let sb = Sandbox::new("sec-exec");
    let show = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status";
    for (name, process, sec) in [
        ("secexroot", "", ""),
        (
            "secexuser",
            "user = 65534",
            "[security]\ncapabilities = [\"NET_BIND_SERVICE\", \"KILL\"]",
        ),
    ] {
        let script = format!("{show}; echo READY; exec sleep 30");
        let m = App::new(name, &script)
            .process(process)
            .tables(sec)
            .write(&sb);
        let mut r = Running::start(&sb, &["run", m.to_str().unwrap()]);
        let mine = r.wait_for("READY");
        let out = sb.launch(&["exec", name, "--", "sh", "-c", show]);
        out.expect_code(0);
        let theirs: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        assert_eq!(
            theirs, mine,
            "{name}: launch exec differs from the container\n{out}"
        );
        sb.launch(&["stop", name]).expect_code(0);
        let out = r.finish("");
        sb.assert_state_empty(&out);
    }
}

/// Escapes tried as root in a default container, every one refused (reading /proc/kcore and
/// opening /proc/sysrq-trigger where this kernel has them); the same script with
/// `profile = "unconfined"` gets through several, so the test can see the defaults work.
#[test]
fn escape_attempts_are_refused_by_default() {
    need_root();
    let sb = Sandbox::new("sec-escape");
    // The host's first disk, for mknod: read-only, 512 bytes, only ever in the unconfined run
    // (whether that read works is the host's business: this VM refuses it even to the host).
    let disk = std::fs::read_to_string("/proc/partitions")
        .unwrap()
        .lines()
        .skip(2)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4).then(|| format!("{} {}", f[0], f[1]))
        })
        .expect("no disk in /proc/partitions");
    let sandbox = sb.dir.display().to_string();
    let state = sb.state.display().to_string();
    // Each attempt prints ESCAPED name when it works, BLOCKED name when it does not.
    let script = format!(
        r#"try() {{ n=$1; shift; if ( "$@" ) >/dev/null 2>&1; then echo "ESCAPED $n"; else echo "BLOCKED $n"; fi; }}
try mount mount -t tmpfs none /mnt
try remount mount -o remount,rw /
try mknod-disk mknod /tmp/disk b {disk}
try read-disk sh -c 'head -c 512 /tmp/disk | wc -c | grep -qx 512'
try proc-sys sh -c 'echo x > /proc/sys/kernel/domainname'
try unshare-user unshare -U true
try cgroup-mount mount -t cgroup2 none /mnt
try dmesg dmesg
try keyctl python3 -c 'import ctypes,sys; sys.exit(ctypes.CDLL(None).syscall({keyctl}, 0, -3, 0) < 0)'
try handle python3 -c 'import ctypes,sys; sys.exit(ctypes.CDLL(None).syscall({obha}, -100, ctypes.create_string_buffer(136), 0) < 0 and ctypes.get_errno() != 22)'
try chroot-out python3 -c 'import os,sys; os.makedirs("/tmp/c", exist_ok=True); os.chroot("/tmp/c"); os.chdir("../../../../.."); os.chroot("."); sys.exit(not (os.path.exists("{sandbox}") or os.path.exists("{state}")))'
try state-root test -e {state}
try kill-host kill -0 {me}
# What this kernel has (a test against what the kernel reports, not a hard-coded host):
[ -e /proc/kcore ] && try kcore sh -c 'head -c 1 /proc/kcore | wc -c | grep -qx 1'
# Opened for writing, nothing written: never a SysRq on the host, even unconfined.
[ -e /proc/sysrq-trigger ] && try sysrq sh -c ': > /proc/sysrq-trigger'
true
"#,
        me = std::process::id(),
        keyctl = libc::SYS_keyctl,
        obha = libc::SYS_open_by_handle_at,
    );
    // /tmp without nodev: only the device allow-list and the capabilities stand in the way.
    let tmp = "[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\nnodev = false\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/mnt\"";
    let out = run(&sb, App::new("secesc", &script).tables(tmp));
    out.expect_code(0);
    let escaped: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("ESCAPED"))
        .collect();
    assert!(escaped.is_empty(), "escaped: {escaped:?}\n{out}");
    let kernel_has = ["/proc/kcore", "/proc/sysrq-trigger"]
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .count();
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("BLOCKED"))
            .count(),
        13 + kernel_has,
        "{out}"
    );
    let out = run(
        &sb,
        App::new("secescoff", &script)
            .tables(&format!("{tmp}\n[security]\nprofile = \"unconfined\"")),
    );
    for n in ["mount", "mknod-disk", "unshare-user", "keyctl", "dmesg"] {
        assert!(
            out.stdout.contains(&format!("ESCAPED {n}\n")),
            "unconfined, {n} still blocked: the test cannot tell\n{out}"
        );
    }
    // What pivot_root and the namespaces guard stays guarded even unconfined.
    for n in ["chroot-out", "state-root", "kill-host"] {
        assert!(out.stdout.contains(&format!("BLOCKED {n}\n")), "{n}\n{out}");
    }
}

/// Without a pid namespace the host's processes are visible: ptrace of one is still refused
/// (no CAP_SYS_PTRACE, and the filter), as is a signal to a process of another user... root's
/// CAP_KILL is kept, so only ptrace is tried.
#[test]
fn ptrace_of_a_host_process_is_refused() {
    need_root();
    let sb = Sandbox::new("sec-ptrace");
    let me = std::process::id();
    let script = format!(
        "python3 -c 'import ctypes,sys; r = ctypes.CDLL(None, use_errno=True).ptrace(16, {me}, 0, 0); print(\"PTRACE\", r, ctypes.get_errno())'"
    );
    let out = run(
        &sb,
        App::new("secptrace", &script).tables("[namespaces]\npid = false"),
    );
    out.expect_code(0);
    assert!(out.stdout.contains("PTRACE -1 1\n"), "{out}");
}

/// Unknown capability names are reported each at its span with a suggestion; both spellings
/// are accepted.
#[test]
fn capability_names_are_checked() {
    need_root();
    let sb = Sandbox::new("sec-names");
    let m = App::new("secnames", "true")
        .tables("[security]\ncapabilities = [\"CAP_SYS_ADMN\", \"net_bind_service\", \"NET_RAWW\"]")
        .write(&sb);
    let out = sb.launch(&["validate", m.to_str().unwrap()]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("unknown capability `CAP_SYS_ADMN`"),
        "{out}"
    );
    assert!(
        out.stderr.contains("did you mean `CAP_SYS_ADMIN`?"),
        "{out}"
    );
    assert!(out.stderr.contains("did you mean `CAP_NET_RAW`?"), "{out}");
    assert_eq!(
        out.stderr.matches("× unknown capability").count(),
        2,
        "{out}"
    );
}

/// Without no_new_privs the filter is installed before the capabilities are dropped (the
/// kernel wants CAP_SYS_ADMIN then); the run still works as a non-root user.
#[test]
fn without_no_new_privs_the_filter_goes_first() {
    need_root();
    let sb = Sandbox::new("sec-early");
    let app = App::new("secearly", STATUS)
        .process("user = 65534")
        .tables("[security]\nno_new_privileges = false");
    let m = app.write(&sb);
    let plan = sb.plan(&m);
    let seccomp = find_step(&plan, |a| a["op"] == "seccomp");
    let bounding = find_step(&plan, |a| a["op"] == "cap_bounding");
    assert!(seccomp < bounding, "filter after the capability drop");
    let out = sb.run(&m);
    out.expect_code(0);
    assert_eq!(field(&out, "Seccomp"), "2");
    assert_eq!(field(&out, "NoNewPrivs"), "0");
    sb.assert_state_empty(&out);
}

/// Without a pid namespace of its own, a container's background processes (a plain one, a
/// double-forked one in its own session) would outlive the run unknown to `ps` and `gc`: the
/// launcher adopts them and kills them at the end, and its plan says so. With the host's pid
/// namespace shared on purpose, the unconfined opt-out changes nothing here: it is not a
/// security default but the end of the run.
#[test]
fn no_process_outlives_a_run_without_a_pid_namespace() {
    need_root();
    let sb = Sandbox::new("sec-leftover");
    let mark = unique("leftover");
    let script = format!(
        "sh -c 'sleep 1000; : {mark}' & (setsid sh -c 'sleep 1000; : {mark}' &); sleep 0.2; echo STARTED"
    );
    let m = App::new("secleft", &script)
        .tables("[namespaces]\npid = false")
        .write(&sb);
    let plan = sb.launch(&["plan", m.to_str().unwrap()]);
    assert!(plan.stdout.contains("PR_SET_CHILD_SUBREAPER"), "{plan}");
    let out = sb.run(&m);
    out.expect_code(0);
    assert!(out.stdout.contains("STARTED"), "{out}");
    assert_no_processes(&mark, &out);
    sb.assert_state_empty(&out);
}

/// The CVE-2019-5736 class: a container that gets hold of launch's binary from the host (here
/// the strongest handle there is, the file itself bound read-write into the container) cannot
/// write it, directly or by reopening a descriptor it holds: the launcher runs that binary for
/// the container's whole life (ETXTBSY), and no container process outlives the launcher (see
/// `no_process_outlives_a_run_without_a_pid_namespace`; a pid namespace's processes die with
/// it). Tried from a `launch exec` while the container runs, and from the container after that
/// exec is over. Reaching it through /proc/PID/exe is closed separately: launch's processes in the
/// container are not dumpable (`launch_init_is_out_of_the_containers_reach`).
#[test]
fn the_host_binary_cannot_be_written_from_inside() {
    need_root();
    let sb = Sandbox::new("sec-5736");
    let bin = std::fs::canonicalize(launch_bin()).unwrap();
    let before = std::fs::read(&bin).unwrap();
    let script = "exec 3< /x/launch && echo HELD
(echo x >> /x/launch) 2>/dev/null && echo WROTE-PATH
(echo x >> /proc/self/fd/3) 2>/dev/null && echo WROTE-HELD
echo END";
    let bind = format!(
        "[[mounts]]\ntype = \"bind\"\nsource = {}\ntarget = \"/x/launch\"",
        qp(&bin)
    );
    for (name, sec) in [
        ("sec5736", ""),
        ("sec5736off", "[security]\nprofile = \"unconfined\""),
    ] {
        // The container waits; meanwhile `launch exec` tries from inside, then, once that exec
        // is over, the container's own process tries again.
        let main = format!("echo READY; read x\n{script}");
        let m = App::new(name, &main)
            .tables(&format!("{bind}\n{sec}"))
            .write(&sb);
        let mut r = Running::start(&sb, &["run", m.to_str().unwrap()]);
        r.wait_for("READY");
        let during = sb.launch(&["exec", name, "--", "sh", "-c", script]);
        assert!(
            during.stdout.contains("HELD\n"),
            "{name}: no handle in exec\n{during}"
        );
        assert!(during.stdout.contains("END\n"), "{name}\n{during}");
        assert!(
            !during.stdout.contains("WROTE"),
            "{name}: during exec\n{during}"
        );
        let out = r.finish("go\n");
        sb.assert_state_empty(&out);
        assert!(out.stdout.contains("HELD\n"), "{name}: no handle\n{out}");
        assert!(out.stdout.contains("END\n"), "{name}\n{out}");
        assert!(!out.stdout.contains("WROTE"), "{name}: after exec\n{out}");
        assert!(
            std::fs::read(&bin).unwrap() == before,
            "{name}: launch's binary changed\n{out}"
        );
    }
}

/// cgroup v1: the container joins a shared group holding the device list (`devices-<digest>`,
/// kept), made once, so nothing is made or written per container. Its list is read back at
/// every start, never trusted: a shared group someone widened (allow-all) or narrowed (deny
/// all) is replaced before the container joins it, removed when empty, renamed aside
/// (`….stale-<pid>`) while a process is still in it, and such a stale group is removed once
/// empty by the next launcher that makes the group. Made by launch, the group holds exactly the
/// list. (Pure cgroup v2 has no such group: the program is the container group's own; the tests
/// above cover it.)
#[test]
fn a_shared_device_list_group_is_read_back_never_trusted() {
    need_root();
    let Some(devroot) = v1_root("devices") else {
        assert!(
            pure_v2(),
            "this hybrid host should have the `devices` v1 hierarchy"
        );
        return;
    };
    let sb = Sandbox::new("sec-devlist");
    let cg = Cgroups::new();
    let rules = launch::sys::devices::DEFAULT;
    let name = launch::sys::devices::v1_parent_name(rules).unwrap();
    let parent = devroot.join(&cg.parent);
    let shared = parent.join(&name);
    let script = "python3 -c '\nimport os\nos.mknod(\"/tmp/loop\", 0o600 | 0o060000, os.makedev(7, 0))\ntry:\n os.close(os.open(\"/tmp/loop\", os.O_RDONLY)); print(\"OPEN ok\")\nexcept OSError as e: print(\"OPEN\", e.errno)\nos.close(os.open(\"/dev/null\", os.O_RDWR)); print(\"NULL ok\")\n'";
    let app = |name: &str| {
        App::new(name, script).tables(&format!(
            "[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\nnodev = false\n\
             [security]\ncapabilities = {{ add = [\"MKNOD\"] }}\n[limits]\nparent = {}",
            q(&cg.parent)
        ))
    };
    let listing =
        |dir: &std::path::Path| std::fs::read_to_string(dir.join("devices.list")).unwrap();
    let want = launch::sys::devices::v1_listing(rules).unwrap().join("\n") + "\n";
    let stale = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains(".stale-"))
            .collect()
    };
    let held_to_the_list = |out: &Out| {
        assert!(
            out.stdout.contains("OPEN 1\n"),
            "a widened list was trusted\n{out}"
        );
        assert!(out.stdout.contains("NULL ok\n"), "{out}");
        assert_eq!(listing(&shared), want, "{out}");
    };
    let holds_the_list = |out: &Out| {
        held_to_the_list(out);
        cg.assert_empty(out);
    };

    // Made by launch: exactly the list, and the container holds to it; no group of its own
    // in the devices hierarchy (cg.assert_empty: nothing else under the parent).
    let out = run(&sb, app("devlistmade"));
    holds_the_list(&out);

    // Widened by someone else (a fresh group under an allow-all parent allows everything):
    // replaced before the container joins.
    std::fs::remove_dir(&shared).unwrap();
    std::fs::create_dir(&shared).unwrap();
    assert_eq!(listing(&shared), "a *:* rwm\n");
    holds_the_list(&run(&sb, app("devlistwide")));

    // Narrowed: nothing allowed. Replaced too (the run used to fail here).
    std::fs::remove_dir(&shared).unwrap();
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("devices.deny"), "a").unwrap();
    holds_the_list(&run(&sb, app("devlistnarrow")));
    assert!(stale().is_empty(), "{:?}", stale());

    // Widened while a process is in it: renamed aside (the process stays in it), replaced.
    std::fs::remove_dir(&shared).unwrap();
    std::fs::create_dir(&shared).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::write(shared.join("tasks"), sleeper.id().to_string()).unwrap();
    held_to_the_list(&run(&sb, app("devlistbusy")));
    let aside = stale();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(listing(&aside[0]), "a *:* rwm\n");
    let tasks = std::fs::read_to_string(aside[0].join("tasks")).unwrap();
    assert_eq!(tasks.trim(), sleeper.id().to_string());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    // The next launcher that has to make the group removes the stale one, now empty.
    std::fs::remove_dir(&shared).unwrap();
    holds_the_list(&run(&sb, app("devlistsweep")));
    assert!(stale().is_empty(), "{:?}", stale());
}

/// The device allow-list: a block device node the container makes (it keeps CAP_MKNOD here, so
/// that only the list stands in the way) cannot be opened by default; allowed in the manifest,
/// it opens (or fails for want of a driver, never for want of permission). Unconfined, no list.
#[test]
fn the_device_allow_list_refuses_devices_not_on_it() {
    need_root();
    let sb = Sandbox::new("sec-devices");
    let script = "python3 -c '\nimport os\nos.mknod(\"/tmp/loop\", 0o600 | 0o060000, os.makedev(7, 0))\ntry:\n os.close(os.open(\"/tmp/loop\", os.O_RDONLY)); print(\"OPEN ok\")\nexcept OSError as e: print(\"OPEN\", e.errno)\nos.close(os.open(\"/dev/null\", os.O_RDWR)); print(\"NULL ok\")\n'";
    let tmp = "[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\nnodev = false";
    let mknod = "capabilities = { add = [\"MKNOD\"] }";
    let out = run(
        &sb,
        App::new("secdev", script).tables(&format!("{tmp}\n[security]\n{mknod}")),
    );
    assert!(out.stdout.contains("OPEN 1\n"), "{out}");
    assert!(out.stdout.contains("NULL ok\n"), "{out}");
    for (name, devices) in [
        ("secdevallow", "devices = [\"allow b 7:0 r\"]"),
        ("secdevoff", "devices = \"unconfined\""),
    ] {
        let out = run(
            &sb,
            App::new(name, script).tables(&format!("{tmp}\n[security]\n{mknod}\n{devices}")),
        );
        assert!(!out.stdout.contains("OPEN 1\n"), "{name}\n{out}");
        assert!(out.stdout.contains("OPEN "), "{name}\n{out}");
        assert!(out.stdout.contains("NULL ok\n"), "{name}\n{out}");
    }
}

/// The kernel's release as (major, minor).
fn kernel_version() -> (u32, u32) {
    let r = nix::sys::utsname::uname().unwrap();
    let mut parts = r.release().to_str().unwrap().split(['.', '-']);
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// Where the kernel's procfs takes the `pidns` option and mounts go onto detached trees, the
/// launcher makes the container's /proc itself, its paths masked and read-only, while the
/// container process builds the rest of its root (sys::procfs); where it does not, it says so
/// (`-v`) and the container process mounts and masks its own, as before. Either way, the same
/// /proc: masked files read empty, /proc/sys refuses writes, and it shows the container's pid
/// namespace (its shell is pid 1). This host's kernel (6.18) must take the first way; the
/// pure cgroup v2 guest's (Debian 12's 6.1) takes the second, so CI runs both.
#[test]
fn the_launcher_makes_the_containers_proc_where_the_kernel_can() {
    use launch::sys::masked_paths::{DEFAULT_MASKED, DEFAULT_READONLY, expand};
    use launch::sys::mount::MountAttr;
    use launch::sys::procfs::{Prepared, prepare};
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    need_root();
    let ns: std::os::fd::OwnedFd = std::fs::File::open("/proc/self/ns/pid").unwrap().into();
    let attrs = [
        MountAttr::MOUNT_ATTR_NOSUID,
        MountAttr::MOUNT_ATTR_NODEV,
        MountAttr::MOUNT_ATTR_NOEXEC,
    ];
    let (masked, readonly) = (expand(DEFAULT_MASKED), expand(DEFAULT_READONLY));
    let made = match prepare(&ns, &attrs, &masked, &readonly).unwrap() {
        Prepared::Tree(tree) => {
            // Through the detached tree itself.
            let hostname = openat(&tree, "sys/kernel/hostname", OFlag::O_WRONLY, Mode::empty());
            assert_eq!(hostname.err(), Some(nix::errno::Errno::EROFS));
            if std::fs::read("/proc/keys").is_ok_and(|k| !k.is_empty()) {
                let keys = openat(&tree, "keys", OFlag::O_RDONLY, Mode::empty()).unwrap();
                let text = std::io::read_to_string(std::fs::File::from(keys)).unwrap();
                assert_eq!(text, "", "/proc/keys is not masked in the launcher's /proc");
            }
            let version = openat(&tree, "version", OFlag::O_RDONLY, Mode::empty()).unwrap();
            let text = std::io::read_to_string(std::fs::File::from(version)).unwrap();
            assert!(text.starts_with("Linux version"), "{text}");
            true
        }
        Prepared::Unsupported(errno) => {
            assert_eq!(errno, nix::errno::Errno::EINVAL);
            false
        }
    };
    if kernel_version() >= (6, 18) {
        assert!(
            made,
            "this kernel takes procfs's pidns option: the launcher must make /proc"
        );
    }

    let sb = Sandbox::new("sec-procfs");
    let script = "echo PID $$; echo SIZE $(wc -c < /proc/timer_list); \
                  echo x > /proc/sys/kernel/hostname && echo WROTE; true";
    let m = App::new("secprocfs", script).write(&sb);
    let out = sb.launch(&["-v", "run", m.to_str().unwrap()]);
    out.expect_code(0);
    assert!(out.stdout.contains("PID 1\n"), "{out}");
    if std::fs::read("/proc/timer_list").is_ok_and(|k| !k.is_empty()) {
        assert!(out.stdout.contains("SIZE 0\n"), "{out}");
    }
    assert!(!out.stdout.contains("WROTE"), "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    let said = out
        .stderr
        .contains("cannot make a /proc for another pid namespace");
    assert_eq!(said, !made, "the log and the kernel disagree\n{out}");
    sb.assert_state_empty(&out);
}
