//! `mounts`: in order, their option strings mapped onto the Spec's typed mounts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::process::container_path;
use super::{Cx, Node, same};
use crate::host::PathKind;
use crate::spec::{Atime, Mount, MountKind};

/// The devpts options launch mounts every devpts with: accepted, as they change nothing.
const DEVPTS_FIXED: &[&str] = &["newinstance", "ptmxmode=0666", "mode=0620", "mode=620"];

pub(super) fn check(cx: &mut Cx, doc: &Node) -> Vec<Mount> {
    let mut out = Vec::new();
    let Some(list) = cx.get(doc, "mounts") else {
        return out;
    };
    let Some(items) = cx.array(&list) else {
        return out;
    };
    // launch's own minimal /dev, as exported: launch makes it itself when no mount is on /dev.
    let dev = same::minimal_dev_mounts();
    let mut skip = vec![false; items.len()];
    if let Some(at) = items
        .windows(dev.len())
        .position(|w| w.iter().zip(&dev).all(|(i, d)| i.v == d))
    {
        for (i, s) in skip.iter_mut().enumerate().skip(at).take(dev.len()) {
            cx.take(&items[i]);
            *s = true;
        }
    }
    for (item, s) in items.iter().zip(skip.iter_mut()) {
        if !*s && same::is_launchs_dev_tmpfs(item.v) {
            cx.take(item);
            *s = true;
        }
    }
    let mut seen: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (item, skip) in items.into_iter().zip(skip) {
        if skip {
            continue;
        }
        if let Some(m) = mount(cx, &item, &mut seen) {
            out.push(m);
        }
    }
    out
}

