//! Rootless done right: a non-root launcher maps a full range of ids through newuidmap and
//! newgidmap (/etc/subuid, /etc/subgid), and applies limits in a cgroup v2 subtree delegated
//! to it. Plans and diagnostics against fake hosts; then real runs as a test user made for the
//! test (useradd, one line of its own in /etc/subuid and /etc/subgid, all removed on drop,
//! panic or not). On this hybrid host the limits test asserts the diagnostic a non-root user
//! gets; in the pure v2 guest (scripts/vm/test-v2.sh) it makes a delegated subtree and runs.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use launch::cli::plan_for;
use launch::host::FakeHost;
use launch::plan::{Action, HostAction, render_text};

use crate::common::{host, hybrid};
use crate::fixtures::*;

const BASE: &str = "name = \"rl\"\n[rootfs]\nhost = true\nreadonly = true\n\
                    [process]\ncommand = [\"/bin/true\"]\n";

fn src(text: &str) -> launch::manifest::Source {
    launch::manifest::Source::from_text("rl.toml", Path::new("/"), text)
}

fn codes(text: &str, h: &FakeHost) -> Vec<launch::diag::Problem> {
    plan_for(&src(text), h).unwrap_err()
}

fn host_actions(plan: &launch::plan::Plan) -> Vec<&HostAction> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Host(h) => Some(h),
            Action::Container(_) => None,
        })
        .collect()
}

/// `user = true` without root, with subordinate ids: root is the caller, 1-65536 are the
/// subordinate ids, mapped by newuidmap and newgidmap (argv in the plan, no "deny" before
/// newgidmap).
#[test]
fn user_true_maps_the_full_range_through_newuidmap() {
    let h = host(FakeHost::hybrid()).rootless();
    let plan = plan_for(&src(&format!("{BASE}[namespaces]\nuser = true\n")), &h).unwrap();
    let acts = host_actions(&plan);
    let helpers: Vec<&Vec<String>> = acts
        .iter()
        .filter_map(|a| match a {
            HostAction::IdMapHelper { argv } => Some(argv),
            _ => None,
        })
        .collect();
    assert_eq!(
        helpers,
        [
            &[
                "/usr/bin/newuidmap",
                "{pid}",
                "0",
                "1000",
                "1",
                "1",
                "100000",
                "65536"
            ]
            .map(String::from)
            .to_vec(),
            &[
                "/usr/bin/newgidmap",
                "{pid}",
                "0",
                "1000",
                "1",
                "1",
                "100000",
                "65536"
            ]
            .map(String::from)
            .to_vec(),
        ]
    );
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, HostAction::WriteIdMap { .. })),
        "nothing written directly: {acts:#?}"
    );
    insta::assert_snapshot!("plan-rootless-full-range", render_text(&plan));
}

