//! `launch doctor` on this real host, as root and as `nobody`. Expectations come from the same
//! kernel files the doctor reads, never from what this machine happens to have.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use crate::common::repo;
use crate::fixtures::*;

const NOBODY: u32 = 65534;

/// Every check id, in order (docs/doctor.md).
const IDS: &[&str] = &[
    "privilege",
    "userns",
    "subuid",
    "newuidmap",
    "cgroup.layout",
    "cgroup.cpu",
    "cgroup.cpuset",
    "cgroup.io",
    "cgroup.memory",
    "cgroup.pids",
    "cgroup.delegation",
    "overlayfs",
    "idmapped",
    "seccomp",
    "pasta",
    "slirp4netns",
    "tun",
    "nft",
    "state_root",
    "store_root",
];

fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"))
}

fn check<'v>(v: &'v serde_json::Value, id: &str) -> &'v serde_json::Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {v:#}"))
}

fn read_num(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A sandbox with `app.toml` that `nobody` can read.
fn sandbox(tag: &str, manifest: &str) -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new(tag);
    let m = sb.manifest(manifest);
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o644)).unwrap();
    (sb, m)
}

const HELLO: &str = "name = \"hello\"\n[rootfs]\nhost = true\nreadonly = true\n\
                     [process]\ncommand = [\"/bin/true\"]\n\
                     [[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n";

#[test]
fn doctor_as_root_for_an_example_that_runs_here() {
    need_root();
    let sb = Sandbox::new("doctor-root");
    let hello = repo().join("examples/manifests/hello.toml");
    let out = sb.launch(&["doctor", hello.to_str().unwrap()]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("result: it can run here"), "{out}");
    assert!(out.stdout.contains("ok    manifest "), "{out}");

    let out = sb.launch(&["doctor", "--format", "json", hello.to_str().unwrap()]);
    assert_eq!(out.code(), Some(0), "{out}");
    let v = json(&out);
    assert_eq!(v["format"], 1);
    assert_eq!(v["uid"], 0);
    assert_eq!(v["can_run"], true);
    let ids: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[..IDS.len()], *IDS);
    assert_eq!(ids[IDS.len()..], ["manifest"]);
    for c in v["checks"].as_array().unwrap() {
        let verdict = c["verdict"].as_str().unwrap();
        assert!(["ok", "warn", "fail", "n/a"].contains(&verdict), "{c}");
        assert!(c["fix"].is_array() && c["detail"].is_string(), "{c}");
    }
    assert_eq!(v["targets"][0]["blocked_by"], serde_json::json!([]));
    assert_eq!(check(&v, "privilege")["verdict"], "ok");
    assert_eq!(check(&v, "subuid")["verdict"], "n/a");

    // What the kernel says decides the verdicts.
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap();
    if fs.lines().any(|l| l.ends_with("\toverlay")) {
        assert_eq!(check(&v, "overlayfs")["verdict"], "ok");
    }
    let userns = read_num("/proc/sys/user/max_user_namespaces").unwrap_or(0) > 0;
    assert_eq!(check(&v, "userns")["verdict"] == "ok", userns, "{v:#}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(
        check(&v, "seccomp")["verdict"] == "ok",
        status.contains("Seccomp_filters:"),
        "{v:#}"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let any_cgroup = mountinfo
        .lines()
        .any(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "));
    assert_eq!(check(&v, "cgroup.layout")["verdict"] == "ok", any_cgroup);
}

#[test]
fn doctor_without_a_manifest_reports_each_kind() {
    need_root();
    let sb = Sandbox::new("doctor-kinds");
    let out = sb.launch(&["doctor", "--format", "json"]);
    let v = json(&out);
    let kinds: Vec<&str> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["container", "userns", "limits", "image", "bridge"]);
    let all = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["can_run"] == true && t["blocked_by"] == serde_json::json!([]));
    assert_eq!(v["can_run"], all);
    assert_eq!(out.code(), Some(if all { 0 } else { 1 }), "{out}");
    let text = sb.launch(&["doctor"]);
    assert_eq!(text.code(), out.code());
    assert!(
        text.stdout
            .starts_with("launch doctor: uid 0 (root) on Linux ")
    );
    for id in IDS {
        assert!(
            text.stdout
                .lines()
                .any(|l| l.get(6..).is_some_and(|r| r.starts_with(&format!("{id} ")))),
            "{id}\n{text}"
        );
    }
}

