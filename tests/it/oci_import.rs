//! `launch run|plan|validate --bundle DIR`: OCI runtime bundles run for real (as root, on the
//! rootfs directory fixture), each field group checked from inside the container; bad bundles
//! give every problem at once, at its JSON pointer, line and column (snapshots); `from_oci`
//! converts an in-memory config on its own.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use launch::diag::{render_json, render_text};
use launch::host::{FakeHost, PathKind};
use launch::manifest::Source;
use launch::oci::import;
use launch::spec::{
    CapChoice, CapSet, CpuQuota, IdMapLine, IdMaps, IoDevice, Mount, MountKind, Namespace, Paths,
    RootSource, Seccomp, UserNamespace,
};
use launch::sys::caps::Capability;
use serde_json::{Value, json};

use crate::common::hybrid;
use crate::fixtures::*;

// --- helpers ----------------------------------------------------------------------------------

/// A bundle: `DIR/config.json` in the sandbox, the rootfs fixture as its (read-only) root.
fn bundle(sb: &Sandbox, dir: &str, config: &Value) -> PathBuf {
    let path = sb.mkdir(dir);
    fs::write(
        path.join("config.json"),
        serde_json::to_vec_pretty(config).unwrap(),
    )
    .unwrap();
    path
}

/// A config running `sh -c script` on the rootfs fixture with pid, mount, uts and ipc
/// namespaces and /proc; `edit` changes it further.
fn config(script: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = json!({
        "ociVersion": "1.2.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", script],
            "env": ["PATH=/bin:/usr/bin"],
            "cwd": "/"
        },
        "root": {"path": rootfs_dir(), "readonly": true},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]
        }
    });
    edit(&mut c);
    c
}

fn run_bundle(sb: &Sandbox, dir: &Path) -> Out {
    sb.launch(&["run", "--bundle", dir.to_str().unwrap()])
}

/// mountinfo line of `target` as (mount options, filesystem type, super options).
fn mount_line(mountinfo: &str, target: &str) -> Option<(String, String, String)> {
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        if f.get(4) != Some(&target) {
            return None;
        }
        let dash = f.iter().position(|x| *x == "-")?;
        Some((
            f[5].to_string(),
            f.get(dash + 1)?.to_string(),
            f.get(dash + 3)?.to_string(),
        ))
    })
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

// --- real runs --------------------------------------------------------------------------------

/// args, env, cwd, uid/gid/additionalGids, rlimits, hostname and domainname, as runc sets them.
#[test]
fn process_fields_reach_the_container() {
    need_root();
    let sb = Sandbox::new("oci-process");
    let c = config(
        "id -u; id -g; id -G; echo \"$FOO\"; pwd; ulimit -Sn; ulimit -Hn; \
         cat /proc/sys/kernel/hostname; cat /proc/sys/kernel/domainname; echo \"$HOME\"",
        |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7]});
            c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
            c["process"]["cwd"] = json!("/tmp");
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]);
            c["hostname"] = json!("ocibox");
            c["domainname"] = json!("oci.example");
        },
    );
    let dir = bundle(&sb, "b", &c);
    let out = run_bundle(&sb, &dir);
    out.expect_code(0);
    assert_eq!(
        out.lines(),
        [
            "1000",
            "1001",
            "1001 5 7",
            "bar baz",
            "/tmp",
            "512",
            "1024",
            "ocibox",
            "oci.example",
            // The environment is exactly the bundle's: no HOME added.
            ""
        ],
        "{out}"
    );
    sb.assert_state_empty(&out);
}

