//! `docker save` / `skopeo copy docker-archive:` files imported into the store.
//!
//! Such a file is a tar with `manifest.json` (`[{"Config": ..., "RepoTags": [...], "Layers":
//! [...]}]`), the config and the layer tars under names of the writer's choosing (`<id>.json`
//! and `<id>/layer.tar`, or `blobs/sha256/<hex>` since Docker 25). The file is read once: every
//! regular file but the legacy per-layer metadata is stored as a blob named by the hash of what
//! was read (a name that is itself a digest must match it), and an OCI manifest is written for
//! the image, so the store holds it as it would a pulled one.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::config::ImageConfig;
use super::layout::{ImportOptions, Imported, default_name, scan_tar};
use super::store::{RefRecord, Store, read_all_bounded};
use super::{
    Descriptor, Digest, ImageError, ImageResult, MAX_JSON, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest,
    Platform,
};
use crate::sys::tar::Compression;

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

const HELP: &str = "give a file written by `docker save` or `skopeo copy ... docker-archive:FILE` \
                    (a tar with manifest.json)";

/// Import the `docker save` archive at `path` into `store`.
pub fn import_docker_archive(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> ImageResult<Imported> {
    super::layout::source_metadata(path)?;
    let _writer = store.write_lock()?;
    let mut files: HashMap<String, (Digest, u64)> = HashMap::new();
    let mut manifest_json = None;
    scan_tar(path, &mut |name, entry| {
        let legacy = name.ends_with("/json") || name.ends_with("VERSION");
        match name {
            "manifest.json" => {
                manifest_json = Some(read_all_bounded(entry, MAX_JSON, &path.join(name))?);
            }
            "repositories" | "index.json" | "oci-layout" => {}
            _ if legacy => {}
            _ => {
                let what = format!("{name} in {}", path.display());
                let (digest, size, _) = store.ingest_any(entry, &what)?;
                // A name that is a digest is a claim about the content: check it.
                if let Some(claimed) = claimed_digest(name) {
                    if claimed != digest {
                        return Err(ImageError::DigestMismatch {
                            what,
                            want: claimed.to_string(),
                            got: digest.to_string(),
                        });
                    }
                }
                files.insert(name.to_owned(), (digest, size));
            }
        }
        Ok(())
    })?;
    let Some(manifest_json) = manifest_json else {
        return Err(ImageError::invalid(
            path,
            "has no manifest.json (archives of Docker before 1.10 are not read)",
            HELP,
        ));
    };
    let entries: Vec<Entry> = serde_json::from_slice(&manifest_json)
        .map_err(|e| ImageError::invalid(path, format!("manifest.json: {e}"), HELP))?;
    let entry = choose(&entries, path, opts)?;
    let lookup = |name: &str| {
        let name = name.trim_start_matches("./");
        files.get(name).cloned().ok_or_else(|| {
            ImageError::invalid(
                path,
                format!("manifest.json names `{name}`, which the archive does not hold"),
                HELP,
            )
        })
    };
    let (config_digest, config_size) = lookup(&entry.config)?;
    let config = ImageConfig::parse(&store.read_json_blob(&config_digest)?)
        .map_err(|e| ImageError::invalid(path, format!("{}: {e}", entry.config), HELP))?;
    if config.rootfs.diff_ids.len() != entry.layers.len() {
        return Err(ImageError::invalid(
            path,
            format!(
                "the config lists {} diff_ids for manifest.json's {} layers",
                config.rootfs.diff_ids.len(),
                entry.layers.len()
            ),
            "the archive is malformed; save the image again",
        ));
    }
    let mut layers = Vec::with_capacity(entry.layers.len());
    for name in &entry.layers {
        let (digest, size) = lookup(name)?;
        layers.push(Descriptor {
            media_type: layer_media_type(store, &digest)?.to_owned(),
            digest,
            size,
            platform: None,
            annotations: Default::default(),
        });
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_MANIFEST.to_owned()),
        config: Descriptor {
            media_type: MEDIA_CONFIG.to_owned(),
            digest: config_digest,
            size: config_size,
            platform: None,
            annotations: Default::default(),
        },
        layers,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| {
        crate::error::SysError::other("serialize", Some(path.to_path_buf()), e.to_string())
    })?;
    let digest = store.put_bytes(&bytes, "the manifest written for the archive")?;
    let own = entry
        .repo_tags
        .as_ref()
        .and_then(|t| t.first())
        .map(String::as_str);
    let platform = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
    };
    let record = RefRecord {
        reference: opts.name.clone().unwrap_or_else(|| default_name(path, own)),
        digest,
        index_digest: None,
        platform: platform.to_string(),
    };
    store.write_ref(&record)?;
    Ok(Imported {
        record,
        manifest,
        config,
    })
}

/// The image to import: the one tagged `select`, or the only one.
fn choose<'a>(entries: &'a [Entry], path: &Path, opts: &ImportOptions) -> ImageResult<&'a Entry> {
    let tags = || {
        let t: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.repo_tags.iter().flatten().map(String::as_str))
            .collect();
        t.join(", ")
    };
    let found: Vec<&Entry> = match &opts.select {
        Some(s) => entries
            .iter()
            .filter(|e| e.repo_tags.iter().flatten().any(|t| t == s))
            .collect(),
        None => entries.iter().collect(),
    };
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(ImageError::invalid(
            path,
            match &opts.select {
                Some(s) => format!("holds no image tagged `{s}`"),
                None => "manifest.json lists no image".to_owned(),
            },
            &format!("its tags: {}", tags()),
        )),
        several => Err(ImageError::invalid(
            path,
            format!("holds {} images", several.len()),
            &format!("choose one by its tag with --select (its tags: {})", tags()),
        )),
    }
}

/// `blobs/sha256/<hex>` or `<hex>.json` / `<hex>/layer.tar` names of Docker's own: the
/// digest a `blobs/` name or a config name claims (layer directory ids are not digests of the
/// tar, so they claim nothing).
fn claimed_digest(name: &str) -> Option<Digest> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json").filter(|h| !h.contains('/')))?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// The OCI layer media type for a stored layer blob, by its magic bytes.
fn layer_media_type(store: &Store, digest: &Digest) -> ImageResult<&'static str> {
    use std::io::Read;
    let path = store.blob_path(digest);
    let mut magic = [0u8; 4];
    let mut f = super::store::open_nofollow(&path)?;
    let n = f
        .read(&mut magic)
        .map_err(|e| crate::error::SysError::io("read", Some(path.clone()), &e))?;
    Ok(match crate::sys::tar::sniff(&magic[..n]) {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_digests_are_claims() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(claimed_digest(&format!("blobs/sha256/{hex}")).is_some());
        assert!(claimed_digest(&format!("{hex}.json")).is_some());
        assert!(claimed_digest(&format!("{hex}/layer.tar")).is_none());
        assert!(claimed_digest("manifest.json").is_none());
    }
}
