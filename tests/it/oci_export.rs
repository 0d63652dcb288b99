//! `launch export oci`: the config.json of every example (snapshots, hybrid and v2 hosts), what
//! cannot be exported, the bundle writer's all-or-nothing, and real runs: each example under
//! `launch run` and, exported, under an OCI runtime (`LAUNCH_OCI_RUNTIME`, default `runc`; the
//! v2 VM harness sets `crun`) must show its process the same world.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use launch::host::{CgroupLayout, Host, RealHost};
use launch::oci::annotations;
use launch::oci::export::{ExportError, to_json, to_oci, warnings};
use launch::spec::{CapChoice, CapSet, Namespace, Paths, Seccomp, SeccompProfile, Security, Spec};
use launch::sys::caps::{Capability, DEFAULT};
use launch::sys::seccomp::{Action, Cmp, Rule};

use crate::common::{hybrid, manifests, repo, source, v2};
use crate::fixtures::{
    Cgroups, Sandbox, TIMEOUT, need_root, processes_with, q, qp, rootfs_dir, rootfs_tar, unique,
    v1_root,
};

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

fn spec_on(text: &str, host: &dyn Host) -> Spec {
    let src = launch::manifest::Source::from_text("app.toml", Path::new("/src"), text);
    launch::validate::spec(&src, host).unwrap_or_else(|p| panic!("{p:#?}"))
}

fn config(spec: &Spec, host: &dyn Host) -> serde_json::Value {
    serde_json::from_str(&to_json(&to_oci(spec, host.facts()).unwrap()).unwrap()).unwrap()
}

// --- to_oci, pure --------------------------------------------------------------------------------

#[test]
fn every_example_exports_on_hybrid_and_v2() {
    for path in manifests("examples/manifests") {
        for (host_name, host) in [("hybrid", hybrid()), ("v2", v2())] {
            let spec = launch::validate::spec(&source(&path), &host)
                .unwrap_or_else(|p| panic!("{}: {p:#?}", path.display()));
            let oci = to_oci(&spec, host.facts())
                .unwrap_or_else(|e| panic!("{} on {host_name}: {e}", path.display()));
            let json = to_json(&oci).unwrap();
            // The same Spec always gives the same bytes (capabilities are hash sets in oci-spec).
            assert_eq!(
                json,
                to_json(&to_oci(&spec, host.facts()).unwrap()).unwrap()
            );
            insta::assert_snapshot!(format!("oci-{}-{host_name}", stem(&path)), json);
        }
    }
}

const MINIMAL: &str = r#"
name = "x"
[rootfs]
host = true
[process]
command = ["/bin/true"]
"#;

#[test]
fn nothing_comes_from_oci_spec_defaults() {
    let c = config(&spec_on(MINIMAL, &hybrid()), &hybrid());
    // oci-spec's Default would add these; launch has none of them.
    for absent in [
        "/hostname",
        "/hooks",
        "/linux/sysctl",
        "/process/apparmorProfile",
        "/process/oomScoreAdj",
    ] {
        assert!(c.pointer(absent).is_none(), "{absent} is set: {c:#}");
    }
    // Its security fields are launch's own (below), not oci-spec's docker-like ones.
    assert_ne!(
        c["process"]["capabilities"]["bounding"],
        serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
    );
    let dests: Vec<&str> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(dests, ["/usr", "/etc", "/dev", "/dev/pts", "/dev/shm"]);
    assert_eq!(c["linux"]["rootfsPropagation"], "rprivate");
    assert_eq!(c["annotations"][annotations::PIVOT_ROOT], "true");
    assert_eq!(c["annotations"][annotations::TERMINAL], "auto");
}

/// A set as config.json lists it: names in order (to_json sorts them).
fn names(s: CapSet) -> serde_json::Value {
    let mut v = s.names();
    v.sort_unstable();
    serde_json::json!(v)
}

/// A manifest's default security part: podman's 11 capabilities held by root, no_new_privs,
/// launch's default seccomp profile for them, Docker's and podman's masked and read-only paths
/// (the per-CPU ones for the host's CPUs).
#[test]
fn the_default_security_is_spelled_out() {
    let spec = spec_on(MINIMAL, &hybrid());
    assert_eq!(spec.security, Security::default());
    let c = config(&spec, &hybrid());
    let caps = &c["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(caps[set], names(DEFAULT), "{set}");
    }
    for set in ["inheritable", "ambient"] {
        assert_eq!(caps[set], serde_json::json!([]), "{set}");
    }
    assert_eq!(c["process"]["noNewPrivileges"], true);
    assert_eq!(c["annotations"][annotations::CAPABILITIES], "default");
    let s = &c["linux"]["seccomp"];
    assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(s["defaultErrnoRet"], libc::EPERM);
    assert_eq!(
        s["architectures"],
        serde_json::json!([launch::sys::seccomp::native().unwrap().scmp_name])
    );
    assert!(s.get("flags").is_none(), "{s:#}");
    let syscalls = s["syscalls"].as_array().unwrap();
    let allowed = |name: &str| {
        syscalls.iter().any(|r| {
            r["action"] == "SCMP_ACT_ALLOW"
                && r.get("args").is_none()
                && r["names"].as_array().unwrap().contains(&name.into())
        })
    };
    assert!(allowed("read") && allowed("execve"));
    // Without CAP_SYS_ADMIN: no mount, and clone only without namespace flags.
    assert!(!allowed("mount") && !allowed("clone"));
    let clone = syscalls
        .iter()
        .find(|r| r["names"] == serde_json::json!(["clone"]))
        .unwrap();
    assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    assert_eq!(clone["args"][0]["valueTwo"], 0);
    let clone3 = syscalls
        .iter()
        .find(|r| r["names"] == serde_json::json!(["clone3"]))
        .unwrap();
    assert_eq!(clone3["action"], "SCMP_ACT_ERRNO");
    assert_eq!(clone3["errnoRet"], libc::ENOSYS);
    let masked = c["linux"]["maskedPaths"].as_array().unwrap();
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
    ] {
        assert!(masked.contains(&p.into()), "{p}");
    }
    let cpus = hybrid().facts().cpus;
    let per_cpu = masked
        .iter()
        .filter(|p| p.as_str().unwrap().ends_with("/thermal_throttle"))
        .count();
    assert_eq!(per_cpu, cpus as usize);
    assert_eq!(
        c["linux"]["readonlyPaths"],
        serde_json::json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ])
    );
}

