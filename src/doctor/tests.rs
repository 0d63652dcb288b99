//! Unit tests of the checks against fake hosts: every verdict, its fix, and the text output.

use std::path::PathBuf;

use super::*;
use crate::host::FakeHost;

/// Root on the hybrid test host (Debian 12, like the development machine).
fn root_hybrid() -> DoctorFacts {
    DoctorFacts {
        host: FakeHost::hybrid().facts,
        euid: 0,
        user: Some("root".into()),
        distro: vec!["debian".into()],
        userns: UsernsFacts {
            max_user_namespaces: Some(15000),
            unprivileged_userns_clone: Some(1),
            apparmor_restrict: None,
            apparmor_label: None,
            probe: Some(None),
        },
        subuid: vec![],
        subgid: vec![],
        subid_free: 100_000,
        newuidmap: None,
        newgidmap: None,
        overlay: Overlay::Registered,
        mount_setattr: None,
        seccomp: SeccompFacts {
            mode: Some(0),
            filters: true,
        },
        nft: Some(PathBuf::from("/usr/sbin/nft")),
        tun_exists: true,
        state_root: DirState::Private,
        store_root: PathBuf::from("/var/lib/launch"),
        store: DirState::Missing {
            ancestor: PathBuf::from("/var/lib"),
            writable: true,
        },
    }
}

/// `alice` (uid 1000) on the hybrid host, without subordinate ids or newuidmap.
fn alice_hybrid() -> DoctorFacts {
    let mut f = root_hybrid();
    f.euid = 1000;
    f.host.uid = 1000;
    f.host.gid = 1000;
    f.user = Some("alice".into());
    f.host.state_root = PathBuf::from("/run/user/1000/launch");
    f.state_root = DirState::Missing {
        ancestor: PathBuf::from("/run/user/1000"),
        writable: true,
    };
    f.store_root = PathBuf::from("/home/alice/.local/share/launch");
    f.store = DirState::Private;
    f.host.network.tun = false;
    f.host.network.pasta = None;
    f.nft = None;
    f.subid_free = 165_536;
    f
}

/// `alice` on a pure v2 host whose systemd delegates her a subtree, with subordinate ids.
fn alice_v2_delegated() -> DoctorFacts {
    let mut f = alice_hybrid();
    f.host.cgroup = FakeHost::v2().facts.cgroup;
    f.host.network.tun = true;
    f.host.network.pasta = Some(PathBuf::from("/usr/bin/pasta"));
    f.subuid = vec![IdRange {
        start: 100_000,
        count: 65536,
    }];
    f.subgid = f.subuid.clone();
    let helper = |n: &str| Helper {
        path: PathBuf::from(format!("/usr/bin/{n}")),
        setuid_root: true,
        file_caps: false,
    };
    f.newuidmap = Some(helper("newuidmap"));
    f.newgidmap = Some(helper("newgidmap"));
    let path = "/user.slice/user-1000.slice/user@1000.service/app.slice/launch.scope";
    f.host.cgroup.own = Some(crate::host::OwnCgroup {
        dir: PathBuf::from(format!("/sys/fs/cgroup{path}")),
        delegated: true,
        controllers: ["cpu", "io", "memory", "pids"].map(String::from).to_vec(),
        others: 0,
    });
    f
}

/// `bob` on Ubuntu 24.04, where AppArmor restricts unprivileged user namespaces.
fn bob_apparmor() -> DoctorFacts {
    let mut f = alice_v2_delegated();
    f.euid = 1001;
    f.host.uid = 1001;
    f.user = Some("bob".into());
    f.host.state_root = PathBuf::from("/run/user/1001/launch");
    f.state_root = DirState::Missing {
        ancestor: PathBuf::from("/run/user/1001"),
        writable: true,
    };
    f.store_root = PathBuf::from("/home/bob/.local/share/launch");
    f.distro = vec!["ubuntu".into(), "debian".into()];
    f.userns.apparmor_restrict = Some(1);
    f.userns.apparmor_label = Some("unconfined".into());
    f.host.cgroup.own = None;
    f
}

fn get<'c>(checks: &'c [Check], id: &str) -> &'c Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn verdicts(f: &DoctorFacts) -> Vec<(&'static str, Verdict)> {
    checks(f).iter().map(|c| (c.id, c.verdict)).collect()
}

#[test]
fn every_check_has_a_stable_id_in_a_fixed_order() {
    let ids: Vec<&str> = checks(&root_hybrid()).iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
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
        ]
    );
    // Every id a need can name is a check.
    for k in kinds(0).into_iter().chain(kinds(1000)) {
        for id in k.needs.checks(0).into_iter().chain(k.needs.checks(1000)) {
            assert!(ids.contains(&id), "{id}");
        }
    }
}

#[test]
fn root_on_hybrid_can_run_every_kind() {
    let f = root_hybrid();
    let r = Report::new(&f, None);
    assert!(r.can_run, "{r:#?}");
    assert_eq!(exit_code(&r), 0);
    let c = checks(&f);
    assert!(c.iter().all(|c| c.verdict.usable()), "{:?}", verdicts(&f));
    assert!(get(&c, "cgroup.io").detail.contains("no blkio.weight"));
    assert!(
        get(&c, "cgroup.memory")
            .detail
            .contains("swap accounting is off")
    );
    insta::assert_snapshot!("doctor-root-hybrid", render_text(&r));
}

