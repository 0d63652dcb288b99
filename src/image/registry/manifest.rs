//! The OCI image-spec and Docker v2 documents a pull reads: index / manifest list, image
//! manifest, image config; and platforms (`linux/arm64/v8`).
//!
//! Our own small serde types rather than oci-spec's `image` feature: that one links the `regex`
//! crate, whose relocations cost every start of the static-PIE binary (docs/performance.md).
//! Unknown fields are ignored, as the specs require of readers.

use serde::{Deserialize, Serialize};

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// What a manifest request accepts, best first.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor: what a blob or manifest is, by digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Its media type.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// `sha256:…`.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// In an index: the platform the manifest is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An OCI image index or Docker manifest list.
#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    /// The media type the document declares (may be absent in old OCI indexes).
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// One manifest per platform (and attestations, which have no usable platform).
    pub manifests: Vec<Descriptor>,
}

/// An OCI image manifest or Docker v2 schema 2 manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    /// The media type the document declares.
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
}

/// The image config (OCI `application/vnd.oci.image.config.v1+json`, Docker's container config)
/// and its parts: the store's own types, so a pulled image and an imported one read alike.
pub use crate::image::config::{ImageConfig, ProcessDefaults as ContainerConfig, RootFs};

/// An OS/architecture/variant triple, as in an index's `platform` and `--platform`: the
/// store's own type.
pub use crate::image::Platform;

/// A `--platform` / `platform =` string that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a platform: write OS/ARCH or OS/ARCH/VARIANT, e.g. `linux/amd64` or `linux/arm64/v8`"
)]
pub struct PlatformError(pub String);

/// Parse `os/arch[/variant]` for `--platform`.
pub fn parse_platform(s: &str) -> Result<Platform, PlatformError> {
    Platform::parse(s).map_err(|_| PlatformError(s.to_string()))
}

/// What kind of document a manifest response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OCI index or Docker manifest list.
    Index,
    /// OCI or Docker v2 image manifest.
    Manifest,
}

/// The kind of a manifest response: by its Content-Type, else by the body's `mediaType`, else
/// by its shape (an old OCI document may declare neither). `Err` carries the unsupported type.
pub fn kind(content_type: Option<&str>, body: &[u8]) -> Result<Kind, String> {
    let by_type = |t: &str| match t {
        OCI_INDEX | DOCKER_LIST => Some(Ok(Kind::Index)),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Ok(Kind::Manifest)),
        "application/json" | "text/plain" | "application/octet-stream" | "" => None,
        other => Some(Err(other.to_string())),
    };
    let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
    if let Some(k) = ct.and_then(by_type) {
        return k;
    }
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let peek: Peek = serde_json::from_slice(body).map_err(|_| ct.unwrap_or("").to_string())?;
    if let Some(k) = peek.media_type.as_deref().and_then(by_type) {
        return k;
    }
    match (peek.manifests, peek.config) {
        (Some(_), _) => Ok(Kind::Index),
        (None, Some(_)) => Ok(Kind::Manifest),
        (None, None) => Err(peek
            .media_type
            .or(ct.map(str::to_string))
            .unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches(&Platform::parse("linux/arm64").unwrap()));
        assert!(!p.matches(&Platform::parse("linux/arm/v7").unwrap()));
        assert!(Platform::parse("linux/arm64").unwrap().matches(&p));
        for bad in ["", "linux", "linux/", "a/b/c/d", "Linux/amd64", "linux//v8"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        if cfg!(target_arch = "x86_64") {
            assert_eq!(Platform::host().to_string(), "linux/amd64");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(kind(Some(OCI_INDEX), b""), Ok(Kind::Index));
        assert_eq!(
            kind(Some("application/json"), br#"{"config":{}}"#),
            Ok(Kind::Manifest)
        );
        assert_eq!(kind(None, br#"{"manifests":[]}"#), Ok(Kind::Index));
        assert!(
            kind(
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
                b"{}"
            )
            .is_err()
        );
        assert!(kind(None, b"not json").is_err());
    }
}
