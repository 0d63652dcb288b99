//! `launch.lock`: the digest of every input a manifest does not hold itself.
//!
//! A manifest in git pins what it says; what it names — the manifests it extends, its env
//! files, a tar archive, an image — can change under it. `launch lock APP.toml` records their
//! digests in `launch.lock` beside the manifest (one lock per folder, one entry per manifest, so
//! a base and its variants share a file); `launch run` verifies them and refuses drift, naming
//! the input and pointing at the value that names it.
//!
//! What is an input, and its digest:
//! - `extends` / `env_file`: the file's bytes, as read for this run;
//! - `tar`: the archive's bytes (from the store's record when the archive went through the store
//!   and has not changed since; hashed otherwise);
//! - `image`: the image manifest's digest, and each `layer` by its diff_id (the store verified
//!   both when it pulled or imported the image).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diag::Problem;
use crate::manifest::{FileKind, Manifest, Source};
use crate::spec::{RootSource, Spec};

/// The lock file's name, in the manifest's folder.
pub const LOCK_FILE: &str = "launch.lock";

/// The key of an OCI runtime bundle's entry in DIR/launch.lock.
pub const BUNDLE_KEY: &str = "config.json";

/// The lock file format's version.
pub const LOCK_VERSION: u32 = 1;

/// A lock file is small; one larger than this is not ours.
const MAX_LOCK: u64 = 4 << 20;

/// One input of a manifest. Two inputs are equal when kind, name and digest are: `at` is where a
/// diagnostic points, not part of the input (a plan read back from JSON has none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    /// `extends`, `env_file`, `tar`, `image` or `layer`.
    pub kind: String,
    /// A path relative to the manifest's folder, or an image's name as the manifest writes it
    /// (a layer: the image's name and the layer's position, bottom first).
    pub name: String,
    /// `sha256:…`; `None` in a plan for an archive only `launch lock` and a locked run hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The manifest value that names it (for diagnostics), in the Source's combined text.
    #[serde(skip)]
    pub at: Range<usize>,
}

impl PartialEq for Input {
    fn eq(&self, other: &Input) -> bool {
        (&self.kind, &self.name, &self.digest) == (&other.kind, &other.name, &other.digest)
    }
}

impl Eq for Input {}

/// A manifest's entry in a lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The manifest's file name, relative to the lock's folder.
    pub manifest: String,
    /// Its inputs, in the order `launch lock` found them.
    #[serde(default, rename = "input")]
    pub inputs: Vec<Locked>,
}

/// An input as a lock file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// See [`Input::kind`].
    pub kind: String,
    /// See [`Input::name`].
    pub name: String,
    /// `sha256:…`.
    pub digest: String,
}

/// A whole `launch.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// [`LOCK_VERSION`].
    pub version: u32,
    /// One entry per manifest, sorted by manifest.
    #[serde(default, rename = "lock")]
    pub entries: Vec<Entry>,
}

/// What went wrong with a lock, for the CLI to print.
#[derive(Debug)]
pub enum LockError {
    /// The lock file could not be read or written, or is not a lock file.
    File(String),
    /// An input could not be hashed.
    Input(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::File(s) | LockError::Input(s) => f.write_str(s),
        }
    }
}

/// The inputs of the manifest `source` (parsed as `m`, validated into `spec`). `hash`: hash the
/// archives the store has no digest for (a plan leaves them out: that is a lock's or a locked
/// run's cost).
pub fn inputs(
    source: &Source,
    m: &Manifest,
    spec: &Spec,
    hash: bool,
) -> Result<Vec<Input>, LockError> {
    let mut out = Vec::new();
    // Files, in the order they were read: each base, each env file.
    for f in source.files.iter().skip(1) {
        let kind = match f.kind {
            FileKind::Manifest => "extends",
            FileKind::Env => "env_file",
        };
        let at = f.named_at.clone().unwrap_or(0..0);
        out.push(Input {
            kind: kind.into(),
            name: relative_name(f.path.as_deref(), &source.dir, &f.display_name),
            digest: Some(crate::image::Digest::of(source.file_text(f).as_bytes()).to_string()),
            at,
        });
    }
    let root_at = root_span(m);
    match &spec.root.source {
        RootSource::Tar {
            archive, stored, ..
        } => {
            let digest = match stored {
                Some(t) => Some(t.digest.clone()),
                None if hash => Some(hash_file(archive)?),
                None => None,
            };
            out.push(Input {
                kind: "tar".into(),
                name: relative_name(Some(archive), &source.dir, &archive.display().to_string()),
                digest,
                at: root_at,
            });
        }
        RootSource::Image {
            name,
            manifest,
            layers,
            ..
        } => {
            out.push(Input {
                kind: "image".into(),
                name: name.clone(),
                digest: Some(manifest.clone()),
                at: root_at.clone(),
            });
            for (i, l) in layers.iter().enumerate() {
                out.push(Input {
                    kind: "layer".into(),
                    name: format!("{name} #{}", i + 1),
                    digest: Some(l.clone()),
                    at: root_at.clone(),
                });
            }
        }
        RootSource::Path { .. } | RootSource::Host => {}
    }
    Ok(out)
}

