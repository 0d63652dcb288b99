//! Helpers for the tests that run real containers (`run.rs`, `rollback.rs`): the root check,
//! scratch directories with their own state root, the rootfs fixtures built once per test run,
//! host snapshots (mount points, processes by marker, cgroup children), running the `launch`
//! binary with a timeout, and a tar writer for hostile archives.
//!
//! Every test gets a [`Sandbox`]: a fresh directory under the system temp dir holding its
//! manifests and, in `state/`, the `LAUNCH_STATE_ROOT` of every `launch` it starts, so tests
//! running in parallel threads never see each other's instances.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tar::{EntryType, Header};

use crate::common::repo;

/// How long one `launch` may take before the test kills it and fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test: cargo's build of this crate, or `LAUNCH_BIN` (CI runs the
/// real-kernel tests a second time against the release build from scripts/release.sh; the VM
/// harness points it at the same debug build).
pub fn launch_bin() -> String {
    std::env::var("LAUNCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_launch").to_string())
}

/// Fail (never skip) unless running as root: these tests create namespaces, cgroups and mounts.
pub fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs real containers and needs root (namespaces, cgroups, mounts): \
         run `cargo test` as root, as CI does"
    );
}

/// A name no other test (thread or process) uses: `TAG-PID-N-NANOS`.
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{tag}-{}-{n}-{nanos:x}", std::process::id())
}

/// A string as a TOML basic string (JSON's escapes are a subset of TOML's).
pub fn q(s: impl AsRef<str>) -> String {
    serde_json::to_string(s.as_ref()).unwrap()
}

/// A path as a TOML basic string.
pub fn qp(p: &Path) -> String {
    q(p.to_str().expect("test paths are UTF-8"))
}

// --- running launch ---------------------------------------------------------------------------

/// A finished `launch`: status and both streams, printed in full by assertion messages.
pub struct Out {
    /// The command line, for messages.
    pub what: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Standard output (the container's, passed through).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// The exit code (None: killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Assert the exit code.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Out {
        assert_eq!(self.code(), Some(code), "unexpected exit status\n{self}");
        self
    }

    /// Assert exit 0 and the exact standard output.
    #[track_caller]
    pub fn expect_stdout(&self, stdout: &str) -> &Out {
        self.expect_code(0);
        assert_eq!(self.stdout, stdout, "unexpected standard output\n{self}");
        self
    }

