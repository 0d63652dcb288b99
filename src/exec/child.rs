//! The container side: runs in the cloned process, inside the new namespaces, after the
//! launcher's release; applies the container steps in plan order and ends in execve.

use std::path::Path;

use nix::sched::CloneFlags;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::channel::{Channel, ToChild, ToParent};
use super::{init, log_step};
use crate::error::{SysError, SysResult};
use crate::plan::{Action, Plan, Side};
use crate::sys::fs::{Root, fd_path};
use crate::sys::{clone, mount, net, ns, process, pty};

/// Exit status of a child whose step failed before execve (the launcher reports the cause).
const CHILD_FAILED: i32 = 125;

/// Entry of the container process. Never returns: it becomes the command, or exits.
pub(super) fn main(
    plan: &Plan,
    chan: Channel,
    verbose: bool,
    tty: bool,
    cgroup_fds: &[OwnedFd],
) -> ! {
    // If the launcher dies, so do we: nothing would be left to clean up after us.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    match chan.recv::<ToChild>() {
        Ok(Some(ToChild::Release)) => {}
        // The launcher is gone or confused: do nothing at all.
        _ => exit(CHILD_FAILED),
    }
    let root = plan.root();
    let mut cache = RootCache {
        path: &root,
        open: None,
    };
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        if step.side() != Side::Container {
            continue;
        }
        if verbose {
            log_step(i, total, step, None);
        }
        let result = match &step.action {
            Action::CgroupEnter { paths } => enter_cgroups(cgroup_fds, paths),
            Action::Terminal if tty => terminal(&chan),
            Action::Terminal => Ok(()),
            // The last step: init takes the channel over and never returns.
            Action::Exec {
                argv,
                env,
                init: true,
            } => init::run(argv, env, chan, i),
            other => apply(other, &mut cache),
        };
        if let Err(error) = result {
            let _ = chan.send(&ToParent::Failed { step: i, error });
            exit(CHILD_FAILED);
        }
    }
    // A plan always ends its container part with execve, which only returns on failure.
    exit(CHILD_FAILED)
}

/// The CgroupEnter step: write "0" to each `tasks` file the launcher opened for us.
fn enter_cgroups(fds: &[OwnedFd], paths: &[std::path::PathBuf]) -> SysResult<()> {
    for (fd, path) in fds.iter().zip(paths) {
        nix::unistd::write(fd, b"0").map_err(|e| {
            SysError::new("write", Some(path.clone()), e).args("\"0\" (this process)")
        })?;
    }
    if fds.len() != paths.len() {
        return Err(SysError::other(
            "write",
            None,
            "the launcher opened a different number of cgroups",
        ));
    }
    Ok(())
}

/// The Terminal step: a pty from the container's own devpts becomes the controlling terminal
/// and standard streams of a new session; its master goes to launch for the relay.
fn terminal(chan: &Channel) -> SysResult<()> {
    let (master, slave) = pty::open()?;
    // The command must see the right size from its first instruction: copy it now from the
    // launcher's terminal (still our standard input), not later in the relay.
    let stdin = std::io::stdin();
    if nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
        pty::copy_winsize(stdin.as_fd(), master.as_fd());
    }
    pty::become_controlling(&slave)?;
    drop(slave);
    chan.send_with(&ToParent::Pty, Some(master.as_raw_fd()))
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong to the launcher.
    unsafe { libc::_exit(code) }
}

/// `path` relative to the container root, if it lies strictly beneath it.
fn beneath<'a>(root: &Path, path: &'a Path) -> Option<&'a Path> {
    path.strip_prefix(root)
        .ok()
        .filter(|r| !r.as_os_str().is_empty())
}

/// The container root, opened once and reused by the steps that resolve paths beneath it;
/// reopened after a mount on the root itself (an fd keeps the directory underneath).
struct RootCache<'a> {
    path: &'a Path,
    open: Option<Root>,
}

