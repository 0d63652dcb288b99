//! `launch pull` and `launch login` against real registries: Debian's `docker-registry` on
//! loopback (plain, htpasswd Basic auth, Bearer tokens from tests/fixtures/registry/
//! token-server.py), images built from the static busybox with umoci and pushed with skopeo,
//! and tests/fixtures/registry/proxy.py in front where a test needs to see or shape the traffic
//! (redirects to another host, a slow link to interrupt a pull).
//!
//! Every test has its own [`Lab`]: a directory, its registries and servers, its store
//! (`LAUNCH_STORE`) and credential files; dropping it kills every process it started, also when
//! the test fails.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use crate::common::repo;
use crate::fixtures::launch_bin;
use crate::fixtures::need_root;

const USER: &str = "tester";
const PASSWORD: &str = "testpass";

/// One test's registries, servers, images and store.
pub(crate) struct Lab {
    dir: PathBuf,
    children: Vec<Child>,
}

pub(crate) enum Auth {
    None,
    Basic,
    /// Bearer tokens from the token server at this realm, verified with this certificate.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sh(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(addr: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server for {addr} exited {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on {addr} after 20 s");
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Lab {
    pub(crate) fn new() -> Lab {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "launch-reg-{:08}-{:04}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        Lab {
            dir,
            children: Vec::new(),
        }
    }

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    fn spawn(&mut self, cmd: &mut Command, log: &str) -> usize {
        let log = std::fs::File::create(self.path(log)).unwrap();
        // The servers die with the test thread that started them, even if it is killed.
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        self.children.push(child);
        self.children.len() - 1
    }

