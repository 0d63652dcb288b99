//! Filesystem steps: the root, the minimal /dev, the manifest's mounts.

use std::path::{Path, PathBuf};

use super::B;
use crate::host::{HostDir, HostFacts};
use crate::plan::{ContainerAction, MountAttr, MountFlag};
use crate::spec::{Mount, MountKind, RootSource, Spec, UserNamespace};

/// The device nodes of a minimal /dev (the OCI runtime spec's default set), with their numbers.
/// Without a user namespace they are created with mknod, as crun does: one call each on the fresh
/// tmpfs. In a user namespace mknod is not allowed, and the host's nodes are bound instead, as
/// bubblewrap does (a bind mount costs ~10x a mknod: an open, a mount and a new mount in the
/// namespace's tree).
pub(crate) const DEV_NODES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Inside-root path → path under the new root before pivot_root.
pub(super) fn under(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// One overlay of the root: where it is mounted (`/`: the root itself), its lower directories
/// (top first), and its upper and work directories.
pub(super) struct RootOverlay {
    pub at: PathBuf,
    /// What the overlay names as its lowers: `sources`, or (idmapped) the mount points in the
    /// state directory where the container attaches their copies.
    pub lowers: Vec<PathBuf>,
    /// The lower directories themselves.
    pub sources: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Mounted in a user namespace: overlayfs keeps its attributes as `user.overlay.*`.
    pub userxattr: bool,
    /// Its upper directory dies with the run (no `persist`): overlayfs need not sync it.
    pub volatile: bool,
    /// The lowers are store layers seen through idmapped copies (a root launcher whose user
    /// namespace maps ids elsewhere: the store's files carry the host's ids).
    pub idmap: bool,
}

/// The overlays the root is made of: one for an image, a stored `tar` root or a `writable`
/// path root; one per bound system directory for a `writable` host root; none otherwise. Their
/// upper and work directories are in `state` (gone with the run) or the `persist` directory.
pub(super) fn root_overlays(spec: &Spec, facts: &HostFacts, state: &Path) -> Vec<RootOverlay> {
    let r = &spec.root;
    let base = r.persist.clone().unwrap_or_else(|| state.to_path_buf());
    let userxattr = !matches!(spec.namespaces.user, UserNamespace::Host);
    let volatile = r.persist.is_none();
    let whole = |sources: Vec<PathBuf>, idmap: bool| {
        // Idmapped copies are attached in the state directory, which the container's root may
        // traverse (the store is private to the launcher's user).
        let lowers = match idmap {
            true => (0..sources.len())
                .map(|i| state.join("lower").join(i.to_string()))
                .collect(),
            false => sources.clone(),
        };
        vec![RootOverlay {
            at: PathBuf::from("/"),
            lowers,
            sources,
            upper: base.join("upper"),
            work: base.join("work"),
            userxattr,
            volatile,
            idmap,
        }]
    };
    if let Some((store, layers)) = r.source.store_layers() {
        let idmap = idmapped_lowers(spec, facts);
        return whole(
            layers
                .iter()
                .rev()
                .map(|d| super::layer_root(store, d))
                .collect(),
            idmap,
        );
    }
    match (&r.source, r.writable) {
        (RootSource::Path { path }, true) => whole(vec![path.clone()], false),
        (RootSource::Host, true) => facts
            .host_root
            .iter()
            .filter_map(|e| match e {
                HostDir::Bind(dir) => Some(dir),
                HostDir::Symlink(..) => None,
            })
            .map(|dir| {
                let name = dir
                    .strip_prefix("/")
                    .unwrap_or(dir)
                    .display()
                    .to_string()
                    .replace('/', "_");
                let at = base.join("host").join(name);
                RootOverlay {
                    at: dir.clone(),
                    lowers: vec![dir.clone()],
                    sources: vec![dir.clone()],
                    upper: at.join("upper"),
                    work: at.join("work"),
                    userxattr,
                    volatile,
                    idmap: false,
                }
            })
            .collect(),
        (RootSource::Path { .. } | RootSource::Host, false)
        | (RootSource::Tar { .. } | RootSource::Image { .. }, _) => Vec::new(),
    }
}

/// Whether the root's store layers are seen through idmapped mounts (mount_setattr(2),
/// Linux 5.12): a root launcher whose user namespace maps ids other than themselves (the store's
/// files belong to the host's ids). `launch doctor` asks the same question.
pub(crate) fn idmapped_lowers(spec: &Spec, facts: &HostFacts) -> bool {
    spec.root.source.store_layers().is_some()
        && facts.uid == 0
        && match &spec.namespaces.user {
            UserNamespace::Host => false,
            UserNamespace::Join(_) => true,
            UserNamespace::New(maps) => {
                let (uid, gid) = maps.lines(facts.uid, facts.gid);
                !uid.iter().chain(&gid).all(|l| l.inside == l.outside)
            }
        }
}

/// A run's own writes: a tmpfs on the state directory, in the container's mount namespace only
/// (as `systemd-nspawn --volatile=overlay` does), holding the overlays' upper and work
/// directories and the mount points of idmapped layers. It goes with the namespace: nothing is
/// written to, or removed from, the state root's filesystem, and the writes count against the
/// container's memory limit (the container is in its cgroups by now).
fn overlay_tmpfs(b: &mut B, root: &Path, state: &Path, overlays: &[RootOverlay]) {
    b.push(
        "mount a tmpfs on the state directory for the overlay's writes (gone with the run)",
        ContainerAction::Mount {
            source: "tmpfs".into(),
            target: state.to_path_buf(),
            fstype: "tmpfs".into(),
            flags: vec![MountFlag::MS_NOSUID, MountFlag::MS_NODEV],
            data: Some("mode=0700".into()),
        },
    );
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    if root != state {
        dirs.push((root.to_path_buf(), 0o755));
    }
    for o in overlays {
        dirs.push((o.upper.clone(), 0o755));
        dirs.push((o.work.clone(), 0o700));
        if o.idmap {
            dirs.extend(o.lowers.iter().map(|l| (l.clone(), 0o755)));
        }
    }
    for (path, mode) in dirs {
        b.push(
            format!("create {} in it", path.display()),
            ContainerAction::Mkdir { path, mode },
        );
    }
}

fn overlay_action(target: PathBuf, o: &RootOverlay) -> ContainerAction {
    ContainerAction::Overlay {
        target,
        lowers: o.lowers.clone(),
        upper: Some((o.upper.clone(), o.work.clone())),
        userxattr: o.userxattr,
        volatile: o.volatile,
    }
}

/// The root's mounts, on `root` (`state` or beneath it); `overlays` are [`root_overlays`]'s.
pub(super) fn rootfs(
    b: &mut B,
    r: &Spec,
    facts: &HostFacts,
    root: &Path,
    state: &Path,
    overlays: &[RootOverlay],
) {
    let bind = vec![MountFlag::MS_BIND, MountFlag::MS_REC];
    if !overlays.is_empty() && r.root.persist.is_none() {
        overlay_tmpfs(b, root, state, overlays);
    }
    let kept = match &r.root.persist {
        Some(dir) => format!(" (its writes kept in {})", dir.display()),
        None => String::new(),
    };
    match (&r.root.source, overlays.first()) {
        (RootSource::Path { path: dir }, Some(o)) => b.push(
            format!(
                "mount the root directory {} under an overlay: writes go to the overlay{kept}",
                dir.display()
            ),
            overlay_action(root.to_path_buf(), o),
        ),
        (RootSource::Path { path: dir }, None) => {
            b.push(
                "bind the root directory",
                ContainerAction::Mount {
                    source: dir.display().to_string(),
                    target: root.to_path_buf(),
                    fstype: "none".into(),
                    flags: bind,
                    data: None,
                },
            );
        }
        (RootSource::Tar { archive, .. }, Some(o)) => overlay_root(
            b,
            root,
            format!(
                "mount the archive {} as the root: its layer in the store under an overlay{kept}",
                archive.display()
            ),
            o,
        ),
        (RootSource::Tar { .. }, None) => {
            b.push(
                "make the extracted root a mount point",
                ContainerAction::Mount {
                    source: root.display().to_string(),
                    target: root.to_path_buf(),
                    fstype: "none".into(),
                    flags: bind,
                    data: None,
                },
            );
            // Device nodes an archive ships are not the container's to open (a block device
            // made 0666 would be the host's disk): only launch's own /dev, mounted on top, has
            // working nodes.
            b.push(
                "ignore device nodes in the extracted root",
                ContainerAction::SetAttr {
                    target: root.to_path_buf(),
                    attrs: vec![MountAttr::MOUNT_ATTR_NODEV],
                    recursive: false,
                },
            );
        }
        (RootSource::Image { name, .. }, Some(o)) => overlay_root(
            b,
            root,
            format!("mount the image {name} as the root: its layers under an overlay{kept}"),
            o,
        ),
        // Validation gives every image its layers.
        (RootSource::Image { .. }, None) => {}
        (RootSource::Host, _) => host_root(b, facts, root, overlays),
    }
}

/// An overlay of store layers on `root`, without device nodes.
fn overlay_root(b: &mut B, root: &Path, what: String, o: &RootOverlay) {
    if o.idmap {
        b.push(
            "attach the launcher's idmapped copies of the layers over them (in this mount \
             namespace only)",
            ContainerAction::AttachLayers {
                layers: o.lowers.clone(),
            },
        );
    }
    b.push(what, overlay_action(root.to_path_buf(), o));
    // As for an extracted archive: device nodes in layers are not the container's to open.
    b.push(
        "ignore device nodes in the layers",
        ContainerAction::SetAttr {
            target: root.to_path_buf(),
            attrs: vec![MountAttr::MOUNT_ATTR_NODEV],
            recursive: false,
        },
    );
}

/// A tmpfs root with the host's system directories: bound read-only, or (`writable`) each
/// under an overlay of its own whose writes never reach the host.
fn host_root(b: &mut B, facts: &HostFacts, root: &Path, overlays: &[RootOverlay]) {
    let bind = vec![MountFlag::MS_BIND, MountFlag::MS_REC];
    b.push(
        "mount a fresh tmpfs as the root",
        ContainerAction::Mount {
            source: "tmpfs".into(),
            target: root.to_path_buf(),
            fstype: "tmpfs".into(),
            flags: vec![MountFlag::MS_NOSUID, MountFlag::MS_NODEV],
            data: Some("mode=0755".into()),
        },
    );
    for e in &facts.host_root {
        match e {
            HostDir::Symlink(link, target) => b.push(
                format!("recreate the host's {} symlink", link.display()),
                ContainerAction::Symlink {
                    target: target.display().to_string(),
                    link: under(root, link),
                },
            ),
            HostDir::Bind(dir) => {
                let at = under(root, dir);
                b.push(
                    format!("create {}", dir.display()),
                    ContainerAction::Mkdir {
                        path: at.clone(),
                        mode: 0o755,
                    },
                );
                if let Some(o) = overlays.iter().find(|o| o.at == *dir) {
                    b.push(
                        format!(
                            "mount the host's {} under an overlay: writes go to the overlay",
                            dir.display()
                        ),
                        overlay_action(at.clone(), o),
                    );
                    b.push(
                        format!("ignore device nodes in {}", dir.display()),
                        ContainerAction::SetAttr {
                            target: at,
                            attrs: vec![MountAttr::MOUNT_ATTR_NODEV],
                            recursive: false,
                        },
                    );
                    continue;
                }
                b.push(
                    format!("bind the host's {}", dir.display()),
                    ContainerAction::Mount {
                        source: dir.display().to_string(),
                        target: at.clone(),
                        fstype: "none".into(),
                        flags: bind.clone(),
                        data: None,
                    },
                );
                b.push(
                    format!(
                        "make {} read-only, with every mount below it",
                        dir.display()
                    ),
                    ContainerAction::SetAttr {
                        target: at,
                        attrs: vec![MountAttr::MOUNT_ATTR_RDONLY, MountAttr::MOUNT_ATTR_NODEV],
                        recursive: true,
                    },
                );
            }
        }
    }
}

pub(super) fn minimal_dev(b: &mut B, root: &Path, userns: bool) {
    let dev = root.join("dev");
    let devp = |n: &str| dev.join(n);
    b.push(
        "create /dev",
        ContainerAction::Mkdir {
            path: dev.clone(),
            mode: 0o755,
        },
    );
    b.push(
        "mount a tmpfs for a minimal /dev",
        ContainerAction::Mount {
            source: "tmpfs".into(),
            target: dev.clone(),
            fstype: "tmpfs".into(),
            flags: vec![MountFlag::MS_NOSUID, MountFlag::MS_NOEXEC],
            data: Some("mode=0755,size=65536k".into()),
        },
    );
    for &(n, major, minor) in DEV_NODES {
        if !userns {
            b.push(
                format!("create the device node /dev/{n}"),
                ContainerAction::Mknod {
                    path: devp(n),
                    major,
                    minor,
                    mode: 0o666,
                },
            );
            continue;
        }
        b.push(
            format!("create /dev/{n}"),
            ContainerAction::Touch { path: devp(n) },
        );
        b.push(
            format!("bind the host's /dev/{n}"),
            ContainerAction::Mount {
                source: format!("/dev/{n}"),
                target: devp(n),
                fstype: "none".into(),
                flags: vec![MountFlag::MS_BIND],
                data: None,
            },
        );
    }
    b.push(
        "create /dev/pts",
        ContainerAction::Mkdir {
            path: devp("pts"),
            mode: 0o755,
        },
    );
    b.push(
        "mount a private devpts instance",
        ContainerAction::Mount {
            source: "devpts".into(),
            target: devp("pts"),
            fstype: "devpts".into(),
            flags: vec![MountFlag::MS_NOSUID, MountFlag::MS_NOEXEC],
            data: Some("newinstance,ptmxmode=0666,mode=0620".into()),
        },
    );
    b.push(
        "create /dev/shm",
        ContainerAction::Mkdir {
            path: devp("shm"),
            mode: 0o1777,
        },
    );
    b.push(
        "mount a tmpfs on /dev/shm",
        ContainerAction::Mount {
            source: "shm".into(),
            target: devp("shm"),
            fstype: "tmpfs".into(),
            flags: vec![
                MountFlag::MS_NOSUID,
                MountFlag::MS_NODEV,
                MountFlag::MS_NOEXEC,
            ],
            data: Some("mode=1777".into()),
        },
    );
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        b.push(
            format!("link /dev/{link}"),
            ContainerAction::Symlink {
                target: target.into(),
                link: devp(link),
            },
        );
    }
}

