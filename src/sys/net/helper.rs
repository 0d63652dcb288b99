//! The helper process that connects a rootless container's network namespace: pasta (from
//! Debian's `passt`) or slirp4netns. It runs as the launcher's user, outside the container.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{SysError, SysResult};

/// How long a helper may take to configure the namespace.
const READY: Duration = Duration::from_secs(10);

/// Start `argv` and wait until it has configured the namespace; return the pid of the process
/// that stays. pasta forks into the background once it is ready (its first process exits 0)
/// and writes the pid of the one that stays to its `--pid` file; slirp4netns stays in the
/// foreground and signals readiness by writing to its `--ready-fd`.
pub fn start(argv: &[String], state_dir: &Path) -> SysResult<i32> {
    let Some((program, args)) = argv.split_first() else {
        return Err(SysError::other("start", None, "empty helper command"));
    };
    let log = state_dir.join("network-helper.log");
    let what = || argv.join(" ");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| SysError::io("open", Some(log.clone()), &e))?;
    let err = out
        .try_clone()
        .map_err(|e| SysError::io("dup", Some(log.clone()), &e))?;
    let is_slirp = Path::new(program)
        .file_name()
        .is_some_and(|n| n == "slirp4netns");
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    // Its own process group: a Ctrl-C at the launcher's terminal is the launcher's to handle.
    cmd.process_group(0);
    if is_slirp {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| SysError::new("pipe2", None, e))?;
        let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
        cmd.arg(format!("--ready-fd={wfd}"));
        // The write end must survive the exec: clear its close-on-exec in the child only.
        // SAFETY: fcntl is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(wfd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // slirp4netns takes the pid and interface last.
        let child = cmd
            .spawn()
            .map_err(|e| SysError::io("execve", None, &e).args(what()))?;
        drop(w);
        let pid = child.id() as i32;
        let ready = wait_readable(&r, READY);
        match ready {
            Ok(true) => {
                let mut b = [0u8; 1];
                let n = nix::unistd::read(&r, &mut b).unwrap_or(0);
                if n == 1 {
                    return Ok(pid);
                }
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                Err(failed(
                    argv,
                    &log,
                    "it exited before the namespace was ready",
                ))
            }
            _ => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                Err(failed(argv, &log, "it did not get ready within 10 s"))
            }
        }
    } else {
        let pidfile = state_dir.join("network-helper.pid");
        let status = cmd
            .arg("--pid")
            .arg(&pidfile)
            .status()
            .map_err(|e| SysError::io("execve", None, &e).args(what()))?;
        if !status.success() {
            return Err(failed(argv, &log, &format!("it exited with {status}")));
        }
        let text = std::fs::read_to_string(&pidfile)
            .map_err(|e| SysError::io("read", Some(pidfile.clone()), &e))?;
        text.trim().parse::<i32>().map_err(|_| {
            SysError::other(
                "read",
                Some(pidfile.clone()),
                format!("not a pid: {text:?}"),
            )
        })
    }
}

/// SIGKILL helper `pid` if it is still the process that started at `start_time`, and wait
/// (up to 5 s) until it has exited: pasta runs as the init of a pid namespace of its own, whose
/// end takes a while, and its published ports are free only then. Through a pidfd, so a pid
/// reused between the check and the kill is never signalled.
pub fn kill(pid: i32, start_time: u64) -> SysResult<()> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return match nix::errno::Errno::last() {
            nix::errno::Errno::ESRCH => Ok(()),
            e => Err(SysError::new("pidfd_open", None, e).args(pid.to_string())),
        };
    }
    // SAFETY: a descriptor pidfd_open just returned, owned from here on.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    if super::alloc::Holder::of_pid(pid).map(|h| h.start_time) != Some(start_time) {
        return Ok(());
    }
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            raw,
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return match nix::errno::Errno::last() {
            nix::errno::Errno::ESRCH => Ok(()),
            e => Err(SysError::new("pidfd_send_signal", None, e).args(format!("{pid}, SIGKILL"))),
        };
    }
    // A pidfd is readable once its process has exited.
    let _ = wait_readable(&fd, Duration::from_secs(5));
    Ok(())
}

fn wait_readable(fd: &std::os::fd::OwnedFd, within: Duration) -> SysResult<bool> {
    use std::os::fd::AsFd;
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SysError::new("poll", None, e).args("helper's ready fd")),
        }
    }
}

/// The helper failed: its own last words are in the log.
fn failed(argv: &[String], log: &Path, why: &str) -> SysError {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Failed to send"))
        .collect();
    let tail = tail[tail.len().saturating_sub(4)..].join(" / ");
    SysError::other("start", Some(log.to_path_buf()), format!("{why}: {tail}")).args(argv.join(" "))
}