    /// Start a docker-registry on a free loopback port; returns `127.0.0.1:PORT`.
    pub(crate) fn registry(&mut self, name: &str, auth: Auth) -> String {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let auth = match auth {
            Auth::None => String::new(),
            Auth::Basic => {
                let out = sh(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
                std::fs::write(self.path("htpasswd"), out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test-basic\n    path: {}\n",
                    self.path("htpasswd").display()
                )
            }
            Auth::Token { realm, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: test-secret\n{auth}",
            self.path("data").display()
        );
        let file = self.path(&format!("{name}.yml"));
        std::fs::write(&file, config).unwrap();
        let log = format!("{name}.log");
        let i = self.spawn(
            Command::new("docker-registry").arg("serve").arg(&file),
            &log,
        );
        let logp = self.path(&log);
        wait_port(&addr, &mut self.children[i], &logp);
        addr
    }

    /// Start the token server; returns (realm, certificate).
    fn token_server(&mut self, anonymous_pull: bool) -> (String, PathBuf) {
        let (key, cert) = (self.path("token.key"), self.path("token.crt"));
        sh(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=test-issuer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()));
        let port_file = self.path("token.port");
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/fixtures/registry/token-server.py"))
            .arg(&port_file)
            .arg(&key)
            .arg(&cert)
            .args(["test-issuer", USER, PASSWORD]);
        if anonymous_pull {
            cmd.arg("--anonymous-pull");
        }
        let i = self.spawn(&mut cmd, "token.log");
        let port = self.wait_port_file(&port_file, i, "token.log");
        (format!("http://127.0.0.1:{port}/token"), cert)
    }

    fn wait_port_file(&mut self, file: &Path, child: usize, log: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(p) = std::fs::read_to_string(file) {
                let addr = format!("127.0.0.1:{p}");
                let logp = self.path(log);
                wait_port(&addr, &mut self.children[child], &logp);
                return p;
            }
            if let Ok(Some(s)) = self.children[child].try_wait() {
                panic!(
                    "{log}: exited {s}: {}",
                    std::fs::read_to_string(self.path(log)).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                file.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start tests/fixtures/registry/proxy.py in front of `upstream`; returns its address and
    /// request log.
    pub(crate) fn proxy(&mut self, name: &str, upstream: &str, args: &[&str]) -> (String, PathBuf) {
        let port_file = self.path(&format!("{name}.port"));
        let log = self.path(&format!("{name}.requests"));
        let i = self.spawn(
            Command::new("python3")
                .arg(repo().join("tests/fixtures/registry/proxy.py"))
                .arg(&port_file)
                .arg(format!("http://{upstream}"))
                .arg(&log)
                .args(args),
            &format!("{name}.log"),
        );
        let port = self.wait_port_file(&port_file, i, &format!("{name}.log"));
        (format!("127.0.0.1:{port}"), log)
    }

    /// An OCI layout `oci` with tag `1`: the static busybox, `sh` and `/etc/passwd`.
    fn busybox(&self) -> String {
        let root = self.path("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
        let layout = self.path("oci");
        let image = format!("{}:1", layout.display());
        sh(Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout));
        sh(Command::new("umoci").args(["new", "--image", &image]));
        sh(Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(&root)
            .arg("/"));
        sh(Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "PATH=/bin",
            "--architecture",
            "amd64",
            "--os",
            "linux",
        ]));
        image
    }

    /// `base` plus a file at `/name` holding `content`, as tag `tag`.
    fn with_file(&self, base: &str, tag: &str, name: &str, content: &[u8]) -> String {
        let src = self.path(&format!("file-{tag}"));
        std::fs::write(&src, content).unwrap();
        sh(Command::new("umoci")
            .args(["insert", "--image", base, "--tag", tag])
            .arg(&src)
            .arg(format!("/{name}")));
        format!("{}:{tag}", self.path("oci").display())
    }

    /// skopeo copy an image of the layout to `docker://dest`.
    pub(crate) fn push(&self, image: &str, dest: &str, extra: &[&str]) {
        sh(Command::new("skopeo")
            .args(["copy", "-q", "--dest-tls-verify=false"])
            .args(extra)
            .arg(format!("oci:{image}"))
            .arg(format!("docker://{dest}"))
            .env("HOME", self.path("home")));
    }

    /// Run launch with this lab's store and credential files (and none of the machine's).
    fn launch(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.launch_cmd(args, env).output().unwrap()
    }

    pub(crate) fn launch_cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(launch_bin());
        cmd.args(args);
        self.lab_env(&mut cmd, env);
        cmd
    }

    /// This lab's store and credential files (and none of the machine's) for `cmd`.
    pub(crate) fn lab_env(&self, cmd: &mut Command, env: &[(&str, &str)]) {
        cmd.env("LAUNCH_STORE", self.path("store"))
            .env("HOME", self.path("home"))
            .env("LAUNCH_AUTH_FILE", self.path("launch-auth.json"))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("LAUNCH_INSECURE_REGISTRIES")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
    }

    pub(crate) fn blob(&self, digest: &str) -> PathBuf {
        self.path("store/blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Every file in the store's blobs/ must hash to its name.
    fn check_blobs(&self) -> usize {
        let mut n = 0;
        for e in std::fs::read_dir(self.path("store/blobs/sha256")).unwrap() {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            assert_eq!(
                sha256_hex(&bytes),
                e.file_name().to_string_lossy(),
                "a blob in the store does not match its name"
            );
            assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o644);
            n += 1;
        }
        n
    }

    /// A file in the registry's storage holding blob `digest`.
    fn registry_blob(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.path("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// The digest a registry serves for `repo:tag` (what `launch pull` must print).
pub(crate) fn manifest_digest(addr: &str, repo_tag: &str) -> (String, serde_json::Value) {
    let (d, v, _) = manifest_typed(addr, repo_tag);
    (d, v)
}

/// [`manifest_digest`] and the Content-Type the registry serves it with.
fn manifest_typed(addr: &str, repo_tag: &str) -> (String, serde_json::Value, String) {
    let (repo, tag) = repo_tag.split_once(':').unwrap();
    let mut r = ureq::get(format!("http://{addr}/v2/{repo}/manifests/{tag}"))
        .header(
            "Accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .call()
        .unwrap();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    let bytes = r.body_mut().read_to_vec().unwrap();
    (
        format!("sha256:{}", sha256_hex(&bytes)),
        serde_json::from_slice(&bytes).unwrap(),
        content_type,
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "launch failed ({}):\n{}{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Stable text for snapshots: no ports, lab paths or digests.
fn redact(lab: &Lab, s: &str) -> String {
    let s = s.replace(&lab.dir.display().to_string(), "[LAB]");
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("127.0.0.") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let host_len =
            "127.0.0.".len() + tail[8..].find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        out.push_str(&tail[..host_len]);
        rest = &tail[host_len..];
        if let Some(r) = rest.strip_prefix(':') {
            let digits = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            if digits > 0 {
                out.push_str(":[PORT]");
                rest = &r[digits..];
            }
        }
    }
    out.push_str(rest);
    let mut s = out;
    while let Some(i) = s.find("sha256:") {
        let hex = &s[i + 7..];
        let n = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        if n < 12 {
            s.replace_range(i..i + 7, "SHA256:");
            continue;
        }
        s.replace_range(i..i + 7 + n, "[DIGEST]");
    }
    s.replace("SHA256:", "sha256:")
}

/// The diagnostic at the end of stderr, without the progress lines before it.
fn diagnostic(lab: &Lab, o: &Output) -> String {
    let s = redact(lab, &stderr(o));
    match s.find("launch::") {
        Some(i) => s[i..].to_string(),
        None => s,
    }
}

fn ref_record(lab: &Lab, reference: &str) -> serde_json::Value {
    let escaped = launch::image::store::escape_reference(reference);
    let text = std::fs::read_to_string(lab.path("store/refs").join(escaped)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn pull_by_tag_and_by_digest_oci_and_docker_v2() {
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    let image = lab.busybox();
    lab.push(&image, &format!("{reg}/test/busybox:1"), &[]);
    lab.push(
        &image,
        &format!("{reg}/test/busybox:v2s2"),
        &["--format", "v2s2"],
    );

    let (digest, manifest, content_type) = manifest_typed(&reg, "test/busybox:1");
    assert_eq!(content_type, "application/vnd.oci.image.manifest.v1+json");
    let out = lab.launch(&["pull", &format!("{reg}/test/busybox:1")], &[]);
    ok(&out);
    assert_eq!(
        stdout(&out),
        format!(
            "{reg}/test/busybox:1\ndigest: {digest}\nplatform: linux/amd64\nlayers: 1 ({})\n",
            launch::image::registry::progress::bytes(
                manifest["layers"][0]["size"].as_u64().unwrap()
            )
        )
    );
    // manifest, config, layer; all verified, 0644; the store private.
    assert_eq!(lab.check_blobs(), 3);
    assert!(lab.blob(&digest).is_file());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    assert!(lab.blob(layer).is_file());
    assert_eq!(
        std::fs::metadata(lab.path("store"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let rec = ref_record(&lab, &format!("{reg}/test/busybox:1"));
    assert_eq!(rec["digest"], digest.as_str());
    assert_eq!(rec["platform"], "linux/amd64");
    assert!(rec.get("index_digest").is_none());
    // Plain lines when stderr is not a terminal.
    assert!(stderr(&out).contains("downloading"), "{}", stderr(&out));

    // Again: everything is already there.
    let again = lab.launch(&["pull", &format!("{reg}/test/busybox:1")], &[]);
    ok(&again);
    assert!(stderr(&again).contains("already in the store"));

    // By digest.
    let by_digest = format!("{reg}/test/busybox@{digest}");
    let out = lab.launch(&["pull", &by_digest], &[]);
    ok(&out);
    assert!(stdout(&out).contains(&format!("digest: {digest}")));
    assert_eq!(ref_record(&lab, &by_digest)["digest"], digest.as_str());

    // Docker v2 schema 2: another manifest, the same layer (compressed bytes unchanged).
    let (v2digest, _, v2type) = manifest_typed(&reg, "test/busybox:v2s2");
    assert_eq!(
        v2type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let out = lab.launch(&["pull", &format!("{reg}/test/busybox:v2s2")], &[]);
    ok(&out);
    assert!(stdout(&out).contains(&format!("digest: {v2digest}")));
    lab.check_blobs();

    // Not there: 404 explained.
    let out = lab.launch(&["pull", &format!("{reg}/test/busybox:nope")], &[]);
    assert_eq!(out.status.code(), Some(125));
    insta::assert_snapshot!("registry_not_found", diagnostic(&lab, &out));
}

#[test]
fn multi_platform_index_selects_the_platform() {
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    let image = lab.busybox();
    let layout = lab.path("oci").display().to_string();
    sh(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--tag",
        "arm",
        "--architecture",
        "arm64",
        "--os",
        "linux",
    ]));
    lab.push(&image, &format!("{reg}/test/multi:amd64"), &[]);
    lab.push(
        &format!("{layout}:arm"),
        &format!("{reg}/test/multi:arm64"),
        &[],
    );
    let (amd, _) = manifest_digest(&reg, "test/multi:amd64");
    let (arm, _) = manifest_digest(&reg, "test/multi:arm64");
    let size = |d: &str| std::fs::metadata(lab.registry_blob(d)).unwrap().len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": size(&arm),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": size(&amd),
             "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    })
    .to_string();
    let r = ureq::put(format!("http://{reg}/v2/test/multi/manifests/multi"))
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .send(index.as_bytes())
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let index_digest = format!("sha256:{}", sha256_hex(index.as_bytes()));

    let name = format!("{reg}/test/multi:multi");
    let out = lab.launch(&["pull", &name], &[]);
    ok(&out);
    assert!(
        stdout(&out).contains(&format!("digest: {amd}")),
        "{}",
        stdout(&out)
    );
    let rec = ref_record(&lab, &name);
    assert_eq!(rec["digest"], amd.as_str());
    assert_eq!(rec["index_digest"], index_digest.as_str());
    assert_eq!(rec["platform"], "linux/amd64");
    assert!(lab.blob(&index_digest).is_file());

    let out = lab.launch(&["pull", "--platform", "linux/arm64", &name], &[]);
    ok(&out);
    assert!(stdout(&out).contains(&format!("digest: {arm}")));
    assert!(stdout(&out).contains("platform: linux/arm64"));
    assert_eq!(ref_record(&lab, &name)["digest"], arm.as_str());
    lab.check_blobs();

    let out = lab.launch(&["pull", "--platform", "linux/s390x", &name], &[]);
    assert_eq!(out.status.code(), Some(125));
    insta::assert_snapshot!("registry_no_platform", diagnostic(&lab, &out));
    let out = lab.launch(&["pull", "--platform", "linux", &name], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = lab.launch(&["pull", "Not/A:Reference:"], &[]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("registry_bad_reference", stderr(&out));
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_kept() {
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    let image = lab.busybox();
    let unique = format!("tamper {}\n", lab.dir.display()).repeat(1000);
    let tampered = lab.with_file(&image, "t", "unique.txt", unique.as_bytes());
    lab.push(&tampered, &format!("{reg}/test/tamper:1"), &[]);
    let (_, manifest) = manifest_digest(&reg, "test/tamper:1");
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // Same size, other bytes: the registry serves it as if nothing happened.
    let file = lab.registry_blob(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let out = lab.launch(&["pull", &format!("{reg}/test/tamper:1")], &[]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&layer), "the expected digest is named: {err}");
    assert!(
        err.contains(&format!("sha256:{}", sha256_hex(&bytes))),
        "the actual digest is named: {err}"
    );
    insta::assert_snapshot!("registry_digest_mismatch", diagnostic(&lab, &out));
    assert!(!lab.blob(&layer).exists(), "a bad blob reached blobs/");
    let partial = lab.path("store/ingest").join(format!(
        "sha256-{}.partial",
        layer.trim_start_matches("sha256:")
    ));
    assert!(!partial.exists(), "bad bytes were kept for a resume");
    lab.check_blobs();
    assert!(
        std::fs::read_dir(lab.path("store/refs"))
            .unwrap()
            .next()
            .is_none(),
        "a ref was written for a failed pull"
    );
}

#[test]
fn basic_auth_from_files_and_login() {
    let mut lab = Lab::new();
    let reg = lab.registry("basic", Auth::Basic);
    let image = lab.busybox();
    lab.push(
        &image,
        &format!("{reg}/test/private:1"),
        &["--dest-creds", &format!("{USER}:{PASSWORD}")],
    );
    let name = format!("{reg}/test/private:1");

    // No credentials anywhere.
    let out = lab.launch(&["pull", &name], &[]);
    assert_eq!(out.status.code(), Some(125));
    insta::assert_snapshot!("registry_basic_no_credentials", diagnostic(&lab, &out));

    // A wrong password in a containers auth.json.
    let auth = |u: &str, p: &str| {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        serde_json::json!({"auths": {&reg: {"auth": b}}}).to_string()
    };
    let wrong = lab.path("wrong-auth.json");
    std::fs::write(&wrong, auth(USER, "nope")).unwrap();
    let out = lab.launch(
        &["pull", &name],
        &[("REGISTRY_AUTH_FILE", wrong.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(125));
    insta::assert_snapshot!("registry_basic_wrong_password", diagnostic(&lab, &out));

    // The right one in docker's config.json.
    std::fs::create_dir_all(lab.path("docker")).unwrap();
    std::fs::write(lab.path("docker/config.json"), auth(USER, PASSWORD)).unwrap();
    ok(&lab.launch(&["pull", &name], &[]));
    std::fs::remove_file(lab.path("docker/config.json")).unwrap();
    std::fs::remove_dir_all(lab.path("store")).unwrap();

    // `launch login`: a wrong password is refused and stores nothing.
    let login = |password: &str| {
        let mut child = lab
            .launch_cmd(&["login", &reg, "-u", USER, "--password-stdin"], &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = login("nope");
    assert_eq!(out.status.code(), Some(125));
    assert!(!lab.path("launch-auth.json").exists());
    insta::assert_snapshot!("registry_login_refused", diagnostic(&lab, &out));
    let out = login(PASSWORD);
    ok(&out);
    let md = std::fs::metadata(lab.path("launch-auth.json")).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    let out = lab.launch(&["pull", &name], &[]);
    ok(&out);
    lab.check_blobs();
}

#[test]
fn bearer_tokens_anonymous_and_with_credentials() {
    let mut lab = Lab::new();
    let (realm, cert) = lab.token_server(false);
    let reg = lab.registry("token", Auth::Token { realm, cert });
    let image = lab.busybox();
    lab.push(
        &image,
        &format!("{reg}/test/tok:1"),
        &["--dest-creds", &format!("{USER}:{PASSWORD}")],
    );
    let name = format!("{reg}/test/tok:1");
    // The token server gives anonymous callers nothing: the registry refuses the token.
    let out = lab.launch(&["pull", &name], &[]);
    assert_eq!(out.status.code(), Some(125));
    insta::assert_snapshot!("registry_bearer_no_credentials", diagnostic(&lab, &out));
    // Wrong credentials: the token server refuses them.
    let out = lab
        .launch_cmd(&["login", &reg, "-u", USER, "-p", "nope"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    let out = lab
        .launch_cmd(&["login", &reg, "-u", USER, "-p", PASSWORD], &[])
        .output()
        .unwrap();
    ok(&out);
    let out = lab.launch(&["pull", &name], &[]);
    ok(&out);
    lab.check_blobs();
}

#[test]
fn bearer_anonymous_pull() {
    let mut lab = Lab::new();
    let (realm, cert) = lab.token_server(true);
    let reg = lab.registry("token", Auth::Token { realm, cert });
    let image = lab.busybox();
    lab.push(
        &image,
        &format!("{reg}/test/pub:1"),
        &["--dest-creds", &format!("{USER}:{PASSWORD}")],
    );
    let out = lab.launch(&["pull", &format!("{reg}/test/pub:1")], &[]);
    ok(&out);
    assert_eq!(lab.check_blobs(), 3);
}

#[test]
fn redirected_blobs_get_no_credentials() {
    let mut lab = Lab::new();
    let reg = lab.registry("basic", Auth::Basic);
    let image = lab.busybox();
    lab.push(
        &image,
        &format!("{reg}/test/redir:1"),
        &["--dest-creds", &format!("{USER}:{PASSWORD}")],
    );
    // The front redirects blob GETs to another loopback host, 127.0.0.2.
    let (front, log) = lab.proxy("front", &reg, &["--redirect-blobs", "127.0.0.2"]);
    let auth = {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        serde_json::json!({"auths": {&front: {"auth": b}}}).to_string()
    };
    std::fs::write(lab.path("auth.json"), auth).unwrap();
    let path = lab.path("auth.json");
    let out = lab.launch(
        &["pull", &format!("{front}/test/redir:1")],
        &[("REGISTRY_AUTH_FILE", path.to_str().unwrap())],
    );
    ok(&out);
    assert_eq!(lab.check_blobs(), 3);
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let redirected: Vec<_> = requests.iter().filter(|r| r["status"] == 307).collect();
    let storage: Vec<_> = requests
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/storage/"))
        .collect();
    assert_eq!(
        redirected.len(),
        2,
        "config and layer redirected: {requests:?}"
    );
    assert!(redirected.iter().all(|r| r["authorization"] == true));
    assert_eq!(storage.len(), 2, "{requests:?}");
    assert!(
        storage.iter().all(|r| r["authorization"] == false),
        "the registry's credentials went to another host: {requests:?}"
    );
}

#[test]
fn plain_http_to_a_non_loopback_host_is_refused() {
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    let image = lab.busybox();
    lab.push(&image, &format!("{reg}/test/http:1"), &[]);
    // 192.0.2.1 is TEST-NET-1: launch must refuse before connecting.
    let (front, log) = lab.proxy("front", &reg, &["--redirect-to", "http://192.0.2.1/blob"]);
    let out = lab.launch(&["pull", &format!("{front}/test/http:1")], &[]);
    assert_eq!(out.status.code(), Some(125));
    insta::assert_snapshot!("registry_insecure_redirect", diagnostic(&lab, &out));
    assert!(std::fs::read_to_string(log).unwrap().contains("307"));
}

#[test]
fn a_pull_cancelled_halfway_resumes_with_range() {
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    let image = lab.busybox();
    // 64 MiB that gzip cannot shrink.
    let mut big = vec![0u8; 64 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let big_image = lab.with_file(&image, "big", "big.bin", &big);
    drop(big);
    lab.push(&big_image, &format!("{reg}/test/big:1"), &[]);
    let (_, manifest) = manifest_digest(&reg, "test/big:1");
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let size = manifest["layers"][1]["size"].as_u64().unwrap();
    // 16 MiB/s: the big layer takes about 4 s.
    let (front, log) = lab.proxy("slow", &reg, &["--rate", "16777216"]);
    let name = format!("{front}/test/big:1");
    let partial = lab.path("store/ingest").join(format!(
        "sha256-{}.partial",
        layer.trim_start_matches("sha256:")
    ));

    let mut child = lab
        .launch_cmd(&["pull", &name], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 8 << 20 {
        assert!(
            Instant::now() < deadline,
            "the big layer never got to 8 MiB"
        );
        assert!(child.try_wait().unwrap().is_none(), "the pull ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    insta::assert_snapshot!("registry_cancelled", diagnostic(&lab, &out));
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(
        kept >= 8 << 20 && kept < size,
        "partial has {kept} of {size}"
    );
    assert!(!lab.blob(&layer).exists());
    let ingest: Vec<String> = std::fs::read_dir(lab.path("store/ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(ingest.len(), 1, "only the partial is kept: {ingest:?}");

    std::fs::write(&log, "").unwrap();
    // The resumed pull, watching its peak RSS: blobs stream to disk, never into memory.
    let child = lab
        .launch_cmd(&["pull", &name], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let watcher = std::thread::spawn(move || {
        let mut peak_kib = 0u64;
        while let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        peak_kib
    });
    let out = child.wait_with_output().unwrap();
    let peak_kib = watcher.join().unwrap();
    ok(&out);
    assert!(
        peak_kib > 0 && peak_kib < 32 * 1024,
        "peak RSS {peak_kib} KiB while pulling a 64 MiB layer"
    );
    assert!(stderr(&out).contains("resuming at"), "{}", stderr(&out));
    assert!(lab.blob(&layer).is_file());
    assert!(!partial.exists());
    lab.check_blobs();
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // (The killed run's request may be logged late, when the proxy notices the closed
    // connection: the resumed request is the one with a Range.)
    let resumed = requests
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with(&layer) && !r["range"].is_null())
        .unwrap_or_else(|| panic!("the layer was not asked for with a Range: {requests:?}"));
    let range = resumed["range"].as_str().unwrap_or_default();
    let from: u64 = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Range in {resumed}"));
    assert!(from >= 8 << 20, "resumed from {from}");
    assert_eq!(resumed["status"], 206);
    assert_eq!(resumed["sent"].as_u64().unwrap(), size - from);
}

#[test]
fn connection_refused_is_explained() {
    let lab = Lab::new();
    let port = free_port();
    let out = lab.launch(&["pull", &format!("127.0.0.1:{port}/test/x:1")], &[]);
    assert_eq!(out.status.code(), Some(125));
    let err = diagnostic(&lab, &out);
    assert!(err.contains("launch::registry::connect"), "{err}");
    assert!(err.contains("help:"), "{err}");
}

#[test]
fn concurrent_pulls_of_one_image_share_the_store() {
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    let image = lab.busybox();
    lab.push(&image, &format!("{reg}/test/twice:1"), &[]);
    let name = format!("{reg}/test/twice:1");
    let children: Vec<Child> = (0..3)
        .map(|_| {
            lab.launch_cmd(&["pull", &name], &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let (digest, _) = manifest_digest(&reg, "test/twice:1");
    for out in &outs {
        ok(out);
        assert!(stdout(out).contains(&format!("digest: {digest}")));
    }
    assert_eq!(lab.check_blobs(), 3);
    let partials = std::fs::read_dir(lab.path("store/ingest"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".lock")
        })
        .count();
    assert_eq!(partials, 0, "temporary files left in ingest/");
}

#[test]
fn a_store_others_can_write_or_own_is_refused() {
    let lab = Lab::new();
    let store = lab.path("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Refused before any connection: the port has no registry behind it.
    let name = format!("127.0.0.1:{}/test/x:1", free_port());
    let out = lab.launch(&["pull", &name], &[]);
    assert_eq!(out.status.code(), Some(125));
    insta::assert_snapshot!("registry_store_writable_by_others", diagnostic(&lab, &out));
    if nix::unistd::geteuid().is_root() {
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&store, Some(65534), Some(65534)).unwrap();
        let out = lab.launch(&["pull", &name], &[]);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            stderr(&out).contains("is owned by uid 65534"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!store.join("blobs").exists());
}

#[test]
fn progress_on_a_terminal_is_one_redrawn_line_per_blob() {
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    let image = lab.busybox();
    lab.push(&image, &format!("{reg}/test/tty:1"), &[]);
    // script(1) gives launch a terminal for stdout and stderr alike.
    let line = format!("{} pull {reg}/test/tty:1", launch_bin());
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    lab.lab_env(&mut cmd, &[]);
    let out = cmd.output().unwrap();
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("\r\x1b[2K"), "no redrawn line: {text:?}");
    assert!(text.contains("B/s"), "no rate: {text:?}");
    assert!(
        !text.contains("downloading"),
        "plain lines on a terminal: {text:?}"
    );
}

/// `[rootfs] image = ...`: pulled before validation (by `launch-registry`), run on an overlay of
/// its layers; `pull = "never"` then runs the store's copy without asking the registry, and
/// fails clearly for an image the store lacks.
#[test]
fn a_manifest_runs_a_pulled_image() {
    need_root();
    let mut lab = Lab::new();
    let reg = lab.registry("plain", Auth::None);
    // The store tests' busybox image (umoci unpack and repack): the lab's own is made with
    // `umoci insert`, whose layer ends without tar's end-of-archive blocks (GNU tar refuses it
    // too), which pulls do not mind but an unpack does.
    let scratch = crate::store::Scratch::new("regimg");
    let (oci, _) = crate::store::busybox_images(&scratch);
    lab.push(
        &format!("{}:latest", oci.display()),
        &format!("{reg}/test/busybox:1"),
        &[],
    );
    let state = lab.path("state");
    std::fs::create_dir_all(&state).unwrap();
    let dir = lab.path("");
    let manifest = |name: &str, extra: &str| {
        let m = dir.join(format!("{name}.toml"));
        std::fs::write(
            &m,
            format!(
                "name = \"{name}\"\n[rootfs]\nimage = \"{reg}/test/busybox:1\"\n{extra}\n\
                 [process]\ncommand = [\"/bin/sh\", \"-c\", \"test -d /etc/added && echo added; \
                 echo hi > /tmp-file; read x < /tmp-file; echo wrote-$x\"]\n"
            ),
        )
        .unwrap();
        m
    };
    let run = |lab: &Lab, m: &Path| {
        let mut cmd = lab.launch_cmd(&["run", m.to_str().unwrap()], &[]);
        cmd.env("LAUNCH_STATE_ROOT", &state);
        cmd.output().unwrap()
    };
    let out = run(&lab, &manifest("imgpull", ""));
    ok(&out);
    assert_eq!(stdout(&out), "added\nwrote-hi\n");
    // The store's copy, without the registry.
    for c in &mut lab.children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let out = run(&lab, &manifest("imgnever", "pull = \"never\""));
    ok(&out);
    assert_eq!(stdout(&out), "added\nwrote-hi\n");
    let m = lab.path("imgmissing.toml");
    std::fs::write(
        &m,
        format!(
            "name = \"imgmissing\"\n[rootfs]\nimage = \"{reg}/test/other:1\"\npull = \"never\"\n\
             [process]\ncommand = [\"/bin/sh\"]\n"
        ),
    )
    .unwrap();
    let out = run(&lab, &m);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not in the store"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "state left behind"
    );
}
