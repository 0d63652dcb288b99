//! `[namespaces]`: which ones, and the user namespace's id maps.

use super::{Cx, flag, span_or};
use crate::diag::Problem;
use crate::manifest::{IdMapEntry, Manifest, Sp, UserNs};
use crate::spec::{IdMapLine, IdMaps, Namespace, Namespaces, UserNamespace};

/// The kernel's limit on lines in an id map.
const MAX_MAP_LINES: usize = 340;

pub(crate) fn check(cx: &mut Cx, m: &Manifest) -> Namespaces {
    let default = crate::manifest::Namespaces::default();
    let n = m.namespaces.as_ref().map_or(&default, |n| n.get());
    let facts = cx.host.facts().clone();
    let whole = m.namespaces.as_ref().map_or(0..0, Sp::span);
    let ns_span = |v: Option<&Sp<bool>>| span_or(v, whole.clone());

    let mount = flag(n.mount.as_ref(), true);
    if !mount {
        cx.push(
            Problem::new(
                "launch::namespaces::mount_required",
                ns_span(n.mount.as_ref()),
                "a mount namespace is required",
            )
            .label("the root filesystem is built inside it")
            .help("remove `mount = false`: without it every mount would change the host"),
        );
    }
    let unsupported =
        |cx: &mut Cx, on: bool, have: bool, v: Option<&Sp<bool>>, what: &str, why: &str| {
            if on && !have {
                cx.push(
                    Problem::new(
                        "launch::namespaces::unsupported",
                        ns_span(v),
                        format!("this host cannot create {what} namespaces"),
                    )
                    .label(why.to_owned())
                    .help(format!(
                        "remove `{what} = true`, or run on a kernel that has them"
                    )),
                );
            }
            on && have
        };
    let cgroup = flag(n.cgroup.as_ref(), false);
    let cgroup = unsupported(
        cx,
        cgroup,
        facts.cgroup_namespace,
        n.cgroup.as_ref(),
        "cgroup",
        "no /proc/self/ns/cgroup",
    );
    let time = flag(n.time.as_ref(), false);
    let time = unsupported(
        cx,
        time,
        facts.time_namespace,
        n.time.as_ref(),
        "time",
        "needs Linux 5.6 or later",
    );

    let user = n.user.as_ref().and_then(|u| {
        let maps = user_maps(cx, u);
        if maps.is_some() && !facts.user_namespaces {
            cx.push(
                Problem::new("launch::namespaces::unsupported", u.span(), "this host cannot create user namespaces")
                    .label("/proc/sys/user/max_user_namespaces is 0")
                    .help("enable them (sysctl user.max_user_namespaces=15000) or remove the user namespace"),
            );
        }
        maps
    });
    // Without root, namespaces other than the user namespace need one (the kernel checks
    // CAP_SYS_ADMIN in the user namespace that will own them), and an unprivileged launcher may
    // map its own ids and, through newuidmap/newgidmap, its subordinate ids.
    if facts.uid != 0 {
        if user.is_none() {
            let span = if whole.is_empty() {
                m.name.span()
            } else {
                whole.clone()
            };
            cx.push(
                Problem::new(
                    "launch::namespaces::privilege",
                    span,
                    format!(
                        "creating namespaces needs root or a user namespace (you are uid {})",
                        facts.uid
                    ),
                )
                .label("pid, mount, uts, ipc and network namespaces are made for this container")
                .help("add `user = true` under [namespaces] (root inside is you), or run launch as root"),
            );
        }
        if let (Some(IdMaps::Explicit { uid, gid }), Some(u)) = (&user, n.user.as_ref()) {
            unprivileged_maps(cx, u.span(), uid, gid);
        }
    }
    let ns = |on: bool| if on { Namespace::New } else { Namespace::Host };
    Namespaces {
        pid: ns(flag(n.pid.as_ref(), true)),
        mount: Namespace::New,
        uts: ns(flag(n.uts.as_ref(), true)),
        ipc: ns(flag(n.ipc.as_ref(), true)),
        net: ns(flag(n.net.as_ref(), false)),
        cgroup: ns(cgroup),
        time: ns(time),
        user: user.map_or(UserNamespace::Host, UserNamespace::New),
    }
}

