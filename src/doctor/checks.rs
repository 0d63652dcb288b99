//! The checks: [`DoctorFacts`] → one [`Check`] per capability, with the fix. Pure: no I/O.

use std::path::Path;

use super::{Check, DirState, DoctorFacts, Helper, Overlay, Verdict};
use crate::host::CgroupLayout;

/// Every check, in a fixed order (docs/doctor.md lists them).
pub fn checks(f: &DoctorFacts) -> Vec<Check> {
    let mut out = vec![
        privilege(f),
        userns(f),
        subuid(f),
        newuidmap(f),
        cgroup_layout(f),
    ];
    out.extend(super::CONTROLLERS.iter().map(|c| controller(f, c)));
    out.extend([
        delegation(f),
        overlayfs(f),
        idmapped(f),
        seccomp(f),
        helper(
            f,
            "pasta",
            "pasta",
            f.host.network.pasta.as_deref(),
            "passt",
        ),
        helper(
            f,
            "slirp4netns",
            "slirp4netns",
            f.host.network.slirp4netns.as_deref(),
            "slirp4netns",
        ),
        tun(f),
        helper(f, "nft", "nft", f.nft.as_deref(), "nftables"),
        dir_check(
            f,
            "state_root",
            "state root",
            &f.host.state_root,
            &f.state_root,
            "LAUNCH_STATE_ROOT",
        ),
        dir_check(
            f,
            "store_root",
            "image store",
            &f.store_root,
            &f.store,
            "LAUNCH_STORE",
        ),
    ]);
    out
}

/// The check id of a cgroup controller.
pub(super) fn controller_id(c: &str) -> &'static str {
    match c {
        "cpu" => "cgroup.cpu",
        "cpuset" => "cgroup.cpuset",
        "io" => "cgroup.io",
        "memory" => "cgroup.memory",
        _ => "cgroup.pids",
    }
}

fn check(id: &'static str, title: &'static str, verdict: Verdict, detail: String) -> Check {
    Check {
        id,
        title,
        verdict,
        detail,
        fix: Vec::new(),
    }
}

impl Check {
    fn fix(mut self, line: impl Into<String>) -> Check {
        self.fix.push(line.into());
        self
    }
}

fn who(f: &DoctorFacts) -> String {
    match &f.user {
        Some(n) => format!("uid {} ({n})", f.euid),
        None => format!("uid {}", f.euid),
    }
}

/// The user's name for commands (`usermod ... NAME`), or the uid.
fn user_arg(f: &DoctorFacts) -> String {
    f.user.clone().unwrap_or_else(|| f.euid.to_string())
}

fn is_root(f: &DoctorFacts) -> bool {
    f.euid == 0
}

/// `(major, minor)` of a kernel release (`6.1.0-18-amd64`).
pub(super) fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn kernel_at_least(f: &DoctorFacts, v: (u32, u32)) -> Option<bool> {
    kernel_version(&f.host.kernel).map(|k| k >= v)
}

/// The command that installs `package` on this distribution.
fn install(f: &DoctorFacts, package: &str) -> String {
    // Fedora calls the subordinate-id helpers' package shadow-utils; Arch ships them in shadow.
    let has = |d: &str| f.distro.iter().any(|x| x == d);
    if has("debian") || has("ubuntu") {
        format!("apt-get install {package}")
    } else if has("fedora") || has("rhel") || has("centos") {
        let p = if package == "uidmap" {
            "shadow-utils"
        } else {
            package
        };
        format!("dnf install {p}")
    } else if has("arch") {
        let p = if package == "uidmap" {
            "shadow"
        } else {
            package
        };
        format!("pacman -S {p}")
    } else if has("alpine") {
        let p = if package == "uidmap" {
            "shadow-uidmap"
        } else {
            package
        };
        format!("apk add {p}")
    } else {
        format!("install your distribution's {package} package")
    }
}

/// A sysctl fix: set it now and keep it across reboots.
fn sysctl(key: &str, value: &str) -> [String; 2] {
    [
        format!("sysctl -w {key}={value}"),
        format!("echo '{key} = {value}' > /etc/sysctl.d/90-{key}.conf   # kept after a reboot"),
    ]
}

