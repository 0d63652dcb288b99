//! What can go wrong during a pull or a login, each with a code and a `help:` that says what to
//! do (rendered by miette, like the manifest diagnostics).

use std::fmt;

use crate::error::SysError;
use crate::image::reference::ReferenceError;

use super::manifest::PlatformError;

/// A failed pull or login.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The image reference does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The platform string does not parse.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// Plain http to a registry that is neither loopback nor listed as insecure.
    #[error(
        "refusing plain http to {url}: only loopback registries and those in LAUNCH_INSECURE_REGISTRIES may be reached without TLS"
    )]
    Insecure {
        /// The URL.
        url: String,
        /// Its host.
        host: String,
    },
    /// No connection (refused, unreachable, no such host).
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// TLS failed (handshake, certificate).
    #[error("TLS with {host} failed: {detail}")]
    Tls {
        /// The registry host.
        host: String,
        /// What failed.
        detail: String,
    },
    /// The registry (or its token server) refused us.
    #[error("{registry} refused {}{}", if .repository.is_empty() { "the login".to_string() } else { format!("access to {}", .repository) }, match .credentials { Some(c) => format!(" with the credentials from {c}"), None => " without credentials".to_string() })]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The repository (empty for a login).
        repository: String,
        /// Where the credentials that were sent came from; `None`: none were sent.
        credentials: Option<String>,
        /// Every credential file looked at; `None` when the credentials were given directly.
        consulted: Option<Vec<String>>,
        /// The server's own message, if any.
        message: String,
    },
    /// 404 for a manifest.
    #[error("{reference}: no such image on {registry} (manifest `{what}` not found)")]
    NotFound {
        /// The reference pulled.
        reference: String,
        /// The registry.
        registry: String,
        /// The tag or digest that was asked for.
        what: String,
    },
    /// Some other unexpected status.
    #[error("{url}: HTTP {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The registry's error message, if any.
        message: String,
    },
    /// Content whose digest is not the one asked for.
    #[error(
        "{what} {expected} failed verification: the registry sent content whose digest is {actual}"
    )]
    DigestMismatch {
        /// `manifest`, `config`, `layer`.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
        actual: String,
    },
    /// Content of another size than announced.
    #[error("{what} {digest}: expected {expected} bytes, the registry sent {actual}")]
    Size {
        /// `manifest`, `config`, `layer`.
        what: String,
        /// Its digest.
        digest: String,
        /// The size asked for.
        expected: u64,
        /// The size that came (or was announced).
        actual: u64,
    },
    /// A manifest bigger than launch accepts.
    #[error("manifest {what} is larger than {limit} bytes")]
    TooLarge {
        /// The tag or digest.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A document that is not what it claims to be.
    #[error("{what}: {detail}")]
    BadDocument {
        /// `manifest sha256:…`.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A manifest media type launch cannot use (schema 1, artifacts).
    #[error("{reference}: unsupported manifest type `{media_type}`")]
    MediaType {
        /// The reference.
        reference: String,
        /// Its media type.
        media_type: String,
    },
    /// No entry of an index for the wanted platform.
    #[error("{reference} has no image for {wanted}; it has: {}", if .available.is_empty() { "none".to_string() } else { .available.join(", ") })]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform wanted.
        wanted: String,
        /// The platforms the index lists.
        available: Vec<String>,
    },
    /// The transfer broke off (connection closed early, read error).
    #[error("downloading {what} from {url} broke off after {done} of {total} bytes: {detail}")]
    Interrupted {
        /// `layer sha256:…`.
        what: String,
        /// The URL.
        url: String,
        /// Bytes in the partial file.
        done: u64,
        /// Bytes expected.
        total: u64,
        /// Why.
        detail: String,
    },
    /// The store cannot be used or written.
    #[error("{0}")]
    Store(SysError),
    /// SIGINT or SIGTERM arrived.
    #[error("pull cancelled by signal {signal}")]
    Cancelled {
        /// The signal number.
        signal: i32,
    },
}

