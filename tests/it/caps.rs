//! Capability sets on the real kernel: a forked child applies a plan (and, for a non-root user,
//! changes uid in the middle of it), sends /proc/self/status (or that of a program it execs)
//! through a pipe, and makes raw calls a capability decides; its exit code says which check
//! failed (0: none). Every denial is paired with the same call succeeding with the capability.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use launch::sys::caps::{self, CapChoice, CapPlan, CapSet, CapSets, Capability::*, ProcStatus};

/// A check failed: the child exits with this code plus the check's number.
const FAILED: i32 = 10;
/// Applying the plan failed.
const NOT_APPLIED: i32 = 99;
/// Sending the status failed.
const NOT_SENT: i32 = 98;
/// execve failed.
const NOT_EXECUTED: i32 = 97;

const NOBODY: u32 = 65534;

/// How the child ended and what it sent.
struct Child {
    code: i32,
    sent: String,
}

impl Child {
    fn status(&self) -> ProcStatus {
        ProcStatus::parse(&self.sent).unwrap_or_else(|| panic!("not a status: {:?}", self.sent))
    }
}

/// Fork; the child runs `body` with the write end of a pipe and exits with its result. The
/// body makes raw calls and calls `caps::apply`, which allocates nothing on success: the test
/// process has other threads, whose locks the child inherits held.
fn in_child(body: impl FnOnce(RawFd) -> i32) -> Child {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only makes system calls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(r);
        let code = body(w.as_raw_fd());
        // SAFETY: leave without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(w);
    let mut sent = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut sent).unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child killed: {status:#x}");
    Child {
        code: libc::WEXITSTATUS(status),
        sent: String::from_utf8_lossy(&sent).into_owned(),
    }
}

/// The errno of a raw call's result, 0 when it succeeded.
fn errno(r: libc::c_long) -> i32 {
    match r {
        -1 => nix::errno::Errno::last_raw(),
        _ => 0,
    }
}

/// Runs the numbered checks in order; the first that fails decides the exit code.
fn first_failure(checks: &[bool]) -> i32 {
    checks
        .iter()
        .position(|ok| !ok)
        .map_or(0, |i| FAILED + i as i32)
}

/// Copy /proc/self/status into `out`, without allocating.
fn send_status(out: RawFd) -> bool {
    let mut buf = [0u8; 16 * 1024];
    // SAFETY: a static path; reads into a stack buffer of the given size; writes from it.
    unsafe {
        let fd = libc::open(
            c"/proc/self/status".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return false;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n > 0 && libc::write(out, buf.as_ptr().cast(), n as usize) == n
    }
}

/// setgroups([]), setresgid and setresuid to `id`, as raw calls.
fn become_user(id: u32) -> launch::error::SysResult<()> {
    // SAFETY: integer arguments and an empty group list.
    let ok = unsafe {
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, id, id, id) == 0
            && libc::syscall(libc::SYS_setresuid, id, id, id) == 0
    };
    match ok {
        true => Ok(()),
        false => Err(launch::error::SysError::new(
            "setresuid",
            None,
            nix::errno::Errno::last(),
        )),
    }
}

/// socket(AF_PACKET, SOCK_RAW): needs CAP_NET_RAW. Closed again at once.
fn packet_socket() -> i32 {
    // SAFETY: creates and closes a socket of this (child) process.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from((libc::ETH_P_ALL as u16).to_be()),
        );
        if fd >= 0 {
            libc::close(fd);
        }
        errno(fd.into())
    }
}

/// mknod of a block device (loop0's numbers) at `path`: needs CAP_MKNOD. Removed again at once.
fn mknod_block(path: &CString) -> i32 {
    // SAFETY: a NUL-terminated path in a directory of this test; the node is never opened.
    unsafe {
        let r = libc::mknod(path.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0));
        if r == 0 {
            libc::unlink(path.as_ptr());
        }
        errno(r.into())
    }
}