fn privilege(f: &DoctorFacts) -> Check {
    if is_root(f) {
        return check(
            "privilege",
            "privileges",
            Verdict::Ok,
            format!(
                "{}: any namespace and id map, bridge networks, device rules, cgroup limits",
                who(f)
            ),
        );
    }
    check(
        "privilege",
        "privileges",
        Verdict::Warn,
        format!(
            "{}: rootless, so a container needs a user namespace that maps only your own ids \
             (`user = true` under [namespaces]); the host's ids, other id maps, bridge networks, \
             device rules and cgroup limits need root",
            who(f)
        ),
    )
    .fix("run launch as root for those: sudo launch run APP.toml")
}

fn userns(f: &DoctorFacts) -> Check {
    let u = &f.userns;
    let c = |v: Verdict, d: String| check("userns", "user namespaces", v, d);
    if u.max_user_namespaces == Some(0) {
        let [a, b] = sysctl("user.max_user_namespaces", "15000");
        return c(
            Verdict::Fail,
            "/proc/sys/user/max_user_namespaces is 0: no one can create user namespaces".into(),
        )
        .fix(a)
        .fix(b);
    }
    if !is_root(f) {
        if u.unprivileged_userns_clone == Some(0) {
            let [a, b] = sysctl("kernel.unprivileged_userns_clone", "1");
            return c(
                Verdict::Fail,
                "/proc/sys/kernel/unprivileged_userns_clone is 0: only root may create user \
                 namespaces"
                    .into(),
            )
            .fix(a)
            .fix(b);
        }
        if u.apparmor_restrict == Some(1) {
            let label = u.apparmor_label.as_deref().unwrap_or("unconfined");
            let confined = label != "unconfined";
            let [a, b] = sysctl("kernel.apparmor_restrict_unprivileged_userns", "0");
            let detail = format!(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns is 1 and launch runs \
                 {}: a user namespace is created but has no capabilities in it, so mounts and \
                 id maps fail",
                if confined {
                    format!(
                        "under the AppArmor profile `{label}` (allowed only if it grants `userns,`)"
                    )
                } else {
                    "unconfined".to_string()
                }
            );
            return c(Verdict::Fail, detail).fix(a).fix(b).fix(
                "or allow launch alone: write /etc/apparmor.d/launch with `abi <abi/4.0>, \
                     include <tunables/global> profile launch /usr/local/bin/launch \
                     flags=(unconfined) { userns, }` (the path of your launch binary), then \
                     apparmor_parser -r /etc/apparmor.d/launch",
            );
        }
    }
    match &u.probe {
        Some(Some(errno)) => c(
            Verdict::Fail,
            format!(
                "unshare(CLONE_NEWUSER) failed with {errno} although the sysctls allow it \
                 (max_user_namespaces {}): a security module or a seccomp filter around launch \
                 refuses it",
                u.max_user_namespaces
                    .map_or("unknown".to_string(), |v| v.to_string())
            ),
        )
        .fix("run launch outside that confinement (a container, a sandboxed shell), or as root"),
        Some(None) | None => {
            let mut found = vec![format!(
                "max_user_namespaces {}",
                u.max_user_namespaces
                    .map_or("unknown".to_string(), |v| v.to_string())
            )];
            if let Some(v) = u.unprivileged_userns_clone {
                found.push(format!("unprivileged_userns_clone {v}"));
            }
            if let Some(v) = u.apparmor_restrict {
                found.push(format!("apparmor_restrict_unprivileged_userns {v}"));
            }
            let tried = match u.probe {
                Some(_) => ", unshare(CLONE_NEWUSER) works",
                None => "",
            };
            c(
                Verdict::Ok,
                format!("{} can create them ({}{tried})", who(f), found.join(", ")),
            )
        }
    }
}

fn ranges(r: &[super::IdRange]) -> String {
    r.iter()
        .map(|r| format!("{}-{}", r.start, r.start + r.count - 1))
        .collect::<Vec<_>>()
        .join(", ")
}

