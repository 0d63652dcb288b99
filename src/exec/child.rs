//! The container side: runs in the cloned process, inside the new namespaces, after the
//! launcher's release; applies the container steps in plan order and ends in execve.

use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::channel::{Channel, ToChild, ToParent};
use super::{init, log_step};
use crate::error::{SysError, SysResult};
use crate::plan::{Action, ContainerAction, Plan};
use crate::sys::fs::{Root, fd_path};
use crate::sys::{caps, clone, masked_paths, mount, net, ns, process, pty, seccomp};

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
    crate::sys::pgo::container_started();
    // If the launcher dies, so do we: nothing would be left to clean up after us.
    if process::die_with_parent().is_err() {
        exit(CHILD_FAILED);
    }
    // The release (and the layers before it) come with a wake-up on the side: see Channel.
    chan.await_wake();
    let mut layers = Vec::new();
    loop {
        match chan.recv_with::<ToChild>() {
            Ok(Some((ToChild::Release, _))) => break,
            Ok(Some((ToChild::Layer, Some(fd)))) => layers.push(fd),
            // The launcher is gone or confused: do nothing at all.
            _ => exit(CHILD_FAILED),
        }
    }
    // From here on processes of the container may exist (`launch exec`): none may reach launch's
    // binary or descriptors through our /proc entries (the CVE-2019-5736 class). Not before the
    // release: an unprivileged launcher writes our id maps, which needs us dumpable.
    if process::set_non_dumpable().is_err() {
        exit(CHILD_FAILED);
    }
    let root = plan.root();
    let mut cache = RootCache {
        path: &root,
        open: None,
    };
    let total = plan.steps.len();
    let mut cx = Cx {
        cache: &mut cache,
        chan: Some(chan),
        tty,
        cgroup_fds,
        layers,
    };
    for (i, step) in plan.steps.iter().enumerate() {
        let Action::Container(action) = &step.action else {
            continue;
        };
        if verbose {
            log_step(i, total, step, None);
        }
        if let Err(error) = apply(action, i, &mut cx) {
            if let Some(chan) = &cx.chan {
                let _ = chan.send(&ToParent::Failed { step: i, error });
            }
            exit(CHILD_FAILED);
        }
    }
    // A plan always ends its container part with execve, which only returns on failure.
    exit(CHILD_FAILED)
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

/// The container root, which a step names: the plan's own (anything else is refused).
fn named_root<'a>(cache: &'a mut RootCache, at: &Path) -> SysResult<&'a Root> {
    if at != cache.path {
        return Err(SysError::other(
            "open",
            Some(at.to_path_buf()),
            "not the container's root",
        ));
    }
    cache.get()
}

/// What the container steps work with.
struct Cx<'c, 'r> {
    cache: &'c mut RootCache<'r>,
    /// The channel to the launcher; init takes it over.
    chan: Option<Channel>,
    /// Whether this run has a terminal.
    tty: bool,
    /// The v1 `tasks` files the launcher opened for us.
    cgroup_fds: &'c [OwnedFd],
    /// The idmapped copies of the image's layers the launcher sent, for AttachLayers.
    layers: Vec<OwnedFd>,
}

/// [`ContainerAction::AttachProc`]: attach the /proc the launcher made on `target`, or, if its
/// kernel could not make one, mount proc there and apply the paths here.
fn attach_proc(
    cx: &mut Cx,
    target: &Path,
    flags: &[crate::sys::mount::MountFlag],
    masked: &[PathBuf],
    readonly: &[PathBuf],
) -> SysResult<()> {
    let word = match &cx.chan {
        Some(chan) => chan.recv_with::<ToChild>()?,
        None => None,
    };
    let root_path = cx.cache.path;
    let Some(rel) = beneath(root_path, target) else {
        return Err(SysError::other(
            "mount",
            Some(target.to_path_buf()),
            "/proc is not beneath the container's root",
        ));
    };
    match word {
        Some((ToChild::Proc, Some(tree))) => {
            let at = cx.cache.get()?.open_path(rel)?;
            mount::move_to(&tree, &at, target)
        }
        Some((ToChild::NoProc, _)) => {
            let at = cx.cache.get()?.open_path(rel)?;
            mount::mount(
                Some("proc"),
                &fd_path(&at),
                target,
                Some("proc"),
                flags,
                None,
            )?;
            masked_paths::apply(cx.cache.get()?, masked, readonly).map(drop)
        }
        _ => Err(SysError::other(
            "recvmsg",
            Some(target.to_path_buf()),
            "the launcher did not send the container's /proc (the channel closed or said \
             something else)",
        )),
    }
}

