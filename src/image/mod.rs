//! Images: references, registry credentials and pulls from OCI distribution registries
//! (`registry`), the content-addressed store, layer unpacking, and the local sources (OCI image
//! layouts, `docker save` archives) imported into it. docs/images.md describes the store layout.
//!
//! The OCI image types are small serde structs of our own, not oci-spec's `image` feature: only
//! the fields the store reads, and nothing that could bring `regex` into the binary (linking it
//! cost start-up time before). Every JSON document read is bounded by [`MAX_JSON`].

pub mod archive;
pub mod auth;
pub mod cancel;
pub mod config;
pub mod layout;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod resolve;
pub mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::SysError;

/// The largest JSON document (index, manifest, config, manifest.json) the store reads.
pub const MAX_JSON: u64 = 4 << 20;

/// OCI image index media type.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker manifest list media type.
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 manifest media type.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The annotation naming a manifest in an OCI layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A `sha256:<64 lowercase hex>` digest, checked when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parse `sha256:<hex>`; other algorithms are refused (the store keeps sha256 only).
    pub fn parse(s: &str) -> Result<Digest, String> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            return Err(format!("`{}` is not a sha256 digest", shown(s)));
        };
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "`{}` is not a sha256 digest (64 lowercase hex digits)",
                shown(s)
            ));
        }
        Ok(Digest(s.to_owned()))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as image listings show them.
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(crate::sys::tar::sha256_string(&sha2::Sha256::digest(bytes)))
    }
}

/// Untrusted text, cut for messages.
fn shown(s: &str) -> String {
    if s.chars().count() <= 80 {
        return s.to_owned();
    }
    format!("{}…", s.chars().take(80).collect::<String>())
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Digest, String> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`.
    pub architecture: String,
    /// `v8`, `v7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `os/arch[/variant]`: lowercase words (letters, digits, `_`, `.`).
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let word = |w: &&str| {
            !w.is_empty()
                && w.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(word) {
            return Err(format!(
                "`{}` is not a platform: write os/arch or os/arch/variant (e.g. linux/amd64)",
                shown(s)
            ));
        }
        Ok(Platform {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        })
    }

    /// This machine's platform, in the spelling images use.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Whether an index entry for `candidate` runs here when `self` is wanted. No variant
    /// wanted: any (an index rarely lists two variants of one architecture for Linux). arm64
    /// without a variant is v8.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.map(str::to_owned),
        };
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none() || norm(self) == norm(candidate))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Bytes for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", UNITS[u]),
    }
}

/// An OCI content descriptor (the fields the store uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What it points at.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Index entries: the platform of the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations (the OCI layout's ref name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image index or Docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// 2.
    pub schema_version: u32,
    /// Absent in an OCI layout's index.json written by some tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
}

/// An OCI image manifest or Docker v2 manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// 2.
    pub schema_version: u32,
    /// The manifest's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// Whether a media type is an index (OCI index, Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_INDEX || media_type == MEDIA_DOCKER_LIST
}

/// An error of the store or of an image source, with the fix as miette `help:`.
#[derive(Debug)]
pub enum ImageError {
    /// A system call or file operation failed.
    Sys(SysError),
    /// Content does not hash to the digest it was named by.
    DigestMismatch {
        /// What was read (blob, layer, file in an archive).
        what: String,
        /// The digest it should have.
        want: String,
        /// The digest of what was read.
        got: String,
    },
    /// A source is not a valid image (or not the kind asked for).
    Invalid {
        /// The source.
        path: PathBuf,
        /// What is wrong.
        why: String,
        /// How to fix it.
        help: String,
    },
    /// No such image in the store.
    Unknown(String),
}

impl ImageError {
    /// A source that is not a valid image.
    pub fn invalid(path: impl Into<PathBuf>, why: impl Into<String>, help: &str) -> ImageError {
        ImageError::Invalid {
            path: path.into(),
            why: why.into(),
            help: help.into(),
        }
    }

    /// The exit code (docs/exit-codes.md): 2 for bad input (an unknown image, a source that is
    /// not an image or does not match its digests), 125 for the store failing.
    pub fn exit_code(&self) -> u8 {
        match self {
            ImageError::Sys(_) => crate::exit::LAUNCHER,
            ImageError::DigestMismatch { .. }
            | ImageError::Invalid { .. }
            | ImageError::Unknown(_) => crate::exit::INVALID,
        }
    }

    /// The stable diagnostic code.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Sys(_) => "launch::store::failed",
            ImageError::DigestMismatch { .. } => "launch::image::digest_mismatch",
            ImageError::Invalid { .. } => "launch::image::invalid",
            ImageError::Unknown(_) => "launch::image::unknown",
        }
    }

    /// Rendered as miette does for the CLI, without colour when `color` is false.
    pub fn render(&self, color: bool) -> String {
        let theme = match color {
            true => miette::GraphicalTheme::unicode(),
            false => miette::GraphicalTheme::unicode_nocolor(),
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!("error[{}]: {self}\n", self.code());
        }
        out
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Sys(e) => write!(f, "{e}"),
            ImageError::DigestMismatch { what, want, got } => {
                write!(f, "{what} hashes to {got}, not to {want}")
            }
            ImageError::Invalid { path, why, .. } => write!(f, "{}: {why}", path.display()),
            ImageError::Unknown(r) => write!(f, "no image `{}` in the store", shown(r)),
        }
    }
}

impl std::error::Error for ImageError {}

impl miette::Diagnostic for ImageError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(ImageError::code(self)))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help: &str = match self {
            ImageError::Sys(_) => {
                "the store is LAUNCH_STORE, /var/lib/launch for root, or \
                                   $XDG_DATA_HOME/launch; check its permissions and free space"
            }
            ImageError::DigestMismatch { .. } => {
                "the content was changed or damaged: nothing of it was kept; get the image again \
                 from a source you trust"
            }
            ImageError::Invalid { help, .. } => help,
            ImageError::Unknown(_) => "`launch images` lists the images in the store",
        };
        Some(Box::new(help.to_owned()))
    }
}

impl From<SysError> for ImageError {
    fn from(e: SysError) -> ImageError {
        ImageError::Sys(e)
    }
}

/// Result of image operations.
pub type ImageResult<T> = Result<T, ImageError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.short(), "e3b0c44298fc");
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches(&Platform::parse("linux/arm64").unwrap()));
        assert!(!p.matches(&Platform::parse("linux/amd64").unwrap()));
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }
}
