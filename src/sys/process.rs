//! The container process's own settings: names, rlimits, ids, working directory, execve.

use std::ffi::CString;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{Gid, Pid, Uid};

use crate::error::{SysError, SysResult};

/// sethostname(2).
pub fn set_hostname(name: &str) -> SysResult<()> {
    nix::unistd::sethostname(name)
        .map_err(|e| SysError::new("sethostname", None, e).args(format!("{name:?}")))
}

/// setdomainname(2).
pub fn set_domainname(name: &str) -> SysResult<()> {
    // SAFETY: a valid pointer and its length.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if r < 0 {
        return Err(SysError::new("setdomainname", None, Errno::last()).args(format!("{name:?}")));
    }
    Ok(())
}

/// setsid(2) if any standard stream is a terminal (without a pty of its own, the process would
/// otherwise share the caller's controlling terminal).
pub fn new_session_if_on_a_terminal() -> SysResult<()> {
    let on_tty = [0, 1, 2].iter().any(|fd| {
        // SAFETY: isatty on a descriptor number only queries it.
        unsafe { libc::isatty(*fd) == 1 }
    });
    if on_tty {
        nix::unistd::setsid().map_err(|e| SysError::new("setsid", None, e))?;
    }
    Ok(())
}

/// Join a new, anonymous session keyring (`keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`), as runc
/// does for each container: the caller's session keyring, with whatever keys its login put there,
/// must not be the container's. A kernel without keyrings (ENOSYS) has nothing to share.
pub fn new_session_keyring() -> SysResult<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl with a NULL name joins a new anonymous keyring; no pointer is read.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    match r {
        r if r >= 0 => Ok(()),
        _ if Errno::last() == Errno::ENOSYS => Ok(()),
        _ => {
            Err(SysError::new("keyctl", None, Errno::last())
                .args("KEYCTL_JOIN_SESSION_KEYRING, NULL"))
        }
    }
}

/// Have the kernel SIGKILL this process when its parent (the launcher) dies. The kernel clears
/// this whenever the process's ids change, so it is set again after each change.
pub fn die_with_parent() -> SysResult<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if r < 0 {
        return Err(SysError::new("prctl", None, Errno::last()).args("PR_SET_PDEATHSIG, SIGKILL"));
    }
    Ok(())
}

/// PR_SET_CHILD_SUBREAPER: orphans among this process's descendants are re-parented to it,
/// not to init, so [`kill_children`] finds them.
pub fn set_child_subreaper() -> SysResult<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r < 0 {
        return Err(SysError::new("prctl", None, Errno::last()).args("PR_SET_CHILD_SUBREAPER, 1"));
    }
    Ok(())
}

/// SIGKILL and reap every child of this process, again and again until none is left (each
/// kill re-parents the victim's children to a subreaper). Returns how many were killed.
pub fn kill_children() -> usize {
    let me = std::process::id();
    let mut killed = 0;
    // A bound, not a hope: a fork bomb faster than SIGKILL still ends in a few rounds.
    for _ in 0..100 {
        let children = children_of(me);
        if children.is_empty() {
            break;
        }
        for pid in children {
            if nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok()
            {
                killed += 1;
            }
        }
        reap_all();
    }
    reap_all();
    killed
}

/// Reap every exited child without waiting for the others.
fn reap_all() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// The pids whose parent is `parent`, from /proc/PID/stat (its `children` file needs a kernel
/// option this host lacks).
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                // After the command's name (in parentheses, which may hold anything): state,
                // then the parent's pid.
                st.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// PR_SET_DUMPABLE 0: other processes of the same user (the container's, once it runs) can
/// neither ptrace this one nor open its /proc/PID files, `exe` (launch's binary on the host) and
/// `fd` (the launcher's descriptors) among them; without CAP_SYS_PTRACE over the host's user
/// namespace, which no container keeps by default. execve of the command makes it dumpable
/// again: what runs then is the container's own program.
pub fn set_non_dumpable() -> SysResult<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if r < 0 {
        return Err(SysError::new("prctl", None, Errno::last()).args("PR_SET_DUMPABLE, 0"));
    }
    Ok(())
}

/// setgroups, setgid, setuid. setgroups is skipped when the user namespace denies it (then the
/// process has no supplementary groups to drop anyway).
pub fn set_ids(uid: u32, gid: u32, groups: &[u32]) -> SysResult<()> {
    // Read from the container's /proc, when it has one: without, setgroups(2) tells.
    let denied = std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !denied {
        let gs: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        match nix::unistd::setgroups(&gs) {
            Ok(()) => {}
            // Denied in this user namespace (an unprivileged launcher's): no group to set, so
            // nothing is lost.
            Err(Errno::EPERM) if groups.is_empty() => {}
            Err(e) => {
                return Err(SysError::new("setgroups", None, e).args(format!("{groups:?}")));
            }
        }
    } else if !groups.is_empty() {
        return Err(SysError::new("setgroups", None, Errno::EPERM)
            .args(format!("{groups:?}"))
            .with_detail("setgroups is denied in this user namespace"));
    }
    nix::unistd::setgid(Gid::from_raw(gid))
        .map_err(|e| SysError::new("setgid", None, e).args(gid.to_string()))?;
    nix::unistd::setuid(Uid::from_raw(uid))
        .map_err(|e| SysError::new("setuid", None, e).args(uid.to_string()))
}

