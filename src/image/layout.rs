//! OCI image layouts (a directory with `oci-layout`, `index.json` and `blobs/`, or a tar of
//! one) imported into the store.
//!
//! The image is chosen in `index.json` by its `org.opencontainers.image.ref.name` annotation, or
//! is the only one; an index is resolved to the manifest of the platform asked for (this
//! machine's by default). Blobs are copied in with their digests verified while they stream:
//! a directory's blobs are opened beneath it (never through a symlink out of it); a tar is read
//! once, every `blobs/sha256/<hex>` entry checked against its name as it is stored.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

use super::config::ImageConfig;
use super::store::{RefRecord, Store, read_all_bounded};
use super::{
    Descriptor, Digest, ImageError, ImageResult, Index, MAX_JSON, Manifest, Platform, REF_NAME,
    is_index,
};
use crate::error::SysError;

/// How to import a local image.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The reference to store it under (default: the source's own name for it, else
    /// `localhost/<file name>:latest`).
    pub name: Option<String>,
    /// Which image of the source: an OCI layout's `org.opencontainers.image.ref.name`, or one of
    /// a `docker save` file's RepoTags (default: the only one).
    pub select: Option<String>,
    /// The platform to pick from an index (default: this machine's).
    pub platform: Option<Platform>,
}

/// An image imported into the store.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The reference record written.
    pub record: RefRecord,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its config.
    pub config: ImageConfig,
}

impl Imported {
    /// (layer blob, diff_id) pairs, bottom first: what [`Store::unpack_layer`] takes.
    pub fn layers(&self) -> Vec<(Digest, Digest)> {
        self.manifest
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .zip(self.config.rootfs.diff_ids.iter().cloned())
            .collect()
    }
}

/// Makes sure the store has a blob, copying it from the source.
type Fetch<'a> = dyn FnMut(&Descriptor) -> ImageResult<()> + 'a;

const HELP_LAYOUT: &str = "give an OCI image layout: a directory (or .tar of one) with oci-layout, \
                           index.json and blobs/, as `skopeo copy ... oci:DIR` or `umoci` write";

/// Import the OCI image layout at `path` (a directory or a tar of one) into `store`.
pub fn import_oci(store: &Store, path: &Path, opts: &ImportOptions) -> ImageResult<Imported> {
    let _writer = store.write_lock()?;
    let md = source_metadata(path)?;
    let (index, mut fetch): (Vec<u8>, Box<Fetch>) = if md.is_dir() {
        let dir = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SysError::new("open", Some(path.into()), e).args("O_PATH|O_DIRECTORY"))?;
        let index = read_beneath(&dir, path, "index.json", MAX_JSON)?;
        let base = path.to_path_buf();
        let fetch = move |d: &Descriptor| fetch_from_dir(store, &dir, &base, d);
        (index, Box::new(fetch))
    } else {
        let index = scan_layout_tar(store, path)?;
        let base = path.to_path_buf();
        let fetch = move |d: &Descriptor| {
            if store.has_blob(&d.digest) {
                return Ok(());
            }
            Err(ImageError::invalid(
                &base,
                format!("names blob {}, which the archive does not hold", d.digest),
                HELP_LAYOUT,
            ))
        };
        (index, Box::new(fetch))
    };
    let index: Index = serde_json::from_slice(&index).map_err(|e| {
        ImageError::invalid(
            path,
            format!("index.json is not an image index: {e}"),
            HELP_LAYOUT,
        )
    })?;
    let chosen = choose(&index, path, opts)?;
    let ref_name = chosen.annotations.get(REF_NAME).cloned();
    let (record, manifest, config) = resolve(store, path, chosen, opts, &mut *fetch)?;
    let record = RefRecord {
        reference: opts
            .name
            .clone()
            .unwrap_or_else(|| default_name(path, ref_name.as_deref())),
        ..record
    };
    store.write_ref(&record)?;
    Ok(Imported {
        record,
        manifest,
        config,
    })
}

/// The kinds of local sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An OCI image layout (directory or tar).
    Oci,
    /// A `docker save` file.
    DockerArchive,
}

