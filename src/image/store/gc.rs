//! `launch images`, `rmi` and `prune`: what the store holds, and removing what nothing
//! references. A collection holds `locks/store` exclusively (no writer is between writing a
//! blob and naming it), and removes a layer only when it can take the layer's lock exclusively
//! at once: a running container holds it shared, and its layers are never removed.

use std::collections::HashSet;
use std::path::Path;

use super::lock::Lock;
use super::{ImageResult, Store, remove_tree};
use crate::error::SysError;
use crate::image::{Digest, ImageError};

/// One image in `launch images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its reference.
    pub reference: String,
    /// Its manifest's digest.
    pub digest: Digest,
    /// Bytes of its blobs in the store (manifest, config, layers as stored).
    pub size: u64,
    /// Its layers.
    pub layers: usize,
    /// Unix time of the last hold of one of its layers (a container started from it).
    pub last_used: Option<u64>,
}

/// What a collection removed, and what it kept because it is in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// References removed (`rmi`).
    pub refs: Vec<String>,
    /// Blobs removed, with their sizes.
    pub blobs: Vec<(Digest, u64)>,
    /// Unpacked layers removed, with the bytes of their files.
    pub layers: Vec<(Digest, u64)>,
    /// `tar` root records dropped because their archive is gone.
    pub tar_roots: Vec<String>,
    /// Bytes of leftovers of interrupted writers removed.
    pub leftovers: u64,
    /// Unreferenced layers kept because a running container holds them.
    pub held: Vec<Digest>,
}

impl Pruned {
    /// Bytes freed.
    pub fn freed(&self) -> u64 {
        let blobs: u64 = self.blobs.iter().map(|(_, n)| n).sum();
        let layers: u64 = self.layers.iter().map(|(_, n)| n).sum();
        blobs + layers + self.leftovers
    }
}

/// The blobs and layers an image (or several) needs.
#[derive(Debug, Default)]
struct Needed {
    blobs: HashSet<Digest>,
    layers: HashSet<Digest>,
}

impl Store {
    /// Every named image with its size and last use.
    pub fn images(&self) -> ImageResult<Vec<ImageInfo>> {
        let mut out = Vec::new();
        for r in self.refs()? {
            let (size, layers, last_used) = match self.image(&r.digest) {
                Ok((m, config)) => {
                    let blobs = std::iter::once(&r.digest)
                        .chain(std::iter::once(&m.config.digest))
                        .chain(m.layers.iter().map(|l| &l.digest));
                    let size = blobs.filter_map(|d| self.blob_size(d)).sum();
                    let used = config
                        .rootfs
                        .diff_ids
                        .iter()
                        .filter_map(|d| mtime(&self.root.join("used").join(d.hex())))
                        .max();
                    (size, m.layers.len(), used)
                }
                Err(_) => (0, 0, None),
            };
            out.push(ImageInfo {
                reference: r.reference,
                digest: r.digest,
                size,
                layers,
                last_used,
            });
        }
        Ok(out)
    }

    /// Remove every blob and layer that no reference and no `tar` root needs, except layers in
    /// use; `tar` root records whose archive is gone; and leftovers of interrupted writers.
    pub fn prune(&self) -> ImageResult<Pruned> {
        let _all = self.lock_store(Lock::Exclusive)?;
        let mut pruned = Pruned {
            leftovers: self.clean_leftovers(true)?,
            tar_roots: self.drop_stale_tar_roots()?,
            ..Pruned::default()
        };
        self.drop_stale_sources()?;
        self.collect(None, &mut pruned)?;
        Ok(pruned)
    }

    /// Remove the reference `what` (or every reference to the image digest `what`, full or a
    /// prefix of at least 12 hex digits), then the blobs and layers of those images that
    /// nothing else needs and no container holds.
    pub fn rmi(&self, what: &str) -> ImageResult<Pruned> {
        let _all = self.lock_store(Lock::Exclusive)?;
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        let by_digest = hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        let refs: Vec<_> = self
            .refs()?
            .into_iter()
            .filter(|r| r.reference == what || (by_digest && r.digest.hex().starts_with(hex)))
            .collect();
        if refs.is_empty() {
            return Err(ImageError::Unknown(what.to_owned()));
        }
        let mut only = Needed::default();
        let mut pruned = Pruned::default();
        for r in &refs {
            self.needs(r, &mut only);
            self.remove_ref(&r.reference)?;
            pruned.refs.push(r.reference.clone());
        }
        self.collect(Some(&only), &mut pruned)?;
        Ok(pruned)
    }

    /// What one reference needs (as much of it as can be read).
    fn needs(&self, r: &super::RefRecord, into: &mut Needed) {
        into.blobs.insert(r.digest.clone());
        into.blobs.extend(r.index_digest.clone());
        if let Ok((m, config)) = self.image(&r.digest) {
            into.blobs.insert(m.config.digest);
            into.blobs.extend(m.layers.into_iter().map(|l| l.digest));
            into.layers.extend(config.rootfs.diff_ids);
        }
    }

    /// Remove unneeded blobs and unheld, unneeded layers (limited to `only` when given); the
    /// caller holds `locks/store` exclusively.
    fn collect(&self, only: Option<&Needed>, out: &mut Pruned) -> ImageResult<()> {
        let mut keep = Needed::default();
        for r in self.refs()? {
            self.needs(&r, &mut keep);
        }
        keep.layers.extend(self.tar_root_layers()?);
        for (digest, path) in entries(&self.root.join("blobs/sha256"))? {
            let wanted = only.is_none_or(|o| o.blobs.contains(&digest));
            if wanted && !keep.blobs.contains(&digest) {
                out.blobs.push((digest, remove_tree(&path)?));
            }
        }
        for (diff_id, path) in entries(&self.root.join("layers/sha256"))? {
            let wanted = only.is_none_or(|o| o.layers.contains(&diff_id));
            if !wanted || keep.layers.contains(&diff_id) {
                continue;
            }
            let Some(_lock) = self.try_layer_exclusive(&diff_id)? else {
                out.held.push(diff_id);
                continue;
            };
            let bytes = remove_tree(&path)?;
            remove_tree(&self.root.join("used").join(diff_id.hex()))?;
            out.layers.push((diff_id, bytes));
        }
        Ok(())
    }
}

/// The entries of a `sha256/` directory named by a digest's hex, sorted; other names are
/// ignored.
fn entries(dir: &Path) -> ImageResult<Vec<(Digest, std::path::PathBuf)>> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| SysError::io("opendir", Some(dir.to_path_buf()), &e))?;
    let mut out: Vec<_> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let d = Digest::parse(&format!("sha256:{}", name.to_str()?)).ok()?;
            Some((d, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A file's mtime in Unix seconds.
fn mtime(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .and_then(|m| u64::try_from(m.mtime()).ok())
}