fn mount(cx: &mut Cx, item: &Node, seen: &mut BTreeMap<PathBuf, String>) -> Option<Mount> {
    let m = cx.object(
        item,
        &[
            "destination",
            "type",
            "source",
            "options",
            "uidMappings",
            "gidMappings",
        ],
    )?;
    cx.unsupported(
        &m,
        &[
            ("uidMappings", "launch does not make id-mapped mounts yet"),
            ("gidMappings", "launch does not make id-mapped mounts yet"),
        ],
    );
    let dest = cx.required(&m, "destination", "the mount point inside the container")?;
    let target = cx
        .str(&dest)
        .and_then(|s| container_path(cx, &dest, &s, "mount destination"));
    if let Some(t) = &target {
        if t == Path::new("/") {
            cx.push(
                "launch::mount::target",
                &dest,
                "cannot mount over the container's root",
                "`/` is the root filesystem",
                "set the root with `root.path`; mount other filesystems below it",
            );
        } else if let Some(first) = seen.get(t) {
            let first = first.clone();
            cx.push(
                "launch::mount::duplicate_target",
                &dest,
                format!("{} is mounted twice", t.display()),
                format!("already the destination of {first}"),
                "remove one of the two mounts, or give them different destinations",
            );
        } else {
            seen.insert(t.clone(), m.shown().to_owned());
        }
    }
    let fstype = cx.get(&m, "type").and_then(|t| cx.str(&t).map(|s| (s, t)));
    let source = cx
        .get(&m, "source")
        .and_then(|s| cx.str(&s).map(|v| (v, s)));
    let mut opts: Vec<(String, Node)> = Vec::new();
    if let Some(o) = cx.get(&m, "options") {
        if let Some(items) = cx.array(&o) {
            for i in items {
                if let Some(s) = cx.str(&i) {
                    opts.push((s, i));
                }
            }
        }
    }
    let has = |o: &str| opts.iter().any(|(s, _)| s == o);
    let bind = has("bind") || has("rbind");
    let ty = fstype.as_ref().map_or("", |(s, _)| s.as_str());
    let what = if bind || ty == "bind" { "bind" } else { ty };
    let mut readonly = false;
    let (mut nosuid, mut nodev, mut noexec) = (false, false, false);
    let mut atime = None;
    let mut size = None;
    let mut mode = None;
    let mut bad = false;
    for (o, n) in &opts {
        let o = o.as_str();
        // Later options override earlier ones, as in mount(8) and runc.
        match o {
            // The `r` forms (mount_setattr with AT_RECURSIVE) are what launch applies to a
            // recursive bind anyway, and the same as the plain ones on any other mount.
            "ro" | "rro" => readonly = true,
            "rw" | "rrw" => readonly = false,
            "nosuid" | "rnosuid" => nosuid = true,
            "suid" | "rsuid" => nosuid = false,
            "nodev" | "rnodev" => nodev = true,
            "dev" | "rdev" => nodev = false,
            "noexec" | "rnoexec" => noexec = true,
            "exec" | "rexec" => noexec = false,
            "bind" | "rbind" => {}
            // launch mounts everything private: this asks for what happens anyway.
            "private" | "rprivate" => {}
            // A bind keeps its source's access-time updates (as launch's binds do).
            "relatime" | "strictatime" | "noatime" if what != "bind" => {
                atime = Some(match o {
                    "strictatime" => Atime::Strictatime,
                    "noatime" => Atime::Noatime,
                    _ => Atime::Relatime,
                });
            }
            _ if what == "tmpfs" && o.starts_with("size=") => {
                size = parse_size(&o["size=".len()..]);
                if size.is_none() {
                    bad = true;
                    cx.push(
                        "launch::oci::value",
                        n,
                        format!("`{o}` is not a size"),
                        "bytes, or a number with k, m or g",
                        "write e.g. size=65536k or size=64m",
                    );
                }
            }
            _ if what == "tmpfs" && o.starts_with("mode=") => {
                mode = u32::from_str_radix(&o["mode=".len()..], 8)
                    .ok()
                    .filter(|m| *m <= 0o7777);
                if mode.is_none() {
                    bad = true;
                    cx.push(
                        "launch::oci::value",
                        n,
                        format!("`{o}` is not an octal mode"),
                        "octal permission bits",
                        "write e.g. mode=1777 or mode=755",
                    );
                }
            }
            _ if what == "devpts" && DEVPTS_FIXED.contains(&o) => {}
            _ => {
                bad = true;
                cx.push(
                    "launch::mount::option",
                    n,
                    format!("mount option `{o}` is not supported for a {} mount", if what.is_empty() { "typeless" } else { what }),
                    "launch cannot apply it yet",
                    "remove it; launch maps ro/rw, nosuid, nodev, noexec, relatime/strictatime/noatime, bind/rbind, tmpfs size= and mode= (docs/oci.md)",
                );
            }
        }
    }
    let kind = match what {
        "proc" => Some(MountKind::Proc),
        "sysfs" => Some(MountKind::Sysfs),
        "tmpfs" => Some(MountKind::Tmpfs { size, mode }),
        "devpts" => Some(MountKind::Devpts),
        "mqueue" => Some(MountKind::Mqueue),
        "bind" => bind_source(cx, &m, source.as_ref(), has("rbind")),
        "" => {
            cx.push(
                "launch::oci::missing",
                &m,
                "the mount has no `type`",
                "needs `type`, or a `bind` option",
                "add \"type\": \"bind\" with options [\"rbind\"], or a filesystem type like \"tmpfs\"",
            );
            None
        }
        other => {
            let n = fstype
                .as_ref()
                .map_or_else(|| m.clone(), |(_, n)| n.clone());
            cx.push(
                "launch::oci::unsupported",
                &n,
                format!("mount type `{other}` is not supported yet"),
                "launch mounts proc, sysfs, tmpfs, devpts, mqueue and binds",
                "remove this mount, or bind-mount a host directory instead",
            );
            None
        }
    };
    if bad {
        return None;
    }
    Some(Mount {
        kind: kind?,
        target: target?,
        readonly,
        nosuid,
        nodev,
        noexec,
        atime,
    })
}

/// A bind's source: absolute, or relative to the bundle; whether it is a file decides the
/// mount point.
fn bind_source(
    cx: &mut Cx,
    m: &Node,
    source: Option<&(String, Node)>,
    recursive: bool,
) -> Option<MountKind> {
    let Some((s, n)) = source else {
        cx.push(
            "launch::mount::source_required",
            m,
            "a bind mount needs `source`",
            "no `source`",
            "add \"source\": the host path to bind (absolute, or relative to the bundle)",
        );
        return None;
    };
    let path = crate::validate::normalize(&cx.bundle.join(s));
    let file = match cx.host.path_kind(&path) {
        Some(PathKind::Dir | PathKind::Symlink(_)) => false,
        Some(PathKind::File | PathKind::BlockDevice(..) | PathKind::Other) => true,
        None => {
            cx.push(
                "launch::mount::source_missing",
                n,
                format!("{} does not exist", path.display()),
                "no such file or directory on the host",
                "create it, or fix `source` (relative paths are relative to the bundle)",
            );
            return None;
        }
    };
    Some(MountKind::Bind {
        source: path,
        file,
        recursive,
    })
}

/// `65536k`, `64m`, `1g` or bytes, as tmpfs reads `size=` (percentages are not taken).
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}
