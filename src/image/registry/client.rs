//! HTTP to one registry: scheme choice (https, or http for loopback and listed insecure
//! registries), authentication on demand from the `WWW-Authenticate` challenge (Basic, or a
//! Bearer token from the challenge's realm), and redirects that never carry the registry's
//! `Authorization` to another host.

use std::net::IpAddr;
use std::time::Duration;

use ureq::http::{Response, Uri};

use super::error::PullError;
use crate::image::auth::{self, Credentials};

/// Redirects followed before giving up (registries redirect blobs once, to storage).
const MAX_REDIRECTS: usize = 5;

/// A connection to one registry and repository, with what authentication it has learnt.
pub struct Client {
    agent: ureq::Agent,
    /// `https://host:port` or `http://…`.
    base: String,
    /// The registry as the user named it (credential files are keyed by it).
    registry: String,
    /// The authority requests go to (`registry-1.docker.io` for `docker.io`).
    authority: String,
    repository: String,
    insecure: Vec<String>,
    lookup: Option<auth::Lookup>,
    /// Credentials given directly (a login), instead of looked up.
    given: Option<Credentials>,
    /// The `Authorization` value for the registry's own host, once known.
    authorization: Option<String>,
}

/// A response with the URL it finally came from (after redirects).
pub struct Reply {
    /// The response.
    pub response: Response<ureq::Body>,
    /// Where it came from.
    pub url: String,
}

/// Whether `host` (a URL authority's host, possibly `[v6]`) is loopback.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Split `host:port` / `[v6]:port` into its host.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        authority
            .split_once(']')
            .map_or(authority, |(h, _)| &h[1..])
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    }
}

