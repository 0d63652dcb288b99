//! The kernel's capabilities, by number and by name (linux/capability.h, 0 to 40).

use serde::{Deserialize, Serialize};

/// One capability. The discriminant is the kernel's number (the bit in a capability set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[repr(u8)]
pub enum Capability {
    /// Change a file's owner and group.
    CAP_CHOWN = 0,
    /// Bypass file read, write and execute permission checks.
    CAP_DAC_OVERRIDE = 1,
    /// Bypass file read and directory search checks; open_by_handle_at(2).
    CAP_DAC_READ_SEARCH = 2,
    /// Bypass checks that the caller owns the file (chmod, utime, ...).
    CAP_FOWNER = 3,
    /// Keep set-user/group-ID bits when a file is modified.
    CAP_FSETID = 4,
    /// Send signals to processes of other users.
    CAP_KILL = 5,
    /// Change group ids.
    CAP_SETGID = 6,
    /// Change user ids.
    CAP_SETUID = 7,
    /// Change the bounding set and other capability sets.
    CAP_SETPCAP = 8,
    /// Set immutable and append-only file attributes.
    CAP_LINUX_IMMUTABLE = 9,
    /// Bind ports below 1024.
    CAP_NET_BIND_SERVICE = 10,
    /// Broadcast and listen to multicast (unused by the kernel).
    CAP_NET_BROADCAST = 11,
    /// Configure interfaces, routes, firewalls.
    CAP_NET_ADMIN = 12,
    /// Raw and packet sockets.
    CAP_NET_RAW = 13,
    /// Lock memory.
    CAP_IPC_LOCK = 14,
    /// Bypass System V IPC permission checks.
    CAP_IPC_OWNER = 15,
    /// Load and unload kernel modules.
    CAP_SYS_MODULE = 16,
    /// I/O ports, /dev/mem, raw block access.
    CAP_SYS_RAWIO = 17,
    /// chroot(2).
    CAP_SYS_CHROOT = 18,
    /// ptrace any process.
    CAP_SYS_PTRACE = 19,
    /// Process accounting.
    CAP_SYS_PACCT = 20,
    /// mount, namespaces, and much else.
    CAP_SYS_ADMIN = 21,
    /// reboot(2), kexec.
    CAP_SYS_BOOT = 22,
    /// Raise priorities, real-time scheduling.
    CAP_SYS_NICE = 23,
    /// Override resource limits and quotas.
    CAP_SYS_RESOURCE = 24,
    /// Set the system clock.
    CAP_SYS_TIME = 25,
    /// Configure terminals, vhangup(2).
    CAP_SYS_TTY_CONFIG = 26,
    /// Create device nodes with mknod(2).
    CAP_MKNOD = 27,
    /// Take file leases.
    CAP_LEASE = 28,
    /// Write to the kernel's audit log.
    CAP_AUDIT_WRITE = 29,
    /// Configure auditing.
    CAP_AUDIT_CONTROL = 30,
    /// Set file capabilities.
    CAP_SETFCAP = 31,
    /// Override mandatory access control (Smack).
    CAP_MAC_OVERRIDE = 32,
    /// Configure mandatory access control (Smack).
    CAP_MAC_ADMIN = 33,
    /// syslog(2), the kernel log.
    CAP_SYSLOG = 34,
    /// Timers that wake the system.
    CAP_WAKE_ALARM = 35,
    /// Block system suspend.
    CAP_BLOCK_SUSPEND = 36,
    /// Read the audit log through multicast netlink.
    CAP_AUDIT_READ = 37,
    /// Performance monitoring (perf_event_open).
    CAP_PERFMON = 38,
    /// BPF programs and maps.
    CAP_BPF = 39,
    /// Checkpoint/restore (set_tid, /proc/PID/map_files).
    CAP_CHECKPOINT_RESTORE = 40,
}

impl Capability {
    /// The highest capability launch knows (`/proc/sys/kernel/cap_last_cap` on Linux 5.9+).
    pub const LAST: Capability = Capability::CAP_CHECKPOINT_RESTORE;