impl PullError {
    /// The stable code shown in diagnostics.
    pub fn code(&self) -> &'static str {
        match self {
            PullError::Reference(_) => "launch::image::reference",
            PullError::Platform(_) => "launch::image::platform",
            PullError::Insecure { .. } => "launch::registry::insecure",
            PullError::Connect { .. } => "launch::registry::connect",
            PullError::Tls { .. } => "launch::registry::tls",
            PullError::Unauthorized { .. } => "launch::registry::unauthorized",
            PullError::NotFound { .. } => "launch::registry::not_found",
            PullError::Status { .. } => "launch::registry::status",
            PullError::DigestMismatch { .. } => "launch::registry::digest_mismatch",
            PullError::Size { .. } => "launch::registry::size",
            PullError::TooLarge { .. } => "launch::registry::too_large",
            PullError::BadDocument { .. } => "launch::registry::bad_document",
            PullError::MediaType { .. } => "launch::registry::media_type",
            PullError::NoPlatform { .. } => "launch::registry::no_platform",
            PullError::Interrupted { .. } => "launch::registry::interrupted",
            PullError::Store(_) => "launch::store",
            PullError::Cancelled { .. } => "launch::cancelled",
        }
    }

    /// The exit code (docs/exit-codes.md): 2 for a bad reference or platform, 128+N when
    /// signal N cancelled the pull, 125 for every other failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            PullError::Reference(_) | PullError::Platform(_) => crate::exit::INVALID,
            PullError::Cancelled { signal } => u8::try_from(128 + signal).unwrap_or(130),
            PullError::Insecure { .. }
            | PullError::Connect { .. }
            | PullError::Tls { .. }
            | PullError::Unauthorized { .. }
            | PullError::NotFound { .. }
            | PullError::Status { .. }
            | PullError::DigestMismatch { .. }
            | PullError::Size { .. }
            | PullError::TooLarge { .. }
            | PullError::BadDocument { .. }
            | PullError::MediaType { .. }
            | PullError::NoPlatform { .. }
            | PullError::Interrupted { .. }
            | PullError::Store(_) => crate::exit::LAUNCHER,
        }
    }

    fn help_text(&self) -> Option<String> {
        Some(match self {
            PullError::Reference(_) => {
                "write [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. `debian:bookworm` or `registry.example:5000/team/app:1`".into()
            }
            PullError::Platform(_) => "e.g. `--platform linux/arm64/v8`".into(),
            PullError::Insecure { host, .. } => format!(
                "use https, or if {host} really serves plain http on a network you trust, set LAUNCH_INSECURE_REGISTRIES={host}"
            ),
            PullError::Connect { .. } => {
                "check the registry's host and port, that it is running, and any proxy or firewall in between".into()
            }
            PullError::Tls { host, .. } => format!(
                "check the registry's certificate (launch trusts the Mozilla roots built into it); if {host} serves plain http, set LAUNCH_INSECURE_REGISTRIES={host}"
            ),
            PullError::Unauthorized {
                registry,
                credentials,
                consulted,
                message,
                ..
            } => {
                let mut h = String::new();
                if !message.is_empty() {
                    h.push_str(&format!("the registry said: {message}\n"));
                }
                match (credentials, consulted) {
                    (_, None) => h.push_str("check the user name and the password"),
                    (Some(c), Some(_)) => h.push_str(&format!(
                        "the credentials from {c} were refused: log in again with `launch login {registry}`"
                    )),
                    (None, Some(_)) => h.push_str(&format!(
                        "this registry wants credentials: log in with `launch login {registry}`"
                    )),
                }
                match consulted.as_deref() {
                    None => {}
                    Some([]) => h.push_str(
                        "\nno credential file exists (see docs/images.md, Authentication)",
                    ),
                    Some(files) => {
                        h.push_str("\ncredential files consulted:");
                        for c in files {
                            h.push_str(&format!("\n  {c}"));
                        }
                    }
                }
                h
            }
            PullError::NotFound { registry, .. } => format!(
                "check the repository name and the tag or digest; a private repository may also answer 404 to a caller without access (`launch login {registry}`)"
            ),
            PullError::Status { status, .. } if *status >= 500 => {
                "the registry failed; try again later".into()
            }
            PullError::Status { .. } => {
                "the registry refused the request; check the reference".into()
            }
            PullError::DigestMismatch { .. } => {
                "the content was discarded (nothing of it is kept in the store); a proxy or the registry's storage altered it: retry, and report it to the registry's operator if it persists".into()
            }
            PullError::Size { .. } => {
                "the content was discarded; retry, and report it to the registry's operator if it persists".into()
            }
            PullError::TooLarge { .. } => {
                "launch refuses manifests over 4 MiB: this is not an image manifest".into()
            }
            PullError::BadDocument { .. } | PullError::MediaType { .. } => {
                "launch pulls OCI images and Docker v2 schema 2 images (and their multi-platform indexes)".into()
            }
            PullError::NoPlatform { .. } => "pick one with `--platform OS/ARCH[/VARIANT]`".into(),
            PullError::Interrupted { .. } => {
                "run the same pull again: it resumes from what was downloaded".into()
            }
            PullError::Store(_) => {
                "the image store is LAUNCH_STORE, else /var/lib/launch (root) or $XDG_DATA_HOME/launch; it must be a directory owned by you and writable by no one else".into()
            }
            PullError::Cancelled { .. } => {
                "run the same pull again: it resumes from what was downloaded".into()
            }
        })
    }
}

impl miette::Diagnostic for PullError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(PullError::code(self)))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help_text()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

/// Render an error for a person: the code, the message and the help, without colour when
/// `color` is false (the form the tests snapshot).
pub fn render(e: &PullError, color: bool) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        // No wrapping: the lines break where the help text breaks them, and a long path or
        // URL does not reflow the rest (the tests snapshot this text).
        .with_width(1000)
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, e).is_err() {
        out = format!("error[{}]: {e}\n", e.code());
    }
    out
}