/// The registries `LAUNCH_INSECURE_REGISTRIES` lists (comma or space separated `host[:port]`).
pub fn insecure_from_env() -> Vec<String> {
    std::env::var("LAUNCH_INSECURE_REGISTRIES")
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn plain_http_allowed(authority: &str, insecure: &[String]) -> bool {
    let host = host_of(authority);
    is_loopback(host) || insecure.iter().any(|i| i == authority || i == host)
}

impl Client {
    /// A client for `registry` (as in the reference) and `repository` (empty for a login).
    pub fn new(registry: &str, repository: &str, insecure: Vec<String>) -> Client {
        let authority = crate::image::reference::api_host(registry).to_string();
        let scheme = if plain_http_allowed(&authority, &insecure) {
            "http"
        } else {
            "https"
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // No read timeout: with one, ureq retries reads a signal interrupted, and
            // SIGINT/SIGTERM must stop a stalled download (see cancel.rs).
            .user_agent(concat!("launch/", env!("CARGO_PKG_VERSION")))
            .accept_encoding("identity")
            .build();
        Client {
            agent: config.new_agent(),
            base: format!("{scheme}://{authority}"),
            registry: registry.to_string(),
            authority,
            repository: repository.to_string(),
            insecure,
            lookup: None,
            given: None,
            authorization: None,
        }
    }

    /// Use these credentials instead of looking them up (`launch login`).
    pub fn with_credentials(mut self, c: Credentials) -> Client {
        self.given = Some(c);
        self
    }

    /// `https://host/v2/<repository>/<rest>`.
    pub fn url(&self, rest: &str) -> String {
        if self.repository.is_empty() {
            format!("{}/v2/{rest}", self.base)
        } else {
            format!("{}/v2/{}/{rest}", self.base, self.repository)
        }
    }

    /// The registry as named in the reference.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    fn credentials(&mut self) -> (Option<Credentials>, Option<String>) {
        if let Some(c) = &self.given {
            return (Some(c.clone()), Some("the command line".to_string()));
        }
        let lookup = self
            .lookup
            .get_or_insert_with(|| auth::lookup(&self.registry, &self.repository));
        match &lookup.found {
            Some(f) => (Some(f.credentials.clone()), Some(f.source.clone())),
            None => (None, None),
        }
    }

    fn unauthorized(&mut self, message: String) -> PullError {
        let (_, source) = self.credentials();
        PullError::Unauthorized {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            credentials: source,
            consulted: match (&self.given, &self.lookup) {
                (Some(_), _) => None,
                (None, l) => Some(l.as_ref().map(|l| l.consulted.clone()).unwrap_or_default()),
            },
            message,
        }
    }

    /// GET `url` (on the registry), authenticating when challenged and following redirects.
    /// Any status comes back as a reply except 401 after authenticating, which is an error.
    pub fn get(&mut self, url: &str, headers: &[(&str, String)]) -> Result<Reply, PullError> {
        let mut url = url.to_string();
        let mut authenticated = false;
        let mut redirects = 0;
        loop {
            let uri: Uri = url.parse().map_err(|_| PullError::BadDocument {
                what: "URL".to_string(),
                detail: format!("`{url}` is not a URL"),
            })?;
            let authority = uri
                .authority()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default();
            let on_registry = authority == self.authority;
            if uri.scheme_str() == Some("http") && !plain_http_allowed(&authority, &self.insecure) {
                return Err(PullError::Insecure {
                    host: authority.clone(),
                    url,
                });
            }
            let mut req = self.agent.get(&url);
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            if on_registry {
                if let Some(a) = &self.authorization {
                    req = req.header("Authorization", a.as_str());
                }
            }
            let response = req
                .call()
                .map_err(|e| transport_error(&url, &authority, e))?;
            let status = response.status().as_u16();
            if status == 401 && on_registry && !authenticated {
                authenticated = true;
                let challenge = header(&response, "www-authenticate").unwrap_or_default();
                self.authenticate(&challenge)?;
                continue;
            }
            if status == 401 {
                let message = error_message(response);
                return Err(self.unauthorized(message));
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                redirects += 1;
                let location = header(&response, "location").unwrap_or_default();
                if redirects > MAX_REDIRECTS || location.is_empty() {
                    return Err(PullError::Status {
                        url,
                        status,
                        message: "too many redirects, or one without a Location".to_string(),
                    });
                }
                url = resolve(&uri, &location);
                continue;
            }
            return Ok(Reply { response, url });
        }
    }

    /// Answer a `WWW-Authenticate` challenge: set the `Authorization` for later requests.
    fn authenticate(&mut self, challenge: &str) -> Result<(), PullError> {
        let (scheme, params) = parse_challenge(challenge);
        let (creds, _) = self.credentials();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match creds {
                Some(c) => {
                    self.authorization = Some(format!("Basic {}", c.basic()));
                    Ok(())
                }
                None => Err(self.unauthorized(String::new())),
            },
            "bearer" => {
                let param = |k: &str| {
                    params
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.clone())
                };
                let Some(realm) = param("realm") else {
                    return Err(PullError::BadDocument {
                        what: format!("the challenge of {}", self.registry),
                        detail: format!("a Bearer challenge without a realm: `{challenge}`"),
                    });
                };
                let mut query = Vec::new();
                if let Some(s) = param("service") {
                    query.push(format!("service={}", encode(&s)));
                }
                let scope = param("scope").or_else(|| {
                    (!self.repository.is_empty())
                        .then(|| format!("repository:{}:pull", self.repository))
                });
                if let Some(s) = scope {
                    query.push(format!("scope={}", encode(&s)));
                }
                if let Some(c) = &creds {
                    query.push(format!("account={}", encode(&c.username)));
                }
                let sep = if realm.contains('?') { '&' } else { '?' };
                let token_url = if query.is_empty() {
                    realm.clone()
                } else {
                    format!("{realm}{sep}{}", query.join("&"))
                };
                let token = self.fetch_token(&token_url, creds.as_ref())?;
                self.authorization = Some(format!("Bearer {token}"));
                Ok(())
            }
            _ => Err(PullError::BadDocument {
                what: format!("the challenge of {}", self.registry),
                detail: format!("unsupported authentication scheme: `{challenge}`"),
            }),
        }
    }

    fn fetch_token(&mut self, url: &str, creds: Option<&Credentials>) -> Result<String, PullError> {
        let uri: Uri = url.parse().map_err(|_| PullError::BadDocument {
            what: "the token realm".to_string(),
            detail: format!("`{url}` is not a URL"),
        })?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        if uri.scheme_str() != Some("https") && !plain_http_allowed(&authority, &self.insecure) {
            return Err(PullError::Insecure {
                host: authority,
                url: url.to_string(),
            });
        }
        let mut req = self.agent.get(url);
        if let Some(c) = creds {
            req = req.header("Authorization", format!("Basic {}", c.basic()));
        }
        let mut response = req
            .call()
            .map_err(|e| transport_error(url, &authority, e))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            let message = error_message(response);
            return Err(self.unauthorized(message));
        }
        if status != 200 {
            return Err(PullError::Status {
                url: url.to_string(),
                status,
                message: error_message(response),
            });
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| transport_error(url, &authority, e))?;
        let t: Token = serde_json::from_str(&text).map_err(|e| PullError::BadDocument {
            what: format!("the token from {url}"),
            detail: e.to_string(),
        })?;
        t.token
            .filter(|t| !t.is_empty())
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PullError::BadDocument {
                what: format!("the token from {url}"),
                detail: "neither `token` nor `access_token` is set".to_string(),
            })
    }
}