    /// Every capability, by number.
    pub const ALL: [Capability; 41] = {
        use Capability::*;
        [
            CAP_CHOWN,
            CAP_DAC_OVERRIDE,
            CAP_DAC_READ_SEARCH,
            CAP_FOWNER,
            CAP_FSETID,
            CAP_KILL,
            CAP_SETGID,
            CAP_SETUID,
            CAP_SETPCAP,
            CAP_LINUX_IMMUTABLE,
            CAP_NET_BIND_SERVICE,
            CAP_NET_BROADCAST,
            CAP_NET_ADMIN,
            CAP_NET_RAW,
            CAP_IPC_LOCK,
            CAP_IPC_OWNER,
            CAP_SYS_MODULE,
            CAP_SYS_RAWIO,
            CAP_SYS_CHROOT,
            CAP_SYS_PTRACE,
            CAP_SYS_PACCT,
            CAP_SYS_ADMIN,
            CAP_SYS_BOOT,
            CAP_SYS_NICE,
            CAP_SYS_RESOURCE,
            CAP_SYS_TIME,
            CAP_SYS_TTY_CONFIG,
            CAP_MKNOD,
            CAP_LEASE,
            CAP_AUDIT_WRITE,
            CAP_AUDIT_CONTROL,
            CAP_SETFCAP,
            CAP_MAC_OVERRIDE,
            CAP_MAC_ADMIN,
            CAP_SYSLOG,
            CAP_WAKE_ALARM,
            CAP_BLOCK_SUSPEND,
            CAP_AUDIT_READ,
            CAP_PERFMON,
            CAP_BPF,
            CAP_CHECKPOINT_RESTORE,
        ]
    };

    /// The kernel's number.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The capability with this number, if launch knows it.
    pub fn from_number(n: u8) -> Option<Capability> {
        Self::ALL.get(usize::from(n)).copied()
    }

    /// The kernel's name, `CAP_SYS_ADMIN`.
    pub fn name(self) -> &'static str {
        use Capability::*;
        match self {
            CAP_CHOWN => "CAP_CHOWN",
            CAP_DAC_OVERRIDE => "CAP_DAC_OVERRIDE",
            CAP_DAC_READ_SEARCH => "CAP_DAC_READ_SEARCH",
            CAP_FOWNER => "CAP_FOWNER",
            CAP_FSETID => "CAP_FSETID",
            CAP_KILL => "CAP_KILL",
            CAP_SETGID => "CAP_SETGID",
            CAP_SETUID => "CAP_SETUID",
            CAP_SETPCAP => "CAP_SETPCAP",
            CAP_LINUX_IMMUTABLE => "CAP_LINUX_IMMUTABLE",
            CAP_NET_BIND_SERVICE => "CAP_NET_BIND_SERVICE",
            CAP_NET_BROADCAST => "CAP_NET_BROADCAST",
            CAP_NET_ADMIN => "CAP_NET_ADMIN",
            CAP_NET_RAW => "CAP_NET_RAW",
            CAP_IPC_LOCK => "CAP_IPC_LOCK",
            CAP_IPC_OWNER => "CAP_IPC_OWNER",
            CAP_SYS_MODULE => "CAP_SYS_MODULE",
            CAP_SYS_RAWIO => "CAP_SYS_RAWIO",
            CAP_SYS_CHROOT => "CAP_SYS_CHROOT",
            CAP_SYS_PTRACE => "CAP_SYS_PTRACE",
            CAP_SYS_PACCT => "CAP_SYS_PACCT",
            CAP_SYS_ADMIN => "CAP_SYS_ADMIN",
            CAP_SYS_BOOT => "CAP_SYS_BOOT",
            CAP_SYS_NICE => "CAP_SYS_NICE",
            CAP_SYS_RESOURCE => "CAP_SYS_RESOURCE",
            CAP_SYS_TIME => "CAP_SYS_TIME",
            CAP_SYS_TTY_CONFIG => "CAP_SYS_TTY_CONFIG",
            CAP_MKNOD => "CAP_MKNOD",
            CAP_LEASE => "CAP_LEASE",
            CAP_AUDIT_WRITE => "CAP_AUDIT_WRITE",
            CAP_AUDIT_CONTROL => "CAP_AUDIT_CONTROL",
            CAP_SETFCAP => "CAP_SETFCAP",
            CAP_MAC_OVERRIDE => "CAP_MAC_OVERRIDE",
            CAP_MAC_ADMIN => "CAP_MAC_ADMIN",
            CAP_SYSLOG => "CAP_SYSLOG",
            CAP_WAKE_ALARM => "CAP_WAKE_ALARM",
            CAP_BLOCK_SUSPEND => "CAP_BLOCK_SUSPEND",
            CAP_AUDIT_READ => "CAP_AUDIT_READ",
            CAP_PERFMON => "CAP_PERFMON",
            CAP_BPF => "CAP_BPF",
            CAP_CHECKPOINT_RESTORE => "CAP_CHECKPOINT_RESTORE",
        }
    }

    /// The capability a user means by `name`: `SYS_ADMIN`, `CAP_SYS_ADMIN` and `cap_sys_admin`
    /// all name CAP_SYS_ADMIN (Docker's flags drop the prefix, OCI files keep it). An unknown name
    /// comes back with the closest known one, if any is close.
    pub fn parse(name: &str) -> Result<Capability, UnknownCapability> {
        let full = canonical(name);
        Self::ALL
            .into_iter()
            .find(|c| c.name() == full)
            .ok_or_else(|| UnknownCapability {
                name: name.to_string(),
                suggestion: suggest(&full),
            })
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Capability {
    type Err = UnknownCapability;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::parse(s)
    }
}