/// Mounts in order, with their option strings as flags: tmpfs size and mode, a relative bind
/// source (the bundle's), rbind with ro/nosuid/nodev/noexec.
#[test]
fn mounts_get_their_options() {
    need_root();
    let sb = Sandbox::new("oci-mounts");
    let dir = sb.mkdir("b");
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::write(dir.join("data/hello"), "from the bundle\n").unwrap();
    let c = config(
        "cat /run/hello; stat -c %a /tmp; cat /proc/self/mountinfo",
        |c| {
            c["mounts"] = json!([
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "nodev", "size=1m", "mode=1777"]},
                {"destination": "/run", "type": "bind", "source": "data",
                 "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]},
                {"destination": "/root", "type": "tmpfs", "options": ["ro", "noexec", "mode=700"]}
            ]);
        },
    );
    fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&c).unwrap(),
    )
    .unwrap();
    let out = run_bundle(&sb, &dir);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..2], ["from the bundle", "1777"], "{out}");
    let info = out.stdout.clone();
    let (tmp_opts, tmp_fs, tmp_super) = mount_line(&info, "/tmp").expect("/tmp mounted");
    assert_eq!(tmp_fs, "tmpfs");
    assert!(
        has_opt(&tmp_opts, "nosuid") && has_opt(&tmp_opts, "nodev"),
        "{tmp_opts}"
    );
    assert!(
        !has_opt(&tmp_opts, "noexec") && has_opt(&tmp_opts, "rw"),
        "{tmp_opts}"
    );
    // mode=1777 is tmpfs's default, which mountinfo leaves out: `stat` showed it above.
    assert!(has_opt(&tmp_super, "size=1024k"), "{tmp_super}");
    let (run_opts, _, _) = mount_line(&info, "/run").expect("/run mounted");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(has_opt(&run_opts, o), "/run lacks {o}: {run_opts}");
    }
    let (root_opts, _, root_super) = mount_line(&info, "/root").expect("/root mounted");
    assert!(
        has_opt(&root_opts, "ro") && has_opt(&root_opts, "noexec"),
        "{root_opts}"
    );
    assert!(!has_opt(&root_opts, "nosuid"), "{root_opts}");
    assert!(has_opt(&root_super, "mode=700"), "{root_super}");
    let (proc_opts, proc_fs, _) = mount_line(&info, "/proc").expect("/proc mounted");
    assert_eq!(proc_fs, "proc");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(has_opt(&proc_opts, o), "/proc lacks {o}: {proc_opts}");
    }
    sb.assert_state_empty(&out);
}

/// The network and IPC namespaces of another process (`unshare --net --ipc sleep`) are joined
/// by path: the container's namespace files have their inodes. (Not `ip netns add`: its mount
/// on /run/netns would show in the host snapshots of tests running alongside.)
#[test]
fn namespaces_are_joined_by_path() {
    need_root();
    let sb = Sandbox::new("oci-join");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let owner = Kill(
        Command::new("unshare")
            .args(["--net", "--ipc", "sleep", "60"])
            .spawn()
            .unwrap(),
    );
    let ns = |kind: &str| PathBuf::from(format!("/proc/{}/ns/{kind}", owner.0.id()));
    let ino = |p: &Path| fs::metadata(p).unwrap().ino().to_string();
    // Wait until unshare has exec'd sleep in its new namespaces.
    let start = std::time::Instant::now();
    while ino(&ns("net")) == ino(Path::new("/proc/self/ns/net")) {
        assert!(start.elapsed() < TIMEOUT, "unshare did not start");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let c = config(
        "stat -L -c %i /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts",
        |c| {
            c["linux"]["namespaces"] = json!([
                {"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                {"type": "network", "path": ns("net")},
                {"type": "ipc", "path": ns("ipc")}
            ]);
        },
    );
    let dir = bundle(&sb, "b", &c);
    let plan = sb.launch(&["plan", "--bundle", dir.to_str().unwrap()]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains(&format!("setns(open({:?}), CLONE_NEWNET)", ns("net"))),
        "{plan}"
    );
    let out = run_bundle(&sb, &dir);
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines[0], ino(&ns("net")), "net\n{out}");
    assert_eq!(lines[1], ino(&ns("ipc")), "ipc\n{out}");
    assert_ne!(lines[2], ino(&ns("uts")), "uts is a new one\n{out}");
    sb.assert_state_empty(&out);
}

/// A new user namespace with the bundle's uid and gid mappings.
#[test]
fn user_namespace_gets_the_bundles_mappings() {
    need_root();
    let sb = Sandbox::new("oci-userns");
    let c = config("cat /proc/self/uid_map /proc/self/gid_map; id -u", |c| {
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "user"}
        ]);
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 1000}]);
    });
    let dir = bundle(&sb, "b", &c);
    let out = run_bundle(&sb, &dir);
    out.expect_code(0);
    assert_eq!(
        out.lines(),
        ["0 200000 65536", "0 300000 1000", "0"],
        "{out}"
    );
    sb.assert_state_empty(&out);
}