/// Without subordinate ids (or without the helpers), `user = true` maps the caller alone,
/// written directly after denying setgroups, as before.
#[test]
fn without_subordinate_ids_only_the_callers_id_is_mapped() {
    let mut h = host(FakeHost::hybrid()).rootless();
    h.facts.subids.uid.clear();
    let plan = plan_for(&src(&format!("{BASE}[namespaces]\nuser = true\n")), &h).unwrap();
    let writes: Vec<(String, String)> = host_actions(&plan)
        .iter()
        .filter_map(|a| match a {
            HostAction::WriteIdMap { path, value } => {
                Some((path.display().to_string(), value.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        writes,
        [
            ("/proc/{pid}/setgroups".into(), "deny".into()),
            ("/proc/{pid}/uid_map".into(), "0 1000 1\n".into()),
            ("/proc/{pid}/gid_map".into(), "0 1000 1\n".into()),
        ]
    );
}

fn explicit(outside: u32, count: u32) -> String {
    format!(
        "{BASE}[namespaces]\nuser = {{ uid_map = [{{ inside = 0, outside = 1000, count = 1 }}, \
         {{ inside = 1, outside = {outside}, count = {count} }}], gid_map = [{{ inside = 0, \
         outside = 1000, count = 1 }}, {{ inside = 1, outside = {outside}, count = {count} }}] }}\n"
    )
}

/// Explicit maps without root: accepted inside the subordinate ranges, refused outside them
/// (naming /etc/subuid and usermod), and refused without the helpers (naming `uidmap`).
#[test]
fn explicit_maps_are_checked_against_subordinate_ids() {
    let h = host(FakeHost::hybrid()).rootless();
    let plan = plan_for(&src(&explicit(100_000, 1000)), &h).unwrap();
    assert!(
        host_actions(&plan)
            .iter()
            .any(|a| matches!(a, HostAction::IdMapHelper { argv } if argv.join(" ").ends_with("0 1000 1 1 100000 1000"))),
    );

    let p = codes(&explicit(165_000, 1000), &h);
    assert_eq!(p[0].code, "launch::idmap::unprivileged", "{p:#?}");
    let text = format!("{p:?}");
    assert!(
        text.contains("165000-165999") && text.contains("100000-165535"),
        "{text}"
    );
    let help = p[0].help.as_deref().unwrap();
    assert!(
        help.contains("/etc/subuid") && help.contains("usermod --add-subuids"),
        "{help}"
    );

    let mut no_helpers = h.clone();
    no_helpers.facts.subids.newuidmap = None;
    let p = codes(&explicit(100_000, 1000), &no_helpers);
    assert_eq!(p[0].code, "launch::idmap::newuidmap", "{p:#?}");
    assert!(p[0].message.contains("newuidmap"));
    assert!(
        p[0].help
            .as_deref()
            .unwrap()
            .contains("apt-get install uidmap")
    );
}

fn limits(extra: &str) -> String {
    format!("{BASE}[namespaces]\nuser = true\n[limits]\nmemory = \"64M\"\npids = 64\n{extra}")
}

/// Limits without root: only in a delegated v2 subtree; everywhere else a diagnostic that says
/// why and how to get them.
#[test]
fn rootless_limits_need_a_delegated_v2_subtree() {
    // Hybrid: v1 belongs to root.
    let p = codes(&limits(""), &host(FakeHost::hybrid()).rootless());
    assert!(
        p.iter().all(|p| p.code == "launch::limits::rootless"),
        "{p:#?}"
    );
    assert_eq!(p.len(), 2, "one per limit: {p:#?}");
    let text = format!("{:?}", p[0]);
    assert!(
        text.contains("v1") && text.contains("systemd.unified_cgroup_hierarchy=1"),
        "{text}"
    );
    assert!(
        text.contains("systemd-run --user --scope -p Delegate=yes"),
        "{text}"
    );

    // Pure v2, but the launcher's cgroup is root's (an ssh session's scope).
    let mut v2 = host(FakeHost::v2()).rootless().delegated(
        "user.slice/user-1000.slice/session-2.scope",
        &["memory", "pids"],
    );
    if let Some(o) = v2.facts.cgroup.own.as_mut() {
        o.delegated = false;
    }
    let p = codes(&limits(""), &v2);
    let text = format!("{:?}", p[0]);
    assert_eq!(p[0].code, "launch::limits::rootless");
    assert!(
        text.contains("session-2.scope is not delegated to you"),
        "{text}"
    );
    assert!(
        text.contains("systemd-run --user --scope -p Delegate=yes"),
        "{text}"
    );

    // Delegated, but other processes share it.
    let scope = "user.slice/user-1000.slice/user@1000.service/app.slice/run-u7.scope";
    let mut shared = host(FakeHost::v2())
        .rootless()
        .delegated(scope, &["memory", "pids"]);
    if let Some(o) = shared.facts.cgroup.own.as_mut() {
        o.others = 2;
    }
    let text = format!("{:?}", codes(&limits(""), &shared));
    assert!(text.contains("holds 2 other processes"), "{text}");

    // Delegated without cpu (systemd's default: memory and pids).
    let h = host(FakeHost::v2())
        .rootless()
        .delegated(scope, &["memory", "pids"]);
    let p = codes(&limits("cpu = \"0.5\"\n"), &h);
    assert_eq!(p.len(), 1, "{p:#?}");
    let text = format!("{:?}", p[0]);
    assert!(text.contains("`cpu` controller is not delegated"), "{text}");
    assert!(
        text.contains("Delegate=cpu cpuset io memory pids"),
        "{text}"
    );
    assert!(text.contains("user@.service.d/delegate.conf"), "{text}");

    // Delegated with memory and pids: the groups go there, after launch moves to a leaf.
    let plan = plan_for(&src(&limits("")), &h).unwrap();
    let dir = PathBuf::from("/sys/fs/cgroup").join(scope);
    let acts = host_actions(&plan);
    assert!(acts.contains(&&HostAction::CgroupLeaf {
        path: dir.join("launchers")
    }));
    assert!(acts.iter().any(
        |a| matches!(a, HostAction::CgroupCreate { path } if path.starts_with(dir.join("launch")))
    ));
    assert!(
        !acts.iter().any(|a| matches!(a, HostAction::CgroupEnable { path, .. } if path == Path::new("/sys/fs/cgroup/cgroup.subtree_control"))),
        "the root's subtree_control is not the user's: {acts:#?}"
    );
    insta::assert_snapshot!("plan-rootless-delegated-limits", render_text(&plan));

    // Root's plan is the same as ever: groups under the hierarchy's root.
    let plan = plan_for(&src(&limits("")), &host(FakeHost::v2())).unwrap();
    assert!(!host_actions(&plan).iter().any(|a| matches!(
        a,
        HostAction::CgroupLeaf { .. } | HostAction::IdMapHelper { .. }
    )));
}

/// The hybrid test host as uid 1000, without subordinate ids: what it was before.
#[test]
fn the_hybrid_host_without_subids_is_unchanged() {
    let mut h = hybrid();
    h.facts.uid = 1000;
    h.facts.gid = 1000;
    assert!(plan_for(&src(&format!("{BASE}[namespaces]\nuser = true\n")), &h).is_ok());
}

// --- real runs as a test user ------------------------------------------------------------------

/// useradd and the shadow files are one writer at a time.
static USERS: Mutex<()> = Mutex::new(());

/// A user made for one test, with 65536 subordinate uids and gids of its own (one line
/// appended to /etc/subuid and /etc/subgid), removed with its lines on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    line: String,
    created: Vec<PathBuf>,
}

/// Replace `path` whole (a temporary file renamed over it), so that a newuidmap reading it at
/// the same time in another test sees the old text or the new, never a truncated file.
fn replace_file(path: &str, text: &str) -> std::io::Result<()> {
    let tmp = format!("{path}.launch-it-{}", std::process::id());
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path)
}

fn sh(cmd: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cmd).args(args).output().unwrap()
}

impl TestUser {
    fn new(tag: &str) -> TestUser {
        let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!("lrl{tag}{}", std::process::id() % 100_000);
        let _ = sh("userdel", &["-r", &name]);
        // No automatic subordinate ids: this test writes (and removes) its own line. No home
        // and no lastlog entry (the v2 guest's /home and /var are read-only).
        let out = sh(
            "useradd",
            &[
                "-l",
                "-M",
                "-d",
                "/nonexistent",
                "-K",
                "SUB_UID_COUNT=0",
                "-K",
                "SUB_GID_COUNT=0",
                "-s",
                "/bin/sh",
                &name,
            ],
        );
        assert!(
            out.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut user = TestUser {
            name: name.clone(),
            uid: 0,
            gid: 0,
            line: String::new(),
            created: Vec::new(),
        };
        let id = |flag: &str| -> u32 {
            String::from_utf8_lossy(&sh("id", &[flag, &name]).stdout)
                .trim()
                .parse()
                .unwrap()
        };
        user.uid = id("-u");
        user.gid = id("-g");
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let start =
            launch::doctor::probe::free_start(&[&read("/etc/subuid"), &read("/etc/subgid")]);
        user.line = format!("{name}:{start}:65536\n");
        for f in ["/etc/subuid", "/etc/subgid"] {
            if !Path::new(f).exists() {
                user.created.push(PathBuf::from(f));
            }
            let mut text = read(f);
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&user.line);
            replace_file(f, &text).unwrap();
        }
        user
    }

    fn start(&self) -> u64 {
        self.line.split(':').nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
        for f in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(text) = std::fs::read_to_string(f) {
                let kept: String = text
                    .split_inclusive('\n')
                    .filter(|l| l.trim_end() != self.line.trim_end())
                    .collect();
                if kept.is_empty() && self.created.iter().any(|c| c == Path::new(f)) {
                    let _ = std::fs::remove_file(f);
                } else {
                    let _ = replace_file(f, &kept);
                }
            }
        }
        let out = sh("userdel", &["-r", &self.name]);
        if !out.status.success() && !std::thread::panicking() {
            panic!(
                "userdel -r {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A sandbox the test user can use: its state root belongs to it, and the manifest is readable.
fn user_sandbox(tag: &str, user: &TestUser, manifest: &str) -> (Sandbox, PathBuf) {
    let sb = Sandbox::new(tag);
    nix::unistd::chown(&sb.state, Some(user.uid.into()), Some(user.gid.into())).unwrap();
    let m = sb.write("app.toml", manifest);
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o644)).unwrap();
    (sb, m)
}

/// `launch ARGS` as the test user; `cgroup`: a group whose cgroup.procs it is written into
/// first, while still root (moving a process needs the common ancestor's cgroup.procs).
fn as_user(sb: &Sandbox, user: &TestUser, args: &[&str], cgroup: Option<PathBuf>) -> Out {
    let mut c = sb.command(args);
    c.env("HOME", &sb.dir)
        .env("XDG_RUNTIME_DIR", &sb.state)
        .env("XDG_DATA_HOME", sb.dir.join("data"))
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let (uid, gid) = (user.uid, user.gid);
    // SAFETY: plain system calls between fork and exec; no allocation after the path's CString.
    let procs =
        cgroup.map(|g| std::ffi::CString::new(g.join("cgroup.procs").to_str().unwrap()).unwrap());
    unsafe {
        c.pre_exec(move || {
            if let Some(p) = &procs {
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    sb.launch_with(c, args)
}

/// A rootless run with a full id range: uid_map and gid_map show root → the user and
/// 1-65536 → its subordinate range, and a file can be given to a subordinate id (chown 1000).
#[test]
fn a_rootless_run_has_the_full_id_range() {
    need_root();
    let user = TestUser::new("ids");
    let start = user.start();
    let script = "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f; chown 1000:1000 /tmp/f; \
                  stat -c 'owner %u:%g' /tmp/f";
    let (sb, m) = user_sandbox(
        "rootless-ids",
        &user,
        &format!(
            "name = \"rl\"\n[rootfs]\nhost = true\nreadonly = true\n[namespaces]\nuser = true\n\
             [process]\ncommand = [\"/bin/sh\", \"-c\", {}]\n\
             [[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\n\
             [[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n",
            q(script)
        ),
    );
    let plan = as_user(&sb, &user, &["plan", m.to_str().unwrap()], None);
    plan.expect_code(0);
    assert!(plan.stdout.contains("/usr/bin/newuidmap"), "{plan}");
    let out = as_user(&sb, &user, &["run", m.to_str().unwrap()], None);
    out.expect_code(0);
    let lines: Vec<Vec<String>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(lines.len(), 5, "{out}");
    let own_u = user.uid.to_string();
    let own_g = user.gid.to_string();
    let sub = start.to_string();
    assert_eq!(
        lines[..4],
        [
            vec!["0".to_string(), own_u.clone(), "1".into()],
            vec!["1".to_string(), sub.clone(), "65536".into()],
            vec!["0".to_string(), own_g.clone(), "1".into()],
            vec!["1".to_string(), sub.clone(), "65536".into()],
        ],
        "{out}"
    );
    assert_eq!(lines[4], ["owner", "1000:1000"], "{out}");
    sb.assert_state_empty(&out);
}

/// A non-root user's maps outside its subordinate range are refused before the run, naming
/// /etc/subuid and usermod.
#[test]
fn a_rootless_map_outside_the_subordinate_range_is_refused() {
    need_root();
    let user = TestUser::new("bad");
    let (sb, m) = user_sandbox(
        "rootless-bad",
        &user,
        &format!(
            "{BASE}[namespaces]\nuser = {{ uid_map = [{{ inside = 0, outside = 7, count = 1 }}], \
             gid_map = [{{ inside = 0, outside = 7, count = 1 }}] }}\n"
        ),
    );
    let out = as_user(&sb, &user, &["run", m.to_str().unwrap()], None);
    out.expect_code(2);
    assert!(
        out.stderr.contains("launch::idmap::unprivileged")
            && out.stderr.contains("/etc/subuid")
            && out.stderr.contains("usermod --add-subuids"),
        "{out}"
    );
}

/// A group under the cgroup2 root delegated to a user as systemd's `Delegate=yes` would:
/// made by root, owned by the user with its cgroup.procs, cgroup.subtree_control and
/// cgroup.threads; removed (with what launch kept in it) on drop.
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    fn new(user: &TestUser) -> Delegated {
        let root = PathBuf::from("/sys/fs/cgroup");
        let dir = root.join(unique("launch-it-rootless"));
        std::fs::write(root.join("cgroup.subtree_control"), "+memory +pids").unwrap();
        std::fs::create_dir(&dir).unwrap();
        let d = Delegated { dir };
        for f in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            let p = if f.is_empty() {
                d.dir.clone()
            } else {
                d.dir.join(f)
            };
            nix::unistd::chown(&p, Some(user.uid.into()), Some(user.gid.into())).unwrap();
        }
        d
    }

    fn children(&self, sub: &str) -> Vec<String> {
        std::fs::read_dir(self.dir.join(sub))
            .map(|r| {
                r.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for sub in ["launch", "launchers", ""] {
            let _ = std::fs::remove_dir(self.dir.join(sub));
        }
    }
}

/// Rootless limits: in the pure v2 guest, launch as the test user sitting alone in a delegated
/// group applies memory and pids limits there (the container reads them from its own group)
/// and leaves nothing but its kept parent and leaf. On this hybrid host, where v1 belongs to
/// root, the run is refused before it starts with the diagnostic that says why and how.
#[test]
fn rootless_limits_in_a_delegated_subtree() {
    need_root();
    let user = TestUser::new("cg");
    let script = "g=$(sed -n 's/^0:://p' /proc/self/cgroup); \
                  echo \"group $g\"; cat /sys/fs/cgroup$g/memory.max /sys/fs/cgroup$g/pids.max";
    let manifest = format!(
        "name = \"rl\"\n[rootfs]\nhost = true\nreadonly = true\n[namespaces]\nuser = true\n\
         [limits]\nmemory = \"64M\"\npids = 32\n\
         [process]\ncommand = [\"/bin/sh\", \"-c\", {}]\n\
         [[mounts]]\ntype = \"bind\"\nsource = \"/sys/fs/cgroup\"\ntarget = \"/sys/fs/cgroup\"\nro = true\n\
         [[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n",
        q(script)
    );
    let (sb, m) = user_sandbox("rootless-cg", &user, &manifest);
    if !pure_v2() {
        let out = as_user(&sb, &user, &["run", m.to_str().unwrap()], None);
        out.expect_code(2);
        for needle in [
            "launch::limits::rootless",
            "cgroup v1 belongs to root",
            "systemd-run --user --scope -p Delegate=yes",
        ] {
            assert!(out.stderr.contains(needle), "{needle}: {out}");
        }
        return;
    }
    let d = Delegated::new(&user);
    let out = as_user(
        &sb,
        &user,
        &["run", m.to_str().unwrap()],
        Some(d.dir.clone()),
    );
    out.expect_code(0);
    let rel = d.dir.strip_prefix("/sys/fs/cgroup").unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("group /{}/launch/rl-", rel.display())),
        "{out}"
    );
    assert_eq!(lines[1..], ["67108864", "32"], "{out}");
    assert!(
        d.children("launch").is_empty(),
        "left: {:?}",
        d.children("launch")
    );
    let procs = std::fs::read_to_string(d.dir.join("launchers/cgroup.procs")).unwrap();
    assert!(
        procs.trim().is_empty(),
        "the launcher's leaf still holds {procs}"
    );
    sb.assert_state_empty(&out);
}
