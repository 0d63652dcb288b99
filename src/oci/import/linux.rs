//! `linux`: namespaces, id maps and the cgroup path; the fields launch refuses. Its `resources`
//! are read in resources.rs.

use std::path::{Component, Path, PathBuf};

use super::{Cx, Launch, Node, same};
use crate::spec::{IdMapLine, IdMaps, Limits, Namespace, Namespaces, UserNamespace};

const LINUX: &[&str] = &[
    "namespaces",
    "uidMappings",
    "gidMappings",
    "timeOffsets",
    "devices",
    "netDevices",
    "cgroupsPath",
    "rootfsPropagation",
    "resources",
    "intelRdt",
    "personality",
    "sysctl",
    "seccomp",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
    "memoryPolicy",
];

/// The kernel's limit on lines in an id map.
const MAX_MAP_LINES: usize = 340;

/// What `linux` gives the Spec.
pub(super) struct Linux {
    pub namespaces: Namespaces,
    pub limits: Limits,
}

pub(super) fn check(cx: &mut Cx, linux: Option<&Node>, launch: &Launch) -> Linux {
    let mut out = Linux {
        namespaces: Namespaces {
            pid: Namespace::Host,
            mount: Namespace::Host,
            uts: Namespace::Host,
            ipc: Namespace::Host,
            net: Namespace::Host,
            cgroup: Namespace::Host,
            time: Namespace::Host,
            user: UserNamespace::Host,
        },
        limits: Limits::none(),
    };
    let Some(l) = linux.and_then(|l| if l.v.is_null() { None } else { Some(l) }) else {
        cx.push_at(
            "launch::oci::missing",
            0..0,
            "/",
            "`linux` is missing",
            "needs `linux` with at least a mount namespace",
            "add \"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}",
        );
        return out;
    };
    let Some(l) = cx.object(l, LINUX) else {
        return out;
    };
    if let Some(d) = l.v.get("devices").map(|v| l.child("devices", v)) {
        if same::devices_are_launchs(d.v) {
            cx.take(&d);
        }
    }
    // `seccomp`, `maskedPaths` and `readonlyPaths` are read with the rest of the security part.
    cx.security(&l, &["devices", "mountLabel"]);
    cx.unsupported(
        &l,
        &[
            (
                "timeOffsets",
                "launch does not set time namespace offsets yet",
            ),
            ("netDevices", "launch does not move network devices yet"),
            ("intelRdt", "launch does not use Intel RDT"),
            (
                "personality",
                "launch does not set the execution domain yet",
            ),
            ("sysctl", "launch does not write sysctls yet"),
            (
                "memoryPolicy",
                "launch does not set NUMA memory policies yet",
            ),
        ],
    );
    if let Some(p) = cx.get(&l, "rootfsPropagation") {
        if let Some(s) = cx.str(&p) {
            // launch always makes the container's mounts private (MS_REC|MS_PRIVATE on /). A
            // chroot bundle launch exported says rslave, because runc refuses private without
            // pivot_root: with launch's own `pivot-root: false` that is launch's private again.
            let exported_chroot = !launch.pivot_root && matches!(s.as_str(), "slave" | "rslave");
            if !matches!(s.as_str(), "private" | "rprivate" | "") && !exported_chroot {
                cx.push(
                    "launch::oci::unsupported",
                    &p,
                    format!("root propagation `{s}` is not supported yet"),
                    "launch makes every mount of the container private",
                    "remove `rootfsPropagation`, or write \"rprivate\" (what launch does)",
                );
            }
        }
    }
    out.namespaces = namespaces(cx, &l, launch);
    id_maps(cx, &l, &mut out.namespaces, launch);
    out.limits = super::resources::check(cx, &l, launch);
    out
}