/// linux.resources land in the container's cgroups under cgroupsPath (v1 files on a hybrid
/// host, v2 files on pure v2): cpu quota/period, shares (through the v2 weight), memory, pids.
#[test]
fn resources_are_written_to_the_containers_cgroups() {
    need_root();
    let sb = Sandbox::new("oci-limits");
    let cg = Cgroups::new();
    let c = config("cat /proc/self/cgroup; echo READY; read x", |c| {
        // `/PARENT/NAME`: launch takes the parent and names the group NAME-ID itself.
        c["linux"]["cgroupsPath"] = json!(format!("/{}/limited", cg.parent));
        c["linux"]["resources"] = json!({
            "cpu": {"quota": 30000, "period": 100000, "shares": 512},
            "memory": {"limit": 67108864},
            "pids": {"limit": 32}
        });
    });
    let dir = bundle(&sb, "limited", &c);
    let host = Host::snapshot();
    let mut running = Running::start(&sb, &["run", "--bundle", dir.to_str().unwrap()]);
    let lines = running.wait_for("READY");
    let group = group_of(&lines, "cpu").unwrap_or_default();
    let v2 = pure_v2();
    let read = |ctl: &str, file: &str| {
        let root = if v2 {
            Some(std::path::PathBuf::from("/sys/fs/cgroup"))
        } else {
            v1_root(ctl)
        };
        root.and_then(|r| fs::read_to_string(r.join(&group).join(file)).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    // What the kernel reports on the layout this runs on: v1 files here, v2 in the VM.
    let got: Vec<String> = if v2 {
        vec![
            read("cpu", "cpu.max"),
            read("cpu", "cpu.weight"),
            read("memory", "memory.max"),
            read("pids", "pids.max"),
        ]
    } else {
        vec![
            read("cpu", "cpu.cfs_period_us"),
            read("cpu", "cpu.cfs_quota_us"),
            read("cpu", "cpu.shares"),
            read("memory", "memory.limit_in_bytes"),
            read("pids", "pids.max"),
        ]
    };
    let out = running.finish("\n");
    assert!(
        group.starts_with(&format!("{}/limited-", cg.parent)),
        "not in its cgroup: {lines:?}\n{out}"
    );
    let weight = launch::lower::cgroups::shares_to_weight(512);
    let expected: Vec<String> = if v2 {
        vec![
            "30000 100000".into(),
            weight.to_string(),
            "67108864".into(),
            "32".into(),
        ]
    } else {
        vec![
            "100000".into(),
            "30000".into(),
            launch::lower::cgroups::weight_to_shares(weight).to_string(),
            "67108864".into(),
            "32".into(),
        ]
    };
    assert_eq!(got, expected, "{group}\n{out}");
    out.expect_code(0);
    host.assert_clean(&sb, Some(&cg), &out);
}

/// The instance name is the bundle directory's, sanitized; `org.launch.name` overrides it.
#[test]
fn the_name_comes_from_the_directory_or_the_annotation() {
    let sb = Sandbox::new("oci-name");
    let c = config("true", |_| {});
    let dir = bundle(&sb, "my bundle!", &c);
    let plan = sb.plan_bundle(&dir);
    assert_eq!(plan["name"], "my-bundle-");
    let c = config("true", |c| {
        c["annotations"] =
            json!({"org.launch.name": "web", "com.example.other": "kept as metadata"});
    });
    let dir = bundle(&sb, "other", &c);
    assert_eq!(sb.plan_bundle(&dir)["name"], "web");
}

/// An invalid bundle exits 2 before anything runs, with every problem at its pointer and
/// line:column; a valid one validates.
#[test]
fn invalid_bundles_exit_2_with_every_problem() {
    let sb = Sandbox::new("oci-invalid");
    let c = config("true", |c| {
        c["process"]["cwd"] = json!("tmp");
        c["linux"]["resources"] = json!({"memory": {"limit": 1}});
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALOW"});
    });
    let dir = bundle(&sb, "b", &c);
    let out = run_bundle(&sb, &dir);
    out.expect_code(2);
    for needle in [
        "/process/cwd",
        "/linux/resources/memory/limit",
        "/linux/seccomp",
        "b/config.json:",
        "error: 3 problems",
    ] {
        assert!(out.stderr.contains(needle), "no {needle:?}\n{out}");
    }
    sb.assert_state_empty(&out);
    let v = sb.launch(&[
        "validate",
        "--bundle",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    v.expect_code(2);
    let j: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(j["diagnostics"].as_array().unwrap().len(), 3, "{v}");
    assert!(j["diagnostics"][0]["line"].as_u64().unwrap() > 1, "{v}");

    let good = bundle(&sb, "good", &config("true", |_| {}));
    let v = sb.launch(&["validate", "--bundle", good.to_str().unwrap()]);
    v.expect_code(0);
    assert!(v.stdout.starts_with("ok: "), "{v}");
    let missing = sb.launch(&["run", "--bundle", sb.dir.join("nope").to_str().unwrap()]);
    missing.expect_code(2);
}

trait PlanBundle {
    fn plan_bundle(&self, dir: &Path) -> Value;
}

impl PlanBundle for Sandbox {
    fn plan_bundle(&self, dir: &Path) -> Value {
        let out = self.launch(&[
            "plan",
            "--format",
            "json",
            "--bundle",
            dir.to_str().unwrap(),
        ]);
        out.expect_code(0);
        serde_json::from_str(&out.stdout).unwrap()
    }
}

// --- diagnostics (no root, a fake host) -------------------------------------------------------

/// The fake bundle directory of the snapshot tests.
const BUNDLE: &str = "/bundles/app";

fn fake_host() -> FakeHost {
    hybrid()
        .with_path(format!("{BUNDLE}/rootfs"), PathKind::Dir)
        .with_path(format!("{BUNDLE}/data"), PathKind::Dir)
        .with_path(format!("{BUNDLE}/data/file"), PathKind::File)
        .with_path("/run/netns/blue", PathKind::File)
}

fn fake_host_v2() -> FakeHost {
    crate::common::v2()
        .with_path(format!("{BUNDLE}/rootfs"), PathKind::Dir)
        .with_path(format!("{BUNDLE}/data"), PathKind::Dir)
        .with_path(format!("{BUNDLE}/data/file"), PathKind::File)
        .with_path("/run/netns/blue", PathKind::File)
}

fn problems(text: &str) -> (Source, Vec<launch::diag::Problem>) {
    let src = Source::from_text("app/config.json", Path::new(BUNDLE), text);
    let p = import::spec(&src, &fake_host()).expect_err("the bundle was accepted");
    for p in &p {
        assert!(p.help.is_some() && !p.label.is_empty(), "{p:?}");
        assert!(
            p.message.starts_with('/') || p.code == "launch::oci::json",
            "no pointer: {p:?}"
        );
    }
    (src, p)
}

fn snapshot(name: &str, text: &str) {
    let (src, p) = problems(text);
    insta::assert_snapshot!(name, render_text(&src, &p, false, 100));
}

/// Several problems of every kind, reported in one run, in text order.
#[test]
fn diag_many_problems() {
    snapshot(
        "oci-many-problems",
        r#"{
  "ociVersion": "2.0.0",
  "process": {
    "user": {"uid": 0, "gid": 0},
    "args": [],
    "env": ["PATH=/bin", "NOEQUALS"],
    "cwd": "relative",
    "rlimits": [{"type": "RLIMIT_NOPE", "soft": 2, "hard": 1}]
  },
  "root": {"path": "missing"},
  "hostname": "no_underscores",
  "mounts": [
    {"destination": "/proc", "type": "proc"},
    {"destination": "/proc", "type": "sysfs"},
    {"destination": "/fs", "type": "cgroup", "options": ["strictatime"]},
    {"destination": "/tmp", "type": "tmpfs", "options": ["size=lots", "mode=999"]},
    {"destination": "/data", "type": "bind", "source": "nowhere", "options": ["rbind"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "pid"}, {"type": "net"}, {"type": "network", "path": "/run/netns/red"}],
    "resources": {
      "memory": {"limit": 1024, "swap": 512},
      "cpu": {"quota": 10, "period": 100000},
      "unified": {"memory.high": "1000000", "cpu.max": "1 2"}
    },
    "cgroupsPath": "system.slice:launch:app",
    "sysctl": {"net.ipv4.ip_forward": "1"},
    "rootfsPropagation": "shared"
  }
}
"#,
    );
}

/// Fields launch does not know are found although oci-spec's serde would drop them, with a
/// suggestion when one is close.
#[test]
fn diag_unknown_fields() {
    snapshot(
        "oci-unknown-fields",
        r#"{
  "ociVersion": "1.2.0",
  "hostnme": "typo",
  "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/true"], "cwd": "/", "enviroment": []},
  "root": {"path": "rootfs", "readOnly": true},
  "linux": {
    "namespaces": [{"type": "mount", "flags": 1}],
    "resources": {"memory": {"limit": 67108864, "limt": 1}}
  },
  "annotations": {"org.launch.nmae": "x", "org.launch.init": "yes", "vendor.key": "ignored"},
  "extra": {"anything": [1, 2, 3]}
}
"#,
    );
}

