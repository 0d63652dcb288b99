//! The OCI distribution pull flow: manifest (index → the platform's manifest), config, layers,
//! each verified against its digest into the store; and `launch login`'s check of credentials.

pub mod blob;
pub mod cancel;
pub mod client;
pub mod error;
pub mod manifest;
pub mod progress;
pub mod store;

use std::io::Read;
use std::path::Path;

use crate::image::auth::Credentials;
use crate::image::reference::{Digest, Reference};

use client::Client;
pub use error::PullError;
use manifest::{Descriptor, ImageConfig, ImageManifest, Index, Kind, Platform};
pub use store::{RefRecord, Store};

/// Manifests (and indexes) larger than this are refused: real ones are a few KiB.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Image configs larger than this are refused (they are parsed in memory).
pub const MAX_CONFIG: u64 = 16 << 20;

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform wanted from an index; `None`: this machine's.
    pub platform: Option<Platform>,
    /// Registries (`host` or `host:port`) that may be reached over plain http besides
    /// loopback ones (`LAUNCH_INSECURE_REGISTRIES`).
    pub insecure: Vec<String>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            insecure: client::insecure_from_env(),
        }
    }
}

/// A layer of a pulled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The compressed blob's digest (its file in the store).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its media type (`application/vnd.oci.image.layer.v1.tar+gzip`, …).
    pub media_type: String,
}

/// What a pull put in the store.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference, normalised.
    pub reference: String,
    /// The image manifest's digest.
    pub manifest: Digest,
    /// The index's digest, when the reference named one.
    pub index: Option<Digest>,
    /// The config blob's digest.
    pub config_digest: Digest,
    /// The parsed config.
    pub config: ImageConfig,
    /// The layers, base first.
    pub layers: Vec<Layer>,
    /// The image's platform (from its config).
    pub platform: String,
}

/// What a pull reports as it goes (a progress bar, log lines, or nothing).
pub trait Progress {
    /// The manifest is resolved.
    fn resolved(&mut self, _manifest: &Digest, _layers: usize) {}
    /// A blob download starts (or resumes at `from`).
    fn blob_start(&mut self, _digest: &Digest, _size: u64, _from: u64) {}
    /// `done` of `size` bytes are in.
    fn blob_progress(&mut self, _digest: &Digest, _done: u64, _size: u64) {}
    /// A blob is in the store (`cached`: it already was).
    fn blob_done(&mut self, _digest: &Digest, _size: u64, _cached: bool) {}
}

/// A [`Progress`] that reports nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// Pull `reference` into the store at `store_root`.
pub fn pull(
    reference: &Reference,
    opts: &PullOptions,
    store_root: &Path,
    progress: &mut dyn Progress,
) -> Result<Pulled, PullError> {
    let store = Store::open(store_root)?;
    let mut client = Client::new(
        &reference.registry,
        &reference.repository,
        opts.insecure.clone(),
    );
    let wanted = opts.platform.clone().unwrap_or_else(Platform::host);
    let what = reference.manifest_ref();
    let (kind, digest, bytes) = fetch_manifest(
        &mut client,
        reference,
        &what,
        reference.digest.as_ref(),
        None,
    )?;
    let (index, manifest_digest, manifest_bytes) = match kind {
        Kind::Manifest => (None, digest, bytes),
        Kind::Index => {
            let idx: Index =
                serde_json::from_slice(&bytes).map_err(|e| PullError::BadDocument {
                    what: format!("index {digest}"),
                    detail: e.to_string(),
                })?;
            let chosen = select(&idx, &wanted).ok_or_else(|| PullError::NoPlatform {
                reference: reference.to_string(),
                wanted: wanted.to_string(),
                available: idx
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref().map(Platform::to_string))
                    .collect(),
            })?;
            let child = Digest::parse(&chosen.digest)?;
            store.put(&digest, &bytes)?;
            let (k, d, b) = fetch_manifest(
                &mut client,
                reference,
                &chosen.digest,
                Some(&child),
                Some(chosen.size),
            )?;
            if k != Kind::Manifest {
                return Err(PullError::BadDocument {
                    what: format!("manifest {d}"),
                    detail: "an index entry for a platform is itself an index".to_string(),
                });
            }
            (Some(digest), d, b)
        }
    };
    let m: ImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| PullError::BadDocument {
            what: format!("manifest {manifest_digest}"),
            detail: e.to_string(),
        })?;
    progress.resolved(&manifest_digest, m.layers.len());

    let config_digest = Digest::parse(&m.config.digest)?;
    if m.config.size > MAX_CONFIG {
        return Err(PullError::TooLarge {
            what: format!("config {config_digest}"),
            limit: MAX_CONFIG,
        });
    }
    blob::fetch(
        &mut client,
        &store,
        &config_digest,
        m.config.size,
        "config",
        progress,
    )?;
    let config = read_config(&store, &config_digest)?;
    let image_platform = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
    };
    if let Some(p) = &opts.platform {
        if !config.architecture.is_empty() && !p.matches(&image_platform) {
            return Err(PullError::NoPlatform {
                reference: reference.to_string(),
                wanted: p.to_string(),
                available: vec![image_platform.to_string()],
            });
        }
    }

    let mut layers = Vec::with_capacity(m.layers.len());
    for l in &m.layers {
        let d = Digest::parse(&l.digest)?;
        blob::fetch(&mut client, &store, &d, l.size, "layer", progress)?;
        layers.push(Layer {
            digest: d,
            size: l.size,
            media_type: l.media_type.clone(),
        });
    }
    store.put(&manifest_digest, &manifest_bytes)?;
    let platform = if config.architecture.is_empty() {
        wanted.to_string()
    } else {
        image_platform.to_string()
    };
    store.write_ref(
        reference,
        &RefRecord {
            reference: reference.to_string(),
            digest: manifest_digest.to_string(),
            index_digest: index.as_ref().map(Digest::to_string),
            platform: platform.clone(),
        },
    )?;
    Ok(Pulled {
        reference: reference.to_string(),
        manifest: manifest_digest,
        index,
        config_digest,
        config,
        layers,
        platform,
    })
}