#[test]
fn a_user_without_subordinate_ids_on_hybrid() {
    let f = alice_hybrid();
    let c = checks(&f);
    assert_eq!(get(&c, "privilege").verdict, Verdict::Warn);
    let sub = get(&c, "subuid");
    assert_eq!(sub.verdict, Verdict::Warn);
    assert_eq!(
        sub.fix,
        ["usermod --add-subuids 165536-231071 --add-subgids 165536-231071 alice"]
    );
    assert_eq!(get(&c, "newuidmap").fix, ["apt-get install uidmap"]);
    assert_eq!(get(&c, "pasta").fix, ["apt-get install passt"]);
    assert_eq!(get(&c, "nft").fix, ["apt-get install nftables"]);
    assert_eq!(get(&c, "tun").fix, ["chmod 0666 /dev/net/tun"]);
    assert_eq!(get(&c, "cgroup.delegation").verdict, Verdict::Fail);
    assert_eq!(get(&c, "idmapped").verdict, Verdict::NotApplicable);
    let r = Report::new(&f, None);
    assert!(!r.can_run);
    assert_eq!(exit_code(&r), CANNOT_RUN);
    let t = |id: &str| r.targets.iter().find(|t| t.id == id).unwrap();
    assert!(t("container").can_run, "{:?}", t("container"));
    assert_eq!(t("limits").blocked_by, ["cgroup.delegation"]);
    assert_eq!(t("bridge").blocked_by, ["privilege", "nft"]);
    assert_eq!(t("rootless-network").blocked_by, ["pasta", "tun"]);
    insta::assert_snapshot!("doctor-user-hybrid-no-subuid", render_text(&r));
}

#[test]
fn a_user_on_v2_with_a_delegated_subtree() {
    let f = alice_v2_delegated();
    let c = checks(&f);
    assert_eq!(get(&c, "subuid").verdict, Verdict::Ok);
    assert_eq!(get(&c, "newuidmap").verdict, Verdict::Ok);
    assert_eq!(get(&c, "cgroup.layout").verdict, Verdict::Ok);
    let d = get(&c, "cgroup.delegation");
    // Delegated: launch makes its groups there; cpuset is not delegated, and the fix says how.
    assert!(
        d.detail
            .contains("is delegated to you (controllers: cpu io memory pids)"),
        "{}",
        d.detail
    );
    assert!(d.detail.contains("not delegated: cpuset"), "{}", d.detail);
    assert_eq!(d.verdict, Verdict::Ok);
    assert!(d.fix[0].contains("Delegate=cpu cpuset io memory pids"));
    let mut shared = f.clone();
    if let Some(o) = shared.host.cgroup.own.as_mut() {
        o.others = 1;
    }
    let c = checks(&shared);
    let d = get(&c, "cgroup.delegation");
    assert_eq!(d.verdict, Verdict::Fail);
    assert!(d.fix[0].contains("systemd-run --user --scope -p Delegate=yes"));
    let mut ssh = f.clone();
    if let Some(o) = ssh.host.cgroup.own.as_mut() {
        o.delegated = false;
    }
    let c = checks(&ssh);
    let d = get(&c, "cgroup.delegation");
    assert_eq!(d.verdict, Verdict::Fail);
    assert!(d.detail.contains("is not delegated to you"), "{}", d.detail);
    let r = Report::new(&f, None);
    insta::assert_snapshot!("doctor-user-v2-delegated", render_text(&r));
}