/// A name that is no capability, with the closest one (for "did you mean").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{name}`{}", .suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct UnknownCapability {
    /// The name as written.
    pub name: String,
    /// The closest known capability, when one is close enough to be a typo.
    pub suggestion: Option<Capability>,
}

/// Upper case, with the `CAP_` prefix.
pub(super) fn canonical(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    match up.starts_with("CAP_") {
        true => up,
        false => format!("CAP_{up}"),
    }
}

/// The known capability closest to `full` (a canonical name), when it is close enough.
fn suggest(full: &str) -> Option<Capability> {
    // Compared without the shared `CAP_` prefix, which would make every pair look alike.
    let bare = full.strip_prefix("CAP_").unwrap_or(full);
    // A name cut short (`NET_BIND`) means the one it begins, which Jaro-Winkler, favouring
    // names of the same length, would miss for `NET_ADMIN`.
    let begun = Capability::ALL
        .into_iter()
        .filter(|c| bare.len() >= 4 && c.name()[4..].starts_with(bare))
        .min_by_key(|c| c.name().len());
    if begun.is_some() {
        return begun;
    }
    Capability::ALL
        .into_iter()
        .map(|c| (strsim::jaro_winkler(bare, &c.name()[4..]), c))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::Capability::{self, *};

    #[test]
    fn numbers_are_the_kernels_and_in_order() {
        for (i, c) in Capability::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(c.number()), i, "{c}");
            assert_eq!(Capability::from_number(c.number()), Some(c));
        }
        assert_eq!(CAP_SYS_ADMIN.number(), 21);
        assert_eq!(CAP_MKNOD.number(), 27);
        assert_eq!(Capability::LAST.number(), 40);
        assert_eq!(Capability::from_number(41), None);
    }

    #[test]
    fn names_with_or_without_prefix_in_any_case() {
        for c in Capability::ALL {
            assert_eq!(Capability::parse(c.name()), Ok(c));
            assert_eq!(Capability::parse(&c.name()[4..]), Ok(c));
            assert_eq!(Capability::parse(&c.name().to_lowercase()), Ok(c));
        }
        assert_eq!("sys_admin".parse(), Ok(CAP_SYS_ADMIN));
        assert_eq!(Capability::parse(" Net_Raw "), Ok(CAP_NET_RAW));
    }

    #[test]
    fn unknown_names_get_the_closest_known_one() {
        let e = Capability::parse("CAP_SYS_ADMN").unwrap_err();
        assert_eq!(e.suggestion, Some(CAP_SYS_ADMIN));
        assert_eq!(
            e.to_string(),
            "unknown capability `CAP_SYS_ADMN` (did you mean `CAP_SYS_ADMIN`?)"
        );
        let cases = [
            ("SYS_ADMN", CAP_SYS_ADMIN),
            ("net_rwa", CAP_NET_RAW),
            ("CAP_NET_BIND", CAP_NET_BIND_SERVICE),
            ("SETPCAPS", CAP_SETPCAP),
            ("DAC_OVERIDE", CAP_DAC_OVERRIDE),
            ("CAP_CHECKPOINT", CAP_CHECKPOINT_RESTORE),
        ];
        for (typo, meant) in cases {
            assert_eq!(
                Capability::parse(typo).unwrap_err().suggestion,
                Some(meant),
                "{typo}"
            );
        }
    }

    #[test]
    fn far_names_get_no_suggestion() {
        for far in ["", "CAP_", "HELLO_WORLD", "ROOT", "ALL"] {
            let e = Capability::parse(far).unwrap_err();
            assert_eq!(e.suggestion, None, "{far}");
            assert!(!e.to_string().contains("did you mean"), "{e}");
        }
    }
}