fn subuid(f: &DoctorFacts) -> Check {
    let c = |v: Verdict, d: String| check("subuid", "subordinate ids", v, d);
    if is_root(f) {
        return c(
            Verdict::NotApplicable,
            "root maps any ids directly; /etc/subuid and /etc/subgid are for other users".into(),
        );
    }
    let total = |r: &[super::IdRange]| r.iter().map(|r| r.count).sum::<u64>();
    let (u, g) = (total(&f.subuid), total(&f.subgid));
    let note = "(`user = true` maps root to you and 1-65536 to them through newuidmap; \
                without them, your own id alone)";
    if u >= 65536 && g >= 65536 {
        return c(
            Verdict::Ok,
            format!(
                "/etc/subuid gives {} {} ids ({}), /etc/subgid {g} ({}) {note}",
                user_arg(f),
                u,
                ranges(&f.subuid),
                ranges(&f.subgid)
            ),
        );
    }
    let start = f.subid_free;
    let end = start + 65535;
    c(
        Verdict::Warn,
        format!(
            "{} has {u} ids in /etc/subuid and {g} in /etc/subgid, fewer than a full range of \
             65536 {note}",
            user_arg(f)
        ),
    )
    .fix(format!(
        "usermod --add-subuids {start}-{end} --add-subgids {start}-{end} {}",
        user_arg(f)
    ))
}

fn newuidmap(f: &DoctorFacts) -> Check {
    let c = |v: Verdict, d: String| check("newuidmap", "newuidmap and newgidmap", v, d);
    if is_root(f) {
        return c(
            Verdict::NotApplicable,
            "root writes id maps itself; the setuid helpers are for other users".into(),
        );
    }
    let usable = |h: &Helper| h.setuid_root || h.file_caps;
    match (&f.newuidmap, &f.newgidmap) {
        (Some(u), Some(g)) if usable(u) && usable(g) => c(
            Verdict::Ok,
            format!(
                "{} and {} are installed, setuid root or with file capabilities",
                u.path.display(),
                g.path.display()
            ),
        ),
        (Some(u), Some(g)) => c(
            Verdict::Warn,
            format!(
                "{} and {} are installed but neither setuid root nor given capabilities",
                u.path.display(),
                g.path.display()
            ),
        )
        .fix(format!(
            "setcap cap_setuid+ep {} && setcap cap_setgid+ep {}",
            u.path.display(),
            g.path.display()
        )),
        (u, g) => {
            let missing: Vec<&str> = [("newuidmap", u), ("newgidmap", g)]
                .iter()
                .filter(|(_, h)| h.is_none())
                .map(|(n, _)| *n)
                .collect();
            c(
                Verdict::Warn,
                format!("{} not found in PATH", missing.join(" and ")),
            )
            .fix(install(f, "uidmap"))
        }
    }
}

fn cgroup_layout(f: &DoctorFacts) -> Check {
    let cg = &f.host.cgroup;
    let c = |v: Verdict, d: String| check("cgroup.layout", "cgroup layout", v, d);
    let v2 = || {
        cg.v2_root
            .as_ref()
            .map_or(String::new(), |r| r.display().to_string())
    };
    match cg.layout {
        CgroupLayout::V2 => c(
            Verdict::Ok,
            format!("cgroup v2, unified at {}: limits go through it", v2()),
        ),
        CgroupLayout::Hybrid => c(
            Verdict::Ok,
            format!(
                "hybrid: {} v1 hierarchies under /sys/fs/cgroup and cgroup2 at {}: limits go \
                 through v1",
                cg.v1.len(),
                v2()
            ),
        ),
        CgroupLayout::V1 => c(
            Verdict::Ok,
            format!("cgroup v1: {} hierarchies", cg.v1.len()),
        ),
        CgroupLayout::None => c(
            Verdict::Fail,
            "no cgroup filesystem in /proc/self/mountinfo: no limits can be applied".into(),
        )
        .fix("mount -t cgroup2 none /sys/fs/cgroup"),
    }
}

