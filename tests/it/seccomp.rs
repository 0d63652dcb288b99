//! seccomp filters on the real kernel: a forked child sets no_new_privs, loads a compiled
//! profile and makes raw system calls; its exit code says which check failed (0: none). Each
//! filtered test has an unfiltered twin showing the same calls behave otherwise without it.

use launch::sys::seccomp::{self, LoadFlags, Program};

/// A check failed: the child exits with this code plus the check's number.
const FAILED: i32 = 10;
/// Loading the filter failed.
const NOT_LOADED: i32 = 99;

/// How the child ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Exited(i32),
    Signaled(i32),
}

/// Fork; the child sets no_new_privs, loads `program` (if any) and exits with `checks()`.
/// `checks` must make raw system calls only: the test process has other threads, whose locks
/// (the allocator's) the child inherits held.
fn in_child(program: Option<&Program>, flags: LoadFlags, checks: fn() -> i32) -> End {
    // SAFETY: the child only makes system calls (no allocation on load's success path) and
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: prctl and _exit are plain system calls.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(NOT_LOADED);
            }
            if let Some(p) = program {
                if seccomp::load(p, flags).is_err() {
                    libc::_exit(NOT_LOADED);
                }
            }
            libc::_exit(checks());
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    if libc::WIFEXITED(status) {
        End::Exited(libc::WEXITSTATUS(status))
    } else {
        End::Signaled(libc::WTERMSIG(status))
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

fn unshare_user() -> i32 {
    // SAFETY: a new user namespace for this (child) process only.
    errno(unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) })
}

fn mount_tmpfs_on_missing_dir() -> i32 {
    // The target does not exist: unfiltered, root gets ENOENT (and nothing is mounted).
    // SAFETY: NUL-terminated static strings.
    errno(unsafe {
        libc::syscall(
            libc::SYS_mount,
            c"none".as_ptr(),
            c"/nonexistent-launch-seccomp-test".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null::<u8>(),
        )
    })
}

fn keyctl_session_keyring() -> i32 {
    // KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3), without creating it.
    // SAFETY: integer arguments only.
    errno(unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) })
}

fn clone3_without_args() -> i32 {
    // Unfiltered: EINVAL (size 0). Filtered: ENOSYS, before the kernel looks at it.
    // SAFETY: a null pointer with size 0 is rejected before anything is read.
    errno(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) })
}

/// clone with fork semantics and `flags`; the new process exits at once.
fn clone_with(flags: libc::c_long) -> i32 {
    // SAFETY: no CLONE_VM and no new stack: the child is a copy that only calls _exit.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_long,
            0,
            0,
            0,
            0,
        )
    };
    if r == 0 {
        // SAFETY: leave the grandchild without running anything else.
        unsafe { libc::_exit(0) };
    }
    if r > 0 {
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(r as libc::pid_t, &mut status, 0) };
    }
    errno(r)
}

/// getpid, a 0-byte write, openat and close: what every program does.
fn ordinary_calls_work() -> bool {
    // SAFETY: plain calls on our own descriptors and a static path.
    unsafe {
        let pid = libc::syscall(libc::SYS_getpid);
        let written = libc::syscall(libc::SYS_write, 2, c"".as_ptr(), 0);
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        let closed = if fd >= 0 {
            libc::syscall(libc::SYS_close, fd)
        } else {
            -1
        };
        pid > 0 && written == 0 && fd >= 0 && closed == 0
    }
}

fn seccomp_mode() -> i32 {
    // SAFETY: a query.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) }
}

fn default_program(caps: &[&str]) -> Program {
    seccomp::compile(&seccomp::default_profile(caps)).unwrap()
}