/// Import a local source, or find it imported already: an archive file whose identity (size,
/// mtime, ctime, inode, device) is the one recorded at its last import with the same options
/// is not read again. A layout directory is always imported: that reads its index.json and only
/// the blobs the store lacks. Returns whether the source was read.
pub fn import_cached(
    store: &Store,
    kind: SourceKind,
    path: &Path,
    opts: &ImportOptions,
) -> ImageResult<(Imported, bool)> {
    let import = || match kind {
        SourceKind::Oci => import_oci(store, path, opts),
        SourceKind::DockerArchive => super::archive::import_docker_archive(store, path, opts),
    };
    if source_metadata(path)?.is_dir() {
        return Ok((import()?, true));
    }
    let options = format!(
        "{kind:?}\0{}\0{}\0{}",
        opts.name.as_deref().unwrap_or(""),
        opts.select.as_deref().unwrap_or(""),
        opts.platform
            .as_ref()
            .map(Platform::to_string)
            .unwrap_or_default()
    );
    let (found, identity) = store.source_unchanged(path, &options)?;
    if let Some(record) = found {
        if let Ok((manifest, config)) = store.image(&record.digest) {
            let imported = Imported {
                record,
                manifest,
                config,
            };
            return Ok((imported, false));
        }
    }
    let imported = import()?;
    store.record_source(path, &options, identity, &imported.record)?;
    Ok((imported, true))
}

/// A local source's metadata; a missing or unreadable one is the user's input, not the store.
pub(super) fn source_metadata(path: &Path) -> ImageResult<std::fs::Metadata> {
    std::fs::metadata(path).map_err(|e| {
        let err = SysError::io("stat", Some(path.to_path_buf()), &e);
        ImageError::invalid(path, format!("cannot be read: {err}"), "check the path")
    })
}

/// The name an import gets without `--name`: the source's own name for it when it is a full
/// reference, else `localhost/<file stem>:<its tag, or latest>`.
pub(super) fn default_name(path: &Path, own: Option<&str>) -> String {
    if let Some(own) = own.filter(|n| n.contains('/') || n.contains(':')) {
        return own.to_owned();
    }
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".tar").unwrap_or(&stem);
    let stem: String = stem
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let stem = if stem.is_empty() { "image" } else { &stem };
    format!("localhost/{stem}:{}", own.unwrap_or("latest"))
}

/// The index entry to import: by ref name, or the only one, or the one for the platform.
fn choose<'a>(index: &'a Index, path: &Path, opts: &ImportOptions) -> ImageResult<&'a Descriptor> {
    let names = || {
        let n: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        match n.is_empty() {
            true => "it names none".to_owned(),
            false => format!("it has: {}", n.join(", ")),
        }
    };
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            opts.select
                .as_ref()
                .is_none_or(|s| d.annotations.get(REF_NAME) == Some(s))
        })
        .collect();
    match candidates.as_slice() {
        [] => Err(ImageError::invalid(
            path,
            match &opts.select {
                Some(s) => format!("index.json has no image named `{s}`"),
                None => "index.json lists no image".to_owned(),
            },
            &format!("choose an image by its ref name annotation ({})", names()),
        )),
        [one] => Ok(one),
        several => {
            let platform = opts.platform.clone().unwrap_or_else(Platform::host);
            let fits: Vec<_> = several
                .iter()
                .filter(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
                .collect();
            match fits.as_slice() {
                [one] => Ok(one),
                _ => Err(ImageError::invalid(
                    path,
                    format!("index.json lists {} images", several.len()),
                    &format!("choose one by its ref name annotation ({})", names()),
                )),
            }
        }
    }
}

/// Resolve a descriptor (an index or a manifest) to a manifest, config and layers in the store.
pub(super) fn resolve(
    store: &Store,
    path: &Path,
    chosen: &Descriptor,
    opts: &ImportOptions,
    fetch: &mut dyn FnMut(&Descriptor) -> ImageResult<()>,
) -> ImageResult<(RefRecord, Manifest, ImageConfig)> {
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let mut desc = chosen.clone();
    let mut index_digest = None;
    // An index in an index (docker's OCI export) is followed one level more, no further.
    for _ in 0..3 {
        if !is_index(&desc.media_type) {
            break;
        }
        fetch(&desc)?;
        let bytes = store.read_json_blob(&desc.digest)?;
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
            ImageError::invalid(
                path,
                format!("blob {} is not an index: {e}", desc.digest),
                HELP_LAYOUT,
            )
        })?;
        index_digest = Some(desc.digest.clone());
        let fits: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
            .collect();
        // An exact variant match wins over an entry without a variant.
        let exact = fits.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.variant == platform.variant)
        });
        desc = match exact.or(fits.first()) {
            Some(d) => (*d).clone(),
            None => {
                let have: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                    .collect();
                return Err(ImageError::invalid(
                    path,
                    format!(
                        "the image has no manifest for {platform} (it has: {})",
                        have.join(", ")
                    ),
                    "choose one of its platforms with --platform",
                ));
            }
        };
    }
    if is_index(&desc.media_type) {
        return Err(ImageError::invalid(
            path,
            "indexes nest too deep",
            HELP_LAYOUT,
        ));
    }
    fetch(&desc)?;
    let bytes = store.read_json_blob(&desc.digest)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        ImageError::invalid(
            path,
            format!("blob {} is not an image manifest: {e}", desc.digest),
            HELP_LAYOUT,
        )
    })?;
    fetch(&manifest.config)?;
    let cbytes = store.read_json_blob(&manifest.config.digest)?;
    let config = ImageConfig::parse(&cbytes).map_err(|e| {
        ImageError::invalid(
            path,
            format!("config {}: {e}", manifest.config.digest),
            HELP_LAYOUT,
        )
    })?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::invalid(
            path,
            format!(
                "the config lists {} diff_ids for the manifest's {} layers",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            ),
            "the image is malformed; rebuild it",
        ));
    }
    for layer in &manifest.layers {
        fetch(layer)?;
    }
    let image_platform = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
    };
    let record = RefRecord {
        reference: String::new(),
        digest: desc.digest.clone(),
        index_digest,
        platform: image_platform.to_string(),
    };
    Ok((record, manifest, config))
}