/// chdir(2).
pub fn chdir(path: &Path) -> SysResult<()> {
    nix::unistd::chdir(path).map_err(|e| SysError::new("chdir", Some(path.to_path_buf()), e))
}

fn cstr(s: &str) -> SysResult<CString> {
    CString::new(s)
        .map_err(|_| SysError::other("execve", None, format!("{s:?} contains a NUL byte")))
}

/// `close_range(2)` flag: mark close-on-exec instead of closing.
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// Close (or, with `cloexec`, mark close-on-exec) every descriptor from `first` up. No
/// descriptor launch or its caller holds may reach the container: one on a host directory is a
/// way out of the root (CVE-2024-21626's class).
pub fn close_from(first: u32, cloexec: bool) -> SysResult<()> {
    let flags = if cloexec { CLOSE_RANGE_CLOEXEC } else { 0 };
    // SAFETY: close_range takes plain integers; closing descriptors this process owns is what is
    // asked (nothing here holds a Rust object over them past this point: the callers exec or
    // only use descriptors below `first`).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, flags) };
    if r < 0 {
        return Err(
            SysError::new("close_range", None, Errno::last()).args(format!(
                "{first}, ~0U, {}",
                if cloexec { "CLOSE_RANGE_CLOEXEC" } else { "0" }
            )),
        );
    }
    Ok(())
}