/// `runc spec`'s own config: its security fields import; its cgroup mount and devpts `gid=5`
/// are refused, each by name.
#[test]
fn diag_runc_spec_output() {
    snapshot("oci-runc-spec", RUNC_SPEC);
}

/// Wrong types, each at its value, all at once.
#[test]
fn diag_bad_types() {
    snapshot(
        "oci-bad-types",
        r#"{
  "ociVersion": 1,
  "process": {
    "terminal": "yes",
    "user": {"uid": -1, "gid": "0", "additionalGids": "5"},
    "args": "/bin/sh",
    "env": [1],
    "cwd": "/"
  },
  "root": {"path": "rootfs", "readonly": "true"},
  "mounts": {"destination": "/proc"},
  "linux": {
    "namespaces": [{"type": "mount"}],
    "resources": {"memory": {"limit": "64M"}, "pids": {"limit": 1.5}}
  }
}
"#,
    );
}

/// A JSON syntax error is one problem at serde_json's line and column.
#[test]
fn diag_json_syntax() {
    snapshot(
        "oci-json-syntax",
        "{\n  \"ociVersion\": \"1.2.0\",\n  \"root\": {\"path\": \"rootfs\",},\n}\n",
    );
}

/// `validate --format json` form: line and column of each pointer.
#[test]
fn diag_json_output_has_line_and_column() {
    let (src, p) = problems(
        "{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": {\"user\": {\"uid\": 0, \"gid\": 0}, \"args\": [\"sh\"], \"cwd\": \"/\",\n    \"selinuxLabel\": \"system_u:system_r:container_t:s0\"},\n  \"root\": {\"path\": \"rootfs\"},\n  \"linux\": {\"namespaces\": [{\"type\": \"mount\"}],\n    \"resources\": {\"pids\": {\"limit\": 0}}}\n}\n",
    );
    insta::assert_snapshot!("oci-json-output", render_json(&src, &p));
}

/// Security fields launch cannot apply as written, each at its field: capability sets no choice
/// gives, an unknown capability, a misspelt syscall (at its line and column in config.json),
/// device rules, a relative masked path.
#[test]
fn diag_security_fields() {
    snapshot(
        "oci-security",
        r#"{
  "ociVersion": "1.2.0",
  "process": {
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/true"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_SYS_ADMN"],
      "effective": ["CAP_KILL"],
      "permitted": ["CAP_KILL", "CAP_CHOWN"],
      "inheritable": ["CAP_KILL"]
    }
  },
  "root": {"path": "rootfs"},
  "linux": {
    "namespaces": [{"type": "mount"}],
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["read", "mont"], "action": "SCMP_ACT_ALLOW"}]
    },
    "maskedPaths": ["proc/kcore"],
    "resources": {"devices": [{"allow": false, "access": "rwm"},
                              {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rw"}]}
  }
}
"#,
    );
}