/// The default set for a user other than root: the bounding set only (setuid(2) clears the
/// rest, as runc and launch both leave it).
#[test]
fn an_unprivileged_user_holds_no_capabilities() {
    let text = MINIMAL.replace("[process]", "[process]\nuser = 1000\ngroup = 1000");
    let c = config(&spec_on(&text, &hybrid()), &hybrid());
    let caps = &c["process"]["capabilities"];
    assert_eq!(caps["effective"], serde_json::json!([]));
    assert_eq!(caps["permitted"], serde_json::json!([]));
    assert_eq!(caps["ambient"], serde_json::json!([]));
    assert_eq!(caps["bounding"], names(DEFAULT));
}

/// Capabilities a user other than root names are held in all five sets (ambient: they survive
/// execve), as `sys::caps::plan` gives them.
#[test]
fn named_capabilities_of_a_non_root_user_are_ambient() {
    let text = MINIMAL.replace("[process]", "[process]\nuser = 1000\ngroup = 1000");
    let mut spec = spec_on(&text, &hybrid());
    let raw = CapSet::of(&[Capability::CAP_NET_RAW, Capability::CAP_NET_BIND_SERVICE]);
    spec.security.capabilities = Some(CapChoice::List(raw));
    let c = config(&spec, &hybrid());
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        assert_eq!(c["process"]["capabilities"][set], names(raw), "{set}");
    }
    assert_eq!(
        c["annotations"][annotations::CAPABILITIES],
        "list:CAP_NET_BIND_SERVICE,CAP_NET_RAW"
    );
    // The default profile follows the capabilities kept: still no mount without CAP_SYS_ADMIN.
    spec.security.capabilities = Some(CapChoice::Modify {
        add: CapSet::of(&[Capability::CAP_SYS_ADMIN]),
        drop: CapSet::EMPTY,
    });
    let c = config(&spec, &hybrid());
    assert_eq!(
        c["annotations"][annotations::CAPABILITIES],
        "add:CAP_SYS_ADMIN;drop:"
    );
    let mount = c["linux"]["seccomp"]["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["names"].as_array().unwrap().contains(&"mount".into()));
    assert!(mount, "CAP_SYS_ADMIN kept: mount allowed");
}

/// `profile = "unconfined"`: every capability, held by root; no no_new_privs, no filter, nothing
/// masked or read-only (the lists are absent, as runc reads an absent list).
#[test]
fn unconfined_confines_nothing() {
    let mut spec = spec_on(MINIMAL, &hybrid());
    spec.security = Security::unconfined();
    let c = config(&spec, &hybrid());
    let caps = &c["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(caps[set], names(CapSet::ALL), "{set}");
    }
    assert_eq!(caps["ambient"], serde_json::json!([]));
    assert_eq!(c["process"]["noNewPrivileges"], false);
    for absent in [
        "/linux/seccomp",
        "/linux/maskedPaths",
        "/linux/readonlyPaths",
    ] {
        assert!(c.pointer(absent).is_none(), "{absent} is set: {c:#}");
    }
    assert_eq!(c["annotations"][annotations::CAPABILITIES], "unconfined");
    // Another user: the bounding set, nothing held.
    spec.process.user.uid = 1000;
    let c = config(&spec, &hybrid());
    assert_eq!(
        c["process"]["capabilities"]["effective"],
        serde_json::json!([])
    );
    assert_eq!(c["process"]["capabilities"]["bounding"], names(CapSet::ALL));
}

/// The sets are planned from what the runtime can give (the host's `capabilities`: the
/// exporting process's bounding set), as `launch run` plans them from the launcher's.
#[test]
fn capabilities_are_limited_to_the_exporters() {
    let mut spec = spec_on(MINIMAL, &hybrid());
    spec.security = Security::unconfined();
    // This development host's bounding set lacks CAP_SYS_RESOURCE (24).
    let mut host = hybrid();
    host.facts.capabilities = CapSet::ALL.without(Capability::CAP_SYS_RESOURCE);
    let oci = to_oci(&spec, host.facts()).unwrap();
    let c: serde_json::Value = serde_json::from_str(&to_json(&oci).unwrap()).unwrap();
    for set in ["bounding", "effective", "permitted"] {
        let v = c["process"]["capabilities"][set].as_array().unwrap();
        assert_eq!(v.len(), 40, "{set}");
        assert!(!v.contains(&serde_json::json!("CAP_SYS_RESOURCE")), "{set}");
    }
    // What the choice asks and the host cannot give is left out, as `launch run` leaves it.
    spec.security.capabilities = Some(CapChoice::List(CapSet::of(&[
        Capability::CAP_SYS_RESOURCE,
        Capability::CAP_KILL,
    ])));
    let c = config(&spec, &host);
    assert_eq!(
        c["process"]["capabilities"]["bounding"],
        serde_json::json!(["CAP_KILL"])
    );
}