/// A path for a device node, in a directory made for this test.
fn node_path(name: &str) -> (std::path::PathBuf, CString) {
    let dir = std::env::temp_dir().join(format!("launch-caps-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let node = CString::new(dir.join("blk").into_os_string().into_encoded_bytes()).unwrap();
    (dir, node)
}

/// What launch can give on this host: its own bounding set.
fn available() -> CapSet {
    ProcStatus::read_self().unwrap().sets.bounding
}

fn root_plan(choice: CapChoice) -> CapPlan {
    caps::plan(choice, 0, available())
}

/// Apply `plan` as root, send the status, then try a packet socket and a block device node.
fn as_root(plan: CapPlan, node: &CString) -> (Child, [i32; 2]) {
    let child = in_child(|out| {
        if caps::apply(&plan, || Ok(())).is_err() {
            return NOT_APPLIED;
        }
        if !send_status(out) {
            return NOT_SENT;
        }
        // The errnos go out as the exit code: 0 both succeeded, 1 the socket failed, 2 the node.
        let bits = i32::from(packet_socket() != 0) | i32::from(mknod_block(node) != 0) << 1;
        bits + 20
    });
    let bits = child.code - 20;
    assert!((0..4).contains(&bits), "child exited {}", child.code);
    (child, [bits & 1, bits >> 1])
}

#[test]
fn the_default_set_as_root_denies_raw_sockets_and_device_nodes() {
    let (dir, node) = node_path("default");
    let plan = root_plan(CapChoice::Default);
    let (child, [socket_failed, mknod_failed]) = as_root(plan, &node);
    let s = child.status();
    assert_eq!(s.sets, plan.sets);
    assert_eq!(s.sets.effective, caps::DEFAULT.intersection(available()));
    assert_eq!(s.sets.inheritable, CapSet::EMPTY);
    assert_eq!(s.sets.ambient, CapSet::EMPTY);
    assert_eq!((socket_failed, mknod_failed), (1, 1), "both refused");

    // The twin: the same calls with the two capabilities kept.
    let plan = root_plan(CapChoice::Modify {
        add: CapSet::of(&[CAP_NET_RAW, CAP_MKNOD]),
        drop: CapSet::EMPTY,
    });
    let (child, [socket_failed, mknod_failed]) = as_root(plan, &node);
    assert_eq!(child.status().sets, plan.sets);
    assert!(plan.sets.effective.contains(CAP_NET_RAW));
    assert_eq!((socket_failed, mknod_failed), (0, 0), "both allowed");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_capability_the_host_has_applies_and_the_missing_ones_are_left_out() {
    let plan = root_plan(CapChoice::List(CapSet::ALL));
    assert_eq!(plan.unavailable, CapSet::ALL.difference(available()));
    let child = in_child(|out| match caps::apply(&plan, || Ok(())) {
        Ok(()) if send_status(out) => 0,
        Ok(()) => NOT_SENT,
        Err(_) => NOT_APPLIED,
    });
    assert_eq!(child.code, 0);
    assert_eq!(child.status().sets.bounding, available());
    assert_eq!(child.status().sets.effective, available());
    if plan.unavailable.is_empty() {
        return;
    }
    // The twin: asking the kernel for what the bounding set lacks (on this host,
    // CAP_SYS_RESOURCE) is refused, which is why the plan leaves it out.
    let all = CapSets {
        bounding: CapSet::ALL,
        permitted: CapSet::ALL,
        effective: CapSet::ALL,
        inheritable: CapSet::EMPTY,
        ambient: CapSet::EMPTY,
    };
    let naive = CapPlan {
        sets: all,
        keep_caps: false,
        unavailable: CapSet::EMPTY,
    };
    let child = in_child(|_| match caps::apply(&naive, || Ok(())) {
        Err(e) if e.op == "capset" && e.errno == libc::EPERM => 0,
        Err(_) => FAILED,
        Ok(()) => FAILED + 1,
    });
    assert_eq!(child.code, 0);
}

#[test]
fn the_bounding_set_read_by_prctl_is_the_one_proc_reports() {
    assert_eq!(caps::bounding_now(), available());
    let plan = root_plan(CapChoice::Default);
    let child = in_child(|_| {
        if caps::apply(&plan, || Ok(())).is_err() {
            return NOT_APPLIED;
        }
        first_failure(&[caps::bounding_now() == plan.sets.bounding])
    });
    assert_eq!(child.code, 0);
}

/// Apply `choice` for `nobody`, check the packet socket, then exec `cat /proc/self/status`
/// with its output into the pipe.
fn as_nobody_then_exec(choice: CapChoice, socket_errno: i32) -> (CapPlan, Child) {
    let plan = caps::plan(choice, NOBODY, available());
    let cat = c"/bin/cat";
    let argv = [
        cat.as_ptr(),
        c"/proc/self/status".as_ptr(),
        std::ptr::null(),
    ];
    let envp = [std::ptr::null::<libc::c_char>()];
    let child = in_child(|out| {
        if caps::apply(&plan, || become_user(NOBODY)).is_err() {
            return NOT_APPLIED;
        }
        let ok = first_failure(&[
            // SAFETY: queries.
            unsafe { libc::getuid() == NOBODY && libc::geteuid() == NOBODY },
            packet_socket() == socket_errno,
            // SAFETY: dup2 onto stdout, in this child only.
            unsafe { libc::dup2(out, 1) } == 1,
        ]);
        if ok != 0 {
            return ok;
        }
        // SAFETY: NUL-terminated arrays of NUL-terminated strings, built before the fork.
        unsafe { libc::execve(cat.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        NOT_EXECUTED
    });
    (plan, child)
}

#[test]
fn a_non_root_user_without_named_capabilities_has_none() {
    let (plan, child) = as_nobody_then_exec(CapChoice::Default, libc::EPERM);
    assert_eq!(child.code, 0, "{}", child.sent);
    assert!(child.sent.starts_with("Name:\tcat\n"), "not cat's status");
    let s = child.status();
    assert_eq!(s.sets.effective, CapSet::EMPTY);
    assert_eq!(s.sets.permitted, CapSet::EMPTY);
    assert_eq!(s.sets.inheritable, CapSet::EMPTY);
    assert_eq!(s.sets.ambient, CapSet::EMPTY);
    assert_eq!(s.sets.bounding, plan.sets.bounding);
}

#[test]
fn a_non_root_user_keeps_a_named_capability_through_execve() {
    let (plan, child) = as_nobody_then_exec(CapChoice::List(CapSet::of(&[CAP_NET_RAW])), 0);
    assert!(plan.keep_caps);
    assert_eq!(child.code, 0, "{}", child.sent);
    let s = child.status();
    let raw = CapSet::of(&[CAP_NET_RAW]);
    assert_eq!(s.sets.ambient, raw);
    assert_eq!(s.sets.effective, raw);
    assert_eq!(s.sets.permitted, raw);
    assert_eq!(s.sets.bounding, raw);
    assert!(child.sent.starts_with("Name:\tcat\n"), "not cat's status");
}

#[test]
fn no_new_privs_is_set_and_reported() {
    for set in [true, false] {
        let child = in_child(|out| {
            if set && caps::set_no_new_privs().is_err() {
                return NOT_APPLIED;
            }
            match send_status(out) {
                true => 0,
                false => NOT_SENT,
            }
        });
        assert_eq!(child.code, 0);
        assert_eq!(child.status().no_new_privs, set);
    }
}