impl RootCache<'_> {
    fn get(&mut self) -> SysResult<&Root> {
        if self.open.is_none() {
            self.open = Some(Root::open(self.path)?);
        }
        self.open
            .as_ref()
            .ok_or_else(|| SysError::other("open", Some(self.path.to_path_buf()), "root not open"))
    }
}

fn apply(action: &Action, cache: &mut RootCache) -> SysResult<()> {
    let root = cache.path;
    match action {
        Action::Unshare { flags } => {
            let bits = CloneFlags::from_bits_truncate(clone::flag_bits(flags) as i32);
            nix::sched::unshare(bits)
                .map_err(|e| SysError::new("unshare", None, e).args(format!("{flags:?}")))
        }
        Action::Setns { path, kind } => ns::join(path, *kind),
        Action::LoopbackUp => net::loopback_up(),
        Action::Propagation { target, flags } => {
            mount::mount(None, target, target, None, flags, None)
        }
        Action::Mkdir { path, mode } => match beneath(root, path) {
            Some(rel) => cache.get()?.mkdir_all(rel, *mode),
            None => std::fs::create_dir_all(path)
                .map_err(|e| SysError::io("mkdir", Some(path.clone()), &e)),
        },
        Action::Touch { path } => match beneath(root, path) {
            Some(rel) => cache.get()?.touch(rel),
            None => Err(
                SysError::new("open", Some(path.clone()), nix::errno::Errno::EXDEV)
                    .args("outside the root"),
            ),
        },
        Action::Mknod {
            path,
            major,
            minor,
            mode,
        } => match beneath(root, path) {
            Some(rel) => cache.get()?.mknod_char(rel, *major, *minor, *mode),
            None => Err(
                SysError::new("mknod", Some(path.clone()), nix::errno::Errno::EXDEV)
                    .args("outside the root"),
            ),
        },
        Action::Symlink { target, link } => match beneath(root, link) {
            Some(rel) => cache.get()?.symlink(target, rel),
            None => Err(
                SysError::new("symlink", Some(link.clone()), nix::errno::Errno::EXDEV)
                    .args("outside the root"),
            ),
        },
        Action::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => {
            let fstype = (fstype != "none").then_some(fstype.as_str());
            match beneath(root, target) {
                Some(rel) => {
                    let fd = cache.get()?.open_path(rel)?;
                    mount::mount(
                        Some(source),
                        &fd_path(&fd),
                        target,
                        fstype,
                        flags,
                        data.as_deref(),
                    )
                }
                None => {
                    // A mount on (or above) the root itself: the open root is now underneath.
                    cache.open = None;
                    mount::mount(Some(source), target, target, fstype, flags, data.as_deref())
                }
            }
        }
        Action::SetAttr {
            target,
            attrs,
            recursive,
        } => {
            let fd = match beneath(root, target) {
                Some(rel) => cache.get()?.open_path(rel)?,
                None => nix::fcntl::open(
                    target.as_path(),
                    nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| SysError::new("open", Some(target.clone()), e).args("O_PATH"))?,
            };
            mount::set_attr(&fd, target, attrs, *recursive)
        }
        Action::PivotRoot { new_root } => mount::pivot_root(new_root),
        Action::Chroot { path } => mount::chroot(path),
        Action::SetHostname { name } => process::set_hostname(name),
        Action::SetDomainname { name } => process::set_domainname(name),
        Action::Setrlimit {
            resource,
            soft,
            hard,
        } => crate::sys::rlimit::set(&crate::sys::rlimit::Rlimit {
            resource: *resource,
            soft: *soft,
            hard: *hard,
        }),
        Action::SetIds { uid, gid, groups } => process::set_ids(*uid, *gid, groups),
        Action::Chdir { path } => process::chdir(path),
        Action::Exec { argv, env, .. } => Err(process::exec(argv, env)),
        other => Err(SysError::other(
            "run",
            None,
            format!("host step {other:?} reached the container side"),
        )),
    }
}