/// A custom profile: its rules as written (errnoRet, masked comparisons), its name in an
/// annotation, and the log flag.
#[test]
fn a_custom_seccomp_profile_is_written_rule_by_rule() {
    let mut spec = spec_on(MINIMAL, &hybrid());
    spec.security.seccomp = Seccomp::Custom(SeccompProfile {
        name: "strict.json".into(),
        default_action: Action::KillProcess,
        rules: vec![
            Rule::new(Action::Allow, &["read", "write"]),
            Rule::new(Action::Errno(38), &["personality"]).when(
                0,
                Cmp::MaskedEq {
                    mask: 0xff,
                    value: 8,
                },
            ),
            Rule::new(Action::Trace(7), &["ptrace"]).when(1, Cmp::Gt(3)),
        ],
        log: true,
    });
    spec.security.seccomp_log = true;
    spec.security.masked_paths = Paths::List(vec!["/proc/kcore".into()]);
    spec.security.readonly_paths = Paths::List(Vec::new());
    let c = config(&spec, &hybrid());
    assert_eq!(
        c["linux"]["seccomp"],
        serde_json::json!({
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "architectures": [launch::sys::seccomp::native().unwrap().scmp_name],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7,
                 "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_GT"}]}
            ]
        })
    );
    assert_eq!(
        c["annotations"][annotations::SECCOMP_PROFILE],
        "strict.json"
    );
    assert_eq!(
        c["linux"]["maskedPaths"],
        serde_json::json!(["/proc/kcore"])
    );
    assert!(c.pointer("/linux/readonlyPaths").is_none(), "{c:#}");
}

#[test]
fn weights_and_memory_high_are_unified_on_v2_only() {
    let text =
        format!("{MINIMAL}[limits]\ncpu_weight = 200\nio_weight = 300\nmemory_high = \"64MiB\"\n");
    let c = config(&spec_on(&text, &v2()), &v2());
    let r = &c["linux"]["resources"];
    assert_eq!(r["unified"]["cpu.weight"], "200");
    assert_eq!(r["unified"]["io.weight"], "default 300");
    assert_eq!(r["unified"]["memory.high"], "67108864");
    assert!(
        r.get("cpu").is_none() && r.get("blockIO").is_none(),
        "{r:#}"
    );

    // A v1 host whose I/O scheduler has weights (CFQ): blkio.weight exists.
    let mut cfq = hybrid();
    cfq.facts.cgroup.io_weight = true;
    let text = format!("{MINIMAL}[limits]\ncpu_weight = 200\nio_weight = 300\n");
    let c = config(&spec_on(&text, &cfq), &cfq);
    let r = &c["linux"]["resources"];
    assert_eq!(
        r["cpu"]["shares"],
        launch::lower::cgroups::weight_to_shares(200)
    );
    assert_eq!(
        r["blockIO"]["weight"],
        launch::lower::cgroups::io_weight_to_v1(300)
    );
    assert!(r.get("unified").is_none(), "{r:#}");
}

#[test]
fn memory_high_on_a_v1_host_is_refused_by_name() {
    let text = format!("{MINIMAL}[limits]\nmemory_high = \"64MiB\"\n");
    let spec = spec_on(&text, &v2());
    let err = to_oci(&spec, hybrid().facts()).unwrap_err();
    assert!(matches!(
        err,
        ExportError::Inexpressible {
            key: "limits.memory_high",
            ..
        }
    ));
    assert!(err.to_string().contains("`limits.memory_high`"), "{err}");
    assert!(err.is_usage());
}

#[test]
fn the_hosts_mount_namespace_is_refused_by_name() {
    let mut spec = spec_on(MINIMAL, &hybrid());
    spec.namespaces.mount = Namespace::Host;
    let err = to_oci(&spec, hybrid().facts()).unwrap_err();
    assert!(err.to_string().contains("`namespaces.mount`"), "{err}");
}