fn controller(f: &DoctorFacts, name: &str) -> Check {
    let cg = &f.host.cgroup;
    let id = controller_id(name);
    let title = match name {
        "cpu" => "cpu controller (cpu, cpu_weight)",
        "cpuset" => "cpuset controller (cpuset_cpus, cpuset_mems)",
        "io" => "io controller ([[limits.io]], io_weight)",
        "memory" => "memory controller (memory, memory_swap)",
        _ => "pids controller (pids)",
    };
    let c = |v: Verdict, d: String| check(id, title, v, d);
    let v1 = crate::host::v1_name(name);
    let note = match name {
        "io" if !cg.io_weight => {
            "; no blkio.weight (the disks' I/O scheduler has no proportional weights): \
             io_weight is refused, bandwidth limits work"
        }
        "memory" if !cg.memory_swap => {
            "; no memory.memsw files (swap accounting is off): memory_swap is refused"
        }
        _ => "",
    };
    match (cg.layout, cg.has(name)) {
        (CgroupLayout::V2, true) => c(
            Verdict::Ok,
            format!(
                "in {}/cgroup.controllers{note}",
                cg.v2_root.as_deref().unwrap_or(Path::new("")).display()
            ),
        ),
        (CgroupLayout::V1 | CgroupLayout::Hybrid, true) => c(
            Verdict::Ok,
            format!(
                "v1 hierarchy at {}{note}",
                cg.hierarchy(name).unwrap_or(Path::new("")).display()
            ),
        ),
        (CgroupLayout::V2, false) => c(
            Verdict::Warn,
            format!(
                "not in {}/cgroup.controllers: the kernel lacks it or a v1 hierarchy holds it",
                cg.v2_root.as_deref().unwrap_or(Path::new("")).display()
            ),
        )
        .fix(format!(
            "unmount the v1 hierarchy that holds {name}, or boot with cgroup_no_v1={v1} on the \
             kernel command line"
        )),
        (CgroupLayout::V1 | CgroupLayout::Hybrid, false) => c(
            Verdict::Warn,
            format!("no v1 hierarchy with the {v1} controller is mounted"),
        )
        .fix(format!(
            "mkdir -p /sys/fs/cgroup/{v1} && mount -t cgroup -o {v1} cgroup /sys/fs/cgroup/{v1}"
        )),
        (CgroupLayout::None, _) => c(Verdict::Fail, "no cgroup filesystem is mounted".into())
            .fix("mount -t cgroup2 none /sys/fs/cgroup"),
    }
}

fn delegation(f: &DoctorFacts) -> Check {
    let c = |v: Verdict, d: String| check("cgroup.delegation", "cgroups for this user", v, d);
    if is_root(f) {
        return c(
            Verdict::NotApplicable,
            "root creates its groups under each hierarchy's root (`launch/` by default)".into(),
        );
    }
    let as_root = "run launch as root for limits: sudo launch run APP.toml";
    let cg = &f.host.cgroup;
    match cg.layout {
        CgroupLayout::V1 | CgroupLayout::Hybrid | CgroupLayout::None => c(
            Verdict::Fail,
            format!(
                "cgroup {} hierarchies belong to root and cannot be delegated to {}",
                match cg.layout {
                    CgroupLayout::None => "(none mounted)",
                    _ => "v1",
                },
                user_arg(f)
            ),
        )
        .fix(as_root)
        .fix(
            "or boot with cgroup v2 alone (systemd.unified_cgroup_hierarchy=1 in \
             GRUB_CMDLINE_LINUX of /etc/default/grub, update-grub, reboot) for a delegated subtree",
        ),
        CgroupLayout::V2 => {
            let scope = crate::lower::cgroups::DELEGATE_SCOPE;
            let Some(own) = &cg.own else {
                return c(
                    Verdict::Fail,
                    "this process has no cgroup v2 path in /proc/self/cgroup".into(),
                )
                .fix(scope)
                .fix(as_root);
            };
            let dir = own.dir.display();
            if !own.delegated {
                return c(
                    Verdict::Fail,
                    format!(
                        "your cgroup {dir} is not delegated to you (it, its cgroup.procs and \
                         cgroup.subtree_control are not yours): launch makes a non-root user's \
                         groups only in a subtree delegated to it"
                    ),
                )
                .fix(scope)
                .fix(as_root);
            }
            if own.others > 0 {
                return c(
                    Verdict::Fail,
                    format!(
                        "your cgroup {dir} is delegated to you but holds {} other process(es): \
                         a cgroup with processes cannot give its children controllers",
                        own.others
                    ),
                )
                .fix(scope);
            }
            let missing: Vec<&str> = super::CONTROLLERS
                .iter()
                .copied()
                .filter(|c| !own.controllers.iter().any(|o| o == c))
                .collect();
            let detail = format!(
                "your cgroup {dir} is delegated to you (controllers: {}): launch moves itself \
                 into {dir}/launchers and makes the containers' groups under {dir}/launch",
                own.controllers.join(" ")
            );
            if missing.is_empty() {
                c(Verdict::Ok, detail)
            } else {
                c(
                    Verdict::Ok,
                    format!(
                        "{detail}; not delegated: {} (limits on them are refused)",
                        missing.join(" ")
                    ),
                )
                .fix(
                    "printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > \
                     /etc/systemd/system/user@.service.d/delegate.conf (mkdir -p its directory \
                     first); systemctl daemon-reload; log in again",
                )
            }
        }
    }
}

