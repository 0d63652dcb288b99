//! `launch export oci`: a [`Spec`] becomes an OCI runtime bundle (config.json and its root).
//!
//! [`to_oci`] is pure: the Spec and the host's facts in, the runtime-spec's config out. Every
//! struct is built from the Spec field by field; none comes from oci-spec's `Default` impls,
//! which describe a docker-like container (a short capability list, /dev/mqueue and /sys mounts,
//! masked paths, hostname "youki") that is not launch's. The few structs that carry such an impl
//! start from [`bare`] instead. [`write_bundle`] writes the bundle all at once or not at all.
//!
//! docs/oci.md has the field table; `crate::oci::annotations` the keys of what OCI cannot say.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime as oci;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

mod resources;
mod security;

use super::annotations as key;
use super::security::cap_sets;
use crate::error::SysError;
use crate::host::{HostDir, HostFacts};
use crate::lower::DEV_NODES;
use crate::spec::{
    CapSet, IdMapLine, IdMaps, Mount, MountKind, Namespace, RlimitResource, RootSource, Spec,
    UserNamespace,
};
use crate::sys::caps::CapSets;
use crate::sys::idmap::OwnerShift;
use crate::sys::tar;

/// The runtime-spec version the bundles declare (runc 1.1 and crun accept it).
pub const OCI_VERSION: &str = "1.1.0";

/// Where a `tar` or `host` root is, inside the bundle.
pub const ROOTFS: &str = "rootfs";

/// Why a Spec could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The Spec asks for something config.json has no way to say.
    #[error("`{key}` cannot be expressed in an OCI bundle: {why}")]
    Inexpressible {
        /// The manifest key, dotted (`limits.memory_high`).
        key: &'static str,
        /// Why, and what to do instead.
        why: String,
    },
    /// oci-spec refused a value we built (a bug in this module).
    #[error("building the OCI {what}: {detail}")]
    Build {
        /// The part of config.json.
        what: &'static str,
        /// oci-spec's or serde's words.
        detail: String,
    },
    /// The bundle directory exists and holds something.
    #[error("{} exists and is not an empty directory: refusing to write a bundle over it", .0.display())]
    NotEmpty(PathBuf),
    /// Writing the bundle failed.
    #[error("{0}")]
    Sys(#[from] SysError),
}

impl ExportError {
    /// Whether the manifest or the command line is at fault (exit 2) rather than the host.
    pub fn is_usage(&self) -> bool {
        match self {
            ExportError::Inexpressible { .. } | ExportError::NotEmpty(_) => true,
            ExportError::Build { .. } | ExportError::Sys(_) => false,
        }
    }
}

fn built<T>(what: &'static str, r: Result<T, oci_spec::OciSpecError>) -> Result<T, ExportError> {
    r.map_err(|e| ExportError::Build {
        what,
        detail: e.to_string(),
    })
}

/// An oci-spec struct with only `required` set and every optional field absent, as serde reads
/// it: for the structs whose builder would fill unset fields from their `Default` impl.
fn bare<T: DeserializeOwned>(what: &'static str, required: Value) -> Result<T, ExportError> {
    serde_json::from_value(required).map_err(|e| ExportError::Build {
        what,
        detail: e.to_string(),
    })
}

/// The config.json of `spec` as exported on the host `facts` describe (its cgroup layout picks
/// the spelling of weights and `memory_high`; `map_root` maps the exporting user's ids; its CPUs
/// the per-CPU masked paths; its capabilities, the launcher's bounding set, what a runtime
/// started the same way can grant): the capability sets and the seccomp filter are those `launch
/// run` would apply there.
pub fn to_oci(spec: &Spec, facts: &HostFacts) -> Result<oci::Spec, ExportError> {
    let caps = cap_sets(
        spec.security.capabilities,
        spec.process.user.uid,
        facts.capabilities,
    );
    // Every field set here, from a default whose own values are all overwritten: deserializing
    // an empty Spec would link oci-spec's validation of `execCPUAffinity` (the regex crate and
    // its Unicode tables), whose relocations every launch start would pay for.
    let mut out = oci::Spec::default();
    out.set_version(OCI_VERSION.to_owned());
    out.set_hooks(None);
    out.set_solaris(None);
    out.set_windows(None);
    out.set_vm(None);
    out.set_zos(None);
    out.set_uid_mappings(None);
    out.set_gid_mappings(None);
    network(spec)?;
    out.set_root(Some(root(spec)?));
    out.set_mounts(Some(mounts(spec, facts)?));
    out.set_process(Some(process(spec, &caps)?));
    out.set_hostname(spec.hostname.clone());
    out.set_domainname(spec.domainname.clone());
    out.set_annotations(Some(annotations(spec)));
    out.set_linux(Some(linux(spec, facts, caps.bounding)?));
    Ok(out)
}