#[test]
fn joined_namespaces_carry_their_path_and_host_ones_are_absent() {
    let mut spec = spec_on(MINIMAL, &hybrid());
    spec.namespaces.net = Namespace::Join("/proc/1/ns/net".into());
    spec.namespaces.ipc = Namespace::Host;
    let c = config(&spec, &hybrid());
    let ns = c["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.contains(&serde_json::json!({ "type": "network", "path": "/proc/1/ns/net" })));
    assert!(!ns.iter().any(|n| n["type"] == "ipc"), "{ns:?}");
}

#[test]
fn map_root_maps_the_exporting_user_and_says_so() {
    let text = MINIMAL.replace(
        "[process]",
        "[namespaces]\nuser = { map_root = true }\n[process]",
    );
    let mut host = hybrid();
    host.facts.uid = 1234;
    host.facts.gid = 567;
    let c = config(&spec_on(&text, &host), &host);
    assert_eq!(
        c["linux"]["uidMappings"],
        serde_json::json!([{ "containerID": 0, "hostID": 1234, "size": 1 }])
    );
    assert_eq!(
        c["linux"]["gidMappings"],
        serde_json::json!([{ "containerID": 0, "hostID": 567, "size": 1 }])
    );
    assert_eq!(c["annotations"][annotations::MAP_ROOT], "true");
}

#[test]
fn chroot_and_init_warn_and_are_annotated() {
    let text = MINIMAL
        .replace("host = true", "host = true\npivot_root = false")
        .replace("[process]", "[process]\ninit = true");
    let spec = spec_on(&text, &hybrid());
    let w = warnings(&spec).join("\n");
    assert!(
        w.contains("--no-pivot") && w.contains("process.init"),
        "{w}"
    );
    let c = config(&spec, &hybrid());
    assert_eq!(c["annotations"][annotations::PIVOT_ROOT], "false");
    assert_eq!(c["annotations"][annotations::INIT], "true");
}

#[test]
fn annotation_keys_are_documented() {
    let doc = fs::read_to_string(repo().join("docs/oci.md")).unwrap();
    for k in annotations::ALL {
        assert!(
            doc.contains(&format!("`{k}`")),
            "docs/oci.md does not document {k}"
        );
    }
}

// --- the bundle writer ------------------------------------------------------------------------------

fn partial_siblings(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-"))
        .collect()
}

#[test]
fn export_refuses_a_non_empty_directory_and_leaves_it_alone() {
    let sb = Sandbox::new("oci-nonempty");
    let m = sb.write("app.toml", MINIMAL);
    sb.write("out/keep", "mine");
    let out = sb.launch(&["export", "oci", m.to_str().unwrap(), "out"]);
    out.expect_code(2);
    assert!(out.stderr.contains("not an empty directory"), "{out}");
    assert_eq!(fs::read_to_string(sb.dir.join("out/keep")).unwrap(), "mine");
    assert_eq!(fs::read_dir(sb.dir.join("out")).unwrap().count(), 1);
    assert!(partial_siblings(&sb.dir).is_empty());
    // An empty directory is fine.
    sb.mkdir("empty");
    sb.launch(&["export", "oci", m.to_str().unwrap(), "empty"])
        .expect_code(0);
    assert!(sb.dir.join("empty/config.json").is_file());
    assert!(sb.dir.join("empty/rootfs").is_dir());
}

#[test]
fn export_words_are_pinned() {
    let sb = Sandbox::new("oci-words");
    let help = sb.launch(&["export", "oci", "--help"]);
    help.expect_code(0);
    insta::assert_snapshot!("oci-export-help", help.stdout);
    let text = MINIMAL
        .replace("host = true", "host = true\npivot_root = false")
        .replace("[process]", "[process]\ninit = true");
    sb.write("app.toml", text);
    let out = sb.launch(&["export", "oci", "app.toml", "out"]);
    out.expect_code(0);
    insta::assert_snapshot!("oci-export-warnings", out.stderr);
    let again = sb.launch(&["export", "oci", "app.toml", "out"]);
    again.expect_code(2);
    insta::assert_snapshot!("oci-export-not-empty", again.stderr);
}

#[test]
fn a_failed_export_leaves_nothing() {
    let sb = Sandbox::new("oci-fail");
    sb.write("bad.tar", vec![0x42u8; 4096]);
    let m = sb.write(
        "app.toml",
        "name = \"bad\"\n[rootfs]\ntar = \"bad.tar\"\n[process]\ncommand = [\"/bin/true\"]\n",
    );
    let out = sb.launch(&["export", "oci", m.to_str().unwrap(), "out"]);
    // As root the archive goes into the store first, which refuses it (exit 2, before the
    // export); otherwise the export's own extraction does (exit 125).
    let code = if nix::unistd::Uid::effective().is_root() {
        2
    } else {
        125
    };
    out.expect_code(code);
    assert!(out.stderr.contains("bad.tar"), "{out}");
    assert!(!sb.dir.join("out").exists(), "{out}");
    assert!(partial_siblings(&sb.dir).is_empty(), "{out}");
}

// --- real runs: launch and an OCI runtime must agree ------------------------------------------------

/// The OCI runtime to compare with.
fn runtime() -> String {
    std::env::var("LAUNCH_OCI_RUNTIME").unwrap_or_else(|_| "runc".into())
}

/// What the container prints about itself, then waits on the fifo `/run/go` so the host can read
/// its cgroup files while it runs. Shell builtins and the tools of every example's root only.
/// Its confinement: the capability sets, no_new_privs and seccomp lines of /proc/self/status,
/// whether a masked file reads empty (/proc/timer_list, root's only when not masked), and what
/// writing /proc/sys gets (its own hostname again: harmless even without a UTS namespace).
const PROBE: &str = r#"
echo "hostname $(cat /proc/sys/kernel/hostname)"
echo "pid $$"
echo "id $(id)"
echo "cwd $(pwd)"
env | sort | while read -r l; do echo "env $l"; done
ulimit -a | while read -r l; do echo "soft $l"; done
ulimit -Ha | while read -r l; do echo "hard $l"; done
for n in pid mnt uts ipc net user cgroup; do echo "ns $n $(readlink /proc/self/ns/$n)"; done
while read -r l; do echo "uid_map $l"; done < /proc/self/uid_map
while read -r l; do echo "gid_map $l"; done < /proc/self/gid_map
while read -r l; do echo "mnt $l"; done < /proc/self/mountinfo
while read -r l; do case "$l" in Cap*|NoNewPrivs*|Seccomp*) echo "status $l";; esac; done < /proc/self/status
echo "timer_list $( (read -r l && echo has lines || echo empty) 2>/dev/null < /proc/timer_list || echo unreadable)"
read -r h < /proc/sys/kernel/hostname
e=$( (echo "$h" > /proc/sys/kernel/hostname) 2>&1 )
echo "write /proc/sys: ${e##*: }"
echo ready
read -r x < /run/go
echo done
"#;