fn namespaces(cx: &mut Cx, l: &Node, launch: &Launch) -> Namespaces {
    let facts = cx.host.facts().clone();
    let mut ns = Namespaces {
        pid: Namespace::Host,
        mount: Namespace::Host,
        uts: Namespace::Host,
        ipc: Namespace::Host,
        net: Namespace::Host,
        cgroup: Namespace::Host,
        time: Namespace::Host,
        user: UserNamespace::Host,
    };
    let list = cx.get(l, "namespaces");
    let items = list.as_ref().and_then(|n| cx.array(n)).unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    let mut user_new = None;
    for item in &items {
        let Some(o) = cx.object(item, &["type", "path"]) else {
            continue;
        };
        let Some(t) = cx.required(&o, "type", "the namespace type, e.g. \"pid\"") else {
            continue;
        };
        let Some(kind) = cx.str(&t) else { continue };
        let path = cx.get(&o, "path").and_then(|p| {
            let s = cx.str(&p)?;
            if s.is_empty() {
                return None;
            }
            let path = PathBuf::from(&s);
            if !path.is_absolute() {
                cx.push(
                    "launch::oci::value",
                    &p,
                    format!("namespace path `{s}` is not absolute"),
                    "a namespace file on the host",
                    "write a path like /proc/PID/ns/net or /run/netns/NAME",
                );
                return None;
            }
            if cx.host.path_kind(&path).is_none() {
                cx.push(
                    "launch::oci::namespace_path",
                    &p,
                    format!("{s} does not exist"),
                    "no namespace to join here",
                    "start the process that owns the namespace first, or fix the path",
                );
            }
            Some((path, p))
        });
        if seen.contains(&kind) {
            cx.push(
                "launch::oci::value",
                &t,
                format!("namespace `{kind}` is listed twice"),
                "a second entry for the same type",
                "keep one entry per namespace type",
            );
            continue;
        }
        seen.push(kind.clone());
        let refuse_join = |cx: &mut Cx, p: &Node, what: &str, why: &str| {
            cx.push(
                "launch::oci::unsupported",
                p,
                format!("joining an existing {what} namespace is not supported yet"),
                why.to_string(),
                format!("remove `path` to get a new {what} namespace"),
            );
        };
        let new_or_join = |path: Option<(PathBuf, Node)>| match path {
            Some((p, _)) => Namespace::Join(p),
            None => Namespace::New,
        };
        match kind.as_str() {
            "mount" => {
                if let Some((_, p)) = &path {
                    refuse_join(
                        cx,
                        p,
                        "mount",
                        "launch builds the root in a mount namespace of its own",
                    );
                }
                ns.mount = Namespace::New;
            }
            "user" => {
                if let Some((_, p)) = &path {
                    refuse_join(
                        cx,
                        p,
                        "user",
                        "launch maps ids in a user namespace of its own",
                    );
                } else if !facts.user_namespaces {
                    cx.push(
                        "launch::namespaces::unsupported",
                        &t,
                        "this host cannot create user namespaces",
                        "/proc/sys/user/max_user_namespaces is 0",
                        "enable them (sysctl user.max_user_namespaces=15000) or remove the user namespace",
                    );
                }
                user_new = Some(t.clone());
                // Filled by the id maps.
                ns.user = UserNamespace::New(IdMaps::MapRoot);
            }
            "pid" => {
                if let Some((_, p)) = &path {
                    if !launch.init {
                        cx.push(
                            "launch::oci::unsupported",
                            p,
                            "joining a pid namespace needs launch's init",
                            "setns(2) moves only the children of the caller into a pid namespace",
                            "add the annotation \"org.launch.init\": \"true\" (the command then runs as the init's child, inside it)",
                        );
                    }
                }
                ns.pid = new_or_join(path);
            }
            "uts" => ns.uts = new_or_join(path),
            "ipc" => ns.ipc = new_or_join(path),
            "network" => ns.net = new_or_join(path),
            "cgroup" => {
                if path.is_none() && !facts.cgroup_namespace {
                    cx.push(
                        "launch::namespaces::unsupported",
                        &t,
                        "this host cannot create cgroup namespaces",
                        "no /proc/self/ns/cgroup",
                        "remove the cgroup namespace, or run on a kernel that has them",
                    );
                }
                ns.cgroup = new_or_join(path);
            }
            "time" => {
                if path.is_none() && !facts.time_namespace {
                    cx.push(
                        "launch::namespaces::unsupported",
                        &t,
                        "this host cannot create time namespaces",
                        "needs Linux 5.6 or later",
                        "remove the time namespace, or run on a kernel that has them",
                    );
                }
                ns.time = new_or_join(path);
            }
            other => {
                let help = match crate::diag::did_you_mean(
                    other,
                    [
                        "pid", "mount", "uts", "ipc", "network", "cgroup", "time", "user",
                    ],
                ) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "write one of pid, mount, uts, ipc, network, cgroup, time, user".into(),
                };
                cx.push(
                    "launch::oci::value",
                    &t,
                    format!("`{other}` is not a namespace type"),
                    "unknown namespace type",
                    help,
                );
            }
        }
    }
    if !ns.mount.isolated() {
        let at = list.clone().unwrap_or_else(|| l.clone());
        cx.push(
            "launch::namespaces::mount_required",
            &at,
            "a mount namespace is required",
            "the root filesystem is built inside it",
            "add {\"type\": \"mount\"} to linux.namespaces: without it every mount would change the host",
        );
    }
    let joins = [&ns.pid, &ns.uts, &ns.ipc, &ns.net, &ns.cgroup, &ns.time]
        .iter()
        .any(|n| matches!(n, Namespace::Join(_)));
    if let (Some(t), true) = (&user_new, joins) {
        cx.push(
            "launch::oci::unsupported",
            t,
            "joining namespaces from a new user namespace is not supported yet",
            "the new user namespace has no privilege over the namespaces to join",
            "remove the user namespace, or the `path` of the namespaces joined",
        );
    }
    ns
}