/// The inputs of an OCI runtime bundle (`source` is its config.json, `spec` what it converts
/// to): the config itself, which is not in git as a manifest is, and its root filesystem tree.
pub fn bundle_inputs(source: &Source, spec: &Spec) -> Result<Vec<Input>, LockError> {
    let config = &source.files[0];
    let mut out = vec![Input {
        kind: "config".into(),
        name: BUNDLE_KEY.into(),
        digest: Some(crate::image::Digest::of(source.file_text(config).as_bytes()).to_string()),
        at: 0..0,
    }];
    if let RootSource::Path { path } = &spec.root.source {
        out.push(Input {
            kind: "rootfs".into(),
            name: relative_name(Some(path), &source.dir, &path.display().to_string()),
            digest: Some(tree_digest(path)?),
            at: 0..0,
        });
    }
    Ok(out)
}

/// One digest for a directory tree: every entry below `root`, in name order, with its path,
/// type, mode, owner, and its content (files), target (symlinks) or device number. Symlinks are
/// not followed.
pub fn tree_digest(root: &Path) -> Result<String, LockError> {
    use sha2::Digest as _;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let err = |p: &Path, e: std::io::Error| {
        LockError::Input(format!(
            "cannot hash the tree {}: {}: {e}",
            root.display(),
            p.display()
        ))
    };
    let mut h = sha2::Sha256::new();
    // Depth first, each directory's entries sorted by their bytes.
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&dir)
            .map_err(|e| err(&dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| err(&dir, e))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut subdirs = Vec::new();
        for name in names {
            let r = rel.join(&name);
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p).map_err(|e| err(&p, e))?;
            let ft = md.file_type();
            let path = r.as_os_str().as_bytes();
            h.update((path.len() as u64).to_le_bytes());
            h.update(path);
            h.update(md.mode().to_le_bytes());
            h.update(md.uid().to_le_bytes());
            h.update(md.gid().to_le_bytes());
            if ft.is_file() {
                h.update(md.len().to_le_bytes());
                h.update(hash_regular(&p, libc::O_NOFOLLOW)?.as_bytes());
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&p).map_err(|e| err(&p, e))?;
                let t = t.as_os_str().as_bytes();
                h.update((t.len() as u64).to_le_bytes());
                h.update(t);
            } else if ft.is_dir() {
                subdirs.push(r);
            } else {
                h.update(md.rdev().to_le_bytes());
            }
        }
        // Popped in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(crate::sys::tar::sha256_string(&h.finalize()))
}

/// The span of the rootfs value.
fn root_span(m: &Manifest) -> Range<usize> {
    let r = m.rootfs.get();
    [&r.tar, &r.image, &r.oci, &r.docker_archive]
        .into_iter()
        .flatten()
        .next()
        .map_or(m.rootfs.span(), |v| v.span())
}