fn overlayfs(f: &DoctorFacts) -> Check {
    let c = |v: Verdict, d: String| check("overlayfs", "overlayfs", v, d);
    if !is_root(f) && kernel_at_least(f, (5, 11)) == Some(false) {
        return c(
            Verdict::Fail,
            format!(
                "Linux {} cannot mount overlayfs in a user namespace (5.11 or later can)",
                f.host.kernel
            ),
        )
        .fix("run launch as root for image roots, or upgrade the kernel to 5.11 or later");
    }
    match f.overlay {
        Overlay::Registered => c(Verdict::Ok, "`overlay` is in /proc/filesystems".into()),
        Overlay::Module => c(
            Verdict::Ok,
            format!(
                "not yet in /proc/filesystems; the module is in /lib/modules/{} and loads on \
                 the first mount",
                f.host.kernel
            ),
        ),
        Overlay::Missing => c(
            Verdict::Fail,
            format!(
                "`overlay` is not in /proc/filesystems and no overlay module is in /lib/modules/{}",
                f.host.kernel
            ),
        )
        .fix("modprobe overlay (or install a kernel built with CONFIG_OVERLAY_FS)"),
    }
}

fn idmapped(f: &DoctorFacts) -> Check {
    let c = |v: Verdict, d: String| check("idmapped", "idmapped mounts", v, d);
    if !is_root(f) {
        return c(
            Verdict::NotApplicable,
            "used only by a root launcher (store layers under a user namespace that maps other \
             ids)"
                .into(),
        );
    }
    match &f.mount_setattr {
        None => c(
            Verdict::Ok,
            format!("mount_setattr(2) exists (Linux {})", f.host.kernel),
        ),
        Some(errno) => c(
            Verdict::Fail,
            format!(
                "mount_setattr(2) failed with {errno} (Linux {}): no idmapped mounts, so an image \
                 root cannot run in a user namespace that maps other ids",
                f.host.kernel
            ),
        )
        .fix("upgrade the kernel to 5.12 or later, or map ids 1:1 (no user namespace) for image roots"),
    }
}

fn seccomp(f: &DoctorFacts) -> Check {
    let c = |v: Verdict, d: String| check("seccomp", "seccomp filters", v, d);
    let s = &f.seccomp;
    match (s.mode, s.filters) {
        (None, _) => c(
            Verdict::Fail,
            "prctl(PR_GET_SECCOMP) fails with EINVAL: the kernel has no CONFIG_SECCOMP".into(),
        )
        .fix("set `seccomp = \"unconfined\"` under [security], or use a kernel with CONFIG_SECCOMP_FILTER"),
        (Some(_), false) => c(
            Verdict::Fail,
            "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) fails with EINVAL: the kernel has no \
             CONFIG_SECCOMP_FILTER"
                .into(),
        )
        .fix("set `seccomp = \"unconfined\"` under [security], or use a kernel with CONFIG_SECCOMP_FILTER"),
        (Some(mode), true) => c(
            Verdict::Ok,
            match mode {
                0 => "filters can be loaded (launch itself runs without one)".to_string(),
                m => format!(
                    "filters can be loaded; launch itself already runs under seccomp mode {m} \
                     (Seccomp in /proc/self/status), which also applies to the container"
                ),
            },
        ),
    }
}