/// A bundle's security part is read as runc reads it: absent fields confine nothing (no
/// capability at all, no no_new_privs, no filter, nothing masked); present ones are the Spec's.
#[test]
fn security_fields_import_as_runc_reads_them() {
    let host = fake_host();
    let parse = |c: &Value| {
        let text = serde_json::to_string_pretty(c).unwrap();
        let src = Source::from_text("app/config.json", Path::new(BUNDLE), &text);
        import::spec(&src, &host).unwrap_or_else(|p| panic!("{p:#?}"))
    };
    let bare = json!({
        "ociVersion": "1.2.0",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/true"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "mount"}]}
    });
    let s = parse(&bare).security;
    assert_eq!(s.capabilities, Some(CapChoice::List(CapSet::EMPTY)));
    assert!(!s.no_new_privileges);
    assert_eq!(s.seccomp, Seccomp::Unconfined);
    assert_eq!(s.masked_paths, Paths::List(vec![]));
    assert_eq!(s.readonly_paths, Paths::List(vec![]));

    // A user other than root holding what it names, as ambient too; the default set otherwise.
    let raw = CapSet::of(&[Capability::CAP_NET_RAW]);
    let mut c = bare.clone();
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c["process"]["noNewPrivileges"] = json!(true);
    c["process"]["capabilities"] = json!({
        "bounding": ["CAP_NET_RAW"], "effective": ["CAP_NET_RAW"], "permitted": ["CAP_NET_RAW"],
        "inheritable": ["CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]
    });
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            // Docker's conditions are decided for the capabilities kept.
            {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_NET_RAW"]}},
            {"names": ["reboot"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
        ]
    });
    c["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc//keys/"]);
    let s = parse(&c).security;
    assert_eq!(s.capabilities, Some(CapChoice::List(raw)));
    assert!(s.no_new_privileges);
    assert!(s.seccomp_log);
    let Seccomp::Custom(p) = &s.seccomp else {
        panic!("{:?}", s.seccomp)
    };
    assert_eq!(p.name, "linux.seccomp");
    assert_eq!(p.default_action, launch::sys::seccomp::Action::Allow);
    let names: Vec<&str> = p
        .rules
        .iter()
        .flat_map(|r| r.syscalls.iter().map(|s| s.as_ref()))
        .collect();
    assert_eq!(names, ["mount", "ptrace"]);
    assert_eq!(
        s.masked_paths,
        Paths::List(vec!["/proc/kcore".into(), "/proc/keys".into()])
    );
    c["process"]["capabilities"] = json!({"bounding": launch::sys::caps::DEFAULT.names()});
    assert_eq!(parse(&c).security.capabilities, Some(CapChoice::Default));
}

