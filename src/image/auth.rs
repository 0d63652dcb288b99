//! Registry credentials: where they are looked up, and where `launch login` keeps them.
//!
//! Looked up, first match wins (the files other tools write, so `podman login` and
//! `docker login` work for launch too):
//! 1. `$REGISTRY_AUTH_FILE` (containers/image's override),
//! 2. launch's own file ([`launch_auth_file`]): `$LAUNCH_AUTH_FILE`, else `/etc/launch/auth.json`
//!    for root and `$XDG_CONFIG_HOME/launch/auth.json` (`~/.config/launch/auth.json`) otherwise,
//! 3. `$XDG_RUNTIME_DIR/containers/auth.json` (podman's default),
//! 4. `~/.config/containers/auth.json`,
//! 5. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//!
//! All have docker's shape: `{"auths": {"<registry>": {"auth": base64("user:password")}}}`.
//! Keys may be `host`, `host/namespace/repo` (the longest prefix wins), or a URL
//! (`https://index.docker.io/v1/`). Credential helpers (`credsStore`) are not run.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::SysError;

/// A user name and password (or token, for registries that take one as a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <password>)", self.username)
    }
}

impl Credentials {
    /// `user:password` in base64, for a Basic `Authorization` header and auth files.
    pub fn basic(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }
}

/// Credentials and the file they came from (named in auth-failure messages).
#[derive(Debug, Clone)]
pub struct Found {
    /// The credentials.
    pub credentials: Credentials,
    /// The file and key they were read from: `/root/.docker/config.json (127.0.0.1:5000)`.
    pub source: String,
}

/// The result of a lookup: the credentials if any, and what was looked at (for the help text of
/// an authentication failure).
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The first match.
    pub found: Option<Found>,
    /// Every file consulted, with why it did not give credentials when it did not.
    pub consulted: Vec<String>,
}

/// The files consulted, in order.
pub fn files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut v = Vec::new();
    v.extend(env("REGISTRY_AUTH_FILE"));
    v.extend(launch_auth_file());
    v.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    v.extend(
        home.as_ref()
            .map(|h| h.join(".config/containers/auth.json")),
    );
    match env("DOCKER_CONFIG") {
        Some(d) => v.push(d.join("config.json")),
        None => v.extend(home.as_ref().map(|h| h.join(".docker/config.json"))),
    }
    v
}

/// Where `launch login` stores credentials: `$LAUNCH_AUTH_FILE`; for root
/// `/etc/launch/auth.json`; otherwise `$XDG_CONFIG_HOME/launch/auth.json` or
/// `~/.config/launch/auth.json`. `None` without any of these variables for a non-root user.
pub fn launch_auth_file() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(f) = env("LAUNCH_AUTH_FILE") {
        return Some(f);
    }
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/etc/launch/auth.json"));
    }
    env("XDG_CONFIG_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".config")))
        .map(|d| d.join("launch/auth.json"))
}

/// The keys a file may use for `registry` and `repository`, most specific first.
fn keys(registry: &str, repository: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut path = format!("{registry}/{repository}");
    loop {
        v.push(path.clone());
        match path.rfind('/') {
            Some(i) if i > registry.len() => path.truncate(i),
            _ => break,
        }
    }
    v.push(registry.to_string());
    v.push(format!("https://{registry}"));
    v.push(format!("http://{registry}"));
    v.push(format!("https://{registry}/v1/"));
    v.push(format!("https://{registry}/v2/"));
    if registry == crate::image::reference::DOCKER_HUB {
        v.push("https://index.docker.io/v1/".to_string());
        v.push("index.docker.io".to_string());
        v.push("registry-1.docker.io".to_string());
    }
    v
}