    /// Assert `launch` failed itself (125) and said so on stderr, mentioning every `needle`.
    #[track_caller]
    pub fn expect_launch_error(&self, needles: &[&str]) -> &Out {
        self.expect_code(125);
        assert!(
            self.stderr.contains("launch: error:"),
            "no `launch: error:` on stderr\n{self}"
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr does not mention {n:?}\n{self}"
            );
        }
        self
    }

    /// stderr with a diagnostic's wrapping undone: each line break, with the frame's `│` and the
    /// indentation after it, becomes one space. miette wraps a long message where the width
    /// ends, which depends on the paths in it (a test's temporary directory).
    pub fn stderr_unwrapped(&self) -> String {
        self.stderr
            .lines()
            .map(|l| l.trim_start().trim_start_matches('│').trim())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Standard output, line by line, whitespace-normalized.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(normalize).collect()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "`{}` ended with {}", self.what, self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Runs of spaces and tabs become one space; ends trimmed.
pub fn normalize(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Wait for a child we started, killing it (by its pid, nothing else) after `limit`.
pub fn wait_timeout(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {limit:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Collect a started child's output (stdout and stderr must be piped), with [`TIMEOUT`].
pub fn finish(mut child: Child, what: String) -> Out {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_timeout(&mut child, TIMEOUT, &what);
    // A leftover container holding the pipes open must not hang the test: give readers a moment.
    let (stdout, stderr) = (join_bytes(t_out), join_bytes(t_err));
    Out {
        what,
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn join_bytes(t: std::thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    let start = Instant::now();
    while !t.is_finished() {
        if start.elapsed() > Duration::from_secs(10) {
            return b"<still open 10 s after launch exited: something kept the pipe>".to_vec();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    t.join().unwrap()
}

/// A `launch` still running, its stdin and stdout piped: the test reads the container's lines
/// as they come (to look at the host while it runs), then lets it finish.
pub struct Running {
    child: Child,
    what: String,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    seen: Vec<String>,
}

impl Running {
    /// Start `launch ARGS` from a sandbox, stdin piped.
    pub fn start(sb: &Sandbox, args: &[&str]) -> Running {
        let mut cmd = sb.command(args);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        Running {
            stdin: child.stdin.take(),
            child,
            what: format!("launch {}", args.join(" ")),
            lines,
            stderr: Some(stderr),
            seen: Vec::new(),
        }
    }

    /// Wait (up to [`TIMEOUT`]) until the container prints `line`; return the lines before it.
    #[track_caller]
    pub fn wait_for(&mut self, line: &str) -> Vec<String> {
        self.wait_for_within(line, TIMEOUT)
    }

    /// Write `input` to the container's stdin, close it, and wait for the end.
    pub fn finish(mut self, input: &str) -> Out {
        use std::io::Write;
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        let status = wait_timeout(&mut self.child, TIMEOUT, &self.what);
        let stderr = self.stderr.take().map(join_bytes).unwrap_or_default();
        let mut stdout: Vec<String> = std::mem::take(&mut self.seen);
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            stdout.push(l);
        }
        Out {
            what: self.what.clone(),
            status,
            stdout: stdout.iter().map(|l| format!("{l}\n")).collect(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

// --- the sandbox ------------------------------------------------------------------------------

/// A scratch directory for one test: manifests, archives, sentinels, and `state/`, the state
/// root given to every `launch` it runs. Removed on drop (after detaching any mount a buggy
/// run left beneath it, so removal never reaches into another filesystem).
pub struct Sandbox {
    /// The directory (0755: readable by mapped users of user-namespace tests).
    pub dir: PathBuf,
    /// `LAUNCH_STATE_ROOT` for the runs of this test.
    pub state: PathBuf,
}

impl Sandbox {
    /// A fresh sandbox named after `tag`.
    pub fn new(tag: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(unique(&format!("launch-it-{tag}")));
        let state = dir.join("state");
        fs::create_dir_all(&state).unwrap();
        for d in [&dir, &state] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sandbox { dir, state }
    }

    /// Write a file (parents created) and return its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }

    /// Create a directory (0755) and return its path.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Write `app.toml`.
    pub fn manifest(&self, toml: &str) -> PathBuf {
        self.write("app.toml", toml)
    }

    /// `launch ARGS` with this sandbox's state root, stdin from /dev/null, output captured.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(launch_bin());
        c.args(args)
            .current_dir(&self.dir)
            .env("LAUNCH_STATE_ROOT", &self.state)
            // `tar` roots and images go to this test's own store, never the host's.
            .env("LAUNCH_STORE", self.dir.join("store"))
            .env("NO_COLOR", "1")
            .env_remove("LAUNCH_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Run `launch ARGS` to completion (with [`TIMEOUT`]).
    pub fn launch(&self, args: &[&str]) -> Out {
        self.launch_with(self.command(args), args)
    }

    /// Run a prepared [`Sandbox::command`] to completion.
    pub fn launch_with(&self, mut cmd: Command, args: &[&str]) -> Out {
        let what = format!("launch {}", args.join(" "));
        finish(cmd.spawn().unwrap(), what)
    }

    /// `launch run MANIFEST`.
    pub fn run(&self, manifest: &Path) -> Out {
        self.launch(&["run", manifest.to_str().unwrap()])
    }

    /// `launch plan --format json MANIFEST`, parsed.
    pub fn plan(&self, manifest: &Path) -> serde_json::Value {
        let out = self.launch(&["plan", "--format", "json", manifest.to_str().unwrap()]);
        out.expect_code(0);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("plan JSON: {e}\n{out}"))
    }

    /// Save a (possibly edited) plan as `plan.json` and run it with `launch run --plan`.
    pub fn run_plan(&self, plan: &serde_json::Value) -> Out {
        let path = self.write("plan.json", serde_json::to_vec_pretty(plan).unwrap());
        self.launch(&["run", "--plan", path.to_str().unwrap()])
    }

    /// Names in the state root.
    pub fn state_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.state)
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The state root holds nothing: every instance directory (and rootfs) was removed.
    #[track_caller]
    pub fn assert_state_empty(&self, out: &dyn fmt::Display) {
        assert_eq!(
            self.state_entries(),
            Vec::<String>::new(),
            "the state root {} is not empty after the run\n{out}",
            self.state.display()
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let dir = self.dir.to_str().unwrap().to_string();
        let mut leaked: Vec<String> = mount_points()
            .into_iter()
            .filter(|m| m.starts_with(&dir))
            .collect();
        if !leaked.is_empty() {
            eprintln!("warning: mounts left beneath {dir} (detached): {leaked:?}");
            leaked.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in leaked {
                let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// --- host snapshots ---------------------------------------------------------------------------

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's mountinfo, raw.
pub fn mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// Mount points of the host (this process's mount namespace), in mountinfo order.
pub fn mount_points() -> Vec<String> {
    mountinfo()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape))
        .collect()
}

/// The host's mounts as a sorted multiset of `MOUNTPOINT FSTYPE SOURCE`: mount ids and order
/// may differ between snapshots, nothing else.
pub fn mounts() -> Vec<String> {
    let mut v: Vec<String> = mountinfo()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-").unwrap_or(f.len() - 1);
            let fstype = f.get(dash + 1).copied().unwrap_or("");
            let source = f.get(dash + 2).copied().unwrap_or("");
            format!("{} {fstype} {}", unescape(f[4]), unescape(source))
        })
        .collect();
    v.sort();
    v
}

/// What differs between two [`mounts`] snapshots, for messages.
pub fn mount_diff(before: &[String], after: &[String]) -> String {
    let mut count: BTreeMap<&str, i32> = BTreeMap::new();
    for m in before {
        *count.entry(m).or_default() -= 1;
    }
    for m in after {
        *count.entry(m).or_default() += 1;
    }
    count
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(m, n)| format!("{}{m}", if n > 0 { "+ " } else { "- " }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Assert the host's mounts are those of `before`.
#[track_caller]
pub fn assert_mounts(before: &[String], context: &dyn fmt::Display) {
    let now = mounts();
    assert!(
        now == before,
        "the host's mounts changed:\n{}\n{context}",
        mount_diff(before, &now)
    );
}

/// `PID CMDLINE` of every process (but this one) whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker) {
            found.push(format!("{name} {}", cmd.trim_end()));
        }
    }
    found
}

/// Assert no process mentions `marker`, allowing the kernel `grace` to finish reaping.
#[track_caller]
pub fn assert_no_processes(marker: &str, context: &dyn fmt::Display) {
    let start = Instant::now();
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "processes left behind (command line mentions {marker:?}):\n{}\n{context}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// --- cgroups ----------------------------------------------------------------------------------

/// A cgroup parent (`limits.parent`) unique to one test, under every v1 hierarchy (this host is
/// hybrid) and the cgroup2 root. `launch` creates and keeps it; drop removes it (and, should a
/// buggy run have left any, the containers' groups beneath it: all created for this test).
pub struct Cgroups {
    /// The `limits.parent` value.
    pub parent: String,
}

impl Cgroups {
    /// A fresh, unused parent name.
    pub fn new() -> Cgroups {
        Cgroups {
            parent: unique("launch-test"),
        }
    }

    /// Where the parent is (or would be) in each hierarchy mounted on this host.
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        cgroup_roots()
            .into_iter()
            .map(|r| r.join(&self.parent))
            .collect()
    }

    /// The container groups under the parent, in every hierarchy; in the v1 `devices`
    /// hierarchy also those under the shared groups holding a device list (`devices-…`, kept
    /// like the parent: see [`Cgroups::device_lists`]).
    pub fn children(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for p in self.parent_dirs().into_iter().chain(self.device_lists()) {
            if let Ok(rd) = fs::read_dir(&p) {
                v.extend(
                    rd.flatten()
                        .filter(|e| e.path().is_dir() && !is_device_list(&e.path()))
                        .map(|e| e.path()),
                );
            }
        }
        v.sort();
        v
    }

    /// The shared groups holding a device list under the parent (cgroup v1).
    pub fn device_lists(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for p in self.parent_dirs() {
            if let Ok(rd) = fs::read_dir(&p) {
                v.extend(
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_dir() && is_device_list(p)),
                );
            }
        }
        v
    }

    /// Assert no container group is left under the parent.
    #[track_caller]
    pub fn assert_empty(&self, context: &dyn fmt::Display) {
        let left = self.children();
        assert!(left.is_empty(), "cgroups left behind: {left:?}\n{context}");
    }
}

/// `devices-` and 12 hex digits: a shared group holding a device list.
fn is_device_list(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("devices-"))
        .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for c in self.children().into_iter().chain(self.device_lists()) {
            let _ = fs::remove_dir(c);
        }
        for p in self.parent_dirs() {
            let _ = fs::remove_dir(p);
        }
    }
}

/// Mount points of the cgroup hierarchies (v1 controllers, and cgroup2).
pub fn cgroup_roots() -> Vec<PathBuf> {
    mountinfo()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            matches!(f.get(dash + 1), Some(&"cgroup") | Some(&"cgroup2"))
                .then(|| PathBuf::from(unescape(f[4])))
        })
        .collect()
}

/// Is the machine pure cgroup v2 (cgroup2 itself mounted at `/sys/fs/cgroup`, no v1)? The
/// QEMU guest of `scripts/vm/test-v2.sh` is; this dev/CI host is hybrid.
pub fn pure_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The cgroup holding `controller`, from the lines of a `/proc/PID/cgroup`, as a path relative
/// to its hierarchy's root (no leading `/`): the v1 line listing the controller, or else (pure
/// cgroup v2, where every controller is in the one hierarchy) the `0::` line.
pub fn group_of<S: AsRef<str>>(cgroup_lines: &[S], controller: &str) -> Option<String> {
    let parsed: Vec<(&str, &str, &str)> = cgroup_lines
        .iter()
        .filter_map(|l| {
            let mut f = l.as_ref().splitn(3, ':');
            Some((f.next()?, f.next()?, f.next()?))
        })
        .collect();
    parsed
        .iter()
        .find(|(_, ctl, _)| ctl.split(',').any(|c| c == controller))
        .or_else(|| {
            parsed
                .iter()
                .find(|(id, ctl, _)| *id == "0" && ctl.is_empty())
        })
        .map(|(_, _, path)| path.trim_start_matches('/').to_string())
}

/// A v1 controller's hierarchy (e.g. `cpu`, `memory`), if mounted.
pub fn v1_root(controller: &str) -> Option<PathBuf> {
    mountinfo().lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let dash = f.iter().position(|x| *x == "-")?;
        (f.get(dash + 1) == Some(&"cgroup") && f.get(dash + 3)?.split(',').any(|o| o == controller))
            .then(|| PathBuf::from(unescape(f[4])))
    })
}

// --- the whole host -----------------------------------------------------------------------------

/// What a run must leave as it found: mounts, the state root, processes, cgroups.
pub struct Host {
    /// The host's mounts before the run.
    pub mounts: Vec<String>,
}

impl Host {
    /// Snapshot the host now.
    pub fn snapshot() -> Host {
        Host { mounts: mounts() }
    }

    /// Assert the host is as snapshotted: same mounts, empty state root, no process from this
    /// sandbox, no container cgroup under `cgroups`' parent.
    #[track_caller]
    pub fn assert_clean(&self, sb: &Sandbox, cgroups: Option<&Cgroups>, out: &dyn fmt::Display) {
        assert_mounts(&self.mounts, out);
        sb.assert_state_empty(out);
        assert_no_processes(sb.dir.to_str().unwrap(), out);
        if let Some(cg) = cgroups {
            cg.assert_empty(out);
        }
    }
}

// --- rootfs fixtures ----------------------------------------------------------------------------

/// Where fixtures are built: `<target>/test-fixtures`.
pub fn fixture_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-fixtures");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Build with `examples/make-rootfs.sh` into a temporary name, then move into place.
fn make_rootfs(dir: bool, name: &str) -> PathBuf {
    let base = fixture_dir();
    let out = base.join(name);
    let tmp = base.join(format!("{name}.tmp-{}", std::process::id()));
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("examples/make-rootfs.sh"));
    if dir {
        cmd.arg("--dir");
    }
    let res = cmd.arg(&tmp).output().unwrap();
    assert!(
        res.status.success(),
        "examples/make-rootfs.sh failed:\n{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    if dir {
        let _ = fs::remove_dir_all(&out);
    } else {
        let _ = fs::remove_file(&out);
    }
    fs::rename(&tmp, &out).unwrap();
    out
}

/// A rootfs tarball made from this host (bash, coreutils, procps and their libraries), built
/// once per test run. Its `/etc/passwd` is [`ROOTFS_PASSWD`].
pub fn rootfs_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| make_rootfs(false, "rootfs.tar"))
}