#[test]
fn default_filter_denies_escapes_and_allows_ordinary_calls() {
    let p = default_program(&[]);
    let end = in_child(Some(&p), LoadFlags::default(), || {
        first_failure(&[
            seccomp_mode() == 2,
            // Before unshare: once in a new, unmapped user namespace, nesting another fails.
            clone_with(libc::CLONE_NEWUSER as libc::c_long) == libc::EPERM,
            unshare_user() == libc::EPERM,
            mount_tmpfs_on_missing_dir() == libc::EPERM,
            keyctl_session_keyring() == libc::EPERM,
            clone3_without_args() == libc::ENOSYS,
            clone_with(0) == 0,
            ordinary_calls_work(),
        ])
    });
    assert_eq!(end, End::Exited(0), "{} instructions", p.instructions.len());
}

/// The twin of the test above: the same calls, unfiltered, do not fail that way.
#[test]
fn without_a_filter_the_same_calls_behave_otherwise() {
    let end = in_child(None, LoadFlags::default(), || {
        first_failure(&[
            seccomp_mode() == 0,
            clone_with(libc::CLONE_NEWUSER as libc::c_long) == 0,
            unshare_user() == 0,
            mount_tmpfs_on_missing_dir() == libc::ENOENT,
            keyctl_session_keyring() != libc::EPERM,
            clone3_without_args() == libc::EINVAL,
            clone_with(0) == 0,
            ordinary_calls_work(),
        ])
    });
    assert_eq!(end, End::Exited(0));
}

#[test]
fn keeping_cap_sys_admin_allows_namespaces() {
    let p = default_program(&["CAP_SYS_ADMIN"]);
    // With the log flag too: denials would go to the kernel log.
    let end = in_child(Some(&p), LoadFlags { log: true }, || {
        first_failure(&[
            unshare_user() == 0,
            clone3_without_args() == libc::EINVAL,
            keyctl_session_keyring() != libc::EPERM,
            ordinary_calls_work(),
        ])
    });
    assert_eq!(end, End::Exited(0));
}

fn personality(persona: u64) -> i32 {
    // SAFETY: changes this (child) process's execution domain only.
    errno(unsafe { libc::syscall(libc::SYS_personality, persona) })
}

#[test]
fn an_argument_filter_decides_by_the_whole_64_bit_value() {
    let file = seccomp::parse(
        r#"{
          "defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_EQ" }] },
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }
          ]
        }"#,
    )
    .unwrap();
    let arch = seccomp::native().unwrap();
    let conditions = seccomp::Conditions {
        caps: &[],
        arch: &arch,
        kernel: (6, 0),
    };
    let p = seccomp::compile(&file.resolve("personality-zero", &conditions)).unwrap();
    let end = in_child(Some(&p), LoadFlags::default(), || {
        first_failure(&[
            personality(0) == 0,
            personality(8) == libc::EACCES,
            // The kernel reads an unsigned int (0 here); the filter sees all 64 bits.
            personality(0x1_0000_0000) == libc::EACCES,
            ordinary_calls_work(),
        ])
    });
    assert_eq!(end, End::Exited(0));
    let unfiltered = in_child(None, LoadFlags::default(), || {
        first_failure(&[personality(8) == 0, personality(0x1_0000_0000) == 0])
    });
    assert_eq!(unfiltered, End::Exited(0));
}

#[cfg(target_arch = "x86_64")]
fn x32_getpid() -> i32 {
    // SAFETY: getpid through the x32 ABI: no arguments, no effect.
    errno(unsafe { libc::syscall(0x4000_0000 | libc::SYS_getpid) })
}

#[cfg(target_arch = "x86_64")]
#[test]
fn an_x32_call_kills_the_process() {
    let p = default_program(&[]);
    let end = in_child(Some(&p), LoadFlags::default(), || {
        x32_getpid();
        0
    });
    assert_eq!(end, End::Signaled(libc::SIGSYS));
    // Unfiltered, the call returns (a pid, or ENOSYS on kernels without x32).
    let end = in_child(None, LoadFlags::default(), || match x32_getpid() {
        0 | libc::ENOSYS => 0,
        _ => FAILED,
    });
    assert_eq!(end, End::Exited(0));
}
