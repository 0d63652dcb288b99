//! Image roots, resolved before validation: what `[rootfs] image`, `oci` or `docker_archive`
//! names is pulled or imported into the store and unpacked there, and validation then sees it
//! pinned by digest ([`Resolved`], through [`crate::host::Host::image`]). Validation and
//! lowering stay offline and deterministic; this is the one step before them that reaches a
//! registry or reads an image.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::config::ImageConfig;
use super::layout::{ImportOptions, SourceKind, import_cached};
use super::store::Store;
use super::{Digest, Platform};
use crate::diag::Problem;
use crate::manifest::{Rootfs, Source, Sp};

/// An image a manifest's root names, found in (or brought into) the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// [`key`] of the manifest's value.
    pub key: String,
    /// The store.
    pub store: PathBuf,
    /// The image manifest.
    pub manifest: Digest,
    /// The layers' diff_ids, bottom first, each unpacked in the store.
    pub layers: Vec<Digest>,
    /// The image's config: the process defaults a manifest does not set.
    pub config: ImageConfig,
}

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// A registry reference, and when to pull it.
    Image {
        /// As written.
        reference: String,
        /// `missing`, `always` or `never`.
        pull: Pull,
    },
    /// An OCI image layout (directory or tar), absolute.
    Oci(PathBuf),
    /// A `docker save` file, absolute.
    DockerArchive(PathBuf),
    /// A `tar` root (a `docker export` tarball), absolute, and `max_size` in bytes.
    Tar(PathBuf, Option<u64>),
}

/// `[rootfs] pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    /// Unless the store has it (the default).
    Missing,
    /// Every time.
    Always,
    /// Never: the store's copy or an error.
    Never,
}

impl Pull {
    /// Parse the manifest's word.
    pub fn parse(s: &str) -> Option<Pull> {
        match s {
            "missing" => Some(Pull::Missing),
            "always" => Some(Pull::Always),
            "never" => Some(Pull::Never),
            _ => None,
        }
    }
}

/// The name under which validation looks a manifest's image up: the key and its value, with a
/// local source's path made absolute (`dir` is the manifest's folder).
pub fn key(kind: &str, value: &str, dir: &Path) -> String {
    match kind {
        "image" => format!("image:{value}"),
        _ => format!("{kind}:{}", absolute(value, dir).display()),
    }
}

fn absolute(value: &str, dir: &Path) -> PathBuf {
    let p = Path::new(value);
    match p.is_absolute() {
        true => p.to_path_buf(),
        false => dir.join(p),
    }
}

/// What a manifest's root asks for: the source, its [`key`], the span of its value in the
/// manifest, and the platform asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The source.
    pub wanted: Wanted,
    /// Its key.
    pub key: String,
    /// Its value's span.
    pub span: Range<usize>,
    /// `platform`, if given.
    pub platform: Option<Platform>,
}