/// The same root filesystem as a directory (for `rootfs.path`), built once per test run.
/// Shared by tests: containers using it must not write to it (use `readonly = true`).
pub fn rootfs_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| make_rootfs(true, "rootfs"))
}

/// The `/etc/passwd` that `examples/make-rootfs.sh` writes (not the host's).
pub const ROOTFS_PASSWD: &str =
    "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/bin/false\n";

// --- hostile archives ---------------------------------------------------------------------------

/// A tar writer with raw headers, so hostile names (`..`, absolute) get in verbatim
/// (`tar::Builder::append_data` refuses them); the technique of `tar_extract.rs`.
pub struct Ar(tar::Builder<Vec<u8>>);

impl Ar {
    /// An empty archive.
    pub fn new() -> Ar {
        Ar(tar::Builder::new(Vec::new()))
    }

    /// Any entry, names verbatim.
    pub fn entry(&mut self, kind: EntryType, name: &str, link: &str, data: &[u8]) -> &mut Ar {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_mtime(1_000_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Ar {
        self.entry(EntryType::Regular, name, "", data)
    }

    /// A directory.
    pub fn dir(&mut self, name: &str) -> &mut Ar {
        self.entry(EntryType::Directory, name, "", b"")
    }

    /// A symbolic link `name -> target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Ar {
        self.entry(EntryType::Symlink, name, target, b"")
    }

    /// The archive's bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        self.0.finish().unwrap();
        self.0.get_ref().clone()
    }
}

