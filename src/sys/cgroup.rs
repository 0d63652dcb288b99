//! cgroupfs, written directly (as runc's fs driver, crun and youki do): create, write, join,
//! enable controllers, and tear down (kill everything inside, wait until empty, rmdir).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{SysError, SysResult};

/// Write `value` into a cgroup file, in one write(2) as the kernel expects.
pub fn write(path: &Path, value: &str) -> SysResult<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| SysError::io("open", Some(path.to_path_buf()), &e).args("O_WRONLY"))?;
    f.write_all(value.as_bytes())
        .map_err(|e| SysError::io("write", Some(path.to_path_buf()), &e).args(format!("{value:?}")))
}

/// The v1 join, launcher side: open a group's `tasks` file for the container process, which
/// inherits the descriptor and moves itself with [`enter_self`] (the opener, root, is whose
/// permission counts; one thread moving itself takes no threadgroup lock).
pub fn open_tasks(tasks: &Path) -> SysResult<std::os::fd::OwnedFd> {
    nix::fcntl::open(
        tasks,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| SysError::new("open", Some(tasks.to_path_buf()), e).args("O_WRONLY"))
}

/// The v1 join, container side: write "0" (this thread) to each `tasks` file the launcher
/// opened with [`open_tasks`], in order.
pub fn enter_self(fds: &[std::os::fd::OwnedFd], paths: &[std::path::PathBuf]) -> SysResult<()> {
    if fds.len() != paths.len() {
        return Err(SysError::other(
            "write",
            None,
            "the launcher opened a different number of cgroups",
        ));
    }
    for (fd, path) in fds.iter().zip(paths) {
        nix::unistd::write(fd, b"0").map_err(|e| {
            SysError::new("write", Some(path.clone()), e).args("\"0\" (this process)")
        })?;
    }
    Ok(())
}

/// Create a cgroup directory. An existing one is an error: it would not be ours.
pub fn create(path: &Path) -> SysResult<()> {
    std::fs::create_dir(path).map_err(|e| SysError::io("mkdir", Some(path.to_path_buf()), &e))
}

/// Create a shared parent group and its ancestors if missing (kept: other containers use it).
pub fn create_parent(path: &Path) -> SysResult<()> {
    std::fs::create_dir_all(path)
        .map_err(|e| SysError::io("mkdir -p", Some(path.to_path_buf()), &e))
}

/// Move this process (the launcher) into the leaf `path` of its delegated cgroup, made if
/// missing: a group that holds processes cannot give its children controllers.
pub fn enter_leaf(path: &Path) -> SysResult<()> {
    create_parent(path)?;
    write(&path.join("cgroup.procs"), "0").map_err(|mut e| {
        if e.errno() == Errno::EACCES || e.errno() == Errno::EPERM {
            e.detail = Some(
                "the launcher's cgroup is not delegated to this user (systemd-run --user --scope \
                 -p Delegate=yes launch run APP.toml)"
                    .into(),
            );
        }
        e
    })
}

/// Enable controllers in a v2 `cgroup.subtree_control`, only those not yet enabled (so a
/// controller already delegated by the system is not written again).
pub fn enable(subtree_control: &Path, controllers: &[String]) -> SysResult<()> {
    let current = std::fs::read_to_string(subtree_control)
        .map_err(|e| SysError::io("read", Some(subtree_control.to_path_buf()), &e))?;
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !current.split_whitespace().any(|x| x == c.as_str()))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write(subtree_control, &missing.join(" ")).map_err(|mut e| {
        if e.errno() == Errno::EBUSY || e.errno() == Errno::EOPNOTSUPP || e.errno() == Errno::EACCES
        {
            e.detail = Some(
                "the controllers cannot be delegated here: the group may hold processes, or the \
                 parent did not delegate them (systemd: Delegate=yes)"
                    .into(),
            );
        }
        e
    })
}

