//! The capabilities a container keeps when its manifest does not say: podman's 11.
//!
//! launch keeps the set podman has used since 4.x (containers/common, the default of
//! containers.conf, and Fedora's and RHEL's since 2020), not Docker's 14. The three Docker keeps
//! and launch does not are the ones almost no program needs and that reach past the container:
//!
//! - **CAP_NET_RAW**: raw and packet sockets can forge any frame (ARP and DNS spoofing of the
//!   other containers on a shared bridge), and the AF_PACKET code behind them has been a
//!   container escape (CVE-2017-7308, CVE-2020-14386). Kubernetes' "baseline" Pod Security
//!   standard leaves it out for that reason. `ping` does not need it: ICMP datagram sockets work
//!   for the groups in `net.ipv4.ping_group_range`.
//! - **CAP_MKNOD**: creates device nodes. Until a device allow-list is enforced, a node for the
//!   host's disk, made inside the container, reads the host's disk (issue 12 saw exactly that);
//!   after it, the nodes a container may use are launch's own /dev anyway.
//! - **CAP_AUDIT_WRITE**: writes records into the host's audit log, which no namespace
//!   separates. Only login programs (sshd, login, su with pam_loginuid) send them.
//!
//! Why not fewer: every capability kept is one an ordinary image's root uses (package managers
//! chown, chmod and keep setuid bits; daemons bind port 80 and drop to their own user; build tools
//! chroot), and podman's set is one users already know, with a record of images run against it
//! for years. Each can still be dropped, and the others added, in the manifest.
//!
//! [`DOCKER_ONLY`] keeps the three, with the reason, for docs and for `launch export oci`
//! comparisons; [`KEPT`] gives the reason for each capability kept.

use super::capability::Capability::{self, *};
use super::set::CapSet;

/// A capability in (or out of) the default set, and why.
pub struct Reason {
    /// The capability.
    pub cap: Capability,
    /// Why launch keeps it (in [`KEPT`]) or drops it (in [`DOCKER_ONLY`]).
    pub why: &'static str,
}

/// The capabilities kept by default, each with the programs that need it.
pub const KEPT: &[Reason] = &[
    Reason {
        cap: CAP_CHOWN,
        why: "package managers, useradd and entrypoint scripts chown files",
    },
    Reason {
        cap: CAP_DAC_OVERRIDE,
        why: "root reads and writes files whatever their mode, as images expect of root",
    },
    Reason {
        cap: CAP_FOWNER,
        why: "chmod and utime of files root does not own (package installs, tar)",
    },
    Reason {
        cap: CAP_FSETID,
        why: "files root writes keep their setuid and setgid bits (package installs)",
    },
    Reason {
        cap: CAP_KILL,
        why: "a root entrypoint signals its workers running as other users",
    },
    Reason {
        cap: CAP_NET_BIND_SERVICE,
        why: "servers bind ports below 1024 (80, 443)",
    },
    Reason {
        cap: CAP_SETFCAP,
        why: "package installs set file capabilities (ping's cap_net_raw)",
    },
    Reason {
        cap: CAP_SETGID,
        why: "su, gosu and daemons switch to their own group",
    },
    Reason {
        cap: CAP_SETPCAP,
        why: "programs drop capabilities from their own bounding set before running others",
    },
    Reason {
        cap: CAP_SETUID,
        why: "su, gosu and daemons switch to their own user",
    },
    Reason {
        cap: CAP_SYS_CHROOT,
        why: "build tools and sshd's privilege separation chroot, within the container's root",
    },
];

/// The capabilities Docker keeps and launch drops, and why.
pub const DOCKER_ONLY: &[Reason] = &[
    Reason {
        cap: CAP_NET_RAW,
        why: "raw and packet sockets forge any frame and have been a container escape \
              (CVE-2020-14386); ping works without it",
    },
    Reason {
        cap: CAP_MKNOD,
        why: "a device node made in the container reaches the host's device",
    },
    Reason {
        cap: CAP_AUDIT_WRITE,
        why: "writes into the host's audit log; only login programs use it",
    },
];

/// The default set, as a set.
pub const DEFAULT: CapSet = CapSet::of(&[
    CAP_CHOWN,
    CAP_DAC_OVERRIDE,
    CAP_FOWNER,
    CAP_FSETID,
    CAP_KILL,
    CAP_NET_BIND_SERVICE,
    CAP_SETFCAP,
    CAP_SETGID,
    CAP_SETPCAP,
    CAP_SETUID,
    CAP_SYS_CHROOT,
]);

/// Docker's default set (moby's `oci.DefaultCapabilities`), for comparisons.
pub const DOCKER: CapSet = DEFAULT.union(CapSet::of(&[CAP_NET_RAW, CAP_MKNOD, CAP_AUDIT_WRITE]));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reasons_list_exactly_the_sets() {
        assert_eq!(DEFAULT.len(), 11);
        assert_eq!(KEPT.iter().map(|r| r.cap).collect::<CapSet>(), DEFAULT);
        assert_eq!(KEPT.len(), DEFAULT.len(), "a capability listed twice");
        assert_eq!(DOCKER.len(), 14);
        assert_eq!(
            DOCKER_ONLY.iter().map(|r| r.cap).collect::<CapSet>(),
            DOCKER.difference(DEFAULT)
        );
    }

    #[test]
    fn the_default_keeps_nothing_that_reaches_the_host() {
        for c in [
            CAP_SYS_ADMIN,
            CAP_SYS_MODULE,
            CAP_SYS_RAWIO,
            CAP_SYS_PTRACE,
            CAP_DAC_READ_SEARCH,
            CAP_NET_ADMIN,
            CAP_NET_RAW,
            CAP_MKNOD,
            CAP_BPF,
            CAP_SYS_TIME,
        ] {
            assert!(!DEFAULT.contains(c), "{c}");
        }
    }
}
