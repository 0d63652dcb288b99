//! `[[mounts]]`: filesystems mounted inside the container, in manifest order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Cx, container_path};
use crate::diag::Problem;
use crate::host::PathKind;
use crate::manifest::units::{self, human_size};
use crate::manifest::{Mount, MountKind, Sp};
use crate::spec::{self, Namespaces};

pub(crate) fn check(cx: &mut Cx, mounts: &[Sp<Mount>], ns: &Namespaces) -> Vec<spec::Mount> {
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
                    "already a mount target on {}",
                    cx.source.place_from(*first, m.target.span().start)
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
            if !ro && !ns.net.isolated() {
                cx.push(
                    Problem::new(
                        "launch::mount::sysfs_writable",
                        m.ro.as_ref().map_or(m.span(), Sp::span),
                        "a writable sysfs needs a network namespace",
                    )
                    .label("this would let the container change the host's devices and network")
                    .help("keep sysfs read-only, or give the container a network of its own (any `[network] mode` but \"host\")"),
                );
            }
            if ns.user != spec::UserNamespace::Host && !ns.net.isolated() {
                cx.push(
                    Problem::new(
                        "launch::mount::sysfs_needs_netns",
                        m.kind.span(),
                        "sysfs in a user namespace needs a network namespace",
                    )
                    .label("the kernel refuses this mount (EPERM)")
                    .help(
                        "give the container a network of its own (any `[network] mode` but \"host\"), or bind-mount /sys read-only instead",
                    ),
                );
            }
        }
        if kind == MountKind::Mqueue && !ns.ipc.isolated() {
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
        let recursive = opt(&m.recursive, true);
        let kind = match kind {
            MountKind::Proc => spec::MountKind::Proc,
            MountKind::Sysfs => spec::MountKind::Sysfs,
            MountKind::Devpts => spec::MountKind::Devpts,
            MountKind::Mqueue => spec::MountKind::Mqueue,
            MountKind::Bind => bind(cx, m, recursive),
            MountKind::Tmpfs => tmpfs(cx, m),
        };
        out.push(spec::Mount {
            kind,
            target,
            readonly: ro,
            nosuid,
            nodev,
            noexec,
            atime: None,
        });
    }
    out
}

fn bind(cx: &mut Cx, m: &Sp<Mount>, recursive: bool) -> spec::MountKind {
    let mut file = false;
    let source = match &m.source {
        None => {
            cx.push(
                Problem::new(
                    "launch::mount::source_required",
                    m.kind.span(),
                    "a bind mount needs a `source`",
                )
                .label("what should be bound here?")
                .help(
                    "add `source = \"/host/path\"` (relative paths start at the manifest's folder)",
                ),
            );
            PathBuf::new()
        }
        Some(s) => {
            let path = cx.resolve(s);
            match cx.host.path_kind(&path) {
                None => cx.push(
                    Problem::new("launch::mount::source_missing", s.span(), format!("{} does not exist", path.display()))
                        .label("bind source not found")
                        .help("create it, or fix the path (relative paths start at the manifest's folder)"),
                ),
                Some(PathKind::Dir) | Some(PathKind::Symlink(_)) => {}
                Some(_) => file = true,
            }
            path
        }
    };
    spec::MountKind::Bind {
        source,
        file,
        recursive,
    }
}

fn tmpfs(cx: &mut Cx, m: &Sp<Mount>) -> spec::MountKind {
    let mode = m
        .mode
        .as_ref()
        .and_then(|mode| match units::parse_mode(mode.get()) {
            Ok(v) => Some(v),
            Err(e) => {
                cx.push(
                    Problem::new(
                        "launch::units::mode",
                        mode.span(),
                        format!("invalid mode {}: {e}", mode.get()),
                    )
                    .label("expected an octal mode")
                    .help("write it as a string of octal digits, e.g. \"1777\" or \"0755\""),
                );
                None
            }
        });
    let size = m
        .size
        .as_ref()
        .and_then(|size| match units::parse_size(size.get()) {
            Ok(v) if v < 4096 => {
                cx.push(
                    Problem::new(
                        "launch::limits::range",
                        size.span(),
                        format!("tmpfs size {} is too small", human_size(v)),
                    )
                    .label("less than one page")
                    .help("give at least \"4KiB\", e.g. \"64MiB\""),
                );
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                cx.push(
                    Problem::new(
                        "launch::units::size",
                        size.span(),
                        format!("invalid size {}: {e}", size.get()),
                    )
                    .label("expected a size like \"64MiB\"")
                    .help("write a number with a unit: B, KiB, MiB, GiB"),
                );
                None
            }
        });
    spec::MountKind::Tmpfs { size, mode }
}