/// The image source `r` names; `None` when `r` names no image, more than one source, or a
/// `pull` or `platform` validation refuses (it says why; nothing is resolved for it).
pub fn wanted(r: &Rootfs, source: &Source) -> Option<Want> {
    let given: Vec<(&str, &Sp<String>)> = [
        r.image.as_ref().map(|v| ("image", v)),
        r.oci.as_ref().map(|v| ("oci", v)),
        r.docker_archive.as_ref().map(|v| ("docker_archive", v)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let [(kind, v)] = given.as_slice() else {
        return None;
    };
    if r.path.is_some() || r.tar.is_some() || r.host.as_ref().is_some_and(|h| *h.get()) {
        return None;
    }
    let platform = match &r.platform {
        None => None,
        Some(p) => Some(Platform::parse(p.get()).ok()?),
    };
    let pull = match (&r.pull, *kind) {
        (None, _) => Pull::Missing,
        (Some(p), "image") => Pull::parse(p.get())?,
        (Some(_), _) => return None,
    };
    // Relative to the file that wrote the value (a manifest it extends may have).
    let dir = source.dir_at(&v.span());
    let w = match *kind {
        "image" => Wanted::Image {
            reference: v.get().clone(),
            pull,
        },
        "oci" => Wanted::Oci(absolute(v.get(), dir)),
        _ => Wanted::DockerArchive(absolute(v.get(), dir)),
    };
    Some(Want {
        wanted: w,
        key: key(kind, v.get(), dir),
        span: v.span(),
        platform,
    })
}

/// A `tar` root that goes through the store: the root launcher's, without a user namespace
/// (whose ids the store's owners are not: that run extracts the archive into its state
/// directory with shifted owners, as before). `None` also when validation will refuse the
/// root (no such file, an unknown suffix, a bad `max_size`): it says why.
fn wanted_tar(m: &crate::manifest::Manifest, source: &Source) -> Option<Want> {
    let r = m.rootfs.get();
    let t = r.tar.as_ref()?;
    let dir = source.dir_at(&t.span());
    let others = r.path.is_some()
        || r.image.is_some()
        || r.oci.is_some()
        || r.docker_archive.is_some()
        || r.host.as_ref().is_some_and(|h| *h.get());
    let userns = m
        .namespaces
        .as_ref()
        .and_then(|n| n.get().user.as_ref())
        .is_some_and(|u| !matches!(u.get(), crate::manifest::UserNs::Enabled(false)));
    if others || userns || !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    let archive = absolute(t.get(), dir);
    crate::sys::tar::Compression::from_path(&archive)?;
    if !std::fs::symlink_metadata(&archive).is_ok_and(|md| md.is_file()) {
        return None;
    }
    let max = match &r.max_size {
        None => None,
        Some(q) => Some(crate::manifest::units::parse_size(q.get()).ok()?),
    };
    Some(Want {
        wanted: Wanted::Tar(archive, max),
        key: key("tar", t.get(), dir),
        span: t.span(),
        platform: None,
    })
}

/// Bring the image `w` into the store at `store_root` and unpack its layers. The error is a
/// message for the manifest's value (the caller points it there).
pub fn resolve(
    w: &Wanted,
    key: &str,
    platform: Option<&Platform>,
    store_root: &Path,
) -> Result<Resolved, (String, String)> {
    resolve_with(w, key, platform, store_root, &mut super::progress::Quiet)
}

/// [`resolve`], reporting layer unpacks to `progress`, and stopping (with an error) once
/// [`super::cancel`] records a signal: between tar entries, layers and chunks of stored blobs,
/// and by passing the signal to a running pull.
pub fn resolve_with(
    w: &Wanted,
    key: &str,
    platform: Option<&Platform>,
    store_root: &Path,
    progress: &mut dyn super::progress::Unpacking,
) -> Result<Resolved, (String, String)> {
    let store = Store::open(store_root)
        .map_err(|e| (e.to_string(), help_of(&e)))?
        .with_cancel(super::cancel::is_cancelled);
    if let Wanted::Tar(archive, max_bytes) = w {
        let root = store
            .cached_tar_root_with(archive, *max_bytes, progress)
            .map_err(|e| (e.to_string(), help_of(&e)))?;
        return Ok(Resolved {
            key: key.to_owned(),
            store: store_root.to_path_buf(),
            manifest: root.digest,
            layers: vec![root.diff_id],
            config: ImageConfig::default(),
        });
    }
    let manifest = match w {
        Wanted::Image { reference, pull } => pulled(&store, reference, *pull, platform, progress)?,
        Wanted::Oci(path) | Wanted::DockerArchive(path) | Wanted::Tar(path, _) => {
            let kind = match w {
                Wanted::Oci(_) => SourceKind::Oci,
                Wanted::Image { .. } | Wanted::DockerArchive(_) | Wanted::Tar(..) => {
                    SourceKind::DockerArchive
                }
            };
            let opts = ImportOptions {
                name: None,
                select: None,
                platform: platform.cloned(),
            };
            progress.work_starts();
            let (imported, _read) = import_cached(&store, kind, path, &opts)
                .map_err(|e| (e.to_string(), help_of(&e)))?;
            imported.record.digest
        }
    };
    let layers = store
        .unpack_image_with(&manifest, progress)
        .map_err(|e| (e.to_string(), help_of(&e)))?;
    let (_, config) = store
        .image(&manifest)
        .map_err(|e| (e.to_string(), help_of(&e)))?;
    Ok(Resolved {
        key: key.to_owned(),
        store: store_root.to_path_buf(),
        manifest,
        layers: layers.into_iter().map(|l| l.diff_id).collect(),
        config,
    })
}

fn help_of(e: &super::ImageError) -> String {
    use miette::Diagnostic;
    e.help().map(|h| h.to_string()).unwrap_or_default()
}

/// The manifest digest of a registry image, pulled as `pull` says.
fn pulled(
    store: &Store,
    reference: &str,
    pull: Pull,
    platform: Option<&Platform>,
    progress: &mut dyn super::progress::Unpacking,
) -> Result<Digest, (String, String)> {
    let r = super::reference::Reference::parse(reference).map_err(|e| {
        (
            e.to_string(),
            "write `name[:tag]` or `host[:port]/name[:tag][@sha256:...]`, e.g. \
             `docker.io/library/debian:bookworm`"
                .to_owned(),
        )
    })?;
    let name = r.to_string();
    let want = platform.cloned().unwrap_or_else(Platform::host);
    if pull != Pull::Always {
        // One record per name (refs/<escaped name>): read that one, not every name's.
        let record = store
            .read_ref(&name)
            .map_err(|e| (e.to_string(), help_of(&e)))?;
        let found = record.filter(|rec| {
            rec.reference == name
                && Platform::parse(&rec.platform).is_ok_and(|p| want.matches(&p))
                && store.has_blob(&rec.digest)
        });
        match (found, pull) {
            (Some(rec), _) => return Ok(rec.digest),
            (None, Pull::Never) => {
                return Err((
                    format!("{name} ({want}) is not in the store, and `pull = \"never\"`"),
                    format!("run `launch pull {name}` first, or set `pull = \"missing\"`"),
                ));
            }
            (None, Pull::Missing | Pull::Always) => {}
        }
    }
    // The pull itself runs in `launch-registry` (src/cli/registry.rs: the launcher carries no
    // HTTP or TLS code). Its progress and errors go to our stderr; its stdout names the digest.
    progress.work_starts();
    let helper = crate::cli::registry::helper().map_err(|e| (e, String::new()))?;
    let mut cmd = std::process::Command::new(&helper);
    cmd.arg("pull").arg(&name);
    if let Some(p) = platform {
        cmd.arg("--platform").arg(p.to_string());
    }
    cmd.env("LAUNCH_STORE", store.root())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let out = run_helper(cmd)
        .map_err(|e| (format!("running {}: {e}", helper.display()), String::new()))?;
    if super::cancel::is_cancelled() {
        return Err((format!("pulling {name}: cancelled"), String::new()));
    }
    if !out.status.success() {
        return Err((
            format!("pulling {name} failed (its error is above)"),
            "fix what the pull said, or use an image already in the store (`launch images`) \
             with `pull = \"never\"`"
                .to_owned(),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let digest = text
        .lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .ok_or_else(|| {
            (
                format!("{} printed no digest", helper.display()),
                String::new(),
            )
        })?;
    Digest::parse(digest.trim()).map_err(|e| (e, String::new()))
}

/// Run the pull helper `cmd` (stdout piped) to its end: it gets the signals sent to us (see
/// [`super::cancel`]), and dies with us (`PR_SET_PDEATHSIG`: SIGTERM, on which it stops and
/// keeps its partial download) should we be killed, so it is never left pulling on its own.
fn run_helper(mut cmd: std::process::Command) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl(2) and getppid(2) are async-signal-safe; nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // We died before the prctl: nobody would signal this child.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("launch exited"));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    super::cancel::set_child(pid);
    let mut stdout = Vec::new();
    let read = match child.stdout.take() {
        Some(mut out) => out.read_to_end(&mut stdout).map(drop),
        None => Ok(()),
    };
    // Wait for its end without reaping it (WNOWAIT): until we reap it, its pid cannot be
    // another process's, so a signal passed on meanwhile can only reach it.
    let id = || nix::sys::wait::Id::Pid(nix::unistd::Pid::from_raw(pid));
    let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
    while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitid(id(), flags) {}
    super::cancel::clear_child();
    let status = child.wait()?;
    read?;
    Ok(std::process::Output {
        status,
        stdout,
        stderr: Vec::new(),
    })
}

/// Why an image root could not be had.
#[derive(Debug)]
pub enum Unresolved {
    /// A diagnostic at the manifest's value.
    Problem(Box<Problem>),
    /// SIGINT or SIGTERM (the number) stopped the pull or unpack; nothing of it was kept but
    /// complete blobs and layers and a pull's partial download.
    Cancelled(i32),
}

/// How [`for_source`] runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// For `launch run`: record the start under this state root, with the manifest as given on
    /// the command line, so that `launch stop NAME` can cancel it (see
    /// [`crate::exec::starting`]).
    pub start_record: Option<(PathBuf, String)>,
    /// Report layer unpacks on stderr.
    pub progress: bool,
}

/// Resolve the image the manifest `source` names, if it names one: `Ok(None)` when it does not
/// (or cannot be parsed: validation reports that), `Err` with a diagnostic at the manifest's
/// value when the image cannot be had, or the signal that cancelled it. SIGINT and SIGTERM
/// cancel it only while it runs: the dispositions found are restored before it returns.
pub fn for_source(source: &Source, opts: &Options) -> Result<Option<Resolved>, Unresolved> {
    let Ok(m) = crate::manifest::parse(source) else {
        return Ok(None);
    };
    let Some(Want {
        wanted: w,
        key,
        span,
        platform,
    }) = wanted(m.rootfs.get(), source).or_else(|| wanted_tar(&m, source))
    else {
        return Ok(None);
    };
    let tar = matches!(w, Wanted::Tar(..));
    let signals = super::cancel::Scope::install();
    let name = m.name.get();
    let inner: Box<dyn super::progress::Unpacking> = match opts.progress {
        true => Box::new(super::progress::UnpackReporter::stderr()),
        false => Box::new(super::progress::Quiet),
    };
    let mut progress = Stoppable {
        inner,
        wanted: opts
            .start_record
            .clone()
            .filter(|_| crate::spec::valid_name(name))
            .map(|(root, manifest)| (root, name.clone(), manifest)),
        record: None,
    };
    let result = resolve_with(
        &w,
        &key,
        platform.as_ref(),
        &Store::default_root(),
        &mut progress,
    );
    drop(progress);
    drop(signals);
    if let Some(sig) = super::cancel::requested() {
        return Err(Unresolved::Cancelled(sig));
    }
    result.map(Some).map_err(|(why, help)| {
        let (code, label) = match tar {
            true => (
                "launch::rootfs::extract",
                "this archive cannot be extracted",
            ),
            false => ("launch::rootfs::image", "this image cannot be had"),
        };
        let help = match tar {
            true => "fix or replace the archive, or raise `max_size` (an error that names the \
                     store is the store's: check its permissions and free space)"
                .to_owned(),
            false => help,
        };
        let mut p = Problem::new(code, span, why).label(label);
        if !help.is_empty() {
            p = p.help(help);
        }
        Unresolved::Problem(Box::new(p))
    })
}

/// The resolution's progress reporter, which also makes the run stoppable (`launch stop NAME`
/// finds its start record) once slow work begins: a pull, an import, an unpack or an
/// extraction. An image already in the store resolves without a record, and without its cost.
struct Stoppable {
    inner: Box<dyn super::progress::Unpacking>,
    /// The state root, the manifest's name and path, until the record is made.
    wanted: Option<(PathBuf, String, String)>,
    record: Option<crate::exec::starting::Starting>,
}

impl Stoppable {
    fn start(&mut self) {
        let Some((root, name, manifest)) = self.wanted.take() else {
            return;
        };
        match crate::exec::starting::Starting::create(&root, &name, &manifest) {
            Ok(r) => self.record = Some(r),
            Err(e) => {
                eprintln!("launch: warning: `launch stop {name}` cannot cancel this start: {e}")
            }
        }
    }
}

impl super::progress::Unpacking for Stoppable {
    fn layer_start(&mut self, nth: (usize, usize), diff_id: &Digest, size: u64) {
        self.start();
        self.inner.layer_start(nth, diff_id, size);
    }
    fn layer_progress(&mut self, diff_id: &Digest, done: u64, size: u64) {
        self.inner.layer_progress(diff_id, done, size);
    }
    fn layer_done(&mut self, diff_id: &Digest, info: &super::store::LayerInfo) {
        self.inner.layer_done(diff_id, info);
    }
    fn layer_failed(&mut self) {
        self.inner.layer_failed();
    }
    fn archive_start(&mut self, archive: &Path, size: u64) {
        self.start();
        self.inner.archive_start(archive, size);
    }
    fn work_starts(&mut self) {
        self.start();
        self.inner.work_starts();
    }
}
