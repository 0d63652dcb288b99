//! Safe extraction of root filesystem archives (`docker export` tarballs).
//!
//! The archive is untrusted input. The `tar` crate only parses it; every entry is written here,
//! relative to directory descriptors that were opened beneath the destination with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so no entry can be written through a symlink or a
//! `..` even if an earlier entry planted one. Final components are created with `O_EXCL` /
//! `*at(2)` calls that do not follow symlinks, and existing files are unlinked, never reopened.

use std::path::Path;

mod decompress;
mod extract;
mod guard;
mod layer;
mod meta;
mod names;
mod pipe;

pub use extract::extract;
pub use layer::{
    HashState, Unpacked, extract_layer, extract_layer_with, open_guarded, sha256_string, sniff,
};

/// The largest file [`read_files`] returns: an `/etc/passwd` or `/etc/group`, not a disk image.
const READ_MAX: u64 = 8 << 20;

/// The contents of the regular files `names` (paths relative to the root, e.g. `etc/passwd`) in
/// an archive, reading it to the end (a later entry replaces an earlier one, as extraction
/// would): `None` for a name the archive has not, or has as something other than a regular file,
/// or larger than 8 MiB.
pub fn read_files(
    archive: &Path,
    compression: Compression,
    names: &[&str],
) -> crate::error::SysResult<Vec<Option<Vec<u8>>>> {
    use std::io::Read;
    let read_err = |e: std::io::Error| extract::read_error(archive, &e, "looking for /etc files");
    let mut out: Vec<Option<Vec<u8>>> = vec![None; names.len()];
    let mut tar = tar::Archive::new(extract::open(archive, compression)?);
    for entry in tar.entries().map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let Ok(path) = names::normalise(&entry.path_bytes()) else {
            continue;
        };
        let Some(i) = names.iter().position(|n| path == Path::new(n)) else {
            continue;
        };
        let kind = entry.header().entry_type();
        out[i] = None;
        if (kind.is_file() || kind == tar::EntryType::Continuous) && entry.size() <= READ_MAX {
            let mut text = Vec::new();
            entry
                .take(READ_MAX)
                .read_to_end(&mut text)
                .map_err(read_err)?;
            out[i] = Some(text);
        }
    }
    Ok(out)
}

/// Compression of a rootfs archive, chosen from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain `.tar`.
    None,
    /// `.tar.gz` / `.tgz`.
    Gzip,
    /// `.tar.zst` / `.tzst`.
    Zstd,
}

impl Compression {
    /// The compression implied by an archive's name, or `None` for a name we do not read.
    pub fn from_path(path: &Path) -> Option<Compression> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".tar") {
            Some(Compression::None)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Compression::Gzip)
        } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Some(Compression::Zstd)
        } else {
            None
        }
    }
}

/// What extraction may do beyond creating files owned by the caller.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Create character and block devices and give every entry its archive owner (needs
    /// `CAP_MKNOD` and `CAP_CHOWN`). Unprivileged, device entries are skipped and counted in
    /// [`ExtractStats::skipped_devices`], and everything is owned by the caller. Fifos are
    /// created either way.
    pub privileged: bool,
    /// Privileged only: write each owner as the host id the container's maps give it.
    pub owners: Option<crate::sys::idmap::OwnerShift>,
    /// Asked between entries: `true` stops the extraction with an error (start-up was
    /// cancelled; the caller removes what was written).
    pub cancelled: Option<fn() -> bool>,
    /// Stop with an error once this many bytes of file content are written (`[rootfs]
    /// max_size`): an archive that expands without bound must not fill the disk.
    pub max_bytes: Option<u64>,
}

/// What an extraction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Entries created (directories, files, links, nodes), the archive's `./` included.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Device entries skipped because extraction was not privileged.
    pub skipped_devices: u64,
}

/// Bytes read from the archive file, and copied per `write`, at a time.
const BUF_SIZE: usize = 256 * 1024;
const PATH_MAX: usize = libc::PATH_MAX as usize;
const NAME_MAX: usize = 255;