fn user_maps(cx: &mut Cx, u: &Sp<UserNs>) -> Option<IdMaps> {
    let c = match u.get() {
        UserNs::Enabled(false) => return None,
        UserNs::Enabled(true) => return Some(IdMaps::MapRoot),
        UserNs::Config(c) => c,
    };
    let map_root = c.map_root.as_ref();
    match (flag(map_root, false), &c.uid_map, &c.gid_map) {
        (true, None, None) | (false, None, None) => Some(IdMaps::MapRoot),
        (true, Some(m), _) | (true, None, Some(m)) => {
            cx.push(
                Problem::new(
                    "launch::idmap::conflict",
                    m.span(),
                    "`map_root` and explicit maps exclude each other",
                )
                .label("explicit map given with map_root = true")
                .help("keep either `map_root = true` or `uid_map`/`gid_map`"),
            );
            None
        }
        (false, Some(um), Some(gm)) => {
            let uid = map_lines(cx, um, "uid_map");
            let gid = map_lines(cx, gm, "gid_map");
            Some(IdMaps::Explicit { uid, gid })
        }
        (false, Some(m), None) | (false, None, Some(m)) => {
            let missing = if c.uid_map.is_some() {
                "gid_map"
            } else {
                "uid_map"
            };
            cx.push(
                Problem::new(
                    "launch::idmap::incomplete",
                    m.span(),
                    format!("`{missing}` is missing"),
                )
                .label("only one of the two maps is given")
                .help(format!(
                    "add `{missing}`: a user namespace needs both maps to be usable"
                )),
            );
            None
        }
    }
}

fn map_lines(cx: &mut Cx, m: &Sp<Vec<Sp<IdMapEntry>>>, what: &str) -> Vec<IdMapLine> {
    let mut lines: Vec<(IdMapLine, std::ops::Range<usize>)> = Vec::new();
    if m.is_empty() || m.len() > MAX_MAP_LINES {
        cx.push(
            Problem::new(
                "launch::idmap::invalid",
                m.span(),
                format!("`{what}` needs 1 to {MAX_MAP_LINES} entries"),
            )
            .label(format!("{} entries", m.len()))
            .help("give at least one `{ inside, outside, count }` entry"),
        );
    }
    for e in m.iter() {
        let mut num = |v: &Sp<i64>, min: i64| -> Option<u32> {
            let ok = *v.get() >= min && *v.get() < u32::MAX as i64;
            if !ok {
                cx.push(
                    Problem::new(
                        "launch::idmap::invalid",
                        v.span(),
                        format!("{} is not a valid id here", v.get()),
                    )
                    .label(format!("must be from {min} to 4294967294"))
                    .help("ids are unsigned 32-bit numbers; 4294967295 is reserved"),
                );
            }
            ok.then(|| *v.get() as u32)
        };
        let (Some(inside), Some(outside), Some(count)) =
            (num(&e.inside, 0), num(&e.outside, 0), num(&e.count, 1))
        else {
            continue;
        };
        let line = IdMapLine {
            inside,
            outside,
            count,
        };
        let end = |s: u32| s as u64 + count as u64;
        if end(inside) > u32::MAX as u64 || end(outside) > u32::MAX as u64 {
            cx.push(
                Problem::new(
                    "launch::idmap::invalid",
                    e.span(),
                    "the range runs past the largest id",
                )
                .label("inside + count or outside + count is too large")
                .help("make `count` smaller"),
            );
            continue;
        }
        let overlaps =
            |a: u32, b: u32, n: u32, m: u32| (a as u64) < end_of(b, m) && (b as u64) < end_of(a, n);
        if lines.iter().any(|(l, _)| {
            overlaps(l.inside, inside, l.count, count)
                || overlaps(l.outside, outside, l.count, count)
        }) {
            cx.push(
                Problem::new(
                    "launch::idmap::overlap",
                    e.span(),
                    format!("this `{what}` entry overlaps an earlier one"),
                )
                .label("its inside or outside range overlaps")
                .help("the kernel rejects overlapping ranges: make the ranges disjoint"),
            );
            continue;
        }
        lines.push((line, e.span()));
    }
    lines.into_iter().map(|(l, _)| l).collect()
}