/// Copy a blob from a layout directory into the store (if it lacks it).
fn fetch_from_dir(store: &Store, dir: &OwnedFd, base: &Path, d: &Descriptor) -> ImageResult<()> {
    if store.has_blob(&d.digest) {
        return Ok(());
    }
    let rel = format!("blobs/sha256/{}", d.digest.hex());
    let file = open_beneath(dir, base, &rel)?;
    let what = format!("{} in {}", rel, base.display());
    // Bounded by the descriptor's size: a longer file fails the digest check anyway, read no more.
    store.ingest(&d.digest, file.take(d.size.saturating_add(1)), &what)?;
    Ok(())
}

/// Open `rel` beneath the layout directory, never leaving it.
fn open_beneath(dir: &OwnedFd, base: &Path, rel: &str) -> ImageResult<std::fs::File> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(dir.as_fd(), rel, how).map_err(|e| {
        let err =
            SysError::new("openat2", Some(base.join(rel)), e).args("O_RDONLY, RESOLVE_BENEATH");
        match e {
            nix::errno::Errno::ENOENT => ImageError::invalid(
                base,
                format!("lacks {rel}, which its index or manifest names"),
                HELP_LAYOUT,
            ),
            _ => err.into(),
        }
    })?;
    Ok(std::fs::File::from(fd))
}

fn read_beneath(dir: &OwnedFd, base: &Path, rel: &str, max: u64) -> ImageResult<Vec<u8>> {
    let file = open_beneath(dir, base, rel)?;
    read_all_bounded(file, max, &base.join(rel))
}

/// Read an OCI layout tar once: store every `blobs/sha256/<hex>` entry (verified against its
/// name), return index.json.
fn scan_layout_tar(store: &Store, path: &Path) -> ImageResult<Vec<u8>> {
    let mut index = None;
    scan_tar(path, &mut |name, entry| {
        if name == "index.json" {
            index = Some(read_all_bounded(entry, MAX_JSON, &path.join(name))?);
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let digest = Digest::parse(&format!("sha256:{hex}")).map_err(|e| {
                ImageError::invalid(path, format!("entry `{name}`: {e}"), HELP_LAYOUT)
            })?;
            store.ingest(&digest, entry, &format!("{name} in {}", path.display()))?;
        }
        Ok(())
    })?;
    index.ok_or_else(|| ImageError::invalid(path, "has no index.json", HELP_LAYOUT))
}

/// Call `f` with the name (without a leading `./`) and content of every regular file in the
/// archive at `path`, streaming. Names over 4096 bytes are refused by the guard.
pub(super) fn scan_tar(
    path: &Path,
    f: &mut dyn FnMut(&str, &mut dyn Read) -> ImageResult<()>,
) -> ImageResult<()> {
    let reader = crate::sys::tar::open_guarded(path)?;
    let mut archive = tar::Archive::new(reader);
    // The tar crate's messages may quote the bytes it could not parse: not shown.
    let bad = |e: std::io::Error| -> ImageError {
        let why = match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the archive ends in the middle of an entry",
            _ => "not a tar archive, or a damaged one",
        };
        ImageError::invalid(
            path,
            why,
            "give the archive as written by `docker save`, skopeo or umoci",
        )
    };
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let Ok(name) = std::str::from_utf8(&raw) else {
            continue;
        };
        let name = name.trim_start_matches("./").to_owned();
        f(&name, &mut entry)?;
    }
    Ok(())
}