/// mount(2) flags, mount_setattr(2) attributes and data for a mount of the Spec. Kernel
/// filesystems take their flags in mount(2); a bind ignores them there, so its read-only and
/// other attributes are set afterwards with mount_setattr.
fn mount_args(m: &Mount) -> (String, Vec<MountFlag>, Vec<MountAttr>, bool, Option<String>) {
    let bits = [
        (
            m.readonly,
            MountFlag::MS_RDONLY,
            MountAttr::MOUNT_ATTR_RDONLY,
        ),
        (m.nosuid, MountFlag::MS_NOSUID, MountAttr::MOUNT_ATTR_NOSUID),
        (m.nodev, MountFlag::MS_NODEV, MountAttr::MOUNT_ATTR_NODEV),
        (m.noexec, MountFlag::MS_NOEXEC, MountAttr::MOUNT_ATTR_NOEXEC),
    ];
    let atime = m.atime.map(|a| match a {
        crate::spec::Atime::Relatime => MountFlag::MS_RELATIME,
        crate::spec::Atime::Strictatime => MountFlag::MS_STRICTATIME,
        crate::spec::Atime::Noatime => MountFlag::MS_NOATIME,
    });
    let on_flags = || {
        bits.iter()
            .filter(|b| b.0)
            .map(|b| b.1)
            .chain(atime)
            .collect::<Vec<_>>()
    };
    let fstype = m.kind.fstype();
    match &m.kind {
        MountKind::Bind {
            source, recursive, ..
        } => {
            let mut flags = vec![MountFlag::MS_BIND];
            if *recursive {
                flags.push(MountFlag::MS_REC);
            }
            let attrs = bits.iter().filter(|b| b.0).map(|b| b.2).collect();
            (source.display().to_string(), flags, attrs, *recursive, None)
        }
        MountKind::Tmpfs { size, mode } => {
            let mut opts = vec![];
            if let Some(mode) = mode {
                opts.push(format!("mode={mode:o}"));
            }
            if let Some(size) = size {
                opts.push(format!("size={size}"));
            }
            let data = (!opts.is_empty()).then(|| opts.join(","));
            (fstype.to_owned(), on_flags(), vec![], false, data)
        }
        MountKind::Devpts => (
            fstype.to_owned(),
            on_flags(),
            vec![],
            false,
            Some("newinstance,ptmxmode=0666,mode=0620".into()),
        ),
        MountKind::Proc | MountKind::Sysfs | MountKind::Mqueue => {
            (fstype.to_owned(), on_flags(), vec![], false, None)
        }
    }
}