/// Gzip bytes.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

// --- plans --------------------------------------------------------------------------------------

/// Index of the first plan step whose action satisfies `pred`.
#[track_caller]
pub fn find_step(plan: &serde_json::Value, pred: impl Fn(&serde_json::Value) -> bool) -> usize {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| pred(&s["action"]))
        .expect("the plan has the step this test looks for")
}

/// The effect a (possibly edited) step's action renders to, as the plan would print it.
pub fn rendered_action(step: &serde_json::Value) -> Option<String> {
    serde_json::from_value::<launch::plan::Action>(step["action"].clone())
        .ok()
        .map(|a| a.to_string())
}

/// Whether `hay` contains `template`, where `{id}` stands for 8 hex digits and `{pid}` for a
/// number (or either is printed literally).
pub fn contains_template(hay: &str, template: &str) -> bool {
    #[derive(Debug)]
    enum Tok<'a> {
        Lit(&'a str),
        Id,
        Pid,
        Address,
    }
    let mut toks = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let next = [("{id}", 0), ("{pid}", 1), ("{address}", 2)]
            .iter()
            .filter_map(|(p, k)| rest.find(p).map(|i| (i, *p, *k)))
            .min();
        match next {
            Some((i, p, k)) => {
                if i > 0 {
                    toks.push(Tok::Lit(&rest[..i]));
                }
                toks.push(match k {
                    0 => Tok::Id,
                    1 => Tok::Pid,
                    _ => Tok::Address,
                });
                rest = &rest[i + p.len()..];
            }
            None => {
                toks.push(Tok::Lit(rest));
                rest = "";
            }
        }
    }
    fn at(s: &str, toks: &[Tok]) -> bool {
        let Some((first, more)) = toks.split_first() else {
            return true;
        };
        match first {
            Tok::Lit(l) => s.strip_prefix(l).is_some_and(|r| at(r, more)),
            Tok::Id => {
                let hex = s.len() >= 8 && s.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit);
                (hex && at(&s[8..], more)) || s.strip_prefix("{id}").is_some_and(|r| at(r, more))
            }
            Tok::Pid => {
                let n = s.bytes().take_while(u8::is_ascii_digit).count();
                (n > 0 && at(&s[n..], more)) || s.strip_prefix("{pid}").is_some_and(|r| at(r, more))
            }
            // An IPv4 address, as the run leased it.
            Tok::Address => {
                let n = s
                    .bytes()
                    .take_while(|b| b.is_ascii_digit() || *b == b'.')
                    .count();
                (n >= 7 && at(&s[n..], more))
                    || s.strip_prefix("{address}").is_some_and(|r| at(r, more))
            }
        }
    }
    (0..=hay.len())
        .filter(|&i| hay.is_char_boundary(i))
        .any(|i| at(&hay[i..], &toks))
}