fn id_maps(cx: &mut Cx, l: &Node, ns: &mut Namespaces, launch: &Launch) {
    let uid = cx.get(l, "uidMappings");
    let gid = cx.get(l, "gidMappings");
    let read = |cx: &mut Cx, n: &Option<Node>| -> Option<Vec<IdMapLine>> {
        let n = n.as_ref()?;
        let items = cx.array(n)?;
        if items.is_empty() || items.len() > MAX_MAP_LINES {
            cx.push(
                "launch::idmap::invalid",
                n,
                format!("needs 1 to {MAX_MAP_LINES} entries"),
                format!("{} entries", items.len()),
                "give at least one {\"containerID\", \"hostID\", \"size\"} entry",
            );
        }
        let mut out = Vec::new();
        for i in items {
            let Some(o) = cx.object(&i, &["containerID", "hostID", "size"]) else {
                continue;
            };
            let mut num = |key: &str| {
                cx.required(&o, key, "an id or a count")
                    .and_then(|n| cx.u32(&n))
            };
            let (Some(inside), Some(outside), Some(count)) =
                (num("containerID"), num("hostID"), num("size"))
            else {
                continue;
            };
            if count == 0
                || inside as u64 + count as u64 > u32::MAX as u64
                || outside as u64 + count as u64 > u32::MAX as u64
            {
                cx.push(
                    "launch::idmap::invalid",
                    &o,
                    "the range is empty or runs past the largest id",
                    "size must be at least 1, and id + size at most 4294967295",
                    "fix `size`",
                );
                continue;
            }
            out.push(IdMapLine {
                inside,
                outside,
                count,
            });
        }
        Some(out)
    };
    let (u, g) = (read(cx, &uid), read(cx, &gid));
    match &ns.user {
        UserNamespace::New(_) => match (u, g) {
            (Some(u), Some(g)) => {
                // `map_root`: the maps stand for whoever runs it, not the exporter's ids.
                ns.user = UserNamespace::New(if launch.map_root == Some(true) {
                    IdMaps::MapRoot
                } else {
                    IdMaps::Explicit { uid: u, gid: g }
                });
            }
            (u, _) => {
                let missing = if u.is_none() {
                    "uidMappings"
                } else {
                    "gidMappings"
                };
                cx.push(
                    "launch::idmap::incomplete",
                    l,
                    format!("a user namespace needs `{missing}`"),
                    format!("no `{missing}`"),
                    format!("add `{missing}`, e.g. [{{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}}]"),
                );
            }
        },
        UserNamespace::Host | UserNamespace::Join(_) => {
            for n in [&uid, &gid].into_iter().flatten() {
                if !super::is_unset(n.v) {
                    cx.push(
                        "launch::idmap::conflict",
                        n,
                        "id mappings without a new user namespace",
                        "nothing to map",
                        "add {\"type\": \"user\"} to linux.namespaces, or remove the mappings",
                    );
                }
            }
        }
    }
}

/// A cgroup parent: a relative path of plain names.
pub(super) fn parent(cx: &mut Cx, n: &Node, s: &str) -> Option<PathBuf> {
    let rel = s.trim_start_matches('/');
    let path = Path::new(rel);
    let ok = !rel.is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && rel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !ok {
        cx.push(
            "launch::limits::parent",
            n,
            format!("`{s}` is not a cgroup path launch can use"),
            "a path of plain names below each hierarchy's root",
            "write a path like \"/launch\" or \"/ci/jobs\" (systemd's `slice:prefix:name` form is not supported)",
        );
        return None;
    }
    Some(path.to_path_buf())
}