/// An example rewritten for the comparison: the probe as its command (with `marker` as `$0`, to
/// find it on the host), a fifo directory bound at /run, its roots from the test fixtures, and
/// a cgroup parent of this test's own.
fn probe_manifest(example: &str, sb: &Sandbox, cg: &Cgroups, marker: &str) -> String {
    let text =
        fs::read_to_string(repo().join(format!("examples/manifests/{example}.toml"))).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("command =") || t.starts_with("args =") || t.starts_with("parent =") {
            continue;
        }
        let line = match t {
            "path = \"rootfs\"" => format!("path = {}", qp(rootfs_dir())),
            "tar = \"seed-rootfs.tar\"" => format!("tar = {}", qp(rootfs_tar())),
            // Not the sandbox itself: it holds launch's state root, whose mounts would show.
            "source = \".\"                    # this folder, relative to the manifest" => {
                format!("source = {}", qp(&sb.mkdir("work")))
            }
            _ => line.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
        match t {
            "[process]" => out.push_str(&format!(
                "command = [\"/bin/sh\", \"-c\", {}, {}]\n",
                q(PROBE),
                q(marker)
            )),
            "[limits]" => out.push_str(&format!("parent = {}\n", q(&cg.parent))),
            _ => {}
        }
    }
    if !text.lines().any(|l| l.trim() == "[limits]") {
        out.push_str(&format!("\n[limits]\nparent = {}\n", q(&cg.parent)));
    }
    out.push_str(&format!(
        "\n[[mounts]]\ntype = \"bind\"\nsource = {}\ntarget = \"/run\"\n",
        qp(&sb.dir.join("probe"))
    ));
    out
}

/// What one run showed: the probe's lines, and the limit files of its cgroups read from the host.
#[derive(Debug)]
struct Seen {
    lines: Vec<String>,
    cgroup: BTreeMap<String, String>,
}

/// Limit files worth comparing, by v1 controller; and the v2 ones.
const V1_FILES: &[(&str, &[&str])] = &[
    (
        "cpu",
        &["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"],
    ),
    ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
    (
        "memory",
        &[
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.memsw.limit_in_bytes",
        ],
    ),
    ("pids", &["pids.max"]),
    (
        "blkio",
        &[
            "blkio.weight",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device",
            "blkio.throttle.write_iops_device",
        ],
    ),
];
const V2_FILES: &[&str] = &[
    "cpu.max",
    "cpu.weight",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "pids.max",
    "io.weight",
    "io.max",
];

/// The limit files of the cgroups of host process `pid`.
fn cgroup_limits(pid: &str) -> BTreeMap<String, String> {
    let facts = RealHost::probe().facts().clone();
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mut out = BTreeMap::new();
    let mut read = |dir: PathBuf, file: &str| {
        if let Ok(v) = fs::read_to_string(dir.join(file)) {
            out.insert(
                file.to_owned(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            );
        }
    };
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, rel) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let rel = rel.trim_start_matches('/');
        if ctrls.is_empty() {
            if facts.cgroup.layout == CgroupLayout::V2 {
                let root = facts.cgroup.v2_root.clone().unwrap();
                for file in V2_FILES {
                    read(root.join(rel), file);
                }
            }
            continue;
        }
        for (c, files) in V1_FILES {
            if ctrls.split(',').any(|x| x == *c) {
                let root = v1_root(c).unwrap();
                for file in *files {
                    read(root.join(rel), file);
                }
            }
        }
    }
    out
}

/// Kills and reaps a child still running when a test fails, and releases the probe.
struct Guard {
    child: Option<Child>,
    fifo: PathBuf,
}