/// Assert stderr names plan step `idx` (its effect, or for an edited step what its action now
/// renders to) and `errno`, with exit code 125.
#[track_caller]
pub fn expect_step_failed(out: &Out, plan: &serde_json::Value, idx: usize, errno: &str) {
    out.expect_launch_error(&[errno]);
    let step = &plan["steps"][idx];
    let effect = step["effect"].as_str().unwrap();
    let rendered = rendered_action(step);
    assert!(
        contains_template(&out.stderr, effect)
            || rendered
                .as_deref()
                .is_some_and(|r| contains_template(&out.stderr, r)),
        "stderr does not name the failed step {} ({effect})\n{out}",
        idx + 1
    );
}

#[test]
fn template_matching() {
    let t = "write \"/proc/{pid}/uid_map\" in x-{id}/root";
    assert!(contains_template(
        "launch: error: step 3: write \"/proc/4242/uid_map\" in x-0a1b2c3d/root: EINVAL",
        t
    ));
    assert!(contains_template(
        "write \"/proc/{pid}/uid_map\" in x-{id}/root",
        t
    ));
    assert!(!contains_template(
        "write \"/proc//uid_map\" in x-0a1b2c3d/root",
        t
    ));
    assert!(!contains_template(
        "write \"/proc/1/uid_map\" in x-0a1b2c/root",
        t
    ));
    assert_eq!(unescape("/a\\040b"), "/a b");
}