/// `runc spec` (runc 1.2), as written.
const RUNC_SPEC: &str = r#"{
	"ociVersion": "1.2.0",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			},
			{
				"type": "cgroup"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/kcore",
			"/sys/firmware"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/sys"
		]
	}
}
"#;

// --- from_oci on its own ----------------------------------------------------------------------

/// An in-memory oci-spec config converts field by field into the Spec.
#[test]
fn from_oci_converts_every_group() {
    let oci: oci_spec::runtime::Spec = serde_json::from_value(json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 1000, "gid": 100, "additionalGids": [10]},
            "args": ["/bin/app", "--flag"],
            "env": ["A=1", "B=x=y"],
            "cwd": "/srv/./app/",
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 18446744073709551615u64}]
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "h",
        "domainname": "d.example",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=64m", "mode=1777"]},
            {"destination": "/etc/file", "type": "none", "source": "data/file", "options": ["bind", "ro"]},
            {"destination": "/data", "source": "/bundles/app/data", "options": ["rbind", "nosuid"]}
        ],
        "annotations": {
            "org.launch.init": "true",
            "org.launch.stop-signal": "INT",
            "org.launch.stop-timeout-ms": "2500",
            "org.launch.multiple": "true",
            "org.launch.pivot-root": "false",
            "org.launch.user-name": "app"
        },
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                {"type": "network", "path": "/run/netns/blue"}, {"type": "user"}
            ],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "cgroupsPath": "/ci/jobs/app",
            "rootfsPropagation": "rprivate",
            "resources": {
                "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432},
                "cpu": {"quota": 50000, "period": 200000, "shares": 1024, "cpus": "0-1", "mems": "0"},
                "pids": {"limit": 100},
                "blockIO": {
                    "weight": 500,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]
                },
                "unified": {"cpu.weight": "77"}
            }
        }
    }))
    .unwrap();
    // v2: swap can be limited.
    let host = fake_host_v2();
    let err = import::from_oci(&oci, Path::new(BUNDLE), &host).unwrap_err();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].message.starts_with("/linux/namespaces/4"), "{err:?}");

    let mut v = serde_json::to_value(&oci).unwrap();
    v["linux"]["namespaces"][3] = json!({"type": "network"});
    let oci: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
    let s = import::from_oci(&oci, Path::new(BUNDLE), &host).unwrap();
    assert_eq!(s.name, "app");
    assert_eq!(s.hostname.as_deref(), Some("h"));
    assert_eq!(s.domainname.as_deref(), Some("d.example"));
    assert_eq!(
        s.root.source,
        RootSource::Path {
            path: "/bundles/app/rootfs".into()
        }
    );
    assert!(s.root.readonly && !s.root.pivot_root);
    let p = &s.process;
    assert_eq!(p.args, ["/bin/app", "--flag"]);
    assert_eq!(p.env.get("B").map(String::as_str), Some("x=y"));
    assert_eq!(p.env.len(), 2);
    assert_eq!(p.cwd, Path::new("/srv/app"));
    assert_eq!(
        (p.user.uid, p.user.gid, p.user.groups.clone()),
        (1000, 100, vec![10])
    );
    assert_eq!(p.user.name.as_deref(), Some("app"));
    assert_eq!((p.rlimits[0].soft, p.rlimits[0].hard), (Some(100), None));
    assert_eq!(p.terminal, Some(true));
    assert!(p.init);
    assert_eq!(
        (p.stop.signal.as_str(), p.stop.timeout_ms),
        ("SIGINT", 2500)
    );
    assert!(s.multiple);
    let ns = &s.namespaces;
    assert_eq!(
        (
            &ns.pid, &ns.mount, &ns.uts, &ns.ipc, &ns.net, &ns.cgroup, &ns.time
        ),
        (
            &Namespace::New,
            &Namespace::New,
            &Namespace::New,
            &Namespace::Host,
            &Namespace::New,
            &Namespace::Host,
            &Namespace::Host
        )
    );
    let line = IdMapLine {
        inside: 0,
        outside: 100000,
        count: 65536,
    };
    assert_eq!(
        ns.user,
        UserNamespace::New(IdMaps::Explicit {
            uid: vec![line],
            gid: vec![line]
        })
    );
    let l = &s.limits;
    assert_eq!(l.parent, Path::new("ci/jobs"));
    assert_eq!(
        l.cpu,
        Some(CpuQuota {
            quota_us: 50000,
            period_us: 200000
        })
    );
    // unified wins over shares, as in runc.
    assert_eq!(l.cpu_weight, Some(77));
    assert_eq!(
        (l.cpuset_cpus.as_deref(), l.cpuset_mems.as_deref()),
        (Some("0-1"), Some("0"))
    );
    assert_eq!(
        (l.memory, l.memory_swap, l.memory_reservation, l.pids),
        (Some(64 << 20), Some(128 << 20), Some(32 << 20), Some(100))
    );
    assert_eq!(
        l.io_weight,
        Some(launch::lower::cgroups::blkio_weight_to_io(500))
    );
    assert_eq!(
        l.io,
        [IoDevice {
            major: 8,
            minor: 0,
            read_bps: Some(1 << 20),
            write_bps: None,
            read_iops: None,
            write_iops: Some(100)
        }]
    );
    let m = |kind, target: &str, ro, nosuid, nodev, noexec| Mount {
        kind,
        target: target.into(),
        readonly: ro,
        nosuid,
        nodev,
        noexec,
        atime: None,
    };
    assert_eq!(
        s.mounts,
        [
            m(MountKind::Proc, "/proc", false, true, true, true),
            m(
                MountKind::Tmpfs {
                    size: Some(64 << 20),
                    mode: Some(0o1777)
                },
                "/tmp",
                false,
                false,
                false,
                false
            ),
            m(
                MountKind::Bind {
                    source: "/bundles/app/data/file".into(),
                    file: true,
                    recursive: false
                },
                "/etc/file",
                true,
                false,
                false,
                false
            ),
            m(
                MountKind::Bind {
                    source: "/bundles/app/data".into(),
                    file: false,
                    recursive: true
                },
                "/data",
                false,
                true,
                false,
                false
            ),
        ]
    );
}

