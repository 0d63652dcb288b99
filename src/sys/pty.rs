//! Pseudo-terminals: open one in the current mount namespace's devpts, make its slave a
//! process's controlling terminal, put the host terminal in raw mode (restored on every path),
//! and relay bytes and window sizes between the two.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use crate::error::{SysError, SysResult};

/// Open a new pty pair from `/dev/ptmx`: (master, slave). Both close-on-exec.
pub fn open() -> SysResult<(OwnedFd, OwnedFd)> {
    let err = |op: &str, e: Errno| SysError::new(op, Some("/dev/ptmx".into()), e);
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open", e).args("O_RDWR|O_NOCTTY"))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int; TIOCGPTN writes the pty number to one.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(err("ioctl", Errno::last()).args("TIOCSPTLCK"));
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: as above.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(err("ioctl", Errno::last()).args("TIOCGPTN"));
    }
    let path = format!("/dev/pts/{n}");
    let slave = nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::new("open", Some(path.clone().into()), e).args("O_RDWR|O_NOCTTY"))?;
    Ok((master, slave))
}

/// In the process that will exec: a new session with `slave` as its controlling terminal and
/// standard streams.
pub fn become_controlling(slave: &OwnedFd) -> SysResult<()> {
    nix::unistd::setsid().map_err(|e| SysError::new("setsid", None, e))?;
    // SAFETY: TIOCSCTTY with argument 0 on a valid tty fd.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(SysError::new("ioctl", None, Errno::last()).args("TIOCSCTTY"));
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which we mean to replace.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(SysError::new("dup2", None, Errno::last()).args(format!("pty, {target}")));
        }
    }
    Ok(())
}

/// Copy the window size of `from` (a terminal) to `to`.
pub fn copy_winsize(from: BorrowedFd, to: BorrowedFd) {
    // SAFETY: winsize is plain data; the ioctls read and write one.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// The host terminal in raw mode; dropping it restores the settings it found.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Put standard input's terminal in raw mode, if it is one.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Set by the SIGWINCH handler; the relay loop forwards the new size.
static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_winch(_: libc::c_int) {
    RESIZED.store(true, Ordering::Relaxed);
}

fn watch_winch() {
    // SAFETY: a zeroed sigaction with a handler that only stores an atomic; no SA_RESTART, so
    // poll returns EINTR and the loop sees the flag at once.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_winch as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGWINCH, &sa, std::ptr::null_mut());
    }
}

fn write_all(fd: BorrowedFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Relay between our standard streams and the pty master until the container side closes
/// (EIO once no process holds the slave). Window size changes are forwarded.
pub fn relay(master: &OwnedFd) {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    if nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
        copy_winsize(stdin.as_fd(), master.as_fd());
    }
    watch_winch();
    let mut buf = [0u8; 16 * 1024];
    let mut stdin_open = true;
    loop {
        if RESIZED.swap(false, Ordering::Relaxed) {
            copy_winsize(stdin.as_fd(), master.as_fd());
        }
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let master_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ev = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if master_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master.as_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => return,
                Ok(n) => {
                    if !write_all(stdout.as_fd(), &buf[..n]) {
                        return;
                    }
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => return,
            }
        }
        if stdin_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => {
                    // Our input ended (a pipe into a forced terminal): pass it on as the
                    // terminal's end-of-file character.
                    stdin_open = false;
                    let _ = write_all(master.as_fd(), &[4]);
                }
                Ok(n) => {
                    let _ = write_all(master.as_fd(), &buf[..n]);
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
}