fn end_of(start: u32, count: u32) -> u64 {
    start as u64 + count as u64
}

/// A non-root launcher's explicit maps: each range must be its own id alone or lie inside one
/// of its subordinate ranges (/etc/subuid, /etc/subgid), and those need newuidmap/newgidmap.
fn unprivileged_maps(
    cx: &mut Cx,
    span: std::ops::Range<usize>,
    uid: &[IdMapLine],
    gid: &[IdMapLine],
) {
    let facts = cx.host.facts().clone();
    let sub = &facts.subids;
    let who = sub.user.clone().unwrap_or_else(|| facts.uid.to_string());
    let outside = |lines: &[IdMapLine], own: u32, ranges: &[crate::host::IdRange]| {
        lines
            .iter()
            .filter(|l| {
                let own_id = l.outside == own && l.count == 1;
                let sub = ranges
                    .iter()
                    .any(|r| r.holds(l.outside as u64, l.count as u64));
                !(own_id || sub)
            })
            .map(|l| format!("{}-{}", l.outside, l.outside as u64 + l.count as u64 - 1))
            .collect::<Vec<_>>()
    };
    let shown = |ranges: &[crate::host::IdRange]| {
        if ranges.is_empty() {
            "none".to_string()
        } else {
            ranges
                .iter()
                .map(|r| format!("{}-{}", r.start, r.start + r.count - 1))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let (bad_u, bad_g) = (
        outside(uid, facts.uid, &sub.uid),
        outside(gid, facts.gid, &sub.gid),
    );
    if !bad_u.is_empty() || !bad_g.is_empty() {
        let mut what = Vec::new();
        if !bad_u.is_empty() {
            what.push(format!(
                "uids {} are not yours (uid {}; /etc/subuid gives you {})",
                bad_u.join(", "),
                facts.uid,
                shown(&sub.uid)
            ));
        }
        if !bad_g.is_empty() {
            what.push(format!(
                "gids {} are not yours (gid {}; /etc/subgid gives you {})",
                bad_g.join(", "),
                facts.gid,
                shown(&sub.gid)
            ));
        }
        cx.push(
            Problem::new(
                "launch::idmap::unprivileged",
                span,
                "without root, a user namespace can map only your own id and your subordinate ids",
            )
            .label(what.join("; "))
            .help(format!(
                "map ranges inside your lines of /etc/subuid and /etc/subgid, or have a range \
                 no other user has added to both (as root, e.g. `usermod --add-subuids \
                 100000-165535 --add-subgids 100000-165535 {who}`; `launch doctor` names a \
                 free one); `user = true` maps root to you and 1-65536 to your subordinate ids \
                 when you have them; or run launch as root"
            )),
        );
        return;
    }
    let helper = |lines: &[IdMapLine], own: u32| crate::lower::needs_helper(lines, own);
    let mut missing = Vec::new();
    if helper(uid, facts.uid) && sub.newuidmap.is_none() {
        missing.push("newuidmap");
    }
    if helper(gid, facts.gid) && sub.newgidmap.is_none() {
        missing.push("newgidmap");
    }
    if !missing.is_empty() {
        cx.push(
            Problem::new(
                "launch::idmap::newuidmap",
                span,
                format!("{} not found", missing.join(" and ")),
            )
            .label("mapping subordinate ids without root goes through the setuid helpers")
            .help(
                "install them: `apt-get install uidmap` (Debian, Ubuntu), `dnf install \
                 shadow-utils` (Fedora), `apk add shadow-uidmap` (Alpine); or map only your own \
                 id",
            ),
        );
    }
}