/// oci-spec's own default config gives root inheritable and ambient capabilities, which launch
/// never gives root: each set is refused at its field. Its other security fields import.
#[test]
fn from_oci_refuses_the_default_configs_inheritable_capabilities() {
    let oci = oci_spec::runtime::Spec::default();
    let host = fake_host();
    let err = import::from_oci(&oci, Path::new(BUNDLE), &host).unwrap_err();
    let security: Vec<(&str, String)> = err
        .iter()
        .filter(|p| p.message.contains("capabilit") || p.code.contains("security"))
        .map(|p| {
            (
                p.code,
                p.message.split(':').next().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        security,
        [
            (
                "launch::oci::capabilities",
                "/process/capabilities/inheritable".to_string()
            ),
            (
                "launch::oci::capabilities",
                "/process/capabilities/ambient".to_string()
            ),
        ],
        "{err:#?}"
    );
}

/// What `launch export oci` writes for other runtimes to run the bundle as launch does (every
/// capability, launch's minimal /dev as mounts and devices, a device rule allowing all, rprivate)
/// is accepted, and the /dev mounts dropped: launch makes that /dev itself. One capability less
/// is refused: launch would give it anyway.
#[test]
fn what_launch_does_anyway_is_accepted() {
    let caps: Vec<String> = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
    .iter()
    .map(|c| format!("CAP_{c}"))
    .collect();
    let dev = |name: &str, major: u32, minor: u32| {
        json!({"path": format!("/dev/{name}"), "type": "c", "major": major, "minor": minor,
               "fileMode": 0o666, "uid": 0, "gid": 0})
    };
    let mut c = json!({
        "ociVersion": "1.1.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/true"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                             "inheritable": [], "ambient": []},
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "noexec", "mode=0755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "nodev", "noexec", "mode=1777"]},
            {"destination": "/data", "type": "bind", "source": "/bundles/app/data",
             "options": ["rbind", "rro", "rnosuid"]}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}],
            "devices": [dev("null", 1, 3), dev("zero", 1, 5), dev("full", 1, 7),
                        dev("random", 1, 8), dev("urandom", 1, 9), dev("tty", 5, 0)],
            "resources": {"devices": [{"allow": true, "access": "rwm"}]},
            "rootfsPropagation": "rprivate",
            "cgroupsPath": "/launch/app"
        }
    });
    let host = fake_host();
    let oci: oci_spec::runtime::Spec = serde_json::from_value(c.clone()).unwrap();
    let s = import::from_oci(&oci, Path::new(BUNDLE), &host).unwrap();
    let targets: Vec<_> = s.mounts.iter().map(|m| m.target.clone()).collect();
    assert_eq!(targets, [PathBuf::from("/proc"), PathBuf::from("/data")]);
    assert!(s.mounts[1].readonly && s.mounts[1].nosuid);
    assert_eq!(s.limits.parent, Path::new("launch"));

    // Every capability held by root, nothing inheritable: the list of all of them.
    assert_eq!(s.security.capabilities, Some(CapChoice::List(CapSet::ALL)));
    assert!(!s.security.no_new_privileges);

    // One capability less in `effective` than in `permitted`: launch cannot give that.
    c["process"]["capabilities"]["effective"]
        .as_array_mut()
        .unwrap()
        .pop();
    let oci: oci_spec::runtime::Spec = serde_json::from_value(c).unwrap();
    let err = import::from_oci(&oci, Path::new(BUNDLE), &host).unwrap_err();
    assert_eq!(err.len(), 1, "{err:?}");
    assert_eq!(err[0].code, "launch::oci::capabilities");
    assert!(
        err[0]
            .message
            .starts_with("/process/capabilities/effective:"),
        "{err:?}"
    );
}

