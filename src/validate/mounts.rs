//! `[[mounts]]`: filesystems mounted inside the container, in manifest order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::namespaces::Ns;
use super::{Cx, container_path};
use crate::diag::{Problem, line_col};
use crate::host::PathKind;
use crate::manifest::units::{self, human_size};
use crate::manifest::{Mount, MountKind, Sp};
use crate::plan::{MountAttr, MountFlag};

/// A resolved mount.
pub(crate) struct Mnt {
    pub kind: MountKind,
    /// Inside the container, absolute and normalized.
    pub target: PathBuf,
    /// Host path for binds (resolved), else the filesystem name.
    pub source: String,
    /// The target is a file (bind of a file).
    pub file: bool,
    pub flags: Vec<MountFlag>,
    /// For binds: attributes set after the bind with mount_setattr.
    pub attrs: Vec<MountAttr>,
    pub recursive: bool,
    pub data: Option<String>,
}

pub(crate) fn check(cx: &mut Cx, mounts: &[Sp<Mount>], ns: &Ns) -> Vec<Mnt> {
    let mut seen: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for m in mounts {
        let kind = *m.kind.get();
        let target = container_path(cx, &m.target, "launch::mount::target", "mount target");
        if target == std::path::Path::new("/") {
            cx.push(
                Problem::new(
                    "launch::mount::target",
                    m.target.span(),
                    "cannot mount over the container's root",
                )
                .label("`/` is the root filesystem")
                .help("set the root with [rootfs]; mount other filesystems below it"),
            );
        }
        if let Some(first) = seen.get(&target) {
            cx.push(
                Problem::new(
                    "launch::mount::duplicate_target",
                    m.target.span(),
                    format!("{} is mounted twice", target.display()),
                )
                .label(format!(
                    "already a mount target on line {}",
                    line_col(&cx.text, *first).0
                ))
                .help("remove one of the two mounts, or give them different targets"),
            );
        } else {
            seen.insert(target.clone(), m.target.span().start);
        }
        let not_for = |cx: &mut Cx, span: Option<std::ops::Range<usize>>, key: &str, only: &str| {
            if let Some(span) = span {
                cx.push(
                    Problem::new(
                        "launch::mount::option",
                        span,
                        format!("`{key}` does not apply to a {} mount", kind.fstype()),
                    )
                    .label(format!("only for {only}"))
                    .help(format!("remove `{key}` from this mount")),
                );
            }
        };
        if kind != MountKind::Bind {
            not_for(cx, m.source.as_ref().map(Sp::span), "source", "bind mounts");
            not_for(
                cx,
                m.recursive.as_ref().map(Sp::span),
                "recursive",
                "bind mounts",
            );
        }
        if kind != MountKind::Tmpfs {
            not_for(cx, m.size.as_ref().map(Sp::span), "size", "tmpfs");
            not_for(cx, m.mode.as_ref().map(Sp::span), "mode", "tmpfs");
        }
        let opt = |v: &Option<Sp<bool>>, default: bool| v.as_ref().map_or(default, |b| *b.get());
        // Defaults follow runc/crun: kernel filesystems are nosuid, nodev, noexec.
        let (d_ro, d_suid, d_dev, d_exec) = match kind {
            MountKind::Proc | MountKind::Mqueue => (false, true, true, true),
            MountKind::Sysfs => (true, true, true, true),
            MountKind::Tmpfs => (false, true, true, false),
            MountKind::Devpts => (false, true, false, true),
            MountKind::Bind => (false, false, false, false),
        };
        let ro = opt(&m.ro, d_ro);
        let (nosuid, nodev, noexec) = (
            opt(&m.nosuid, d_suid),
            opt(&m.nodev, d_dev),
            opt(&m.noexec, d_exec),
        );
        if kind == MountKind::Sysfs {
            if !ro && !ns.net {
                cx.push(
                    Problem::new(
                        "launch::mount::sysfs_writable",
                        m.ro.as_ref().map_or(m.span(), Sp::span),
                        "a writable sysfs needs a network namespace",
                    )
                    .label("this would let the container change the host's devices and network")
                    .help("keep sysfs read-only, or set `net = true` under [namespaces]"),
                );
            }
            if ns.user.is_some() && !ns.net {
                cx.push(
                    Problem::new(
                        "launch::mount::sysfs_needs_netns",
                        m.kind.span(),
                        "sysfs in a user namespace needs a network namespace",
                    )
                    .label("the kernel refuses this mount (EPERM)")
                    .help(
                        "set `net = true` under [namespaces], or bind-mount /sys read-only instead",
                    ),
                );
            }
        }
        if kind == MountKind::Mqueue && !ns.ipc {
            cx.push(
                Problem::new(
                    "launch::mount::mqueue_needs_ipc",
                    m.kind.span(),
                    "mqueue needs an IPC namespace",
                )
                .label("it would show and share the host's message queues")
                .help("set `ipc = true` under [namespaces] (the default), or remove this mount"),
            );
        }
        let mut source = kind.fstype().to_owned();
        let mut file = false;
        let mut data = None;
        match kind {
            MountKind::Bind => match &m.source {
                None => cx.push(
                    Problem::new("launch::mount::source_required", m.kind.span(), "a bind mount needs a `source`")
                        .label("what should be bound here?")
                        .help("add `source = \"/host/path\"` (relative paths start at the manifest's folder)"),
                ),
                Some(s) => {
                    let path = cx.resolve(s);
                    match cx.host.path_kind(&path) {
                        None => cx.push(
                            Problem::new("launch::mount::source_missing", s.span(), format!("{} does not exist", path.display()))
                                .label("bind source not found")
                                .help("create it, or fix the path (relative paths start at the manifest's folder)"),
                        ),
                        Some(PathKind::Dir) => {}
                        Some(PathKind::Symlink(_)) => {}
                        Some(_) => file = true,
                    }
                    source = path.display().to_string();
                }
            },
            MountKind::Tmpfs => {
                let mut opts = vec![];
                if let Some(mode) = &m.mode {
                    match units::parse_mode(mode.get()) {
                        Ok(v) => opts.push(format!("mode={v:o}")),
                        Err(e) => cx.push(
                            Problem::new("launch::units::mode", mode.span(), format!("invalid mode {}: {e}", mode.get()))
                                .label("expected an octal mode")
                                .help("write it as a string of octal digits, e.g. \"1777\" or \"0755\""),
                        ),
                    }
                }
                if let Some(size) = &m.size {
                    match units::parse_size(size.get()) {
                        Ok(v) if v < 4096 => cx.push(
                            Problem::new("launch::limits::range", size.span(), format!("tmpfs size {} is too small", human_size(v)))
                                .label("less than one page")
                                .help("give at least \"4KiB\", e.g. \"64MiB\""),
                        ),
                        Ok(v) => opts.push(format!("size={v}")),
                        Err(e) => cx.push(
                            Problem::new("launch::units::size", size.span(), format!("invalid size {}: {e}", size.get()))
                                .label("expected a size like \"64MiB\"")
                                .help("write a number with a unit: B, KiB, MiB, GiB"),
                        ),
                    }
                }
                data = (!opts.is_empty()).then(|| opts.join(","));
            }
            MountKind::Devpts => data = Some("newinstance,ptmxmode=0666,mode=0620".into()),
            _ => {}
        }
        let mut flags = vec![];
        let mut attrs = vec![];
        let recursive = kind == MountKind::Bind && opt(&m.recursive, true);
        if kind == MountKind::Bind {
            flags.push(MountFlag::MS_BIND);
            if recursive {
                flags.push(MountFlag::MS_REC);
            }
            for (on, a) in [
                (ro, MountAttr::MOUNT_ATTR_RDONLY),
                (nosuid, MountAttr::MOUNT_ATTR_NOSUID),
                (nodev, MountAttr::MOUNT_ATTR_NODEV),
                (noexec, MountAttr::MOUNT_ATTR_NOEXEC),
            ] {
                if on {
                    attrs.push(a);
                }
            }
        } else {
            for (on, f) in [
                (ro, MountFlag::MS_RDONLY),
                (nosuid, MountFlag::MS_NOSUID),
                (nodev, MountFlag::MS_NODEV),
                (noexec, MountFlag::MS_NOEXEC),
            ] {
                if on {
                    flags.push(f);
                }
            }
        }
        out.push(Mnt {
            kind,
            target,
            source,
            file,
            flags,
            attrs,
            recursive,
            data,
        });
    }
    out
}