fn helper(
    f: &DoctorFacts,
    id: &'static str,
    program: &str,
    at: Option<&Path>,
    package: &str,
) -> Check {
    let title = match id {
        "pasta" => "pasta (network mode \"pasta\")",
        "slirp4netns" => "slirp4netns (network mode \"slirp\")",
        _ => "nft (published ports of a bridge)",
    };
    match at {
        Some(p) => check(id, title, Verdict::Ok, format!("{}", p.display())),
        None => check(
            id,
            title,
            Verdict::Warn,
            format!("{program} is not in PATH, /usr/bin or /usr/local/bin"),
        )
        .fix(install(f, package)),
    }
}

fn tun(f: &DoctorFacts) -> Check {
    let c = |v: Verdict, d: String| check("tun", "/dev/net/tun (pasta, slirp4netns)", v, d);
    match (f.tun_exists, f.host.network.tun) {
        (_, true) => c(
            Verdict::Ok,
            format!("/dev/net/tun can be opened by {}", who(f)),
        ),
        (true, false) => c(
            Verdict::Warn,
            format!(
                "/dev/net/tun exists but {} cannot read and write it",
                who(f)
            ),
        )
        .fix("chmod 0666 /dev/net/tun"),
        (false, false) => c(Verdict::Warn, "/dev/net/tun does not exist".into())
            .fix("modprobe tun (or: mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200)"),
    }
}

fn dir_check(
    f: &DoctorFacts,
    id: &'static str,
    title: &'static str,
    path: &Path,
    state: &DirState,
    var: &str,
) -> Check {
    let p = path.display();
    let c = |v: Verdict, d: String| check(id, title, v, d);
    let elsewhere = format!("or set {var} to a directory only you can write");
    match state {
        DirState::Private => c(
            Verdict::Ok,
            format!("{p} is a directory of {}, writable by no one else", who(f)),
        ),
        DirState::Missing {
            ancestor,
            writable: true,
        } => c(
            Verdict::Ok,
            format!(
                "{p} does not exist yet; launch creates it ({} is writable by {})",
                ancestor.display(),
                who(f)
            ),
        ),
        DirState::Missing {
            ancestor,
            writable: false,
        } => c(
            Verdict::Fail,
            format!(
                "{p} does not exist and {} cannot create it in {}",
                who(f),
                ancestor.display()
            ),
        )
        .fix(format!("mkdir -p -m 0700 {p} && chown {} {p}", user_arg(f)))
        .fix(elsewhere),
        DirState::NotDir => c(
            Verdict::Fail,
            format!("{p} is not a directory (a symlink or a file): launch refuses it"),
        )
        .fix(format!("rm {p}"))
        .fix(elsewhere),
        DirState::OtherOwner(uid) => c(
            Verdict::Fail,
            format!(
                "{p} belongs to uid {uid}, not {}: launch refuses it, since another user could \
                 have planted files in it",
                who(f)
            ),
        )
        .fix(format!("chown -R {} {p}", user_arg(f)))
        .fix(elsewhere),
        DirState::OthersWritable(mode) => c(
            Verdict::Fail,
            format!("{p} is writable by others (mode {mode:04o}): launch refuses it"),
        )
        .fix(format!("chmod go-w {p}")),
    }
}

/// The manifest validated against this host and user: its host-dependent problems, each with
/// validation's own help.
pub(super) fn manifest(name: &str, problems: &[(String, String, Option<String>)]) -> Check {
    let title = "the manifest on this host";
    if problems.is_empty() {
        return check(
            "manifest",
            title,
            Verdict::Ok,
            format!("{name} is valid on this host for this user"),
        );
    }
    let detail = problems
        .iter()
        .map(|(code, msg, _)| format!("{code}: {msg}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut c = check(
        "manifest",
        title,
        Verdict::Fail,
        format!("validation against this host and user: {detail}"),
    );
    for (_, _, help) in problems {
        if let Some(h) = help {
            if !c.fix.contains(h) {
                c.fix.push(h.clone());
            }
        }
    }
    c
}
