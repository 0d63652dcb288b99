//! The OCI round trip: for arbitrary valid Specs, `from_oci(to_oci(spec)) == spec`; and for
//! every example manifest, the security part survives `launch export oci` and `run --bundle`.
//!
//! The Specs are those a run can be asked for through a bundle: a directory root (a `tar` or
//! `host` root is exported as the bundle's `rootfs` directory), no namespace joined from a new
//! user namespace, a joined pid namespace only with launch's init, limits this (v2) host can
//! apply, and every I/O device with a read rate (OCI groups throttles by kind, so a device's
//! place in the list is where it first appears). Their security part is any choice of
//! capabilities, no_new_privs, seccomp filter (launch's default, none, or a profile of random
//! rules) and masked and read-only paths; `seccomp_log` is what the profile asks (config.json
//! has one flag for both), and off without a filter (it would log nothing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use launch::host::{FakeHost, PathKind};

use crate::common::{manifests, source};
use launch::oci::{export::to_oci, import::from_oci};
use launch::spec::{
    Atime, CapChoice, CapSet, CpuQuota, IdMapLine, IdMaps, IoDevice, Limits, Mount, MountKind,
    Namespace, Namespaces, Paths, Process, Rlimit, RlimitResource, Root, RootSource, Seccomp,
    SeccompProfile, Security, Spec, StopPolicy, User, UserNamespace,
};
use launch::sys::seccomp::{Action, ArgCmp, Cmp, Rule};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

const BUNDLE: &str = "/bundles/rt";

fn namespace(kind: &'static str) -> impl Strategy<Value = Namespace> {
    prop_oneof![
        Just(Namespace::Host),
        Just(Namespace::New),
        Just(Namespace::Join(PathBuf::from(format!("/run/ns/{kind}")))),
    ]
}

fn id_line() -> impl Strategy<Value = IdMapLine> {
    (0u32..1_000_000, 0u32..1_000_000, 1u32..100_000).prop_map(|(inside, outside, count)| {
        IdMapLine {
            inside,
            outside,
            count,
        }
    })
}

fn user_ns() -> impl Strategy<Value = UserNamespace> {
    prop_oneof![
        Just(UserNamespace::Host),
        Just(UserNamespace::New(IdMaps::MapRoot)),
        (vec(id_line(), 1..4), vec(id_line(), 1..4))
            .prop_map(|(uid, gid)| UserNamespace::New(IdMaps::Explicit { uid, gid })),
    ]
}

fn namespaces() -> impl Strategy<Value = Namespaces> {
    (
        namespace("pid"),
        namespace("uts"),
        namespace("ipc"),
        namespace("net"),
        namespace("cgroup"),
        namespace("time"),
        user_ns(),
    )
        .prop_map(|(pid, uts, ipc, net, cgroup, time, user)| {
            let mut ns = Namespaces {
                pid,
                mount: Namespace::New,
                uts,
                ipc,
                net,
                cgroup,
                time,
                user,
            };
            // A new user namespace has no privilege over namespaces to join: create them.
            if matches!(ns.user, UserNamespace::New(_)) {
                for n in [
                    &mut ns.pid,
                    &mut ns.uts,
                    &mut ns.ipc,
                    &mut ns.net,
                    &mut ns.cgroup,
                    &mut ns.time,
                ] {
                    if matches!(n, Namespace::Join(_)) {
                        *n = Namespace::New;
                    }
                }
            }
            ns
        })
}

fn dns_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,6}(\\.[a-z][a-z0-9]{0,6})?"
}

