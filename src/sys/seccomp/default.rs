//! launch's default profile: an allow-list with the effect of Docker's default. Everything not
//! listed fails with EPERM; calls that reach past the container (namespaces, mounts, the kernel's
//! keyring, modules, the clock, other processes' memory) are allowed only when the container keeps
//! the capability that makes them useful, so dropping a capability also removes the kernel code
//! behind it from the container's reach.
//!
//! Stricter than Docker in three places, as issue 12 asks: ptrace-class calls need
//! CAP_SYS_PTRACE (Docker allows them from kernel 4.8), `adjtimex`/`clock_adjtime` need
//! CAP_SYS_TIME, and `io_uring_*` stay out (as in Docker since 25.0) with `userfaultfd`.

use super::action::Action;
use super::json::cap_name;
use super::profile::{Cmp, Profile, Rule};

/// The default profile's name, shown in plans.
pub const NAME: &str = "default";

/// A group of calls and why they are in the list.
pub struct Group {
    /// Why the group is allowed.
    pub why: &'static str,
    /// Syscall names (those this architecture lacks are skipped).
    pub names: &'static [&'static str],
}

/// Calls every container may make.
pub const ALWAYS: &[Group] = &[
    Group {
        why: "a process's own life: exit, its ids, its session and process group",
        names: &[
            "exit",
            "exit_group",
            "getpid",
            "getppid",
            "gettid",
            "getpgid",
            "getpgrp",
            "getsid",
            "setsid",
            "setpgid",
            "getuid",
            "geteuid",
            "getgid",
            "getegid",
            "getresuid",
            "getresgid",
            "getgroups",
            "capget",
        ],
    },
    Group {
        why: "changing ids and capabilities: the kernel checks CAP_SETUID, CAP_SETGID, CAP_SETPCAP",
        names: &[
            "setuid",
            "setgid",
            "setreuid",
            "setregid",
            "setresuid",
            "setresgid",
            "setfsuid",
            "setfsgid",
            "setgroups",
            "capset",
        ],
    },
    Group {
        why: "running a program: exec, memory maps, thread setup, futexes",
        names: &[
            "execve",
            "execveat",
            "brk",
            "mmap",
            "munmap",
            "mremap",
            "mprotect",
            "madvise",
            "mincore",
            "msync",
            "mlock",
            "mlock2",
            "mlockall",
            "munlock",
            "munlockall",
            "remap_file_pages",
            "membarrier",
            "pkey_alloc",
            "pkey_free",
            "pkey_mprotect",
            "set_tid_address",
            "set_robust_list",
            "get_robust_list",
            "rseq",
            "prctl",
            "futex",
            "futex_waitv",
            "memfd_create",
            "memfd_secret",
            "mseal",
            "arch_prctl",
            "modify_ldt",
        ],
    },
    Group {
        why: "children and signals to processes the container can see (the kernel checks uids)",
        names: &[
            "fork",
            "vfork",
            "wait4",
            "waitid",
            "kill",
            "tkill",
            "tgkill",
            "pidfd_open",
            "pidfd_send_signal",
            "process_mrelease",
            "restart_syscall",
        ],
    },
    Group {
        why: "scheduling and limits of its own processes (raising them needs CAP_SYS_NICE/RESOURCE)",
        names: &[
            "sched_yield",
            "sched_getaffinity",
            "sched_setaffinity",
            "sched_getparam",
            "sched_setparam",
            "sched_getscheduler",
            "sched_setscheduler",
            "sched_getattr",
            "sched_setattr",
            "sched_get_priority_max",
            "sched_get_priority_min",
            "sched_rr_get_interval",
            "getpriority",
            "setpriority",
            "ioprio_get",
            "ioprio_set",
            "getcpu",
            "getrlimit",
            "setrlimit",
            "prlimit64",
            "getrusage",
            "times",
            "sysinfo",
            "uname",
            "umask",
        ],
    },
    Group {
        why: "tightening its own confinement further",
        names: &[
            "seccomp",
            "landlock_create_ruleset",
            "landlock_add_rule",
            "landlock_restrict_self",
        ],
    },
    Group {
        why: "signals, timers and sleeping",
        names: &[
            "rt_sigaction",
            "rt_sigprocmask",
            "rt_sigreturn",
            "rt_sigpending",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "rt_sigqueueinfo",
            "rt_tgsigqueueinfo",
            "sigaltstack",
            "signalfd",
            "signalfd4",
            "pause",
            "alarm",
            "getitimer",
            "setitimer",
            "timer_create",
            "timer_delete",
            "timer_gettime",
            "timer_settime",
            "timer_getoverrun",
            "nanosleep",
            "clock_nanosleep",
            "clock_gettime",
            "clock_getres",
            "gettimeofday",
            "time",
            "timerfd_create",
            "timerfd_gettime",
            "timerfd_settime",
            "getrandom",
        ],
    },
    Group {
        why: "files: the container's mount namespace and the file modes decide what they reach",
        names: &[
            "read",
            "write",
            "readv",
            "writev",
            "pread64",
            "pwrite64",
            "preadv",
            "pwritev",
            "preadv2",
            "pwritev2",
            "open",
            "openat",
            "openat2",
            "creat",
            "close",
            "close_range",
            "dup",
            "dup2",
            "dup3",
            "lseek",
            "fcntl",
            "flock",
            "fsync",
            "fdatasync",
            "sync",
            "syncfs",
            "sync_file_range",
            "truncate",
            "ftruncate",
            "fallocate",
            "fadvise64",
            "readahead",
            "sendfile",
            "splice",
            "tee",
            "vmsplice",
            "copy_file_range",
            "ioctl",
            "stat",
            "fstat",
            "lstat",
            "newfstatat",
            "statx",
            "statfs",
            "fstatfs",
            "access",
            "faccessat",
            "faccessat2",
            "getcwd",
            "chdir",
            "fchdir",
            "mkdir",
            "mkdirat",
            "rmdir",
            "rename",
            "renameat",
            "renameat2",
            "link",
            "linkat",
            "symlink",
            "symlinkat",
            "unlink",
            "unlinkat",
            "readlink",
            "readlinkat",
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "chown",
            "fchown",
            "fchownat",
            "lchown",
            "utime",
            "utimes",
            "utimensat",
            "futimesat",
            "mknod",
            "mknodat",
            "getdents",
            "getdents64",
            "name_to_handle_at",
        ],
    },
    Group {
        why: "extended attributes (security.* and trusted.* need capabilities)",
        names: &[
            "getxattr",
            "lgetxattr",
            "fgetxattr",
            "setxattr",
            "lsetxattr",
            "fsetxattr",
            "listxattr",
            "llistxattr",
            "flistxattr",
            "removexattr",
            "lremovexattr",
            "fremovexattr",
        ],
    },
    Group {
        why: "waiting on descriptors, file change notification, pipes, asynchronous I/O",
        names: &[
            "select",
            "pselect6",
            "poll",
            "ppoll",
            "epoll_create",
            "epoll_create1",
            "epoll_ctl",
            "epoll_wait",
            "epoll_pwait",
            "epoll_pwait2",
            "epoll_ctl_old",
            "epoll_wait_old",
            "eventfd",
            "eventfd2",
            "pipe",
            "pipe2",
            "inotify_init",
            "inotify_init1",
            "inotify_add_watch",
            "inotify_rm_watch",
            "fanotify_mark",
            "io_setup",
            "io_destroy",
            "io_submit",
            "io_cancel",
            "io_getevents",
            "io_pgetevents",
        ],
    },
    Group {
        why: "networking in the container's network namespace (raw sockets need CAP_NET_RAW)",
        names: &[
            "socketpair",
            "bind",
            "listen",
            "accept",
            "accept4",
            "connect",
            "getsockname",
            "getpeername",
            "getsockopt",
            "setsockopt",
            "sendto",
            "recvfrom",
            "sendmsg",
            "recvmsg",
            "sendmmsg",
            "recvmmsg",
            "shutdown",
        ],
    },
    Group {
        why: "System V and POSIX IPC, inside the container's IPC namespace",
        names: &[
            "msgget",
            "msgsnd",
            "msgrcv",
            "msgctl",
            "semget",
            "semop",
            "semtimedop",
            "semctl",
            "shmget",
            "shmat",
            "shmdt",
            "shmctl",
            "mq_open",
            "mq_unlink",
            "mq_timedsend",
            "mq_timedreceive",
            "mq_notify",
            "mq_getsetattr",
        ],
    },
];