#[test]
fn apparmor_restricted_user_namespaces() {
    let f = bob_apparmor();
    let c = checks(&f);
    let u = get(&c, "userns");
    assert_eq!(u.verdict, Verdict::Fail);
    assert_eq!(
        u.fix[0],
        "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    );
    assert!(u.fix[2].contains("userns,"));
    let r = Report::new(&f, None);
    let container = r.targets.iter().find(|t| t.id == "container").unwrap();
    assert_eq!(container.blocked_by, ["userns"]);
    insta::assert_snapshot!("doctor-user-apparmor", render_text(&r));
    // Root is not restricted by it.
    let mut root = f.clone();
    root.euid = 0;
    assert_eq!(get(&checks(&root), "userns").verdict, Verdict::Ok);
}

#[test]
fn sysctls_that_turn_user_namespaces_off() {
    let mut f = alice_hybrid();
    f.userns.unprivileged_userns_clone = Some(0);
    let c = checks(&f);
    assert_eq!(
        get(&c, "userns").fix[0],
        "sysctl -w kernel.unprivileged_userns_clone=1"
    );
    f.userns.max_user_namespaces = Some(0);
    assert_eq!(
        get(&checks(&f), "userns").fix[0],
        "sysctl -w user.max_user_namespaces=15000"
    );
    let mut f = alice_hybrid();
    f.userns.probe = Some(Some("EPERM".into()));
    let u = checks(&f);
    let u = get(&u, "userns");
    assert_eq!(u.verdict, Verdict::Fail);
    assert!(u.detail.contains("failed with EPERM"), "{}", u.detail);
}

#[test]
fn kernel_features() {
    let mut f = root_hybrid();
    f.overlay = Overlay::Module;
    f.mount_setattr = Some("ENOSYS".into());
    f.seccomp = SeccompFacts {
        mode: Some(2),
        filters: true,
    };
    let c = checks(&f);
    assert_eq!(get(&c, "overlayfs").verdict, Verdict::Ok);
    assert_eq!(get(&c, "idmapped").verdict, Verdict::Fail);
    assert!(get(&c, "seccomp").detail.contains("seccomp mode 2"));
    f.overlay = Overlay::Missing;
    f.seccomp.filters = false;
    let c = checks(&f);
    assert_eq!(
        get(&c, "overlayfs").fix,
        ["modprobe overlay (or install a kernel built with CONFIG_OVERLAY_FS)"]
    );
    assert_eq!(get(&c, "seccomp").verdict, Verdict::Fail);
    // An old kernel: no overlayfs in a user namespace for a non-root user.
    let mut f = alice_hybrid();
    f.host.kernel = "5.10.0-30-amd64".into();
    assert_eq!(get(&checks(&f), "overlayfs").verdict, Verdict::Fail);
    assert_eq!(checks::kernel_version("6.1.0-18-amd64"), Some((6, 1)));
}

#[test]
fn cgroups_and_directories() {
    let mut f = root_hybrid();
    f.host.cgroup.v1.remove("pids");
    let c = checks(&f);
    let p = get(&c, "cgroup.pids");
    assert_eq!(p.verdict, Verdict::Warn);
    assert_eq!(
        p.fix,
        ["mkdir -p /sys/fs/cgroup/pids && mount -t cgroup -o pids cgroup /sys/fs/cgroup/pids"]
    );
    let mut v2 = root_hybrid();
    v2.host.cgroup = FakeHost::v2().facts.cgroup;
    v2.host.cgroup.v2_controllers.retain(|c| c != "io");
    assert_eq!(get(&checks(&v2), "cgroup.io").verdict, Verdict::Warn);
    f.host.cgroup.layout = crate::host::CgroupLayout::None;
    assert_eq!(get(&checks(&f), "cgroup.layout").verdict, Verdict::Fail);

    let mut f = alice_hybrid();
    f.state_root = DirState::OtherOwner(0);
    f.store = DirState::OthersWritable(0o777);
    let c = checks(&f);
    assert_eq!(
        get(&c, "state_root").fix,
        [
            "chown -R alice /run/user/1000/launch",
            "or set LAUNCH_STATE_ROOT to a directory only you can write"
        ]
    );
    assert_eq!(
        get(&c, "store_root").fix,
        ["chmod go-w /home/alice/.local/share/launch"]
    );
    f.state_root = DirState::NotDir;
    assert_eq!(get(&checks(&f), "state_root").verdict, Verdict::Fail);
}

#[test]
fn a_manifest_needs_what_its_spec_uses() {
    use crate::manifest::Source;
    let mut host = FakeHost::hybrid();
    // As `launch doctor` validates a manifest for a non-root user.
    host.facts = permissive(&host.facts, 1000);
    let text = "name = \"n\"\n[rootfs]\nhost = true\nwritable = true\n[namespaces]\nuser = true\n\
                [network]\nmode = \"pasta\"\n[limits]\nmemory = \"64MiB\"\n\
                [process]\ncommand = [\"/bin/true\"]\n";
    let source = Source::from_text("n.toml", std::path::Path::new("/src"), text);
    let spec = crate::validate::spec(&source, &host).unwrap();
    let needs = Needs::of(&spec, &host.facts);
    assert_eq!(needs.controllers, ["memory"]);
    assert!(needs.user_namespace && !needs.other_ids && needs.overlay && !needs.store);
    assert_eq!(
        needs.checks(1000),
        [
            "userns",
            "cgroup.layout",
            "cgroup.memory",
            "cgroup.delegation",
            "overlayfs",
            "seccomp",
            "pasta",
            "tun",
            "state_root"
        ]
    );
    let f = alice_hybrid();
    let r = Report::new(
        &f,
        Some(ManifestFindings {
            name: "n.toml".into(),
            needs,
            problems: vec![(
                "launch::limits::unsupported".into(),
                "no limits without root".into(),
                Some("run as root".into()),
            )],
        }),
    );
    assert!(!r.can_run);
    assert_eq!(
        r.targets[0].blocked_by,
        ["cgroup.delegation", "pasta", "tun", "manifest"]
    );
    let m = get(&r.checks, "manifest");
    assert_eq!(m.fix, ["run as root"]);
    let json: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
    assert_eq!(json["format"], 1);
    assert_eq!(json["can_run"], false);
    assert_eq!(json["checks"][2]["id"], "subuid");
    assert_eq!(json["checks"][12]["verdict"], "n/a");
    assert_eq!(json["targets"][0]["blocked_by"][3], "manifest");
}