fn rlimit() -> impl Strategy<Value = Rlimit> {
    (
        proptest::sample::select(RlimitResource::ALL.to_vec()),
        option::of(0u64..u64::MAX),
        option::of(0u64..u64::MAX),
    )
        .prop_map(|(resource, a, b)| {
            // soft ≤ hard, None (unlimited) the largest.
            let (soft, hard) = match (a, b) {
                (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                (a, None) => (a, None),
                (None, Some(b)) => (Some(b), None),
            };
            Rlimit {
                resource,
                soft,
                hard,
            }
        })
}

fn process() -> impl Strategy<Value = Process> {
    (
        vec("[a-z/][a-z0-9/.-]{0,8}", 1..4),
        btree_map("[A-Z_][A-Z0-9_]{0,5}", "[ -~]{0,8}", 0..4),
        "(/[a-z]{1,5}){0,2}",
        (any::<u32>(), any::<u32>(), vec(any::<u32>(), 0..3)),
        option::of("[a-z][a-z0-9]{0,6}"),
        vec(rlimit(), 0..3),
        option::of(any::<bool>()),
        (any::<bool>(), 0u32..=65536),
        (
            proptest::sample::select(vec!["SIGTERM", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGHUP"]),
            0u64..1_000_000,
        ),
    )
        .prop_map(
            |(
                args,
                env,
                cwd,
                (uid, gid, groups),
                name,
                rlimits,
                terminal,
                (init, preserve_fds),
                (sig, ms),
            )| {
                Process {
                    args,
                    env,
                    cwd: PathBuf::from(if cwd.is_empty() { "/".into() } else { cwd }),
                    user: User {
                        uid,
                        gid,
                        groups,
                        name,
                    },
                    rlimits,
                    terminal,
                    init,
                    preserve_fds,
                    stop: StopPolicy {
                        signal: sig.into(),
                        timeout_ms: ms,
                    },
                    // Where a setting came from is the plan's to say, not config.json's.
                    from_image: Vec::new(),
                }
            },
        )
}

const I64: u64 = i64::MAX as u64;

fn limits() -> impl Strategy<Value = Limits> {
    (
        "[a-z]{1,6}(/[a-z]{1,6})?",
        option::of((1000u64..=2_000_000, 1000u64..=1_000_000)),
        option::of(1u64..=10_000),
        option::of(proptest::sample::select(vec!["0", "0-1", "1", "0,1"])),
        option::of(proptest::sample::select(vec!["0"])),
        option::of((4u64 << 20..I64, option::of(0u64..I64))),
        option::of(1u64..I64),
        option::of(1u64..I64),
        option::of(1u64..I64),
        option::of(1u64..=10_000),
        btree_set((0u32..300, 0u32..16), 0..3),
        any::<u64>(),
    )
        .prop_map(
            |(parent, cpu, w, cpus, mems, mem, res, high, pids, iow, devs, seed)| {
                let (memory, memory_swap) = match mem {
                    // swap is memory plus swap: at least the memory limit.
                    Some((m, s)) => (Some(m), s.map(|s| m.saturating_add(s).min(I64))),
                    None => (None, None),
                };
                Limits {
                    parent: PathBuf::from(parent),
                    cpu: cpu.map(|(quota_us, period_us)| CpuQuota {
                        quota_us,
                        period_us,
                    }),
                    cpu_weight: w,
                    cpuset_cpus: cpus.map(str::to_owned),
                    cpuset_mems: mems.map(str::to_owned),
                    memory,
                    memory_swap,
                    memory_reservation: res,
                    memory_high: high,
                    pids,
                    io_weight: iow,
                    io: devs
                        .into_iter()
                        .enumerate()
                        .map(|(i, (major, minor))| {
                            let r = seed.rotate_left(i as u32 * 7);
                            IoDevice {
                                major,
                                minor,
                                read_bps: Some(r % 1_000_000_000 + 1),
                                write_bps: (r & 1 == 1).then_some(r % 7_777 + 1),
                                read_iops: (r & 2 == 2).then_some(r % 555 + 1),
                                write_iops: (r & 4 == 4).then_some(r % 333 + 1),
                            }
                        })
                        .collect(),
                }
            },
        )
}

fn mount_kind() -> impl Strategy<Value = MountKind> {
    prop_oneof![
        Just(MountKind::Proc),
        Just(MountKind::Sysfs),
        Just(MountKind::Devpts),
        Just(MountKind::Mqueue),
        (option::of(any::<u64>()), option::of(0u32..=0o7777))
            .prop_map(|(size, mode)| MountKind::Tmpfs { size, mode }),
        ("[a-z]{1,6}", any::<bool>(), any::<bool>()).prop_map(|(s, file, recursive)| {
            MountKind::Bind {
                source: PathBuf::from(format!("/srv/src/{s}")),
                file,
                recursive,
            }
        }),
    ]
}

fn mounts() -> impl Strategy<Value = Vec<Mount>> {
    let atime = option::of(proptest::sample::select(vec![
        Atime::Relatime,
        Atime::Strictatime,
        Atime::Noatime,
    ]));
    vec((mount_kind(), any::<[bool; 4]>(), atime), 0..5).prop_map(|ms| {
        ms.into_iter()
            .enumerate()
            .map(
                |(i, (kind, [readonly, nosuid, nodev, noexec], atime))| Mount {
                    // A bind keeps its source's access times: the Spec gives none for one.
                    atime: atime.filter(|_| !matches!(kind, MountKind::Bind { .. })),
                    kind,
                    // Distinct targets: one mount each.
                    target: PathBuf::from(format!("/m/{i}")),
                    readonly,
                    nosuid,
                    nodev,
                    noexec,
                },
            )
            .collect()
    })
}

fn cap_set() -> impl Strategy<Value = CapSet> {
    prop_oneof![
        Just(CapSet::EMPTY),
        Just(CapSet::ALL),
        any::<u64>().prop_map(CapSet::from_bits),
    ]
}

fn capabilities() -> impl Strategy<Value = Option<CapChoice>> {
    option::of(prop_oneof![
        Just(CapChoice::Default),
        cap_set().prop_map(CapChoice::List),
        (cap_set(), cap_set()).prop_map(|(add, drop)| CapChoice::Modify { add, drop }),
    ])
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        (0u16..=4095).prop_map(Action::Errno),
        Just(Action::KillThread),
        Just(Action::KillProcess),
        Just(Action::Trap),
        Just(Action::Log),
        (0u16..=4095).prop_map(Action::Trace),
    ]
}

fn cmp() -> impl Strategy<Value = Cmp> {
    prop_oneof![
        any::<u64>().prop_map(Cmp::Ne),
        any::<u64>().prop_map(Cmp::Lt),
        any::<u64>().prop_map(Cmp::Le),
        any::<u64>().prop_map(Cmp::Eq),
        any::<u64>().prop_map(Cmp::Ge),
        any::<u64>().prop_map(Cmp::Gt),
        (any::<u64>(), any::<u64>()).prop_map(|(mask, value)| Cmp::MaskedEq { mask, value }),
    ]
}

/// Rules of any action, over real syscalls (a profile reader refuses unknown names).
fn rule() -> impl Strategy<Value = Rule> {
    let names = vec![
        "read",
        "write",
        "mount",
        "ptrace",
        "clone",
        "personality",
        "socket",
        "getpid",
    ];
    (
        proptest::sample::subsequence(names, 1..4),
        action(),
        vec((0u8..=5, cmp()), 0..3),
    )
        .prop_map(|(syscalls, action, args)| Rule {
            syscalls: syscalls
                .into_iter()
                .map(|s| std::borrow::Cow::Owned(s.to_owned()))
                .collect(),
            action,
            args: args
                .into_iter()
                .map(|(index, cmp)| ArgCmp { index, cmp })
                .collect(),
        })
}

fn paths() -> impl Strategy<Value = Paths> {
    prop_oneof![
        Just(Paths::Default),
        vec("(/[a-z]{1,6}){1,3}", 0..4)
            .prop_map(|v| Paths::List(v.into_iter().map(PathBuf::from).collect())),
    ]
}

fn security() -> impl Strategy<Value = Security> {
    let seccomp = prop_oneof![
        Just(Seccomp::Default),
        Just(Seccomp::Unconfined),
        (
            "[a-z]{1,8}\\.json",
            action(),
            vec(rule(), 0..4),
            any::<bool>()
        )
            .prop_map(|(name, default_action, rules, log)| Seccomp::Custom(
                SeccompProfile {
                    name,
                    default_action,
                    rules,
                    log,
                }
            )),
    ];
    (
        capabilities(),
        any::<bool>(),
        seccomp,
        any::<bool>(),
        paths(),
        paths(),
        devices(),
    )
        .prop_map(
            |(
                capabilities,
                no_new_privileges,
                seccomp,
                log,
                masked_paths,
                readonly_paths,
                devices,
            )| {
                let seccomp_log = match &seccomp {
                    Seccomp::Default => log,
                    Seccomp::Unconfined => false,
                    Seccomp::Custom(p) => p.log,
                };
                Security {
                    capabilities,
                    no_new_privileges,
                    seccomp,
                    seccomp_log,
                    masked_paths,
                    readonly_paths,
                    devices,
                }
            },
        )
}

/// No device control, the default list, or the default list with rules added (as a manifest
/// adds them).
fn devices() -> impl Strategy<Value = Vec<launch::sys::devices::DeviceRule>> {
    use launch::sys::devices::DEFAULT;
    let extra = prop_oneof![
        Just("allow c 10:229 rwm"),
        Just("allow b 7:0 r"),
        Just("allow c 4:* rw"),
    ];
    prop_oneof![
        Just(Vec::new()),
        Just(DEFAULT.to_vec()),
        vec(extra, 1..3).prop_map(|extra| {
            let mut rules = DEFAULT.to_vec();
            rules.extend(
                extra
                    .iter()
                    .map(|r| r.parse::<launch::sys::devices::DeviceRule>().unwrap()),
            );
            rules
        }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        "[a-z][a-z0-9-]{0,12}",
        option::of(dns_name()),
        option::of(dns_name()),
        ("[a-z]{1,8}", any::<bool>(), any::<bool>()),
        namespaces(),
        process(),
        limits(),
        mounts(),
        any::<bool>(),
        security(),
    )
        .prop_map(
            |(
                name,
                hostname,
                domainname,
                (root, ro, pivot),
                namespaces,
                mut process,
                limits,
                mounts,
                multiple,
                security,
            )| {
                let uts = namespaces.uts.isolated();
                // A bundle's network is its namespace: the host's, or one with loopback only.
                let network = launch::spec::Network {
                    mode: match namespaces.net {
                        Namespace::Host => launch::spec::NetworkMode::Host,
                        _ => launch::spec::NetworkMode::None,
                    },
                    ..Default::default()
                };
                // setns moves only children into a pid namespace: launch's init is that child.
                if matches!(namespaces.pid, Namespace::Join(_)) {
                    process.init = true;
                }
                Spec {
                    name,
                    hostname: hostname.filter(|_| uts),
                    domainname: domainname.filter(|_| uts),
                    root: Root {
                        source: RootSource::Path {
                            path: PathBuf::from(format!("/srv/roots/{root}")),
                        },
                        readonly: ro,
                        pivot_root: pivot,
                        writable: false,
                        persist: None,
                    },
                    namespaces,
                    process,
                    limits,
                    mounts,
                    multiple,
                    security,
                    network,
                }
            },
        )
}

/// A v2 host on which every path the Spec names exists, as the Spec says it is.
fn host_for(spec: &Spec) -> FakeHost {
    let mut h = FakeHost::v2();
    if let RootSource::Path { path } = &spec.root.source {
        h = h.with_path(path.clone(), PathKind::Dir);
    }
    for kind in ["pid", "uts", "ipc", "net", "cgroup", "time"] {
        h = h.with_path(format!("/run/ns/{kind}"), PathKind::File);
    }
    for m in &spec.mounts {
        if let MountKind::Bind { source, file, .. } = &m.kind {
            h = h.with_path(
                source.clone(),
                if *file { PathKind::File } else { PathKind::Dir },
            );
        }
    }
    h
}

/// The host the examples export on and import back on: the bundle's root exists.
fn example_host() -> FakeHost {
    crate::common::v2().with_path(format!("{BUNDLE}/rootfs"), PathKind::Dir)
}

/// Every example manifest's security part (today the default: a manifest has no `[security]`
/// yet), and the same manifest with other choices, come back from its bundle unchanged.
#[test]
fn manifest_security_survives_export_and_import() {
    let host = example_host();
    let raw = CapSet::of(&[launch::sys::caps::Capability::CAP_NET_RAW]);
    let variants = [
        (None, Security::default()),
        (
            Some(1000),
            Security {
                capabilities: Some(CapChoice::List(raw)),
                ..Security::default()
            },
        ),
        (
            Some(1000),
            Security {
                capabilities: Some(CapChoice::Modify {
                    add: raw,
                    drop: CapSet::of(&[launch::sys::caps::Capability::CAP_CHOWN]),
                }),
                seccomp_log: true,
                ..Security::default()
            },
        ),
        (None, Security::unconfined()),
        (Some(1000), Security::unconfined()),
    ];
    for path in manifests("examples/manifests") {
        let manifest = launch::validate::spec(&source(&path), &host)
            .unwrap_or_else(|p| panic!("{}: {p:#?}", path.display()));
        assert_eq!(manifest.security, Security::default(), "{}", path.display());
        for (uid, security) in &variants {
            let mut spec = manifest.clone();
            if let Some(uid) = uid {
                spec.process.user.uid = *uid;
            }
            spec.security = security.clone();
            let oci = to_oci(&spec, host.facts()).expect("to_oci");
            let back = from_oci(&oci, Path::new(BUNDLE), &host)
                .unwrap_or_else(|p| panic!("{}: {p:#?}", path.display()));
            assert_eq!(back.security, spec.security, "{} {uid:?}", path.display());
        }
    }
}

/// Manifests' own `[security]` tables (a capability list or changes, a profile file, the log
/// flag, path lists, unconfined; root and another user) come back from their bundles unchanged.
#[test]
fn security_tables_survive_export_and_import() {
    let profile = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]}"#;
    let host = example_host().with_file("/src/strict.json", profile);
    let tables = [
        "capabilities = { add = [\"NET_RAW\"], drop = [\"CHOWN\"] }\nno_new_privileges = false\n\
         masked_paths = [\"/proc/kcore\", \"/proc/keys\"]\nreadonly_paths = []",
        "capabilities = [\"ALL\"]\nseccomp = \"strict.json\"",
        "capabilities = [\"SYS_ADMIN\"]\nseccomp = \"strict.json\"",
        "capabilities = { add = [\"ALL\"], drop = [\"SYS_ADMIN\"] }\nseccomp_log = true",
        "capabilities = []\nseccomp = \"unconfined\"",
        "profile = \"unconfined\"",
        "profile = \"unconfined\"\nno_new_privileges = true",
    ];
    for table in tables {
        for user in ["", "user = 1000\ngroup = 1000\n"] {
            let text = format!(
                "name = \"t\"\n[rootfs]\nhost = true\n[process]\n{user}command = [\"/bin/true\"]\n\
                 [security]\n{table}\n"
            );
            let src = launch::manifest::Source::from_text("app.toml", Path::new("/src"), &text);
            let spec =
                launch::validate::spec(&src, &host).unwrap_or_else(|p| panic!("{text}\n{p:#?}"));
            let oci = to_oci(&spec, host.facts()).expect("to_oci");
            let back = from_oci(&oci, Path::new(BUNDLE), &host)
                .unwrap_or_else(|p| panic!("{text}\n{p:#?}"));
            assert_eq!(back.security, spec.security, "{text}");
        }
    }
}

/// A bundle `launch export oci` wrote on this host (capabilities planned from this process's
/// bounding set) reads back with the manifest's security part.
#[test]
fn an_exported_bundle_reads_back_with_its_security() {
    let sb = crate::fixtures::Sandbox::new("oci-rt-security");
    let m = sb.write(
        "app.toml",
        "name = \"rt\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n",
    );
    let out = sb.launch(&["export", "oci", m.to_str().unwrap(), "b"]);
    out.expect_code(0);
    let host = launch::host::RealHost::probe();
    let manifest = launch::validate::spec(&launch::manifest::Source::read(&m).unwrap(), &host)
        .unwrap_or_else(|p| panic!("{p:#?}"));
    let src = launch::oci::import::read_bundle(&sb.dir.join("b")).unwrap();
    let back = launch::oci::import::spec(&src, &host).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(back.security, manifest.security);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn from_oci_inverts_to_oci(spec in spec()) {
        let host = host_for(&spec);
        // Two bind mounts of one source must agree on what it is.
        let mut kinds: BTreeMap<&Path, bool> = BTreeMap::new();
        for m in &spec.mounts {
            if let MountKind::Bind { source, file, .. } = &m.kind {
                if *kinds.entry(source).or_insert(*file) != *file {
                    return Ok(());
                }
            }
        }
        let oci = to_oci(&spec, host.facts()).expect("to_oci");
        let back = from_oci(&oci, Path::new(BUNDLE), &host);
        prop_assert_eq!(back, Ok(spec));
    }
}

use launch::host::Host as _;