/// The pids in a group.
fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Freeze a v1 freezer group and wait until the kernel says it is frozen (bounded).
fn freeze(state: &Path, to: &str) {
    if write(state, to).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        if std::fs::read_to_string(state).is_ok_and(|s| s.trim() == to) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// SIGKILL every process in the group, once (v2: `cgroup.kill`; v1: freeze, kill, thaw when a
/// freezer group, else kill what is listed).
pub fn kill_all(dir: &Path) {
    let pids = procs(dir);
    if pids.is_empty() {
        return;
    }
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() {
        let _ = write(&kill_file, "1");
        return;
    }
    let freezer_state = dir.join("freezer.state");
    let frozen = freezer_state.exists();
    if frozen {
        freeze(&freezer_state, "FROZEN");
    }
    for p in procs(dir) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    if frozen {
        freeze(&freezer_state, "THAWED");
    }
}

/// Kill every process in the group, wait until it is empty, and remove it. Missing is fine.
///
/// v2 has `cgroup.kill`, atomic. On v1 a freezer group is frozen first, so no process can fork
/// while the list is read and killed; then thawed, so the SIGKILLs are delivered.
pub fn destroy(dir: &Path) -> SysResult<()> {
    if !dir.exists() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut first = true;
    loop {
        // Usually the group is empty by now (the container exited): rmdir first, and kill only
        // when the kernel says something is still inside.
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                if !first {
                    std::thread::sleep(Duration::from_millis(2));
                }
                first = false;
                kill_all(dir);
            }
            Err(e) => return Err(SysError::io("rmdir", Some(dir.to_path_buf()), &e)),
        }
    }
}

/// What a container's groups report of its usage: the one reader of usage files, for `ps`,
/// `--stats` and the OOM report, on v1 and v2 alike. `None`: not measured (no such controller
/// in these groups).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time, nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Memory in use now, bytes.
    pub memory_current: Option<u64>,
    /// Peak memory, bytes.
    pub memory_peak: Option<u64>,
    /// The memory limit in force, bytes.
    pub memory_limit: Option<u64>,
    /// Peak number of tasks.
    pub pids_peak: Option<u64>,
    /// Processes the OOM killer killed.
    pub oom_kills: Option<u64>,
}

/// Which usage figures to read: each is a file read, and the OOM verdict at every exit wants two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The OOM verdict: kills and the limit.
    Oom,
    /// What `ps` shows: CPU time and memory in use.
    Now,
    /// Everything, for `--stats`.
    All,
}

fn read_file(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn num(dir: &Path, file: &str) -> Option<u64> {
    read_file(dir, file)?.trim().parse().ok()
}

/// The value of `key` in a flat keyed file (`cpu.stat`, `memory.events`, `memory.oom_control`).
fn keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    read_file(dir, file)?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// v1 reports "no limit" as a huge page-aligned number.
fn v1_limit(v: Option<u64>) -> Option<u64> {
    v.filter(|l| *l < (1 << 62))
}

/// Read usage from a container's groups (v2: one; v1: one per hierarchy). Each group's version
/// is told by its own files, so a saved state from either layout reads right.
pub fn usage(groups: &[impl AsRef<Path>], want: Want) -> Usage {
    let mut u = Usage::default();
    let set = |slot: &mut Option<u64>, v: Option<u64>| {
        if slot.is_none() {
            *slot = v;
        }
    };
    let all = want == Want::All;
    let oom = want == Want::Oom || all;
    let now = want == Want::Now || all;
    for g in groups {
        let g = g.as_ref();
        let v2 = g.join("cgroup.controllers").exists();
        if v2 {
            if now {
                set(
                    &mut u.cpu_ns,
                    keyed(g, "cpu.stat", "usage_usec").map(|us| us * 1000),
                );
                set(&mut u.memory_current, num(g, "memory.current"));
            }
            if all {
                set(&mut u.memory_peak, num(g, "memory.peak"));
            }
            if oom {
                set(&mut u.oom_kills, keyed(g, "memory.events", "oom_kill"));
                set(&mut u.memory_limit, num(g, "memory.max"));
            }
        } else {
            if now {
                set(&mut u.cpu_ns, num(g, "cpuacct.usage"));
                set(&mut u.memory_current, num(g, "memory.usage_in_bytes"));
            }
            if all {
                set(&mut u.memory_peak, num(g, "memory.max_usage_in_bytes"));
            }
            if oom {
                set(&mut u.oom_kills, keyed(g, "memory.oom_control", "oom_kill"));
                set(
                    &mut u.memory_limit,
                    v1_limit(num(g, "memory.limit_in_bytes")),
                );
            }
        }
        if all {
            set(&mut u.pids_peak, num(g, "pids.peak"));
        }
    }
    u
}