// --- manifests ----------------------------------------------------------------------------------

/// A manifest, as TOML text: by default a read-only `host = true` root with `/proc` mounted,
/// running `/bin/sh -c SCRIPT`.
pub struct App {
    name: String,
    top: String,
    rootfs: String,
    process: String,
    proc_mount: bool,
    rest: String,
    command: Vec<String>,
}

impl App {
    /// `name` running `sh -c script` on a read-only host root, /proc mounted.
    pub fn new(name: &str, script: &str) -> App {
        App {
            name: name.into(),
            top: String::new(),
            rootfs: "host = true\nreadonly = true\n".into(),
            process: String::new(),
            proc_mount: true,
            rest: String::new(),
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        }
    }

    /// Run `argv` instead of a shell script.
    pub fn command(mut self, argv: &[&str]) -> App {
        self.command = argv.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Top-level keys (`hostname = ...`).
    pub fn top(mut self, toml: &str) -> App {
        self.top.push_str(toml);
        self.top.push('\n');
        self
    }

    /// A user namespace (`user = true`): the one case in which the root launcher extracts a
    /// `tar` root for each run, under the state directory, instead of through the store.
    pub fn per_run_extraction(self) -> App {
        self.tables("[namespaces]\nuser = true")
    }

    /// Replace the `[rootfs]` table's body.
    pub fn rootfs(mut self, toml: &str) -> App {
        self.rootfs = format!("{toml}\n");
        self
    }

    /// A read-only root from the shared directory fixture.
    pub fn rootfs_dir(self) -> App {
        let body = format!("path = {}\nreadonly = true", qp(rootfs_dir()));
        self.rootfs(&body)
    }

    /// A root extracted from the tarball fixture.
    pub fn rootfs_tar(self) -> App {
        let body = format!("tar = {}", qp(rootfs_tar()));
        self.rootfs(&body)
    }

    /// More keys in `[process]` (`user = 1000`).
    pub fn process(mut self, toml: &str) -> App {
        self.process.push_str(toml);
        self.process.push('\n');
        self
    }

    /// Do not mount /proc.
    pub fn no_proc(mut self) -> App {
        self.proc_mount = false;
        self
    }

    /// More tables (`[namespaces]`, `[limits]`, `[[mounts]]`).
    pub fn tables(mut self, toml: &str) -> App {
        self.rest.push('\n');
        self.rest.push_str(toml);
        self.rest.push('\n');
        self
    }

    /// `[limits]` with a CPU, memory and pids limit under `cg`'s parent (so cgroups are made).
    pub fn limits(self, cg: &Cgroups) -> App {
        let t = format!(
            "[limits]\ncpu = \"50%\"\nmemory = \"64MiB\"\npids = 64\nparent = {}",
            q(&cg.parent)
        );
        self.tables(&t)
    }

    /// The manifest's text.
    pub fn toml(&self) -> String {
        let mut s = format!("name = {}\n{}\n", q(&self.name), self.top);
        s += &format!("[rootfs]\n{}\n", self.rootfs);
        s += &format!(
            "[process]\ncommand = {}\n{}\n",
            serde_json::to_string(&self.command).unwrap(),
            self.process
        );
        if self.proc_mount {
            s += "[[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n";
        }
        s += &self.rest;
        s
    }

    /// Write it as the sandbox's `app.toml`.
    pub fn write(&self, sb: &Sandbox) -> PathBuf {
        sb.manifest(&self.toml())
    }
}

// --- supervision helpers (supervise.rs): the launcher's pid, signals, bounded waits -------------

impl Running {
    /// The pid of the `launch` process this test started (not the container's).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Send `sig` to the `launch` process, as `kill -SIG PID` would.
    #[track_caller]
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid());
        nix::sys::signal::kill(pid, sig)
            .unwrap_or_else(|e| panic!("kill -{sig} {pid} (`{}`): {e}", self.what));
    }

    /// SIGKILL the `launch` process unless it was already waited for (never a reused pid).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// [`Running::wait_for`], failing after `limit` instead of [`TIMEOUT`].
    #[track_caller]
    pub fn wait_for_within(&mut self, line: &str, limit: Duration) -> Vec<String> {
        let start = self.seen.len();
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let found = l == line;
                    self.seen.push(l);
                    if found {
                        return self.seen[start..self.seen.len() - 1].to_vec();
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stderr = self.stderr.take().map(join_bytes).unwrap_or_default();
                    panic!(
                        "`{}`: no line {line:?} within {limit:?} ({e}); stdout so far:\n{}\n\
                         --- stderr ---\n{}",
                        self.what,
                        self.seen.join("\n"),
                        String::from_utf8_lossy(&stderr)
                    );
                }
            }
        }
    }
}

/// Host pids of the processes (but this one) whose command line contains `marker`.
pub fn pids_with(marker: &str) -> Vec<i32> {
    processes_with(marker)
        .iter()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// Wait up to `limit` until no process mentions `marker`; whether none is left.
pub fn processes_gone(marker: &str, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if processes_with(marker).is_empty() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `instance` is `name-` followed by 8 hex digits.
pub fn is_instance_of(instance: &str, name: &str) -> bool {
    instance
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|id| id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Bytes that do not compress (xorshift from `seed`), for archives whose size must be real.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