/// `runc spec`'s config less what launch cannot mount yet (the cgroup mount on /sys/fs/cgroup,
/// devpts gid=5; and its /dev tmpfs, so that launch makes /dev itself, with the default device
/// nodes).
fn runc_spec_that_launch_mounts() -> Value {
    let mut c: Value = serde_json::from_str(RUNC_SPEC).unwrap();
    let mounts = c["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["type"] != "cgroup" && m["destination"] != "/dev");
    for m in mounts.iter_mut() {
        if let Some(o) = m["options"].as_array_mut() {
            o.retain(|o| o != "strictatime" && o != "gid=5");
        }
    }
    c
}

/// Its security fields are read as runc reads them: the three capabilities as the list root
/// keeps, no_new_privs, its three masked and two read-only paths, no seccomp filter; the
/// deny-all device rule is what launch's minimal /dev holds anyway.
#[test]
fn runc_specs_security_fields_import() {
    let text = serde_json::to_string_pretty(&runc_spec_that_launch_mounts()).unwrap();
    let src = Source::from_text("app/config.json", Path::new(BUNDLE), &text);
    let s = import::spec(&src, &fake_host()).unwrap_or_else(|p| panic!("{p:#?}"));
    let sec = &s.security;
    assert_eq!(
        sec.capabilities,
        Some(CapChoice::List(CapSet::of(&[
            Capability::CAP_AUDIT_WRITE,
            Capability::CAP_KILL,
            Capability::CAP_NET_BIND_SERVICE
        ])))
    );
    assert!(sec.no_new_privileges);
    assert_eq!(sec.seccomp, Seccomp::Unconfined);
    assert!(!sec.seccomp_log);
    assert_eq!(
        sec.masked_paths,
        Paths::List(
            ["/proc/acpi", "/proc/kcore", "/sys/firmware"]
                .map(PathBuf::from)
                .to_vec()
        )
    );
    assert_eq!(
        sec.readonly_paths,
        Paths::List(["/proc/bus", "/proc/sys"].map(PathBuf::from).to_vec())
    );
}

/// `runc spec`'s config, less what launch cannot mount yet, runs: launch makes /dev itself,
/// with the default device nodes; the process gets the three capabilities, no_new_privs, the
/// masked and read-only paths.
#[test]
fn runc_spec_less_the_documented_fields_runs() {
    need_root();
    let sb = Sandbox::new("oci-runc");
    let mut c = runc_spec_that_launch_mounts();
    let p = c["process"].as_object_mut().unwrap();
    p.insert("terminal".into(), json!(false));
    p.insert(
        "args".into(),
        json!([
            "/bin/sh",
            "-c",
            "hostname; echo x > /dev/null && ls /dev | tr '\\n' ' '; echo; \
             grep -c ' /dev/pts ' /proc/self/mountinfo; \
             grep -E '^(CapBnd|CapEff|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; \
             grep -c ' /proc/acpi ' /proc/self/mountinfo; \
             (echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1 | grep -o 'Read-only file system'"
        ]),
    );
    c["root"]["path"] = json!(rootfs_dir());
    let dir = bundle(&sb, "runc", &c);
    let out = run_bundle(&sb, &dir);
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines[0], "runc", "{out}");
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx",
    ] {
        assert!(
            lines[1].split(' ').any(|n| n == node),
            "/dev lacks {node}\n{out}"
        );
    }
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29).
    let caps = "0000000020000420";
    let status: Vec<String> = lines[3..9]
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        status,
        [
            "CapInh: 0000000000000000".to_string(),
            format!("CapEff: {caps}"),
            format!("CapBnd: {caps}"),
            "CapAmb: 0000000000000000".to_string(),
            "NoNewPrivs: 1".to_string(),
            "Seccomp: 0".to_string(),
        ],
        "{out}"
    );
    // /proc/acpi masked (an empty tmpfs over it), /proc/sys read-only.
    assert_eq!(&lines[9..], ["1", "Read-only file system"], "{out}");
    sb.assert_state_empty(&out);
}