/// Calls allowed only when the container keeps a capability, each with why they need it.
pub const WITH_CAP: &[(&str, Group)] = &[
    (
        "CAP_SYS_ADMIN",
        Group {
            why: "namespaces, mounts, the keyring, swap, quotas, host and domain names",
            names: &[
                "unshare",
                "setns",
                "clone",
                "clone3",
                "mount",
                "umount2",
                "pivot_root",
                "fsopen",
                "fsconfig",
                "fsmount",
                "fspick",
                "move_mount",
                "open_tree",
                "mount_setattr",
                "keyctl",
                "add_key",
                "request_key",
                "swapon",
                "swapoff",
                "quotactl",
                "quotactl_fd",
                "sethostname",
                "setdomainname",
                "bpf",
                "perf_event_open",
                "fanotify_init",
                "lookup_dcookie",
                "syslog",
            ],
        },
    ),
    (
        "CAP_DAC_READ_SEARCH",
        Group {
            why: "opening a file by handle bypasses the mount namespace (the host's root)",
            names: &["open_by_handle_at"],
        },
    ),
    (
        "CAP_SYS_PTRACE",
        Group {
            why: "reading and writing other processes' memory and descriptors",
            names: &[
                "ptrace",
                "process_vm_readv",
                "process_vm_writev",
                "kcmp",
                "pidfd_getfd",
                "process_madvise",
                "userfaultfd",
            ],
        },
    ),
    (
        "CAP_SYS_MODULE",
        Group {
            why: "loading code into the host's kernel",
            names: &["init_module", "finit_module", "delete_module"],
        },
    ),
    (
        "CAP_SYS_BOOT",
        Group {
            why: "rebooting, or booting another kernel",
            names: &["reboot", "kexec_load", "kexec_file_load"],
        },
    ),
    (
        "CAP_SYS_CHROOT",
        Group {
            why: "changing the root directory",
            names: &["chroot"],
        },
    ),
    (
        "CAP_SYS_PACCT",
        Group {
            why: "process accounting to a file, host-wide",
            names: &["acct"],
        },
    ),
    (
        "CAP_SYS_RAWIO",
        Group {
            why: "direct access to I/O ports",
            names: &["iopl", "ioperm"],
        },
    ),
    (
        "CAP_SYS_TIME",
        Group {
            why: "the system clock is not namespaced: setting it changes the host's",
            names: &["settimeofday", "clock_settime", "adjtimex", "clock_adjtime"],
        },
    ),
    (
        "CAP_SYS_TTY_CONFIG",
        Group {
            why: "hanging up the terminal",
            names: &["vhangup"],
        },
    ),
    (
        "CAP_SYS_NICE",
        Group {
            why: "NUMA memory placement, which affects the host's other tasks",
            names: &[
                "mbind",
                "get_mempolicy",
                "set_mempolicy",
                "set_mempolicy_home_node",
                "migrate_pages",
                "move_pages",
            ],
        },
    ),
    (
        "CAP_SYSLOG",
        Group {
            why: "the kernel log",
            names: &["syslog"],
        },
    ),
    (
        "CAP_BPF",
        Group {
            why: "loading BPF programs into the kernel",
            names: &["bpf"],
        },
    ),
    (
        "CAP_PERFMON",
        Group {
            why: "performance counters, which observe the host",
            names: &["perf_event_open"],
        },
    ),
];

