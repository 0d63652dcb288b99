//! `launch exec NAME -- CMD...`: run a command inside a running container, in every namespace
//! and cgroup of it, as its user, with its environment and working directory.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, getpid};

use crate::error::{SysError, SysResult};
use crate::exec::signals;
use crate::exec::state::State;
use crate::exit;
use crate::lower::security;
use crate::sys::{caps, cgroup, process, pty, seccomp};

/// Namespaces in the order they are entered (user first, for the privileges over the others;
/// mnt late, since it changes the root; as nsenter does).
const ORDER: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The container's namespaces that differ from ours, opened.
fn open_namespaces(pid: i32) -> SysResult<Vec<(OwnedFd, CloneFlags, String)>> {
    let mut out = Vec::new();
    for (name, flag) in ORDER {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            continue;
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        let fd = nix::fcntl::open(
            theirs.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SysError::new("open", Some(theirs.clone().into()), e))?;
        out.push((fd, *flag, theirs));
    }
    Ok(out)
}

fn enter(st: &State) -> SysResult<()> {
    // Before joining anything: the container's processes must not reach launch's binary or
    // descriptors through our /proc entries (the CVE-2019-5736 class). The command's execve
    // makes its process dumpable again.
    process::set_non_dumpable()?;
    // Open everything while /proc is still the host's, and join the cgroups while we still
    // have the host's privileges.
    let namespaces = open_namespaces(st.pid)?;
    let me = getpid().to_string();
    for g in st.cgroups.iter().chain(&st.joined) {
        cgroup::write(&g.join("cgroup.procs"), &me)?;
    }
    for (fd, flag, path) in &namespaces {
        nix::sched::setns(fd.as_fd(), *flag)
            .map_err(|e| SysError::new("setns", Some(path.into()), e))?;
    }
    Ok(())
}

/// Run `argv` in the container `st` describes; returns the exit code.
pub fn run_in(st: &State, argv: &[String]) -> Result<u8, (SysError, u8)> {
    enter(st).map_err(|e| (e, exit::LAUNCHER))?;
    let tty = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    // The container's own /dev/ptmx: we are in its mount namespace now.
    let pair = if tty {
        Some(pty::open().map_err(|e| (e, exit::LAUNCHER))?)
    } else {
        None
    };
    if let Some((master, _)) = &pair {
        // The right size before the command's first instruction, not later in the relay.
        pty::copy_winsize(std::io::stdin().as_fd(), master.as_fd());
    }
    let p = &st.process;
    let env = p.envp();
    // The container's main process got these from its plan; this command gets the same.
    let confinement = security::confinement(&st.security, p.user.uid, caps::bounding_now());
    let prepare = || {
        if let Some((_, slave)) = &pair {
            pty::become_controlling(slave)?;
        }
        // The container's own limits: set before the ids change, while raising a hard limit
        // back up to the container's is still allowed.
        crate::sys::rlimit::set_all(&p.rlimits)?;
        confine(&confinement, &p.user, &p.cwd)
    };
    // SAFETY: launch is single-threaded.
    let child = unsafe { process::spawn_exec(prepare, argv, &env, 0) }.map_err(|e| {
        let code = exit::of_exec_error(&e);
        (e, code)
    })?;
    let master = pair.map(|(m, _slave)| m);
    signals::install();
    signals::set_child(child);
    // The command runs already: signals go to it.
    let _ = signals::started();
    if let Some(m) = master {
        let _raw = pty::RawMode::enter();
        pty::relay(&m);
    }
    Ok(wait(child))
}

/// Become the container's user with its confinement, in the order its plan has (see
/// `lower::lower`): the filter first without no_new_privs (while CAP_SYS_ADMIN is held), the
/// bounding set, the ids (keeping the capabilities a non-root user is given), the other sets,
/// the working directory, no_new_privs, then the filter.
fn confine(c: &security::Confinement, user: &crate::spec::User, cwd: &Path) -> SysResult<()> {
    let load = |f: &security::Filter| seccomp::load(&f.program, seccomp::LoadFlags { log: f.log });
    if let (true, Some(f)) = (c.seccomp_early(), &c.seccomp) {
        load(f)?;
    }
    if let Some(plan) = &c.caps {
        caps::apply(plan, || process::set_ids(user.uid, user.gid, &user.groups))?;
    } else {
        process::set_ids(user.uid, user.gid, &user.groups)?;
    }
    process::chdir(cwd)?;
    if c.no_new_privs {
        caps::set_no_new_privs()?;
    }
    if let (false, Some(f)) = (c.seccomp_early(), &c.seccomp) {
        load(f)?;
    }
    Ok(())
}

fn wait(child: Pid) -> u8 {
    loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return exit::LAUNCHER,
            Ok(st) => {
                if let Some(code) = exit::of_status(st) {
                    return code;
                }
            }
        }
    }
}

/// `launch exec NAME -- CMD...`.
pub fn exec(root: &Path, name: &str, argv: &[String]) -> u8 {
    let mut found = match super::find(root, name) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if found.len() > 1 {
        let names: Vec<String> = found.iter().map(|i| i.instance()).collect();
        eprintln!(
            "launch: error: `{name}` has {} running instances; name one: {}",
            found.len(),
            names.join(", ")
        );
        return exit::INVALID;
    }
    let Some(st) = found.remove(0).state else {
        eprintln!("launch: error: `{name}` is still starting; try again");
        return exit::LAUNCHER;
    };
    match run_in(&st, argv) {
        Ok(code) => code,
        Err((e, code)) => {
            eprintln!("launch: error: exec in {}: {e}", st.instance);
            code
        }
    }
}