/// The index entry for `wanted`: the first whose platform matches.
fn select<'a>(idx: &'a Index, wanted: &Platform) -> Option<&'a Descriptor> {
    idx.manifests
        .iter()
        .find(|m| m.platform.as_ref().is_some_and(|p| wanted.matches(p)))
}

/// GET a manifest (by tag or digest), bounded and verified: against `expected` when the digest
/// is known, else against the registry's `Docker-Content-Digest` when it sends one.
fn fetch_manifest(
    client: &mut Client,
    reference: &Reference,
    what: &str,
    expected: Option<&Digest>,
    size: Option<u64>,
) -> Result<(Kind, Digest, Vec<u8>), PullError> {
    let url = client.url(&format!("manifests/{what}"));
    let reply = client.get(&url, &[("Accept", manifest::ACCEPT.to_string())])?;
    let status = reply.response.status().as_u16();
    if status == 404 {
        return Err(PullError::NotFound {
            reference: reference.to_string(),
            registry: client.registry().to_string(),
            what: what.to_string(),
        });
    }
    if status != 200 {
        let message = client::error_message(reply.response);
        return Err(PullError::Status {
            url: reply.url,
            status,
            message,
        });
    }
    let content_type = client::header(&reply.response, "content-type");
    let announced = client::header(&reply.response, "docker-content-digest");
    if let Some(len) = reply.response.body().content_length() {
        if len > MAX_MANIFEST {
            return Err(PullError::TooLarge {
                what: what.to_string(),
                limit: MAX_MANIFEST,
            });
        }
    }
    let mut bytes = Vec::new();
    let mut body = reply.response.into_body().into_reader();
    body.by_ref()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| match cancel::requested() {
            Some(signal) => PullError::Cancelled { signal },
            None => PullError::Interrupted {
                what: format!("manifest {what}"),
                url: reply.url.clone(),
                done: 0,
                total: size.unwrap_or(0),
                detail: e.to_string(),
            },
        })?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(PullError::TooLarge {
            what: what.to_string(),
            limit: MAX_MANIFEST,
        });
    }
    let actual = Digest::of(&bytes);
    let expected = match (expected, announced.as_deref()) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(a)) => Digest::parse(a.trim()).ok(),
        (None, None) => None,
    };
    if let Some(e) = expected {
        if e != actual {
            return Err(PullError::DigestMismatch {
                what: "manifest".to_string(),
                expected: e.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    if let Some(s) = size {
        if s != bytes.len() as u64 {
            return Err(PullError::Size {
                what: "manifest".to_string(),
                digest: actual.to_string(),
                expected: s,
                actual: bytes.len() as u64,
            });
        }
    }
    let kind = manifest::kind(content_type.as_deref(), &bytes).map_err(|media_type| {
        PullError::MediaType {
            reference: reference.to_string(),
            media_type,
        }
    })?;
    Ok((kind, actual, bytes))
}

fn read_config(store: &Store, d: &Digest) -> Result<ImageConfig, PullError> {
    let path = store.blob_path(d);
    let bytes = std::fs::read(&path).map_err(|e| {
        PullError::Store(crate::error::SysError::io("read", Some(path.clone()), &e))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| PullError::BadDocument {
        what: format!("config {d}"),
        detail: e.to_string(),
    })
}

/// Check credentials against `registry` (`launch login`): GET /v2/ with them, answering a
/// Basic or Bearer challenge.
pub fn login(
    registry: &str,
    credentials: &Credentials,
    insecure: Vec<String>,
) -> Result<(), PullError> {
    let mut client = Client::new(registry, "", insecure).with_credentials(credentials.clone());
    let url = client.url("");
    let reply = client.get(&url, &[])?;
    let status = reply.response.status().as_u16();
    match status {
        200 => Ok(()),
        _ => {
            let message = client::error_message(reply.response);
            Err(PullError::Status {
                url: reply.url,
                status,
                message,
            })
        }
    }
}