/// Look up credentials for `registry` (as in the reference: `docker.io`, `host:port`).
pub fn lookup(registry: &str, repository: &str) -> Lookup {
    let mut out = Lookup::default();
    for file in files() {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.consulted
                    .push(format!("{} (unreadable: {e})", file.display()));
                continue;
            }
        };
        match find_in(&text, &keys(registry, repository)) {
            Ok(Some((key, credentials))) => {
                out.found = Some(Found {
                    credentials,
                    source: format!("{} ({key})", file.display()),
                });
                out.consulted
                    .push(format!("{} (entry {key})", file.display()));
                return out;
            }
            Ok(None) => out
                .consulted
                .push(format!("{} (no entry for {registry})", file.display())),
            Err(why) => out
                .consulted
                .push(format!("{} (ignored: {why})", file.display())),
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The first of `keys` with credentials in an auth file's text.
fn find_in(text: &str, keys: &[String]) -> Result<Option<(String, Credentials)>, String> {
    let file: AuthFile = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    for k in keys {
        let Some(entry) = file.auths.get(k) else {
            continue;
        };
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some((
                k.clone(),
                Credentials {
                    username: u.clone(),
                    password: p.clone(),
                },
            )));
        }
        let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("`auths.{k}.auth` is not base64: {e}"))?;
        let text = String::from_utf8(raw).map_err(|_| format!("`auths.{k}.auth` is not UTF-8"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| format!("`auths.{k}.auth` is not base64 of `user:password`"))?;
        return Ok(Some((
            k.clone(),
            Credentials {
                username: u.to_string(),
                password: p.to_string(),
            },
        )));
    }
    Ok(None)
}

/// Store credentials for `registry` in `file` (launch's own auth file), keeping its other
/// entries: written to a temporary file (0600) in the same directory, then renamed over it; the
/// directory is created 0700.
pub fn store(file: &Path, registry: &str, credentials: &Credentials) -> Result<(), SysError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| SysError::io("mkdir -p", Some(dir.to_path_buf()), &e))?;
    let mut doc: serde_json::Value = match std::fs::read_to_string(file) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| {
            SysError::other(
                "parse auth file",
                Some(file.to_path_buf()),
                format!("not JSON ({e}); fix or remove it"),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(SysError::io("read", Some(file.to_path_buf()), &e)),
    };
    let Some(obj) = doc.as_object_mut() else {
        return Err(SysError::other(
            "parse auth file",
            Some(file.to_path_buf()),
            "not a JSON object; fix or remove it",
        ));
    };
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    if let Some(a) = auths.as_object_mut() {
        a.insert(
            registry.to_string(),
            serde_json::json!({ "auth": credentials.basic() }),
        );
    }
    let text = serde_json::to_string_pretty(&doc).map_err(|e| {
        SysError::other(
            "serialize auth file",
            Some(file.to_path_buf()),
            e.to_string(),
        )
    })? + "\n";
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name()
            .map_or("auth.json".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| SysError::io("open", Some(tmp.clone()), &e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| SysError::io("write", Some(tmp.clone()), &e))?;
    std::fs::rename(&tmp, file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        SysError::io("rename", Some(file.to_path_buf()), &e).args(tmp.display().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_most_specific_key() {
        let text = r#"{"auths":{
            "127.0.0.1:5000": {"auth": "dTpw"},
            "127.0.0.1:5000/team": {"auth": "dGVhbTpzZWNyZXQ="},
            "https://index.docker.io/v1/": {"auth": "aHViOmh1Yg=="}
        }}"#;
        let (k, c) = find_in(text, &keys("127.0.0.1:5000", "team/app"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (k.as_str(), c.username.as_str(), c.password.as_str()),
            ("127.0.0.1:5000/team", "team", "secret")
        );
        let (_, c) = find_in(text, &keys("127.0.0.1:5000", "other/app"))
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "u");
        let (_, c) = find_in(text, &keys("docker.io", "library/busybox"))
            .unwrap()
            .unwrap();
        assert_eq!(c.password, "hub");
        assert!(find_in(text, &keys("example.com", "a")).unwrap().is_none());
        assert!(find_in(r#"{"auths":{"h":{"auth":"!!"}}}"#, &keys("h", "a")).is_err());
        assert!(find_in("[", &keys("h", "a")).is_err());
    }
}