/// execve the command; a name without `/` is searched in the PATH of `env`. Descriptors from
/// `3 + preserve_fds` up are closed by the execve (marked close-on-exec first, so a failing
/// execve can still report through its pipe). Returns only on failure, with the errno that best
/// explains it (EACCES over ENOENT, as execvp does).
pub fn exec(argv: &[String], env: &[String], preserve_fds: u32) -> SysError {
    if let Err(e) = close_from(3u32.saturating_add(preserve_fds), true) {
        return e;
    }
    let run = || -> SysResult<std::convert::Infallible> {
        let prog = argv
            .first()
            .ok_or_else(|| SysError::new("execve", None, Errno::EINVAL).args("empty argv"))?;
        let cargv = argv
            .iter()
            .map(|a| cstr(a))
            .collect::<SysResult<Vec<_>>>()?;
        let cenv = env.iter().map(|a| cstr(a)).collect::<SysResult<Vec<_>>>()?;
        crate::sys::pgo::before_exec();
        if prog.contains('/') {
            let p = cstr(prog)?;
            let e = nix::unistd::execve(&p, &cargv, &cenv)
                .err()
                .unwrap_or(Errno::EINVAL);
            return Err(SysError::new("execve", Some(prog.into()), e));
        }
        let path = env
            .iter()
            .find_map(|v| v.strip_prefix("PATH="))
            .unwrap_or("/usr/bin:/bin");
        let mut best = Errno::ENOENT;
        for dir in path.split(':').filter(|d| !d.is_empty()) {
            let full = format!("{dir}/{prog}");
            let p = cstr(&full)?;
            match nix::unistd::execve(&p, &cargv, &cenv)
                .err()
                .unwrap_or(Errno::EINVAL)
            {
                Errno::ENOENT | Errno::ENOTDIR => {}
                e => best = e,
            }
        }
        Err(SysError::new("execve", Some(prog.into()), best).args(format!("searched PATH={path}")))
    };
    match run() {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// fork(2) a child that runs `prepare`, then execve(2)s `argv` with `env`. An error in the child
/// (from `prepare` or execve) travels back over a close-on-exec pipe: end-of-file on it means
/// execve succeeded. Returns the running child, or the child's error once it is reaped.
///
/// # Safety
///
/// As for fork: the caller must be single-threaded, so that the child, which has only this
/// thread, finds no lock held by another.
pub unsafe fn spawn_exec(
    prepare: impl FnOnce() -> SysResult<()>,
    argv: &[String],
    env: &[String],
    preserve_fds: u32,
) -> SysResult<nix::unistd::Pid> {
    use std::io::Read;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SysError::new("pipe2", None, e).args("O_CLOEXEC"))?;
    let report = move |err: SysError| {
        let _ = nix::unistd::write(&w, &serde_json::to_vec(&err).unwrap_or_default());
    };
    // SAFETY: the caller guarantees a single-threaded process.
    let child = unsafe { fork_exec(prepare, argv, env, preserve_fds, report) }?;
    // `report`, and the pipe's write end with it, is gone in this process: end-of-file comes
    // once the child exec'd or failed.
    let mut msg = Vec::new();
    let _ = std::fs::File::from(r).read_to_end(&mut msg);
    if msg.is_empty() {
        return Ok(child);
    }
    let _ = nix::sys::wait::waitpid(child, None);
    Err(serde_json::from_slice(&msg)
        .unwrap_or_else(|_| SysError::other("execve", None, "the command failed to start")))
}

/// fork(2) a child that runs `prepare`, then execve(2)s `argv` with `env`; if either fails, the
/// child hands the error to `report` and exits with 127. Returns the child's pid at once,
/// without waiting for the execve: the caller learns of it through whatever close-on-exec
/// descriptor `report` writes to (its own copy of which it must close), so that end-of-file
/// on it happens exactly when the command starts.
///
/// # Safety
///
/// As for fork: the caller must be single-threaded, so that the child, which has only this
/// thread, finds no lock held by another.
pub unsafe fn fork_exec(
    prepare: impl FnOnce() -> SysResult<()>,
    argv: &[String],
    env: &[String],
    preserve_fds: u32,
    report: impl FnOnce(SysError),
) -> SysResult<nix::unistd::Pid> {
    // SAFETY: the caller guarantees a single-threaded process.
    match unsafe { nix::unistd::fork() }.map_err(|e| SysError::new("fork", None, e))? {
        nix::unistd::ForkResult::Child => {
            let err = match prepare() {
                Ok(()) => exec(argv, env, preserve_fds),
                Err(e) => e,
            };
            report(err);
            // SAFETY: leave without the parent's atexit handlers or buffered output.
            unsafe { libc::_exit(127) }
        }
        nix::unistd::ForkResult::Parent { child } => Ok(child),
    }
}

/// Give back the pages of this binary's code that the process has touched so far (its
/// read-only start: headers and text, `[__ehdr_start, etext)`), as a process that is done with
/// the code that got it here. They stay in the page cache: what runs next faults its own pages
/// back in (minor faults). Peak RSS is then the larger of the two phases instead of their sum:
/// the manifest's parsing, validation and lowering touch code the executor never runs. Never
/// data: only the headers and text segments, which no one writes.
pub fn drop_startup_text() {
    unsafe extern "C" {
        static __ehdr_start: u8;
        static etext: u8;
    }
    // The addresses of linker-defined symbols; nothing is read through them.
    let (start, end) = (
        std::ptr::addr_of!(__ehdr_start) as usize,
        std::ptr::addr_of!(etext) as usize,
    );
    let page = 4096;
    let start = start & !(page - 1);
    let end = (end + page - 1) & !(page - 1);
    if end <= start {
        return;
    }
    // SAFETY: the range is this binary's own read-only mapping (headers and text, never
    // written: a static binary's relocations are in its RELRO and data segments, after etext);
    // MADV_DONTNEED on a clean private file mapping only drops our page table entries. An
    // error changes nothing, so it is ignored.
    let _ = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
}

/// The CPU the process `pid` last ran on (or waits to run on): field 39 of /proc/PID/stat.
fn cpu_of(pid: i32) -> Option<usize> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold spaces and parentheses: the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split(' ').nth(36)?.parse().ok()
}

/// If the process `pid` (a child just made) waits for this process's CPU, move this process
/// to the other CPUs it may use, and return the affinity to restore with [`restore_affinity`].
///
/// For work the launcher does while the container process sets itself up: schedulers may
/// place a new child on its parent's CPU (expecting the parent to wait for it; this VM's kernel
/// packs tasks onto few vCPUs), where the launcher's work would delay the child instead of
/// overlapping it. Only the launcher's own affinity changes, never the container's.
pub fn step_aside_from(pid: i32) -> Option<nix::sched::CpuSet> {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let me = Pid::from_raw(0);
    let mine = nix::sched::sched_getcpu().ok()?;
    if cpu_of(pid)? != mine {
        return None;
    }
    let allowed = sched_getaffinity(me).ok()?;
    let mut others = CpuSet::new();
    let mut any = false;
    for c in 0..CpuSet::count() {
        if c != mine && allowed.is_set(c).unwrap_or(false) {
            others.set(c).ok()?;
            any = true;
        }
    }
    if !any {
        return None;
    }
    sched_setaffinity(me, &others).ok()?;
    Some(allowed)
}

/// Give this process back the affinity [`step_aside_from`] changed.
pub fn restore_affinity(allowed: &nix::sched::CpuSet) {
    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), allowed);
}