impl Guard {
    /// Let the probe go on: whether it did (a reader had the fifo open).
    fn release(&self) -> bool {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking: with no reader yet (or any more) this fails at once (ENXIO).
        match fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo)
        {
            Ok(mut f) => f.write_all(b"go\n").is_ok(),
            Err(_) => false,
        }
    }

    /// Release the probe once it waits on the fifo (it prints `ready` just before opening it).
    fn release_when_waiting(&self, limit: std::time::Duration) {
        let start = Instant::now();
        while !self.release() && start.elapsed() < limit {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Let a container that got as far as the fifo end by itself: killing only the launcher
        // would leave it, and its cgroups, behind.
        self.release_when_waiting(std::time::Duration::from_secs(2));
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run `cmd` (stdout and stderr piped), wait for the probe's `ready`, read the cgroup files of
/// the process that carries `marker`, release it and collect everything.
fn observe(mut cmd: Command, what: &str, sb: &Sandbox, marker: &str, limits: bool) -> Seen {
    let fifo = sb.dir.join("probe/go");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut guard = Guard {
        child: Some(child),
        fifo,
    };
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err = std::thread::spawn(move || {
        let mut v = String::new();
        let _ = stderr.read_to_string(&mut v);
        v
    });
    let mut lines = Vec::new();
    let start = Instant::now();
    let until = |rx: &Receiver<String>, lines: &mut Vec<String>, end: &str| loop {
        let left = TIMEOUT.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(l) if l == end => return true,
            Ok(l) => lines.push(l),
            Err(_) => return false,
        }
    };
    if !until(&rx, &mut lines, "ready") {
        drop(guard);
        panic!(
            "`{what}` did not get ready\n--- stdout ---\n{}\n--- stderr ---\n{}",
            lines.join("\n"),
            err.join().unwrap()
        );
    }
    let cgroup = if limits {
        let found = processes_with(marker);
        let pid = found
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .next()
            .unwrap_or_else(|| panic!("no process of `{what}` carries {marker}"));
        cgroup_limits(&pid)
    } else {
        BTreeMap::new()
    };
    guard.release_when_waiting(TIMEOUT);
    let mut rest = Vec::new();
    let done = until(&rx, &mut rest, "done");
    let mut child = guard.child.take().unwrap();
    let status = crate::fixtures::wait_timeout(&mut child, TIMEOUT, what);
    let stderr = err.join().unwrap();
    assert!(
        done && status.success(),
        "`{what}` ended with {status}\n--- stdout ---\n{}\n{}\n--- stderr ---\n{stderr}",
        lines.join("\n"),
        rest.join("\n")
    );
    Seen { lines, cgroup }
}

/// The probe's lines made comparable between runs: namespaces as `host` or `own`, mountinfo
/// without ids and device numbers, the root mount reduced to ro/rw (launch mounts a tmpfs or its
/// state directory there; a runtime the bundle's directory); sorted, as runtimes bind the
/// device nodes of a minimal /dev after the other mounts, launch right after /dev's tmpfs.
/// `propagation: false` drops mountinfo's propagation fields (a chroot bundle is rslave).
fn normalized(lines: &[String], propagation: bool) -> Vec<String> {
    let mut out = Vec::new();
    for l in lines {
        let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(rest) = l.strip_prefix("ns ") {
            let (name, link) = rest.split_once(' ').unwrap_or((rest, ""));
            let host = fs::read_link(format!("/proc/self/ns/{name}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let whose = if link == host { "host" } else { "own" };
            out.push(format!("ns {name} {whose}"));
        } else if let Some(rest) = l.strip_prefix("mnt ") {
            let f: Vec<&str> = rest.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-").unwrap();
            let opt: Vec<String> = f[6..dash]
                .iter()
                .filter(|_| propagation)
                .map(|o| o.split(':').next().unwrap().to_owned())
                .collect();
            if f[4] == "/" {
                let ro = f[5].split(',').next().unwrap();
                out.push(format!("mnt / {ro}"));
                continue;
            }
            // A masked path is a bind of a null device (the host's for launch, the one in its
            // own /dev for runc) or an empty read-only tmpfs: what counts is which.
            // Whether the null device's bind is itself read-only differs too (crun makes it so,
            // runc and launch do not, as Docker): writes to it vanish either way.
            if masked().iter().any(|p| f[4] == p) {
                match f[3] == "/" {
                    true => {
                        let ro = f[5].split(',').next().unwrap();
                        out.push(format!("mnt masked dir {} {ro}", f[4]));
                    }
                    false => out.push(format!("mnt masked file {}", f[4])),
                }
                continue;
            }
            // A read-only path is a read-only bind of itself: what counts is that it is
            // read-only (crun 1.8 drops the nosuid, nodev and noexec of /proc on the way;
            // launch and runc keep them).
            if readonly().iter().any(|p| f[4] == p) {
                let ro = f[5].split(',').next().unwrap();
                out.push(format!("mnt read-only {} {ro}", f[4]));
                continue;
            }
            // The device nodes of a minimal /dev in a user namespace are binds of the host's,
            // made by each runtime its own way (crun stacks a bind from a scratch tmpfs under
            // the host node's): what counts is that the node is there.
            let nodes = ["null", "zero", "full", "random", "urandom", "tty"];
            if nodes.iter().any(|n| f[4] == format!("/dev/{n}")) {
                out.push(format!("mnt device node {}", f[4]));
                continue;
            }
            // The superblock's own ro/rw is how a runtime got there (crun mounts sysfs rw,
            // then makes the mount read-only); the mount's flags (f[5]) say what the container
            // gets.
            let super_opts = f[dash + 3..].join(" ");
            let sb_opts: Vec<&str> = super_opts
                .split(',')
                .filter(|o| !matches!(*o, "ro" | "rw" | ""))
                .collect();
            out.push(format!(
                "mnt {} {} {} [{}] {} {} {}",
                f[3],
                f[4],
                f[5],
                opt.join(" "),
                f[dash + 1],
                f[dash + 2],
                sb_opts.join(",")
            ));
        } else {
            out.push(l);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The default read-only paths.
fn readonly() -> Vec<String> {
    launch::sys::masked_paths::expand(launch::sys::masked_paths::DEFAULT_READONLY)
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

/// The default masked paths, as both sides mask them.
fn masked() -> Vec<String> {
    launch::sys::masked_paths::expand(launch::sys::masked_paths::DEFAULT_MASKED)
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

/// What a cgroup file holds when nothing limits it (an empty cpuset list: the parent's; the
/// default I/O weight).
fn unlimited(v: &str) -> bool {
    matches!(
        v,
        "max" | "-1" | "9223372036854771712" | "9223372036854775807" | "" | "default 100"
    )
}

/// `Ok` when both views agree, else the differing lines.
fn compare(launch: &Seen, runtime: &Seen, propagation: bool) -> Result<(), String> {
    let a = normalized(&launch.lines, propagation);
    let b = normalized(&runtime.lines, propagation);
    let mut diff = Vec::new();
    for l in &a {
        if !b.contains(l) {
            diff.push(format!("- launch only: {l}"));
        }
    }
    for l in &b {
        if !a.contains(l) {
            diff.push(format!("+ runtime only: {l}"));
        }
    }
    if diff.is_empty() && a != b {
        diff.push(format!(
            "same lines, other counts:\n{}\n---\n{}",
            a.join("\n"),
            b.join("\n")
        ));
    }
    for (k, v) in &launch.cgroup {
        match runtime.cgroup.get(k) {
            Some(w) if w == v => {}
            other => diff.push(format!("cgroup {k}: launch {v:?}, runtime {other:?}")),
        }
    }
    // A runtime joins every controller; launch only those its limits use. The runtime's extra
    // groups must limit nothing.
    for (k, v) in &runtime.cgroup {
        if !launch.cgroup.contains_key(k) && !unlimited(v) {
            diff.push(format!(
                "cgroup {k}: runtime {v:?}, launch has no such group"
            ));
        }
    }
    if diff.is_empty() {
        Ok(())
    } else {
        Err(diff.join("\n"))
    }
}

/// Removes the runtime's container, whatever happened (a foreground `run` normally does).
struct RuntimeContainer {
    root: PathBuf,
    id: String,
}

impl Drop for RuntimeContainer {
    fn drop(&mut self) {
        let _ = Command::new(runtime())
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The example's probe under `launch run`, and exported under the runtime (after `edit`, which
/// may change config.json: to prove a difference is caught).
fn both(example: &str, edit: impl Fn(&mut serde_json::Value)) -> (Seen, Seen) {
    need_root();
    let sb = Sandbox::new(&format!("oci-{example}"));
    let cg = Cgroups::new();
    let probe = sb.mkdir("probe");
    let fifo = probe.join("go");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o666)).unwrap();
    let marker = unique(&format!("oci-probe-{example}"));
    let manifest = sb.write("app.toml", probe_manifest(example, &sb, &cg, &marker));
    let m = manifest.to_str().unwrap();
    let host = RealHost::probe();
    let spec = launch::validate::spec(&launch::manifest::Source::read(&manifest).unwrap(), &host)
        .unwrap_or_else(|p| panic!("{p:#?}"));
    let limits = spec.limits.any();

    let seen_launch = observe(sb.command(&["run", m]), "launch run", &sb, &marker, limits);

    let bundle = sb.dir.join("bundle");
    let out = sb.launch(&["export", "oci", m, bundle.to_str().unwrap()]);
    out.expect_code(0);
    let config = bundle.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    edit(&mut c);
    fs::write(&config, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    let seen_rt = runtime_run(&sb, &bundle, example, &marker, &spec);
    (seen_launch, seen_rt)
}

#[track_caller]
fn same_world(example: &str) -> (Seen, Seen) {
    let (a, b) = both(example, |_| {});
    assert!(!a.lines.is_empty());
    // A chroot bundle's mounts are rslave under runc (docs/oci.md), private under launch.
    let propagation = example != "chroot";
    if let Err(d) = compare(&a, &b, propagation) {
        panic!(
            "{example}: launch and {} disagree:\n{d}\n--- launch saw ---\n{}",
            runtime(),
            a.lines.join("\n")
        );
    }
    (a, b)
}

#[test]
fn hello_is_the_same_under_the_runtime() {
    same_world("hello");
}

#[test]
fn limits_is_the_same_under_the_runtime() {
    let (a, _) = same_world("limits");
    // The comparison read the limit files (here the same in v1 and v2 spelling).
    assert_eq!(
        a.cgroup.get("pids.max").map(String::as_str),
        Some("64"),
        "{a:?}"
    );
    assert!(a.cgroup.contains_key("cpuset.cpus"), "{a:?}");
}

#[test]
fn mounts_is_the_same_under_the_runtime() {
    same_world("mounts");
}

#[test]
fn network_is_the_same_under_the_runtime() {
    same_world("network");
}

#[test]
fn userns_is_the_same_under_the_runtime() {
    same_world("userns");
}

#[test]
fn chroot_is_the_same_under_the_runtime() {
    same_world("chroot");
}

#[test]
fn seed_is_the_same_under_the_runtime() {
    same_world("seed");
}

/// The runtime running `bundle` (its probe carries `marker`).
fn runtime_run(sb: &Sandbox, bundle: &Path, tag: &str, marker: &str, spec: &Spec) -> Seen {
    let rt = RuntimeContainer {
        root: sb.mkdir("runtime-state"),
        id: unique(&format!("oci-{tag}")),
    };
    let mut cmd = Command::new(runtime());
    cmd.arg("--root")
        .arg(&rt.root)
        .arg("run")
        .arg("--bundle")
        .arg(bundle);
    if !spec.root.pivot_root {
        cmd.arg("--no-pivot");
    }
    cmd.arg(&rt.id);
    let seen = observe(
        cmd,
        &format!("{} run", runtime()),
        sb,
        marker,
        spec.limits.any(),
    );
    drop(rt);
    seen
}

/// What one manifest gets three ways: `launch run` of the manifest, and its exported bundle
/// under `launch run --bundle` and under the runtime.
struct ThreeWays {
    manifest: Seen,
    bundle: Seen,
    runtime: Seen,
}

/// The hello example's probe, with `process` lines added to its `[process]` and a `[security]`
/// table, run three ways.
fn three_ways(tag: &str, process: &str, security: &str) -> ThreeWays {
    need_root();
    let sb = Sandbox::new(&format!("oci-{tag}"));
    let cg = Cgroups::new();
    let probe = sb.mkdir("probe");
    let fifo = probe.join("go");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o666)).unwrap();
    let marker = unique(&format!("oci-probe-{tag}"));
    let text = probe_manifest("hello", &sb, &cg, &marker).replacen(
        "[process]\n",
        &format!("[process]\n{process}\n"),
        1,
    ) + &format!("\n[security]\n{security}\n");
    let manifest = sb.write("app.toml", text);
    let m = manifest.to_str().unwrap();
    let host = RealHost::probe();
    let spec = launch::validate::spec(&launch::manifest::Source::read(&manifest).unwrap(), &host)
        .unwrap_or_else(|p| panic!("{p:#?}"));
    let limits = spec.limits.any();
    let from_manifest = observe(sb.command(&["run", m]), "launch run", &sb, &marker, limits);
    let bundle = sb.dir.join("bundle");
    sb.launch(&["export", "oci", m, bundle.to_str().unwrap()])
        .expect_code(0);
    let from_bundle = observe(
        sb.command(&["run", "--bundle", bundle.to_str().unwrap()]),
        "launch run --bundle",
        &sb,
        &marker,
        limits,
    );
    let under_runtime = runtime_run(&sb, &bundle, tag, &marker, &spec);
    ThreeWays {
        manifest: from_manifest,
        bundle: from_bundle,
        runtime: under_runtime,
    }
}

/// The probe's `status` lines, as `name value`.
fn status(seen: &Seen) -> BTreeMap<String, String> {
    seen.lines
        .iter()
        .filter_map(|l| l.strip_prefix("status "))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// The probe's line starting with `prefix`, less the prefix.
fn line<'s>(seen: &'s Seen, prefix: &str) -> &'s str {
    seen.lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line: {:#?}", seen.lines))
}

/// Runs the three ways and checks that they agree: the manifest under launch with its bundle
/// under the runtime (export), and the bundle under launch with the same bundle under the
/// runtime (import). Returns what the manifest's run saw.
#[track_caller]
fn same_confinement(tag: &str, process: &str, security: &str) -> Seen {
    let t = three_ways(tag, process, security);
    for (what, launch) in [("the manifest", &t.manifest), ("its bundle", &t.bundle)] {
        if let Err(d) = compare(launch, &t.runtime, true) {
            panic!(
                "{tag}: launch running {what} and {} running the bundle disagree:\n{d}\n\
                 --- launch saw ---\n{}",
                runtime(),
                launch.lines.join("\n")
            );
        }
    }
    t.manifest
}

/// (a) The default security part: podman's 11 capabilities held by root, no_new_privs, a
/// filter, /proc/timer_list masked, /proc/sys read-only.
#[test]
fn the_default_confinement_is_the_same_under_the_runtime() {
    let a = same_confinement("sec-default", "", "");
    let st = status(&a);
    let default = format!("{:016x}", DEFAULT.bits());
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(st[set], default, "{set}: {st:?}");
    }
    assert_eq!(st["CapInh"], "0000000000000000");
    assert_eq!(st["CapAmb"], "0000000000000000");
    assert_eq!(st["NoNewPrivs"], "1");
    assert_eq!(st["Seccomp"], "2");
    assert_eq!(line(&a, "timer_list "), "empty");
    assert_eq!(line(&a, "write /proc/sys: "), "Read-only file system");
}

/// (b) A list of capabilities and a user other than root: they hold exactly the list, in every
/// set (ambient: they survive execve).
#[test]
fn a_capability_list_for_a_user_is_the_same_under_the_runtime() {
    let a = same_confinement(
        "sec-user",
        "user = 1000\ngroup = 1000",
        "capabilities = [\"NET_RAW\", \"NET_BIND_SERVICE\"]",
    );
    let raw = CapSet::of(&[Capability::CAP_NET_RAW, Capability::CAP_NET_BIND_SERVICE]);
    let st = status(&a);
    let want = format!("{:016x}", raw.bits());
    for set in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(st[set], want, "{set}: {st:?}");
    }
    assert_eq!(st["NoNewPrivs"], "1");
    assert_eq!(st["Seccomp"], "2");
    // The masked file reads empty: /dev/null, which anyone may read.
    assert_eq!(line(&a, "timer_list "), "empty");
    assert!(line(&a, "id ").starts_with("uid=1000"), "{:?}", a.lines);
}

/// (c) Unconfined: root keeps every capability the launcher has, no no_new_privs, no filter,
/// nothing masked, /proc/sys writable (within the container's UTS namespace).
#[test]
fn unconfined_is_the_same_under_the_runtime() {
    let a = same_confinement("sec-unconfined", "", "profile = \"unconfined\"");
    let st = status(&a);
    let own = launch::sys::caps::ProcStatus::read_self()
        .unwrap()
        .sets
        .bounding;
    assert_eq!(st["CapBnd"], format!("{:016x}", own.bits()));
    assert_eq!(st["CapEff"], format!("{:016x}", own.bits()));
    assert_eq!(st["NoNewPrivs"], "0");
    assert_eq!(st["Seccomp"], "0");
    assert_eq!(line(&a, "timer_list "), "has lines");
    assert_eq!(line(&a, "write /proc/sys: "), "");
}

/// The comparison sees confinement: the runtime running the bundle with one capability more,
/// without no_new_privs and with /proc/timer_list unmasked is caught on each.
#[test]
fn a_different_confinement_is_detected() {
    let (a, b) = both("hello", |c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_ADMIN".into());
        c["process"]["noNewPrivileges"] = false.into();
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p != "/proc/timer_list");
    });
    let d = compare(&a, &b, true).unwrap_err();
    for needle in ["CapBnd", "NoNewPrivs: 0", "timer_list has lines"] {
        assert!(d.contains(needle), "{needle}: {d}");
    }
}

/// The comparison is not vacuous: a bundle edited to another hostname is caught.
#[test]
fn a_different_hostname_is_detected() {
    let (a, b) = both("hello", |c| c["hostname"] = "other".into());
    let d = compare(&a, &b, true).unwrap_err();
    assert!(
        d.contains("hostname hello") && d.contains("hostname other"),
        "{d}"
    );
}

/// So is a different limit value.
#[test]
fn a_different_limit_is_detected() {
    let (a, b) = both("limits", |c| {
        c["linux"]["resources"]["pids"]["limit"] = 63.into();
    });
    let d = compare(&a, &b, true).unwrap_err();
    assert!(d.contains("pids.max"), "{d}");
}