/// `path` relative to `dir` (`../base.toml`), or `shown` when there is no path.
fn relative_name(path: Option<&Path>, dir: &Path, shown: &str) -> String {
    let Some(path) = path else {
        return shown.to_owned();
    };
    let a: Vec<Component> = path.components().collect();
    let b: Vec<Component> = dir.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    // Only the root in common: the absolute path says more than a row of `..`.
    if common <= 1 {
        return path.display().to_string();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &a[common..] {
        out.push(c.as_os_str());
    }
    out.display().to_string()
}

/// sha256 of a file, read in 1 MiB chunks.
fn hash_file(path: &Path) -> Result<String, LockError> {
    hash_regular(path, 0)
}

/// sha256 of a regular file. `flags`: `O_NOFOLLOW` for a file of a tree (a bundle's root may be
/// another user's: a file swapped for a symlink to /dev/zero or a FIFO after it was listed must
/// not be followed); never blocking on the open, never past the size it had when opened.
fn hash_regular(path: &Path, flags: i32) -> Result<String, LockError> {
    use sha2::Digest as _;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| LockError::Input(format!("cannot hash {}: {e}", path.display()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(err)?;
    let md = f.metadata().map_err(err)?;
    if !md.is_file() {
        return Err(err(std::io::Error::other("not a regular file")));
    }
    // No more than the size it had when opened (a file that grows meanwhile is read as it was).
    let mut f = f.take(md.len());
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::sys::tar::sha256_string(&h.finalize()))
}

/// The lock file for a manifest at `manifest` (its folder's `launch.lock`) and the manifest's
/// key in it.
pub fn location(manifest: &Path) -> Result<(PathBuf, String), LockError> {
    let abs = std::path::absolute(manifest)
        .map_err(|e| LockError::File(format!("{}: {e}", manifest.display())))?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    let key = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((dir.join(LOCK_FILE), key))
}

/// Read a lock file: `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<LockFile>, LockError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LockError::File(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut text = String::new();
    f.take(MAX_LOCK + 1)
        .read_to_string(&mut text)
        .map_err(|e| LockError::File(format!("cannot read {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_LOCK {
        return Err(LockError::File(format!(
            "{} is larger than {MAX_LOCK} bytes: not a lock file",
            path.display()
        )));
    }
    let lock: LockFile = toml::from_str(&text).map_err(|e| {
        let (line, col) = crate::diag::line_col(&text, e.span().map_or(0, |s| s.start));
        LockError::File(format!(
            "{}:{line}:{col}: not a lock file: {}; write it again with `launch lock --update`",
            path.display(),
            e.message().trim()
        ))
    })?;
    if lock.version != LOCK_VERSION {
        return Err(LockError::File(format!(
            "{}: lock format {} (this launch reads {LOCK_VERSION}); write it again with `launch \
             lock --update`",
            path.display(),
            lock.version
        )));
    }
    Ok(Some(lock))
}

/// The lock file's text: stable (entries sorted by manifest), with a header saying what it is.
pub fn render(lock: &LockFile) -> String {
    let mut out = String::from(
        "# launch.lock: the digests of what these manifests name (the files they extend, env \
         files,\n# archives, images). Written by `launch lock`, checked by `launch run`. Commit \
         it.\n",
    );
    let _ = writeln!(out, "version = {}", lock.version);
    for e in &lock.entries {
        let _ = writeln!(out, "\n[[lock]]\nmanifest = {}", quoted(&e.manifest));
        for i in &e.inputs {
            let _ = writeln!(
                out,
                "\n[[lock.input]]\nkind = {}\nname = {}\ndigest = {}",
                quoted(&i.kind),
                quoted(&i.name),
                quoted(&i.digest)
            );
        }
    }
    out
}

fn quoted(s: &str) -> String {
    // A TOML basic string is a JSON string for these values (no control characters but escapes).
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

/// Put `entry` into `lock` (replacing the manifest's old entry), keeping entries sorted.
pub fn upsert(lock: &mut LockFile, entry: Entry) {
    lock.entries.retain(|e| e.manifest != entry.manifest);
    lock.entries.push(entry);
    lock.entries.sort_by(|a, b| a.manifest.cmp(&b.manifest));
}

/// The entry a manifest's inputs make.
pub fn entry(manifest: &str, inputs: &[Input]) -> Result<Entry, LockError> {
    let mut locked = Vec::new();
    for i in inputs {
        let Some(digest) = &i.digest else {
            return Err(LockError::Input(format!(
                "{} {} has no digest",
                i.kind, i.name
            )));
        };
        locked.push(Locked {
            kind: i.kind.clone(),
            name: i.name.clone(),
            digest: digest.clone(),
        });
    }
    Ok(Entry {
        manifest: manifest.to_owned(),
        inputs: locked,
    })
}

/// Write the lock file atomically (a temporary file in the same folder, then rename).
pub fn write(path: &Path, lock: &LockFile) -> Result<(), LockError> {
    let text = render(lock);
    let tmp = path.with_extension(format!("lock.tmp{}", std::process::id()));
    let err = |op: &str, p: &Path, e: std::io::Error| {
        LockError::File(format!("cannot {op} {}: {e}", p.display()))
    };
    std::fs::write(&tmp, text).map_err(|e| err("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err("rename into place", path, e)
    })
}

/// Every difference between the locked inputs and the current ones, as problems at the values
/// that name them.
pub fn drift(locked: &Entry, current: &[Input], lock_path: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let key = |kind: &str, name: &str| (kind.to_owned(), name.to_owned());
    let then: BTreeMap<(String, String), &Locked> = locked
        .inputs
        .iter()
        .map(|l| (key(&l.kind, &l.name), l))
        .collect();
    let lock = lock_path.display();
    for i in current {
        let now = i.digest.as_deref().unwrap_or("(not hashed)");
        match then.get(&key(&i.kind, &i.name)) {
            Some(l) if l.digest == now => {}
            Some(l) => problems.push(
                Problem::new(
                    "launch::lock::drift",
                    i.at.clone(),
                    format!("{} {} changed since it was locked", i.kind, i.name),
                )
                .label(format!("locked {}, now {now}", l.digest))
                .help(format!(
                    "if the change is intended, record it with `launch lock --update` and \
                     commit {lock}; otherwise restore the input"
                )),
            ),
            None => problems.push(
                Problem::new(
                    "launch::lock::drift",
                    i.at.clone(),
                    format!("{} {} is not in {lock}", i.kind, i.name),
                )
                .label(format!("a new input ({now})"))
                .help("record it with `launch lock --update`"),
            ),
        }
    }
    for l in &locked.inputs {
        if !current.iter().any(|i| i.kind == l.kind && i.name == l.name) {
            problems.push(
                Problem::new(
                    "launch::lock::drift",
                    0..0,
                    format!("{} {} is locked but no longer an input", l.kind, l.name),
                )
                .label("the manifest changed since it was locked")
                .help("record the change with `launch lock --update`"),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names() {
        let d = Path::new("/repo/app");
        assert_eq!(
            relative_name(Some(Path::new("/repo/base.toml")), d, "x"),
            "../base.toml"
        );
        assert_eq!(
            relative_name(Some(Path::new("/repo/app/env/a.env")), d, "x"),
            "env/a.env"
        );
        assert_eq!(
            relative_name(Some(Path::new("/srv/root.tar")), d, "x"),
            "/srv/root.tar"
        );
        assert_eq!(relative_name(None, d, "x"), "x");
    }

    #[test]
    fn renders_and_reads_back() {
        let mut lock = LockFile {
            version: LOCK_VERSION,
            entries: vec![],
        };
        let i = |k: &str, n: &str, d: &str| Input {
            kind: k.into(),
            name: n.into(),
            digest: Some(d.into()),
            at: 0..0,
        };
        upsert(
            &mut lock,
            entry("b.toml", &[i("extends", "base.toml", "sha256:aa")]).unwrap(),
        );
        upsert(
            &mut lock,
            entry("a.toml", &[i("tar", "root \"x\".tar", "sha256:bb")]).unwrap(),
        );
        let text = render(&lock);
        let back: LockFile = toml::from_str(&text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.entries[0].manifest, "a.toml");
        // Drift: a changed digest, a new input, a vanished one.
        let e = &back.entries[1];
        let p = drift(
            e,
            &[
                i("extends", "base.toml", "sha256:cc"),
                i("env_file", "x.env", "sha256:dd"),
            ],
            Path::new("launch.lock"),
        );
        let msgs: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "extends base.toml changed since it was locked",
                "env_file x.env is not in launch.lock"
            ]
        );
        let p = drift(e, &[], Path::new("launch.lock"));
        assert_eq!(
            p[0].message,
            "extends base.toml is locked but no longer an input"
        );
        assert!(drift(e, &[i("extends", "base.toml", "sha256:aa")], Path::new("l")).is_empty());
    }
}