#[test]
fn doctor_exit_codes_for_bad_input_and_host_problems() {
    need_root();
    let (sb, m) = sandbox("doctor-bad", "name = \"x\"\n[rootfs]\nhost = true\n");
    let out = sb.launch(&["doctor", m.to_str().unwrap()]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("launch::manifest::missing_key"),
        "{out}"
    );
    let out = sb.launch(&["doctor", "no/such.toml"]);
    assert_eq!(out.code(), Some(2), "{out}");
    // A rootless mode asked of root: the manifest's own words, as a failed check with its fix.
    let pasta = sb.write(
        "pasta.toml",
        "name = \"p\"\n[rootfs]\nhost = true\n[namespaces]\nuser = true\n\
         [network]\nmode = \"pasta\"\n[process]\ncommand = [\"/bin/true\"]\n",
    );
    let out = sb.launch(&["doctor", "--format", "json", pasta.to_str().unwrap()]);
    assert_eq!(out.code(), Some(1), "{out}");
    let v = json(&out);
    let m = check(&v, "manifest");
    assert_eq!(m["verdict"], "fail");
    assert!(
        m["detail"]
            .as_str()
            .unwrap()
            .contains("launch::network::helper")
    );
    assert!(
        v["targets"][0]["needs"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("pasta"))
    );
}

/// `launch doctor --format json MANIFEST` as nobody, with a home in the sandbox and the
/// default state and store roots of a non-root user.
fn doctor_as_nobody(sb: &Sandbox, m: &std::path::Path) -> Out {
    let mut cmd = sb.command(&["doctor", "--format", "json", m.to_str().unwrap()]);
    cmd.uid(NOBODY)
        .gid(NOBODY)
        .env("HOME", &sb.dir)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("LAUNCH_STATE_ROOT")
        .env_remove("LAUNCH_STORE");
    sb.launch_with(cmd, &["doctor (as nobody)", m.to_str().unwrap()])
}

#[test]
fn doctor_as_nobody_says_what_fails_for_that_user() {
    need_root(); // to become nobody
    let (sb, m) = sandbox("doctor-nobody", HELLO);
    let out = doctor_as_nobody(&sb, &m);
    assert_eq!(out.code(), Some(1), "{out}");
    let v = json(&out);
    assert_eq!(v["uid"], NOBODY);
    assert_eq!(v["can_run"], false);
    // Without a user namespace, the manifest needs root: both say so, with the fix.
    let blocked = &v["targets"][0]["blocked_by"];
    assert!(
        blocked.as_array().unwrap().contains(&"privilege".into())
            && blocked.as_array().unwrap().contains(&"manifest".into()),
        "{v:#}"
    );
    let manifest = check(&v, "manifest");
    assert!(
        manifest["detail"]
            .as_str()
            .unwrap()
            .contains("launch::namespaces::privilege"),
        "{manifest}"
    );
    assert!(manifest["fix"][0].as_str().unwrap().contains("user = true"));
    assert_eq!(check(&v, "privilege")["verdict"], "warn");
    assert_eq!(check(&v, "idmapped")["verdict"], "n/a");
    assert_ne!(check(&v, "subuid")["verdict"], "n/a");
    // The unprivileged user-namespace switches, read here as the doctor reads them.
    let off = read_num("/proc/sys/user/max_user_namespaces") == Some(0)
        || read_num("/proc/sys/kernel/unprivileged_userns_clone") == Some(0)
        || read_num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1);
    if off {
        assert_eq!(check(&v, "userns")["verdict"], "fail", "{v:#}");
    }
    // Limits: root only (v1 hierarchies are root's; launch does not use a delegated subtree).
    assert_eq!(check(&v, "cgroup.delegation")["verdict"], "fail");
    // Its state root is /tmp/launch-65534 (no XDG_RUNTIME_DIR), which it may create.
    let state = check(&v, "state_root")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(state.contains("/tmp/launch-65534"), "{state}");

    // With `user = true` the same container is nobody's to run, if the kernel lets nobody
    // create user namespaces.
    let rootless = HELLO.replace("[process]", "[namespaces]\nuser = true\n[process]");
    let m = sb.write("rootless.toml", &rootless);
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = doctor_as_nobody(&sb, &m);
    let v = json(&out);
    let userns_ok = check(&v, "userns")["verdict"] == "ok";
    assert!(!(off && userns_ok), "{v:#}");
    assert_eq!(
        v["targets"][0]["needs"],
        serde_json::json!(["userns", "seccomp", "state_root", "manifest"])
    );
    let state_ok = check(&v, "state_root")["verdict"] == "ok";
    let seccomp_ok = check(&v, "seccomp")["verdict"] == "ok";
    let can = userns_ok && state_ok && seccomp_ok && check(&v, "manifest")["verdict"] == "ok";
    assert_eq!(out.code(), Some(if can { 0 } else { 1 }), "{out}");
}
