//! Image references as users write them: `busybox`, `debian:bookworm`,
//! `registry.example:5000/team/app@sha256:…`, normalised the way Docker and containers/image do
//! (a first component is a registry only if it has a `.` or a `:`, or is `localhost`; Docker
//! Hub's `docker.io` and its `library/` namespace are the defaults).

use std::fmt;

/// Docker Hub's name in references and credential files.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API actually answers.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry as written (`docker.io`, `127.0.0.1:5000`, `[::1]:5000`).
    pub registry: String,
    /// The repository path (`library/busybox`, `team/app`).
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// A pinned manifest digest (`@sha256:…`); it wins over the tag.
    pub digest: Option<Digest>,
}

/// A `sha256:<64 lowercase hex>` content digest (the only algorithm registries use today).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

/// Why a reference or digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is empty.
    #[error("the image reference is empty")]
    Empty,
    /// A repository path component is not `[a-z0-9]+([._-]|__)…`.
    #[error(
        "`{reference}`: repository component `{component}` is invalid (lowercase letters, digits and single `.`, `_`, `-` between them)"
    )]
    Component {
        /// The whole reference.
        reference: String,
        /// The offending component.
        component: String,
    },
    /// The tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "`{reference}`: tag `{tag}` is invalid (letters, digits, `_`, `.`, `-`; at most 128, not starting with `.` or `-`)"
    )]
    Tag {
        /// The whole reference.
        reference: String,
        /// The offending tag.
        tag: String,
    },
    /// The digest is not `sha256:` and 64 lowercase hex digits.
    #[error(
        "`{digest}` is not a digest: launch accepts `sha256:` followed by 64 lowercase hex digits"
    )]
    Digest {
        /// The offending digest.
        digest: String,
    },
    /// The registry part is not a host or host:port.
    #[error("`{reference}`: registry `{registry}` is not a host name or host:port")]
    Registry {
        /// The whole reference.
        reference: String,
        /// The offending registry.
        registry: String,
    },
}

impl Digest {
    /// Parse `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Digest, ReferenceError> {
        let bad = || ReferenceError::Digest {
            digest: s.to_string(),
        };
        let hex = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::from_hasher(sha2::Sha256::new_with_prefix(bytes))
    }

    /// The digest a finished hasher computed.
    pub fn from_hasher(h: sha2::Sha256) -> Digest {
        use sha2::Digest as _;
        let sum = h.finalize();
        let mut hex = String::with_capacity(64);
        for b in sum.iter() {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Digest { hex }
    }

    /// The 64 hex digits (the blob's file name in the store).
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Reference {
    /// Parse and normalise a reference.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A tag is after the last `:` that comes after the last `/` (a port is before it).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag {
                    reference: s.to_string(),
                    tag: t.to_string(),
                });
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        if !valid_registry(&registry) {
            return Err(ReferenceError::Registry {
                reference: s.to_string(),
                registry,
            });
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        for c in repository.split('/') {
            if !valid_component(c) {
                return Err(ReferenceError::Component {
                    reference: s.to_string(),
                    component: c.to_string(),
                });
            }
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host (and port) the registry API answers on: Docker Hub's is not `docker.io`.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What the manifest is fetched by: the digest if pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The reference as a file name under `ROOT/refs/`: the store's one escape
    /// ([`crate::image::store::escape_reference`]), so `launch images` and `pull = "never"`
    /// find what a pull recorded.
    pub fn escaped(&self) -> String {
        crate::image::store::escape_reference(&self.to_string())
    }
}

/// The API host of a registry name (`docker.io` → `registry-1.docker.io`).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB || registry == "index.docker.io" {
        DOCKER_HUB_API
    } else {
        registry
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+` separated by `.`, `_`, `__` or any number of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `host`, `host:port`, `[v6]:port`: letters, digits, `.`, `-`, and a numeric port.
fn valid_registry(r: &str) -> bool {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').map(Some).unwrap_or(None)),
            None => return false,
        }
    } else {
        match r.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(p("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(
            p("debian:bookworm").to_string(),
            "docker.io/library/debian:bookworm"
        );
        assert_eq!(p("user/app").to_string(), "docker.io/user/app:latest");
        assert_eq!(
            p("index.docker.io/busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(p("busybox").api_host(), "registry-1.docker.io");
    }

    #[test]
    fn registries_ports_digests() {
        let d = "sha256:".to_string() + &"ab".repeat(32);
        let r = p(&format!("127.0.0.1:5000/test/busybox@{d}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "test/busybox");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), d);
        let r = p(&format!("localhost/x:1@{d}"));
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("localhost", Some("1"))
        );
        assert_eq!(p("[::1]:5000/a:b").registry, "[::1]:5000");
        assert_eq!(
            p("registry.example:5000/team/app:v1.2").api_host(),
            "registry.example:5000"
        );
        assert_eq!(
            p("127.0.0.1:5000/a/b:c").escaped(),
            "127.0.0.1:5000%2Fa%2Fb:c"
        );
    }

    proptest::proptest! {
        /// Any text: a reference or an error, never a panic; what parses prints back to
        /// something that parses to the same.
        #[test]
        fn any_text_parses_or_is_refused(s in "\\PC{0,80}|[a-z0-9.:/@_-]{0,80}") {
            if let Ok(r) = Reference::parse(&s) {
                proptest::prop_assert_eq!(Reference::parse(&r.to_string()), Ok(r));
            }
            let _ = crate::image::registry::client::parse_challenge(&s);
            let _ = crate::image::registry::manifest::parse_platform(&s);
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for s in [
            "",
            "UPPER",
            "a:",
            "a:-x",
            "a@sha256:zz",
            "a@md5:00",
            "x..y",
            "a/",
            "/a",
            "a//b",
            "h:99999/a",
            ":",
            "@",
            "a:b:c",
            "é",
        ] {
            assert!(Reference::parse(s).is_err(), "{s:?} was accepted");
        }
    }
}