/// What the bundle runs differently from `launch run` unless its runner is told (printed by
/// `launch export oci`; the annotations keep the setting for the way back).
pub fn warnings(spec: &Spec) -> Vec<String> {
    let mut w = Vec::new();
    if !spec.root.pivot_root {
        w.push(format!(
            "rootfs.pivot_root = false: config.json cannot ask for chroot; run the bundle with \
             `runc run --no-pivot` (or crun's `--no-pivot`); kept in the annotation {}. Its \
             mounts are rslave, not private as under launch: runc refuses private propagation \
             without pivot_root, so mount events of the host reach the container",
            key::PIVOT_ROOT
        ));
    }
    if spec.process.init {
        w.push(format!(
            "process.init = true: OCI runtimes run the command itself as PID 1 (no zombie \
             reaping, default signal dispositions); kept in the annotation {}",
            key::INIT
        ));
    }
    w
}

/// A bundle's network is its namespace alone: an OCI runtime connects nothing to it (CNI or
/// hooks do, and launch writes none), so only `none` and `host` export.
fn network(spec: &Spec) -> Result<(), ExportError> {
    let n = &spec.network;
    let why = "an OCI runtime gives the container its network namespace and connects nothing to \
               it (CNI plugins or hooks do): export with `mode = \"none\"` or `\"host\"` and \
               connect the namespace with the engine that runs the bundle";
    let key = match n.mode {
        crate::spec::NetworkMode::Bridge(_)
        | crate::spec::NetworkMode::Pasta
        | crate::spec::NetworkMode::Slirp => Some("network.mode"),
        crate::spec::NetworkMode::None | crate::spec::NetworkMode::Host => None,
    }
    .or((!n.ports.is_empty()).then_some("ports"))
    .or(n.dns.is_some().then_some("network.dns"))
    .or(n.dns_search.is_some().then_some("network.dns_search"))
    .or((!n.hosts.is_empty()).then_some("network.hosts"));
    match key {
        Some(key) => Err(ExportError::Inexpressible {
            key,
            why: why.into(),
        }),
        None => Ok(()),
    }
}

fn root(spec: &Spec) -> Result<oci::Root, ExportError> {
    let mut r: oci::Root = bare("root", json!({ "path": ROOTFS }))?;
    let path = match &spec.root.source {
        RootSource::Path { path } => path.clone(),
        RootSource::Tar { .. } | RootSource::Host => PathBuf::from(ROOTFS),
        RootSource::Image { .. } => {
            return Err(ExportError::Inexpressible {
                key: "rootfs.image",
                why: "a bundle's root is one directory, and launch does not yet write an image's \
                      layers merged into one; export the image with `umoci unpack` and use \
                      `path = ...`"
                    .into(),
            });
        }
    };
    if spec.root.writable || spec.root.persist.is_some() {
        return Err(ExportError::Inexpressible {
            key: if spec.root.writable {
                "rootfs.writable"
            } else {
                "rootfs.persist"
            },
            why: "a bundle's root is one directory that the runtime uses in place: it has no \
                  overlay whose writes are dropped or kept apart; remove the key to export the \
                  root as it is"
                .into(),
        });
    }
    r.set_path(path);
    r.set_readonly(Some(spec.root.readonly));
    Ok(r)
}

