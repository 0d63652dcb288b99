//! A process's capability sets and no_new_privs as the kernel reports them in /proc/PID/status.

use std::path::PathBuf;

use super::plan::CapSets;
use super::set::CapSet;
use crate::error::{SysError, SysResult};

/// The lines of /proc/PID/status about privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStatus {
    /// CapBnd, CapPrm, CapEff, CapInh, CapAmb.
    pub sets: CapSets,
    /// NoNewPrivs: 1.
    pub no_new_privs: bool,
}

impl ProcStatus {
    /// Read the caller's: what launch can give a container is its own bounding set
    /// (`read_self()?.sets.bounding`), which on some hosts lacks capabilities (this development
    /// host's lacks CAP_SYS_RESOURCE).
    pub fn read_self() -> SysResult<ProcStatus> {
        Self::read(PathBuf::from("/proc/self/status"))
    }

    /// Read another process's (`/proc/PID/status`).
    pub fn read_pid(pid: u32) -> SysResult<ProcStatus> {
        Self::read(PathBuf::from(format!("/proc/{pid}/status")))
    }

    fn read(path: PathBuf) -> SysResult<ProcStatus> {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SysError::io("read", Some(path.clone()), &e))?;
        Self::parse(&text).ok_or_else(|| SysError::other("read", Some(path), "no capability lines"))
    }

    /// Parse the text of a status file; `None` if a capability line is missing or malformed
    /// (NoNewPrivs, Linux 4.10+, counts as 0 when absent).
    pub fn parse(text: &str) -> Option<ProcStatus> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let set = |name: &str| field(name).and_then(CapSet::from_hex);
        Some(ProcStatus {
            sets: CapSets {
                bounding: set("CapBnd")?,
                permitted: set("CapPrm")?,
                effective: set("CapEff")?,
                inheritable: set("CapInh")?,
                ambient: set("CapAmb")?,
            },
            no_new_privs: field("NoNewPrivs") == Some("1"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::capability::Capability::*;
    use super::*;

    const TEXT: &str = "Name:\tcat\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\n\
        CapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n\
        CapAmb:\t0000000000002000\nNoNewPrivs:\t1\nSeccomp:\t2\n";

    #[test]
    fn parses_the_five_sets_and_no_new_privs() {
        let s = ProcStatus::parse(TEXT).unwrap();
        let host = CapSet::ALL.without(CAP_SYS_RESOURCE);
        assert_eq!(s.sets.bounding, host);
        assert_eq!(s.sets.permitted, host);
        assert_eq!(s.sets.effective, host);
        assert_eq!(s.sets.inheritable, CapSet::EMPTY);
        assert_eq!(s.sets.ambient, CapSet::of(&[CAP_NET_RAW]));
        assert!(s.no_new_privs);
    }

    #[test]
    fn a_missing_set_is_an_error_and_a_missing_no_new_privs_is_off() {
        assert_eq!(ProcStatus::parse(&TEXT.replace("CapAmb", "Other")), None);
        assert_eq!(
            ProcStatus::parse(&TEXT.replace("0000000000002000", "zz")),
            None
        );
        let old = ProcStatus::parse(&TEXT.replace("NoNewPrivs:\t1\n", "")).unwrap();
        assert!(!old.no_new_privs);
    }

    #[test]
    fn reads_this_process() {
        let s = ProcStatus::read_self().unwrap();
        assert!(s.sets.effective.is_subset(s.sets.permitted));
        assert!(s.sets.ambient.is_subset(s.sets.permitted));
    }
}