/// `personality` values that only change what `uname` reports or query the current value;
/// others (e.g. ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC) weaken the process's protections.
pub const SAFE_PERSONALITIES: &[u64] = &[
    0x0,         // PER_LINUX
    0x8,         // PER_LINUX32
    0x2_0000,    // UNAME26
    0x2_0008,    // UNAME26 | PER_LINUX32
    0xffff_ffff, // query only
];

/// The CLONE_NEW* flags: clone with any of them creates a namespace.
pub const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// AF_VSOCK: sockets to the hypervisor, outside every network namespace.
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;

/// The default profile for a container keeping `kept_caps` (`CAP_SYS_ADMIN` or `SYS_ADMIN`).
pub fn default_profile(kept_caps: &[&str]) -> Profile {
    let kept = |cap: &str| kept_caps.iter().any(|k| cap_name(k) == cap);
    let mut rules: Vec<Rule> = ALWAYS
        .iter()
        .map(|g| Rule::new(Action::Allow, g.names))
        .collect();
    rules.push(Rule::new(Action::Allow, &["socket"]).when(0, Cmp::Ne(AF_VSOCK)));
    for &p in SAFE_PERSONALITIES {
        rules.push(Rule::new(Action::Allow, &["personality"]).when(0, Cmp::Eq(p)));
    }
    if !kept("CAP_SYS_ADMIN") {
        // Threads and plain children, never a new namespace. clone3 passes its flags in
        // memory, out of the filter's sight: ENOSYS makes libc fall back to clone.
        rules.push(Rule::new(Action::Allow, &["clone"]).when(
            0,
            Cmp::MaskedEq {
                mask: CLONE_NAMESPACES,
                value: 0,
            },
        ));
        rules.push(Rule::new(Action::Errno(libc::ENOSYS as u16), &["clone3"]));
    }
    for (cap, group) in WITH_CAP {
        if kept(cap) {
            rules.push(Rule::new(Action::Allow, group.names));
        }
    }
    Profile {
        name: NAME.to_string(),
        default_action: Action::Errno(libc::EPERM as u16),
        rules,
        log: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::seccomp::bpf::run;
    use crate::sys::seccomp::compile::{Program, compile};
    use crate::sys::seccomp::known_names::KNOWN;
    use crate::sys::seccomp::native;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    fn call(p: &Program, name: &str, arg0: u64) -> u32 {
        let arch = native().unwrap();
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&arch.number(name).unwrap().to_ne_bytes());
        d[4..8].copy_from_slice(&arch.audit_arch.to_ne_bytes());
        d[16..24].copy_from_slice(&arg0.to_ne_bytes());
        run(&p.instructions, &d)
    }

    fn names(p: &Profile) -> Vec<&str> {
        p.rules
            .iter()
            .flat_map(|r| r.syscalls.iter().map(|s| s.as_ref()))
            .collect()
    }

    #[test]
    fn every_name_is_a_real_syscall_and_listed_once_per_group_kind() {
        let p = default_profile(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_TIME"]);
        for n in names(&p) {
            assert!(KNOWN.binary_search(&n).is_ok(), "{n} is no syscall");
        }
        let mut always: Vec<&str> = ALWAYS
            .iter()
            .flat_map(|g| g.names.iter().copied())
            .collect();
        let len = always.len();
        always.sort();
        always.dedup();
        assert_eq!(always.len(), len, "a call listed twice");
        for (_, g) in WITH_CAP {
            for n in g.names {
                assert!(
                    always.binary_search(n).is_err(),
                    "{n} is both always and cap-gated"
                );
            }
        }
    }

    #[test]
    fn without_capabilities_escapes_are_denied() {
        let p = compile(&default_profile(&[])).unwrap();
        for name in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "pivot_root",
            "bpf",
            "keyctl",
            "add_key",
            "request_key",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "perf_event_open",
            "open_by_handle_at",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "reboot",
            "swapon",
            "swapoff",
            "acct",
            "settimeofday",
            "clock_settime",
            "adjtimex",
            "syslog",
            "userfaultfd",
            "iopl",
            "ioperm",
            "io_uring_setup",
            "chroot",
            "sethostname",
            "fsopen",
            "open_tree",
        ] {
            if native().unwrap().number(name).is_some() {
                assert_eq!(call(&p, name, 0), EPERM, "{name}");
            }
        }
        for name in [
            "read",
            "write",
            "openat",
            "getpid",
            "execve",
            "exit_group",
            "futex",
            "fork",
        ] {
            assert_eq!(call(&p, name, 0), ALLOW, "{name}");
        }
    }

    #[test]
    fn clone_without_namespaces_and_clone3_enosys() {
        let p = compile(&default_profile(&[])).unwrap();
        let fork_flags = libc::SIGCHLD as u64;
        let thread =
            (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_THREAD) as u64;
        assert_eq!(call(&p, "clone", fork_flags), ALLOW);
        assert_eq!(call(&p, "clone", thread), ALLOW);
        for ns in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
        ] {
            assert_eq!(call(&p, "clone", fork_flags | ns as u64), EPERM, "{ns:#x}");
        }
        assert_eq!(call(&p, "clone3", 0), ENOSYS);

        let admin = compile(&default_profile(&["SYS_ADMIN"])).unwrap();
        assert_eq!(call(&admin, "clone", libc::CLONE_NEWUSER as u64), ALLOW);
        assert_eq!(call(&admin, "clone3", 0), ALLOW);
        assert_eq!(call(&admin, "unshare", libc::CLONE_NEWUSER as u64), ALLOW);
        assert_eq!(call(&admin, "mount", 0), ALLOW);
        assert_eq!(
            call(&admin, "ptrace", 0),
            EPERM,
            "CAP_SYS_ADMIN does not give ptrace"
        );
    }

    #[test]
    fn each_capability_opens_its_own_group_only() {
        for (cap, group) in WITH_CAP {
            let p = compile(&default_profile(&[cap])).unwrap();
            let none = compile(&default_profile(&[])).unwrap();
            for n in group.names {
                if native().unwrap().number(n).is_some() && *n != "clone" {
                    assert_eq!(call(&p, n, 0), ALLOW, "{cap} {n}");
                    let without = call(&none, n, 0);
                    assert!(without == EPERM || without == ENOSYS, "{n} without {cap}");
                }
            }
        }
    }

    #[test]
    fn personality_only_with_safe_values_and_socket_not_vsock() {
        let p = compile(&default_profile(&[])).unwrap();
        for v in [0u64, 8, 0x2_0000, 0xffff_ffff] {
            assert_eq!(call(&p, "personality", v), ALLOW, "{v:#x}");
        }
        assert_eq!(
            call(&p, "personality", 0x0040000),
            EPERM,
            "ADDR_NO_RANDOMIZE"
        );
        assert_eq!(
            call(&p, "personality", 0x1_0000_0000),
            EPERM,
            "high half counts"
        );
        assert_eq!(call(&p, "socket", libc::AF_INET as u64), ALLOW);
        assert_eq!(call(&p, "socket", libc::AF_VSOCK as u64), EPERM);
    }

    /// The size reported in the module docs and the hand-off; fails loudly if it grows past
    /// what a reviewer was told.
    #[test]
    fn the_default_program_is_small() {
        for caps in [&[][..], &["CAP_SYS_ADMIN"][..]] {
            let p = compile(&default_profile(caps)).unwrap();
            eprintln!(
                "default {caps:?}: {} instructions, {} rules, {}",
                p.instructions.len(),
                p.rules,
                p.digest
            );
            assert!(p.instructions.len() < 200, "{}", p.instructions.len());
        }
    }
}
