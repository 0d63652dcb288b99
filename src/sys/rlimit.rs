//! Resource limits: the kernel's `RLIMIT_*` names and setrlimit(2).

use nix::sys::resource::Resource;
use serde::{Deserialize, Serialize};

use crate::error::{SysError, SysResult};

/// A resource setrlimit(2) limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum RlimitResource {
    /// Address space size.
    RLIMIT_AS,
    /// Core file size.
    RLIMIT_CORE,
    /// CPU time, in seconds.
    RLIMIT_CPU,
    /// Data segment size.
    RLIMIT_DATA,
    /// Size of files the process may create.
    RLIMIT_FSIZE,
    /// File locks.
    RLIMIT_LOCKS,
    /// Locked memory.
    RLIMIT_MEMLOCK,
    /// Bytes in POSIX message queues.
    RLIMIT_MSGQUEUE,
    /// Ceiling of the nice value.
    RLIMIT_NICE,
    /// Open file descriptors.
    RLIMIT_NOFILE,
    /// Processes of the real user.
    RLIMIT_NPROC,
    /// Resident set size (no effect on Linux since 2.6).
    RLIMIT_RSS,
    /// Ceiling of the real-time priority.
    RLIMIT_RTPRIO,
    /// Real-time CPU time without a blocking call, in microseconds.
    RLIMIT_RTTIME,
    /// Queued signals.
    RLIMIT_SIGPENDING,
    /// Stack size.
    RLIMIT_STACK,
}

impl RlimitResource {
    /// Every resource, in the order of their short names.
    pub const ALL: [RlimitResource; 16] = [
        RlimitResource::RLIMIT_AS,
        RlimitResource::RLIMIT_CORE,
        RlimitResource::RLIMIT_CPU,
        RlimitResource::RLIMIT_DATA,
        RlimitResource::RLIMIT_FSIZE,
        RlimitResource::RLIMIT_LOCKS,
        RlimitResource::RLIMIT_MEMLOCK,
        RlimitResource::RLIMIT_MSGQUEUE,
        RlimitResource::RLIMIT_NICE,
        RlimitResource::RLIMIT_NOFILE,
        RlimitResource::RLIMIT_NPROC,
        RlimitResource::RLIMIT_RSS,
        RlimitResource::RLIMIT_RTPRIO,
        RlimitResource::RLIMIT_RTTIME,
        RlimitResource::RLIMIT_SIGPENDING,
        RlimitResource::RLIMIT_STACK,
    ];

    /// The kernel's name, `RLIMIT_NOFILE`.
    pub fn name(self) -> &'static str {
        use RlimitResource::*;
        match self {
            RLIMIT_AS => "RLIMIT_AS",
            RLIMIT_CORE => "RLIMIT_CORE",
            RLIMIT_CPU => "RLIMIT_CPU",
            RLIMIT_DATA => "RLIMIT_DATA",
            RLIMIT_FSIZE => "RLIMIT_FSIZE",
            RLIMIT_LOCKS => "RLIMIT_LOCKS",
            RLIMIT_MEMLOCK => "RLIMIT_MEMLOCK",
            RLIMIT_MSGQUEUE => "RLIMIT_MSGQUEUE",
            RLIMIT_NICE => "RLIMIT_NICE",
            RLIMIT_NOFILE => "RLIMIT_NOFILE",
            RLIMIT_NPROC => "RLIMIT_NPROC",
            RLIMIT_RSS => "RLIMIT_RSS",
            RLIMIT_RTPRIO => "RLIMIT_RTPRIO",
            RLIMIT_RTTIME => "RLIMIT_RTTIME",
            RLIMIT_SIGPENDING => "RLIMIT_SIGPENDING",
            RLIMIT_STACK => "RLIMIT_STACK",
        }
    }

    /// The name users write in a manifest (`ulimit`'s and systemd's word): `nofile`.
    pub fn short_name(self) -> String {
        self.name()["RLIMIT_".len()..].to_ascii_lowercase()
    }

    /// The resource for a short name (`nofile`, any case) or a kernel name (`RLIMIT_NOFILE`).
    pub fn from_name(name: &str) -> Option<RlimitResource> {
        let up = name.to_ascii_uppercase();
        let bare = up.strip_prefix("RLIMIT_").unwrap_or(&up);
        Self::ALL
            .into_iter()
            .find(|r| &r.name()["RLIMIT_".len()..] == bare)
    }

    /// nix's value (its representation differs between glibc and musl).
    fn nix(self) -> Resource {
        use RlimitResource::*;
        match self {
            RLIMIT_AS => Resource::RLIMIT_AS,
            RLIMIT_CORE => Resource::RLIMIT_CORE,
            RLIMIT_CPU => Resource::RLIMIT_CPU,
            RLIMIT_DATA => Resource::RLIMIT_DATA,
            RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
            RLIMIT_LOCKS => Resource::RLIMIT_LOCKS,
            RLIMIT_MEMLOCK => Resource::RLIMIT_MEMLOCK,
            RLIMIT_MSGQUEUE => Resource::RLIMIT_MSGQUEUE,
            RLIMIT_NICE => Resource::RLIMIT_NICE,
            RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
            RLIMIT_NPROC => Resource::RLIMIT_NPROC,
            RLIMIT_RSS => Resource::RLIMIT_RSS,
            RLIMIT_RTPRIO => Resource::RLIMIT_RTPRIO,
            RLIMIT_RTTIME => Resource::RLIMIT_RTTIME,
            RLIMIT_SIGPENDING => Resource::RLIMIT_SIGPENDING,
            RLIMIT_STACK => Resource::RLIMIT_STACK,
        }
    }
}

impl std::fmt::Display for RlimitResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One limit: soft and hard, `None` for unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// The resource.
    pub resource: RlimitResource,
    /// The limit the kernel enforces (`None`: unlimited).
    pub soft: Option<u64>,
    /// The ceiling for the soft limit (`None`: unlimited).
    pub hard: Option<u64>,
}

/// The value setrlimit(2) is given for `None`.
fn raw(v: Option<u64>) -> u64 {
    v.unwrap_or(libc::RLIM_INFINITY)
}

fn shown(v: Option<u64>) -> String {
    v.map_or("RLIM_INFINITY".to_string(), |n| n.to_string())
}

/// setrlimit(2).
pub fn set(l: &Rlimit) -> SysResult<()> {
    nix::sys::resource::setrlimit(l.resource.nix(), raw(l.soft), raw(l.hard)).map_err(|e| {
        SysError::new("setrlimit", None, e).args(format!(
            "{}, {}, {}",
            l.resource,
            shown(l.soft),
            shown(l.hard)
        ))
    })
}

/// Set every limit in order, stopping at the first failure.
pub fn set_all(limits: &[Rlimit]) -> SysResult<()> {
    limits.iter().try_for_each(set)
}

#[cfg(test)]
mod tests {
    use super::RlimitResource;

    #[test]
    fn names_round_trip() {
        for r in RlimitResource::ALL {
            assert_eq!(RlimitResource::from_name(&r.short_name()), Some(r));
            assert_eq!(RlimitResource::from_name(r.name()), Some(r));
        }
        assert_eq!(
            RlimitResource::from_name("NOFILE"),
            Some(RlimitResource::RLIMIT_NOFILE)
        );
        assert_eq!(RlimitResource::from_name("nofiles"), None);
    }
}
