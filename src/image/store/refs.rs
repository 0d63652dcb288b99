//! Named references: `refs/<escaped reference>` holds a [`RefRecord`], written atomically.

use serde::{Deserialize, Serialize};

use super::{ImageResult, Store, read_bounded, write_atomic};
use crate::error::SysError;
use crate::image::config::ImageConfig;
use crate::image::{Digest, ImageError, Manifest, is_index};

/// What a reference names (the store contract shared with `launch pull`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefRecord {
    /// The reference as given (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The image manifest's digest.
    pub digest: Digest,
    /// The index it was selected from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// The platform selected (`linux/amd64`).
    pub platform: String,
}

/// A reference as a file name: bytes outside `[A-Za-z0-9._:@+-]` (and a leading `.`) become
/// `%XX`, so `/` never makes a directory and no name is `.`/`..` or hidden.
pub fn escape_reference(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len());
    for (i, b) in reference.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b"_:@+-".contains(&b) || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The reference a file name escapes, if it is one.
fn unescape(name: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(name.len());
    let mut it = name.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex = [it.next()?, it.next()?];
            let s = std::str::from_utf8(&hex).ok()?;
            bytes.push(u8::from_str_radix(s, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

impl Store {
    fn ref_path(&self, reference: &str) -> ImageResult<std::path::PathBuf> {
        let name = escape_reference(reference);
        if reference.is_empty() || name.len() > 255 {
            return Err(ImageError::invalid(
                reference,
                "is not a usable image reference (empty, or too long)",
                "name images like registry/repository:tag",
            ));
        }
        Ok(self.root.join("refs").join(name))
    }

    /// Name an image: write its record atomically (replacing what the name pointed at).
    pub fn write_ref(&self, record: &RefRecord) -> ImageResult<()> {
        let path = self.ref_path(&record.reference)?;
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| SysError::other("serialize", Some(path.clone()), e.to_string()))?;
        // A name already pointing there stays as it is: no write, no fsync (an OCI layout
        // directory is imported again at every start of its root; this keeps that a read).
        if read_bounded(&path, 64 << 10).is_ok_and(|old| old == json) {
            return Ok(());
        }
        write_atomic(&path, &json)
    }

    /// What `reference` names, if anything.
    pub fn read_ref(&self, reference: &str) -> ImageResult<Option<RefRecord>> {
        let path = self.ref_path(reference)?;
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = read_bounded(&path, 64 << 10)?;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ImageError::invalid(
                &path,
                format!("not a reference record: {e}"),
                "remove it with `launch rmi`, or fetch the image again",
            )
        })
    }

    /// Every reference, sorted by name (unreadable records are skipped).
    pub fn refs(&self) -> ImageResult<Vec<RefRecord>> {
        let dir = self.root.join("refs");
        let rd = std::fs::read_dir(&dir).map_err(|e| SysError::io("opendir", Some(dir), &e))?;
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name();
            let Some(reference) = name.to_str().and_then(unescape) else {
                continue; // a temp file of write_atomic (`.name.…`), or a foreign file
            };
            if name.to_str().is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            if let Ok(Some(r)) = self.read_ref(&reference) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Remove a reference; false if there was none.
    pub fn remove_ref(&self, reference: &str) -> ImageResult<bool> {
        let path = self.ref_path(reference)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SysError::io("unlink", Some(path), &e).into()),
        }
    }

    /// An image's manifest and config, from the store.
    pub fn image(&self, manifest: &Digest) -> ImageResult<(Manifest, ImageConfig)> {
        let path = self.blob_path(manifest);
        let bytes = self.read_json_blob(manifest)?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            ImageError::invalid(
                &path,
                format!("not an image manifest: {e}"),
                "fetch the image again",
            )
        })?;
        if m.media_type.as_deref().is_some_and(is_index) {
            return Err(ImageError::invalid(
                &path,
                "is an index, not an image manifest",
                "name the manifest of one platform",
            ));
        }
        let cpath = self.blob_path(&m.config.digest);
        let config = ImageConfig::parse(&self.read_json_blob(&m.config.digest)?)
            .map_err(|e| ImageError::invalid(&cpath, e, "fetch the image again"))?;
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(ImageError::invalid(
                &cpath,
                format!(
                    "lists {} diff_ids for the manifest's {} layers",
                    config.rootfs.diff_ids.len(),
                    m.layers.len()
                ),
                "the image is malformed; rebuild it",
            ));
        }
        Ok((m, config))
    }

    /// Unpack every layer of an image (bottom first); returns the layer directories.
    pub fn unpack_image(&self, manifest: &Digest) -> ImageResult<Vec<super::LayerDir>> {
        self.unpack_image_with(manifest, &mut crate::image::progress::Quiet)
    }

    /// [`Store::unpack_image`], reporting each layer it unpacks to `progress`; a cancel (see
    /// [`Store::with_cancel`]) is also checked between layers.
    pub fn unpack_image_with(
        &self,
        manifest: &Digest,
        progress: &mut dyn crate::image::progress::Unpacking,
    ) -> ImageResult<Vec<super::LayerDir>> {
        let (m, config) = self.image(manifest)?;
        let count = m.layers.len();
        let mut out = Vec::with_capacity(count);
        for (i, (l, diff_id)) in m.layers.iter().zip(&config.rootfs.diff_ids).enumerate() {
            if self.is_cancelled() {
                return Err(self.cancelled_error(&format!("unpacking {manifest}")));
            }
            out.push(self.unpack_layer_with(&l.digest, diff_id, (i + 1, count), progress)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_escape_to_one_plain_file_name() {
        let r = "docker.io/library/busybox:latest";
        let e = escape_reference(r);
        assert_eq!(e, "docker.io%2Flibrary%2Fbusybox:latest");
        assert_eq!(unescape(&e).as_deref(), Some(r));
        assert_eq!(escape_reference(".."), "%2E.");
        assert_eq!(escape_reference("a b%"), "a%20b%25");
        assert_eq!(unescape("%zz"), None);
    }
}