/// Apply container step `step`.
fn apply(action: &ContainerAction, step: usize, cx: &mut Cx) -> SysResult<()> {
    use ContainerAction::*;
    let cache = &mut *cx.cache;
    let root = cache.path;
    match action {
        CgroupEnter { paths } => crate::sys::cgroup::enter_self(cx.cgroup_fds, paths),
        Terminal => match (&cx.chan, cx.tty) {
            (Some(chan), true) => terminal(chan),
            // No pty: the container shares the caller's standard streams. If one is a terminal,
            // a new session keeps it from being the container's controlling terminal, so the
            // container cannot push keystrokes into the caller's shell (TIOCSTI) or take its
            // foreground.
            (_, false) | (None, true) => process::new_session_if_on_a_terminal(),
        },
        // The last step: init takes the channel over and never returns.
        Exec {
            argv,
            env,
            init: true,
            preserve_fds,
        } => match cx.chan.take() {
            Some(chan) => init::run(argv, env, *preserve_fds, chan, step),
            None => Err(SysError::other("fork", None, "no channel to the launcher")),
        },
        Unshare { flags } => {
            let bits = CloneFlags::from_bits_truncate(clone::flag_bits(flags) as i32);
            nix::sched::unshare(bits)
                .map_err(|e| SysError::new("unshare", None, e).args(format!("{flags:?}")))
        }
        Setns { path, kind } => ns::join(path, *kind),
        SessionKeyring => process::new_session_keyring(),
        LoopbackUp => net::loopback_up(),
        AttachProc {
            target,
            flags,
            masked,
            readonly,
        } => attach_proc(cx, target, flags, masked, readonly),
        AwaitNetwork => match &cx.chan {
            Some(chan) => match chan.recv_with::<ToChild>() {
                Ok(Some((ToChild::Network, _))) => Ok(()),
                Ok(_) => Err(SysError::other(
                    "recvmsg",
                    None,
                    "the launcher did not connect the network (the channel closed or said \
                     something else)",
                )),
                Err(e) => Err(e),
            },
            None => Err(SysError::other(
                "recvmsg",
                None,
                "no channel to the launcher",
            )),
        },
        Propagation { target, flags } => mount::mount(None, target, target, None, flags, None),
        Mkdir { path, mode } => match beneath(root, path) {
            Some(rel) => cache.get()?.mkdir_all(rel, *mode),
            None => std::fs::create_dir_all(path)
                .map_err(|e| SysError::io("mkdir", Some(path.clone()), &e)),
        },
        Touch { path } => match beneath(root, path) {
            Some(rel) => cache.get()?.touch(rel),
            None => Err(
                SysError::new("open", Some(path.clone()), nix::errno::Errno::EXDEV)
                    .args("outside the root"),
            ),
        },
        Mknod {
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
        Symlink { target, link } => match beneath(root, link) {
            Some(rel) => cache.get()?.symlink(target, rel),
            None => Err(
                SysError::new("symlink", Some(link.clone()), nix::errno::Errno::EXDEV)
                    .args("outside the root"),
            ),
        },
        Mount {
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
        Overlay {
            target,
            lowers,
            upper,
            userxattr,
            volatile,
        } => {
            // Mounted on the root itself (the state directory): the open root is underneath.
            cache.open = None;
            let opts = crate::sys::overlay::Options {
                userxattr: *userxattr,
                volatile: *volatile,
            };
            crate::sys::overlay::mount(target, lowers, upper.as_ref(), opts)
        }
        AttachLayers { layers } => {
            if layers.len() != cx.layers.len() {
                return Err(SysError::other(
                    "attach layers",
                    None,
                    format!(
                        "{} idmapped layers received for {} layers",
                        cx.layers.len(),
                        layers.len()
                    ),
                ));
            }
            for (tree, path) in cx.layers.drain(..).zip(layers) {
                crate::sys::overlay::attach(&tree, path)?;
            }
            Ok(())
        }
        SetAttr {
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
        PivotRoot { new_root } => mount::pivot_root(new_root),
        Chroot { path } => mount::chroot(path),
        SetHostname { name } => process::set_hostname(name),
        SetDomainname { name } => process::set_domainname(name),
        Setrlimit {
            resource,
            soft,
            hard,
        } => crate::sys::rlimit::set(&crate::sys::rlimit::Rlimit {
            resource: *resource,
            soft: *soft,
            hard: *hard,
        }),
        SetIds {
            uid,
            gid,
            groups,
            keep_caps,
        } => {
            if *keep_caps {
                caps::set_keep_caps(true)?;
            }
            process::set_ids(*uid, *gid, groups)?;
            if *keep_caps {
                caps::set_keep_caps(false)?;
            }
            // Changing ids cleared the parent-death signal: arm it again, then make sure the
            // launcher did not die in between (nothing would kill us then).
            process::die_with_parent()?;
            if cx.chan.as_ref().is_some_and(Channel::peer_gone) {
                exit(CHILD_FAILED);
            }
            Ok(())
        }
        MaskPaths { root: at, paths } => {
            masked_paths::apply(named_root(cache, at)?, paths, &[]).map(drop)
        }
        ReadonlyPaths { root: at, paths } => {
            masked_paths::apply(named_root(cache, at)?, &[], paths).map(drop)
        }
        CapBounding { keep } => caps::drop_bounding(*keep),
        Capabilities { sets } => caps::set_sets(sets),
        NoNewPrivs => caps::set_no_new_privs(),
        Seccomp { filter, log, .. } => seccomp::load(filter, seccomp::LoadFlags { log: *log }),
        Chdir { path } => process::chdir(path),
        Exec {
            argv,
            env,
            preserve_fds,
            ..
        } => Err(process::exec(argv, env, *preserve_fds)),
    }
}