/// The attributes of `m`'s mount if the launcher can make it as a detached procfs instance
/// (crate::sys::procfs): a proc mount whose flags all have a mount_setattr(2) attribute.
pub(super) fn proc_attrs(m: &Mount) -> Option<(Vec<MountFlag>, Vec<MountAttr>)> {
    if !matches!(m.kind, MountKind::Proc) {
        return None;
    }
    let (_, flags, attrs, _, data) = mount_args(m);
    if !attrs.is_empty() || data.is_some() {
        return None;
    }
    let as_attrs = flags
        .iter()
        .map(|f| match f {
            MountFlag::MS_RDONLY => Some(MountAttr::MOUNT_ATTR_RDONLY),
            MountFlag::MS_NOSUID => Some(MountAttr::MOUNT_ATTR_NOSUID),
            MountFlag::MS_NODEV => Some(MountAttr::MOUNT_ATTR_NODEV),
            MountFlag::MS_NOEXEC => Some(MountAttr::MOUNT_ATTR_NOEXEC),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((flags, as_attrs))
}

/// The proc mount `m` as the launcher makes it ([`proc_attrs`]): its mount point, then the
/// container process attaches what the launcher sends (or mounts and masks it itself).
pub(super) fn attach_proc(
    b: &mut B,
    m: &Mount,
    root: &Path,
    flags: Vec<MountFlag>,
    masked: Vec<PathBuf>,
    readonly: Vec<PathBuf>,
) {
    let at = under(root, &m.target);
    let shown = m.target.display();
    b.push(
        format!("create the mount point {shown}"),
        ContainerAction::Mkdir {
            path: at.clone(),
            mode: 0o755,
        },
    );
    b.push(
        format!(
            "attach the proc the launcher made on {shown}, its paths masked and read-only (or \
             make it here)"
        ),
        ContainerAction::AttachProc {
            target: at,
            flags,
            masked,
            readonly,
        },
    );
}

pub(super) fn mount(b: &mut B, m: &Mount, root: &Path) {
    let at = under(root, &m.target);
    let shown = m.target.display();
    let (source, flags, attrs, recursive, data) = mount_args(m);
    if matches!(m.kind, MountKind::Bind { file: true, .. }) {
        b.push(
            format!("create the mount point {shown}"),
            ContainerAction::Touch { path: at.clone() },
        );
    } else {
        b.push(
            format!("create the mount point {shown}"),
            ContainerAction::Mkdir {
                path: at.clone(),
                mode: 0o755,
            },
        );
    }
    let what = match &m.kind {
        MountKind::Proc => "mount proc".to_string(),
        MountKind::Sysfs => "mount sysfs".to_string(),
        MountKind::Tmpfs { .. } => "mount a tmpfs".to_string(),
        MountKind::Bind { .. } => format!("bind {source}"),
        MountKind::Devpts => "mount a private devpts instance".to_string(),
        MountKind::Mqueue => "mount the message queue filesystem".to_string(),
    };
    b.push(
        format!("{what} on {shown}"),
        ContainerAction::Mount {
            source,
            target: at.clone(),
            fstype: m.kind.fstype().into(),
            flags,
            data,
        },
    );
    if !attrs.is_empty() {
        let words: Vec<&str> = attrs
            .iter()
            .map(|a| match a {
                MountAttr::MOUNT_ATTR_RDONLY => "read-only",
                MountAttr::MOUNT_ATTR_NOSUID => "nosuid",
                MountAttr::MOUNT_ATTR_NODEV => "nodev",
                MountAttr::MOUNT_ATTR_NOEXEC => "noexec",
            })
            .collect();
        b.push(
            format!("make {shown} {}", words.join(", ")),
            ContainerAction::SetAttr {
                target: at,
                attrs,
                recursive,
            },
        );
    }
}