/// A response header as a string.
pub fn header(r: &Response<ureq::Body>, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The registry's error message (`{"errors":[{"code","message"}]}`), or the start of the body.
pub fn error_message(mut r: Response<ureq::Body>) -> String {
    let text = r
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<E>,
    }
    match serde_json::from_str::<Errors>(&text) {
        Ok(es) => es
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}{}",
                    e.code
                        .as_deref()
                        .map(|c| format!("{c}: "))
                        .unwrap_or_default(),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => text.trim().chars().take(200).collect(),
    }
}

/// A transport failure as the error a person can act on.
fn transport_error(url: &str, authority: &str, e: ureq::Error) -> PullError {
    match e {
        ureq::Error::Tls(d) => PullError::Tls {
            host: authority.to_string(),
            detail: d.to_string(),
        },
        ureq::Error::Rustls(e) => PullError::Tls {
            host: authority.to_string(),
            detail: e.to_string(),
        },
        // rustls' failures reach us as I/O errors of kind InvalidData.
        ureq::Error::Io(io)
            if url.starts_with("https:") && io.kind() == std::io::ErrorKind::InvalidData =>
        {
            let detail = io.to_string();
            let plain = detail.contains("InvalidContentType") || detail.contains("corrupt message");
            PullError::Tls {
                host: authority.to_string(),
                detail: if plain {
                    format!("{detail} (the server does not speak TLS: plain http?)")
                } else {
                    detail
                },
            }
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::Interrupted => {
            match super::cancel::requested() {
                Some(signal) => PullError::Cancelled { signal },
                None => PullError::Connect {
                    url: url.to_string(),
                    detail: io.to_string(),
                },
            }
        }
        ureq::Error::Protocol(p) if url.starts_with("https:") => PullError::Tls {
            host: authority.to_string(),
            detail: format!("{p} (is it plain http?)"),
        },
        other => PullError::Connect {
            url: url.to_string(),
            detail: other.to_string(),
        },
    }
}

/// `Location` relative to the URL it answered.
fn resolve(base: &Uri, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map_or("", |a| a.as_str());
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = base.path();
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{scheme}://{authority}{dir}{location}")
}

/// Percent-encode a query value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Bearer realm="…",service="…",scope="…"` → (`Bearer`, [(realm, …), …]).
pub fn parse_challenge(s: &str) -> (String, Vec<(String, String)>) {
    let s = s.trim();
    let (scheme, rest) = s.split_once(' ').unwrap_or((s, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.push((key.trim().to_string(), value));
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[2].1, "repository:library/busybox:pull");
        let (s, p) = parse_challenge(r#"Basic realm="a \"b\", c""#);
        assert_eq!((s.as_str(), p[0].1.as_str()), ("Basic", r#"a "b", c"#));
        let (_, p) = parse_challenge("Bearer realm=x, error=\"insufficient_scope\",junk");
        assert_eq!(p.len(), 2);
        assert_eq!(parse_challenge("").1.len(), 0);
    }

    #[test]
    fn loopback_and_insecure() {
        for h in ["127.0.0.1:5000", "127.9.9.9", "localhost:1", "[::1]:5000"] {
            assert!(plain_http_allowed(h, &[]), "{h}");
        }
        assert!(!plain_http_allowed("10.0.0.1:5000", &[]));
        assert!(plain_http_allowed(
            "10.0.0.1:5000",
            &["10.0.0.1:5000".into()]
        ));
        assert!(plain_http_allowed("reg.lan:5000", &["reg.lan".into()]));
        assert!(!plain_http_allowed("localhost.evil.com", &[]));
    }

    #[test]
    fn redirects_resolve() {
        let base: Uri = "http://127.0.0.1:5000/v2/a/blobs/x".parse().unwrap();
        assert_eq!(resolve(&base, "/s/1"), "http://127.0.0.1:5000/s/1");
        assert_eq!(
            resolve(&base, "http://127.0.0.2:9/z"),
            "http://127.0.0.2:9/z"
        );
        assert_eq!(resolve(&base, "y"), "http://127.0.0.1:5000/v2/a/blobs/y");
    }
}