fn oci_mount(
    destination: &Path,
    typ: &str,
    source: &Path,
    options: Vec<String>,
) -> Result<oci::Mount, ExportError> {
    built(
        "mount",
        oci::MountBuilder::default()
            .destination(destination)
            .typ(typ)
            .source(source)
            .options(options)
            .build(),
    )
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

/// Data of launch's devpts mounts (lower/fs.rs): a private instance whose ptmx anyone may open.
const DEVPTS_DATA: &[&str] = &["newinstance", "ptmxmode=0666", "mode=0620"];

fn mounts(spec: &Spec, facts: &HostFacts) -> Result<Vec<oci::Mount>, ExportError> {
    let mut v = Vec::new();
    if matches!(spec.root.source, RootSource::Host) {
        for d in &facts.host_root {
            match d {
                // launch binds recursively, then makes the whole tree read-only and nodev.
                HostDir::Bind(dir) => v.push(oci_mount(
                    dir,
                    "bind",
                    dir,
                    words(&["rbind", "rro", "rnodev"]),
                )?),
                // OCI has no symlink: write_bundle makes it in the root directory.
                HostDir::Symlink(..) => {}
            }
        }
    }
    if !spec.mounts.iter().any(|m| m.target == Path::new("/dev")) {
        v.extend(minimal_dev()?);
    }
    for m in &spec.mounts {
        v.push(spec_mount(m)?);
    }
    Ok(v)
}

/// launch's minimal /dev as mounts (lower/fs.rs). Its device nodes are `linux.devices` and its
/// symlinks (`ptmx`, `fd`, `stdin`, ...) the runtime makes itself, as launch does.
fn minimal_dev() -> Result<Vec<oci::Mount>, ExportError> {
    let mut pts = words(&["nosuid", "noexec"]);
    pts.extend(words(DEVPTS_DATA));
    Ok(vec![
        oci_mount(
            Path::new("/dev"),
            "tmpfs",
            Path::new("tmpfs"),
            words(&["nosuid", "noexec", "mode=0755", "size=65536k"]),
        )?,
        oci_mount(Path::new("/dev/pts"), "devpts", Path::new("devpts"), pts)?,
        oci_mount(
            Path::new("/dev/shm"),
            "tmpfs",
            Path::new("shm"),
            words(&["nosuid", "nodev", "noexec", "mode=1777"]),
        )?,
    ])
}

fn devices() -> Result<Vec<oci::LinuxDevice>, ExportError> {
    DEV_NODES
        .iter()
        .map(|&(name, major, minor)| {
            built(
                "device",
                oci::LinuxDeviceBuilder::default()
                    .path(PathBuf::from("/dev").join(name))
                    .typ(oci::LinuxDeviceType::C)
                    .major(i64::from(major))
                    .minor(i64::from(minor))
                    .file_mode(0o666u32)
                    .uid(0u32)
                    .gid(0u32)
                    .build(),
            )
        })
        .collect()
}

fn spec_mount(m: &Mount) -> Result<oci::Mount, ExportError> {
    // (on, option for this mount only, option for it and every mount below it)
    let bits = [
        (m.readonly, "ro", "rro"),
        (m.nosuid, "nosuid", "rnosuid"),
        (m.nodev, "nodev", "rnodev"),
        (m.noexec, "noexec", "rnoexec"),
    ];
    let flags = |recursive: bool| -> Vec<String> {
        bits.iter()
            .filter(|b| b.0)
            .map(|b| (if recursive { b.2 } else { b.1 }).to_owned())
            // A bind keeps its source's access-time updates: the Spec gives none for one.
            .chain(
                m.atime
                    .filter(|_| !recursive)
                    .map(|a| a.option().to_owned()),
            )
            .collect()
    };
    let fstype = m.kind.fstype();
    match &m.kind {
        // launch sets a bind's attributes with mount_setattr, over the tree when recursive.
        MountKind::Bind {
            source,
            file: _,
            recursive,
        } => {
            let mut opts = vec![if *recursive { "rbind" } else { "bind" }.to_owned()];
            opts.extend(flags(*recursive));
            oci_mount(&m.target, "bind", source, opts)
        }
        MountKind::Tmpfs { size, mode } => {
            let mut opts = flags(false);
            if let Some(mode) = mode {
                opts.push(format!("mode={mode:o}"));
            }
            if let Some(size) = size {
                opts.push(format!("size={size}"));
            }
            oci_mount(&m.target, fstype, Path::new(fstype), opts)
        }
        MountKind::Devpts => {
            let mut opts = flags(false);
            opts.extend(words(DEVPTS_DATA));
            oci_mount(&m.target, fstype, Path::new(fstype), opts)
        }
        MountKind::Proc | MountKind::Sysfs | MountKind::Mqueue => {
            oci_mount(&m.target, fstype, Path::new(fstype), flags(false))
        }
    }
}

fn rlimit_type(r: RlimitResource) -> oci::PosixRlimitType {
    use oci::PosixRlimitType as T;
    match r {
        RlimitResource::RLIMIT_AS => T::RlimitAs,
        RlimitResource::RLIMIT_CORE => T::RlimitCore,
        RlimitResource::RLIMIT_CPU => T::RlimitCpu,
        RlimitResource::RLIMIT_DATA => T::RlimitData,
        RlimitResource::RLIMIT_FSIZE => T::RlimitFsize,
        RlimitResource::RLIMIT_LOCKS => T::RlimitLocks,
        RlimitResource::RLIMIT_MEMLOCK => T::RlimitMemlock,
        RlimitResource::RLIMIT_MSGQUEUE => T::RlimitMsgqueue,
        RlimitResource::RLIMIT_NICE => T::RlimitNice,
        RlimitResource::RLIMIT_NOFILE => T::RlimitNofile,
        RlimitResource::RLIMIT_NPROC => T::RlimitNproc,
        RlimitResource::RLIMIT_RSS => T::RlimitRss,
        RlimitResource::RLIMIT_RTPRIO => T::RlimitRtprio,
        RlimitResource::RLIMIT_RTTIME => T::RlimitRttime,
        RlimitResource::RLIMIT_SIGPENDING => T::RlimitSigpending,
        RlimitResource::RLIMIT_STACK => T::RlimitStack,
    }
}

/// RLIM_INFINITY, what OCI writes for "unlimited" (the Spec's `None`).
const RLIM_INFINITY: u64 = u64::MAX;

fn process(spec: &Spec, caps: &CapSets) -> Result<oci::Process, ExportError> {
    let p = &spec.process;
    // From a default with every field set below (not deserialized: see to_oci).
    let mut out = oci::Process::default();
    out.set_console_size(None);
    out.set_command_line(None);
    out.set_apparmor_profile(None);
    out.set_oom_score_adj(None);
    out.set_selinux_label(None);
    out.set_io_priority(None);
    out.set_scheduler(None);
    out.set_exec_cpu_affinity(None);
    // "Decide at run time" has no OCI spelling: no terminal, and the annotation says "auto".
    out.set_terminal(Some(p.terminal.unwrap_or(false)));
    out.set_user(built(
        "process.user",
        oci::UserBuilder::default()
            .uid(p.user.uid)
            .gid(p.user.gid)
            .additional_gids(p.user.groups.clone())
            .build(),
    )?);
    out.set_args(Some(p.args.clone()));
    out.set_env(Some(p.envp()));
    out.set_cwd(p.cwd.clone());
    out.set_capabilities(Some(security::capabilities(caps)?));
    let rlimits = p
        .rlimits
        .iter()
        .map(|l| {
            built(
                "process.rlimits",
                oci::PosixRlimitBuilder::default()
                    .typ(rlimit_type(l.resource))
                    .soft(l.soft.unwrap_or(RLIM_INFINITY))
                    .hard(l.hard.unwrap_or(RLIM_INFINITY))
                    .build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.set_rlimits(Some(rlimits));
    out.set_no_new_privileges(Some(spec.security.no_new_privileges));
    Ok(out)
}

fn annotations(spec: &Spec) -> HashMap<String, String> {
    let b = |v: bool| v.to_string();
    let p = &spec.process;
    let mut a = HashMap::from([
        (key::NAME, spec.name.clone()),
        (key::MULTIPLE, b(spec.multiple)),
        (key::INIT, b(p.init)),
        (key::STOP_SIGNAL, p.stop.signal.clone()),
        (key::STOP_TIMEOUT_MS, p.stop.timeout_ms.to_string()),
        (key::PIVOT_ROOT, b(spec.root.pivot_root)),
        (
            key::TERMINAL,
            p.terminal.map_or_else(|| "auto".to_owned(), b),
        ),
        (key::CGROUP_PARENT, spec.limits.parent.display().to_string()),
    ]);
    if let Some(name) = &p.user.name {
        a.insert(key::USER_NAME, name.clone());
    }
    if p.preserve_fds != 0 {
        a.insert(key::PRESERVE_FDS, p.preserve_fds.to_string());
    }
    if let UserNamespace::New(maps) = &spec.namespaces.user {
        a.insert(key::MAP_ROOT, b(matches!(maps, IdMaps::MapRoot)));
    }
    security::annotations(&spec.security, &mut a);
    a.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn id_mappings(lines: &[IdMapLine]) -> Result<Vec<oci::LinuxIdMapping>, ExportError> {
    lines
        .iter()
        .map(|l| {
            built(
                "linux id mapping",
                oci::LinuxIdMappingBuilder::default()
                    .container_id(l.inside)
                    .host_id(l.outside)
                    .size(l.count)
                    .build(),
            )
        })
        .collect()
}

fn namespace(
    typ: oci::LinuxNamespaceType,
    path: Option<&Path>,
) -> Result<oci::LinuxNamespace, ExportError> {
    let mut b = oci::LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p);
    }
    built("linux.namespaces", b.build())
}

fn namespaces(spec: &Spec) -> Result<Vec<oci::LinuxNamespace>, ExportError> {
    use oci::LinuxNamespaceType as T;
    let ns = &spec.namespaces;
    if !ns.mount.isolated() {
        return Err(ExportError::Inexpressible {
            key: "namespaces.mount",
            why: "OCI runtimes always build the root in a mount namespace of the container's"
                .into(),
        });
    }
    let mut v = Vec::new();
    match &ns.user {
        UserNamespace::Host => {}
        UserNamespace::New(_) => v.push(namespace(T::User, None)?),
        UserNamespace::Join(p) => v.push(namespace(T::User, Some(p))?),
    }
    for (typ, n) in [
        (T::Pid, &ns.pid),
        (T::Mount, &ns.mount),
        (T::Uts, &ns.uts),
        (T::Ipc, &ns.ipc),
        (T::Network, &ns.net),
        (T::Cgroup, &ns.cgroup),
        (T::Time, &ns.time),
    ] {
        match n {
            Namespace::Host => {}
            Namespace::New => v.push(namespace(typ, None)?),
            Namespace::Join(p) => v.push(namespace(typ, Some(p))?),
        }
    }
    Ok(v)
}

/// `kept`: the capabilities the container keeps (its bounding set), which the default seccomp
/// profile depends on.
fn linux(spec: &Spec, facts: &HostFacts, kept: CapSet) -> Result<oci::Linux, ExportError> {
    let mut l: oci::Linux = bare("linux", json!({}))?;
    if let UserNamespace::New(maps) = &spec.namespaces.user {
        let (uid, gid) = maps.lines(facts.uid, facts.gid);
        l.set_uid_mappings(Some(id_mappings(&uid)?));
        l.set_gid_mappings(Some(id_mappings(&gid)?));
    }
    l.set_namespaces(Some(namespaces(spec)?));
    l.set_resources(Some(resources::resources(spec, facts)?));
    // Absolute: from each hierarchy's root, as launch places `PARENT/NAME-ID`.
    l.set_cgroups_path(Some(
        Path::new("/").join(&spec.limits.parent).join(&spec.name),
    ));
    if !spec.mounts.iter().any(|m| m.target == Path::new("/dev")) {
        l.set_devices(Some(devices()?));
    }
    // launch makes every mount private, recursively (MS_REC|MS_PRIVATE on /). Without
    // pivot_root, runc refuses that ("not safe": the root is moved over the host's /), so a
    // chroot bundle takes runc's own default, rslave (see warnings).
    let propagation = if spec.root.pivot_root {
        "rprivate"
    } else {
        "rslave"
    };
    l.set_rootfs_propagation(Some(propagation.to_owned()));
    l.set_seccomp(security::seccomp(&spec.security, kept)?);
    l.set_masked_paths(security::masked_paths(&spec.security, facts.cpus));
    l.set_readonly_paths(security::readonly_paths(&spec.security, facts.cpus));
    Ok(l)
}

/// config.json's text: pretty, with object keys and capability sets sorted, so the same Spec
/// always gives the same bytes (oci-spec keeps capabilities and annotations in hash sets).
pub fn to_json(config: &oci::Spec) -> Result<String, ExportError> {
    let err = |e: serde_json::Error| ExportError::Build {
        what: "config.json",
        detail: e.to_string(),
    };
    let mut v = serde_json::to_value(config).map_err(err)?;
    if let Some(Value::Object(caps)) = v.pointer_mut("/process/capabilities") {
        for set in caps.values_mut() {
            if let Value::Array(a) = set {
                a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(v)).map_err(err)?;
    text.push('\n');
    Ok(text)
}

/// Objects with their keys in order, at every depth (serde_json may keep insertion order).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Write the bundle for `spec` into `dir` (absent, or an empty directory): config.json and, for
/// a `tar` or `host` root, `dir/rootfs`. The capabilities are planned from `facts`'s (this
/// process's bounding set, on a real host): a runtime started the same way can grant them
/// (capset fails with EPERM otherwise). Everything is written into a sibling directory first
/// and renamed into place, so `dir` never holds half a bundle; the sibling is removed on failure.
pub fn write_bundle(spec: &Spec, facts: &HostFacts, dir: &Path) -> Result<(), ExportError> {
    let config = to_oci(spec, facts)?;
    let json = to_json(&config)?;
    match fs::symlink_metadata(dir) {
        Ok(md) => {
            let empty = md.is_dir()
                && fs::read_dir(dir)
                    .map_err(|e| SysError::io("opendir", Some(dir.into()), &e))?
                    .next()
                    .is_none();
            if !empty {
                return Err(ExportError::NotEmpty(dir.into()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SysError::io("lstat", Some(dir.into()), &e).into()),
    }
    let name = dir.file_name().ok_or_else(|| {
        SysError::other(
            "export",
            Some(dir.into()),
            "the bundle directory needs a name",
        )
    })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        Some(_) | None => Path::new("."),
    };
    let tmp = parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    mkdir(&tmp)?;
    let res = fill(&tmp, spec, facts, &json).and_then(|()| {
        fs::rename(&tmp, dir).map_err(|e| SysError::io("rename", Some(dir.into()), &e).into())
    });
    if res.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_dir_all(&tmp);
    }
    res
}

/// The host id that container id `id` maps to, if any.
fn host_id(lines: &[IdMapLine], id: u32) -> Option<u32> {
    lines
        .iter()
        .find(|l| id >= l.inside && id - l.inside < l.count)
        .map(|l| l.outside + (id - l.inside))
}

/// A directory readable and traversable by everyone: ids mapped by a user namespace must reach
/// the root through it.
fn mkdir(p: &Path) -> Result<(), SysError> {
    fs::create_dir(p).map_err(|e| SysError::io("mkdir", Some(p.into()), &e))?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755))
        .map_err(|e| SysError::io("chmod", Some(p.into()), &e).args("0755"))
}

fn fill(bundle: &Path, spec: &Spec, facts: &HostFacts, json: &str) -> Result<(), ExportError> {
    let rootfs = bundle.join(ROOTFS);
    match &spec.root.source {
        RootSource::Path { .. } | RootSource::Image { .. } => {}
        // A stored archive's layer is the archive's content: export extracts the archive.
        RootSource::Tar {
            archive,
            compression,
            max_size,
            ..
        } => {
            mkdir(&rootfs)?;
            // As `launch run` extracts it (lower: ExtractRootfs): owners shifted through the
            // user namespace's maps when root exports, so the container sees them as in launch.
            let owners = match &spec.namespaces.user {
                UserNamespace::New(maps) if facts.uid == 0 => {
                    let (uid, gid) = maps.lines(facts.uid, facts.gid);
                    Some(OwnerShift { uid, gid })
                }
                UserNamespace::New(_) | UserNamespace::Host | UserNamespace::Join(_) => None,
            };
            tar::extract(
                archive,
                *compression,
                &rootfs,
                &tar::ExtractOptions {
                    privileged: nix::unistd::geteuid().is_root(),
                    owners,
                    cancelled: None,
                    max_bytes: *max_size,
                },
            )?;
        }
        RootSource::Host => {
            mkdir(&rootfs)?;
            let mut made = vec![rootfs.clone()];
            for d in &facts.host_root {
                match d {
                    HostDir::Symlink(link, target) => {
                        let at = rootfs.join(link.strip_prefix("/").unwrap_or(link));
                        std::os::unix::fs::symlink(target, &at).map_err(|e| {
                            SysError::io("symlink", Some(at.clone()), &e)
                                .args(target.display().to_string())
                        })?;
                        made.push(at);
                    }
                    // The runtime creates the mount point.
                    HostDir::Bind(_) => {}
                }
            }
            // The runtime makes the mount points as the container's root; in a new user
            // namespace that is a mapped id, which may create nothing in a directory of the
            // exporter's: give the root to it (launch's own root is a fresh tmpfs it owns).
            if let UserNamespace::New(maps) = &spec.namespaces.user {
                let (uid, gid) = maps.lines(facts.uid, facts.gid);
                if let (Some(u), Some(g)) = (host_id(&uid, 0), host_id(&gid, 0)) {
                    for p in &made {
                        std::os::unix::fs::lchown(p, Some(u), Some(g)).map_err(|e| {
                            SysError::io("lchown", Some(p.clone()), &e).args(format!("{u}:{g}"))
                        })?;
                    }
                }
            }
        }
    }
    let config = bundle.join("config.json");
    fs::write(&config, json).map_err(|e| SysError::io("write", Some(config), &e))?;
    Ok(())
}
