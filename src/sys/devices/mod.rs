//! The device allow-list: which device nodes a container may open (`r`, `w`) or create (`m`),
//! whatever nodes its root filesystem ships or it makes. cgroup v1 spells it as writes to the
//! `devices` controller's `devices.deny` and `devices.allow`; cgroup v2 has no such files and
//! takes an eBPF program (`BPF_PROG_TYPE_CGROUP_DEVICE`) attached to the group instead.
//!
//! ```text
//! [DeviceRule] (DEFAULT, or the manifest's) ─Filter::of()▶ Filter (default + exceptions)
//!    v1: Filter::rules() ─▶ (v1_file, v1_line) writes: `devices.deny` ← "a", `devices.allow` ← "c 1:3 rwm", ...
//!    v2: program() ─▶ [Insn] ─load()▶ fd ─attach(fd, group dir)▶ kernel         (apply_v2 does both)
//! ```
//! Both forms come from the same [`Filter`], the state cgroup v1 reaches when the rules are
//! written in order (its module says exactly what rules mean), so a list means the same on
//! either version; [`check`] reports rules that would not do what they say.
//!
//! What the kernel checks: opening a character or block node (for reading and/or writing) and
//! mknod(2) of one; nothing else (a FIFO or socket is not a device). Both versions apply to the
//! group's processes and every group below it; on a hybrid host a process is held to its v1
//! `devices` group and to the programs of its cgroup2 group alike.

mod bpf;
mod filter;
mod load;
mod rule;

use std::os::fd::AsFd;
use std::path::Path;

pub use bpf::{Insn, filter_program, program};
pub use filter::{Exception, Filter, Problem, check};
pub use load::{LICENSE, NAME, attach, load};
pub use rule::{Access, DeviceKind, DeviceRule, RuleError};

use crate::error::{SysError, SysResult};

/// One rule of the default list, with why it is there.
pub struct Entry {
    /// The rule.
    pub rule: DeviceRule,
    /// The node(s) it is about.
    pub name: &'static str,
    /// Why a container gets it.
    pub why: &'static str,
}

const fn c(major: Option<u32>, minor: Option<u32>, access: Access) -> DeviceRule {
    DeviceRule::allow(DeviceKind::Char, major, minor, access)
}

/// The default list, each rule with its reason: runc's (libcontainer/specconv `AllowedDevices`,
/// which runc appends to every container's rules, so Docker's containers get it too), which is
/// crun's and Docker's but for `/dev/console`.
///
/// Left out on purpose:
/// - `c 5:1` (/dev/console), which Docker's default spec and crun allow and runc does not: that
///   node is the host's system console. launch never makes one; a container's terminal is its
///   own pty (`c 136:*`).
/// - Docker's `deny c 10:229` (/dev/fuse) after its deny-all: it changes nothing.
pub const ENTRIES: &[Entry] = &[
    Entry {
        rule: DeviceRule::DENY_ALL,
        name: "every device",
        why: "nothing is allowed but what follows: a block device shipped in a root filesystem \
              (or made inside) does not reach the host's disk",
    },
    Entry {
        rule: c(None, None, Access::MKNOD),
        name: "mknod of character devices",
        why: "runc, crun and Docker allow creating any node (package installs, image builds run \
              `mknod`); a node made is still not opened unless listed here. launch's default \
              capabilities leave out CAP_MKNOD, so this only matters where a manifest adds it",
    },
    Entry {
        rule: DeviceRule::allow(DeviceKind::Block, None, None, Access::MKNOD),
        name: "mknod of block devices",
        why: "as for character devices: created, never opened",
    },
    Entry {
        rule: c(Some(1), Some(3), Access::ALL),
        name: "/dev/null",
        why: "launch's minimal /dev; every shell redirects to it",
    },
    Entry {
        rule: c(Some(1), Some(5), Access::ALL),
        name: "/dev/zero",
        why: "launch's minimal /dev; dd, mmap of anonymous memory by old programs",
    },
    Entry {
        rule: c(Some(1), Some(7), Access::ALL),
        name: "/dev/full",
        why: "launch's minimal /dev (the OCI runtime spec's default devices)",
    },
    Entry {
        rule: c(Some(1), Some(8), Access::ALL),
        name: "/dev/random",
        why: "launch's minimal /dev; key generation",
    },
    Entry {
        rule: c(Some(1), Some(9), Access::ALL),
        name: "/dev/urandom",
        why: "launch's minimal /dev; every TLS library and language runtime reads it",
    },
    Entry {
        rule: c(Some(5), Some(0), Access::ALL),
        name: "/dev/tty",
        why: "launch's minimal /dev: a process's controlling terminal (ssh, sudo, read -p)",
    },
    Entry {
        rule: c(Some(5), Some(2), Access::ALL),
        name: "/dev/ptmx",
        why: "the container's devpts instance's ptmx (`/dev/pts/ptmx`, and /dev/ptmx linking to \
              it): launch opens it for the container's terminal, and so do tmux, script, expect",
    },
    Entry {
        rule: c(Some(136), None, Access::ALL),
        name: "/dev/pts/*",
        why: "the ptys of the container's own devpts instance (the terminal launch gives it)",
    },
    Entry {
        rule: c(Some(10), Some(200), Access::ALL),
        name: "/dev/net/tun",
        why: "VPN clients and user-space networking in the container's own network namespace; \
              creating an interface still needs CAP_NET_ADMIN there. runc dropped it in 1.2.0-rc1 \
              and restored it after the regressions; crun and Docker allow it too. No node is \
              made unless a manifest binds one",
    },
];

const fn rules_of<const N: usize>(entries: &[Entry]) -> [DeviceRule; N] {
    let mut out = [DeviceRule::DENY_ALL; N];
    let mut i = 0;
    while i < N {
        out[i] = entries[i].rule;
        i += 1;
    }
    out
}

/// The default rules ([`ENTRIES`] without the reasons).
pub const DEFAULT: &[DeviceRule] = &rules_of::<12>(ENTRIES);
const _: () = assert!(ENTRIES.len() == 12);

/// The cgroup v1 writes that apply `rules` to a fresh `devices` group, in order, as (file,
/// text): the default, then the exceptions (the state the rules leave, without what a later rule
/// undid).
pub fn v1_writes(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    Filter::of(rules)
        .rules()
        .iter()
        .map(|r| (r.v1_file(), r.v1_line()))
        .collect()
}

/// Write `rules` into the cgroup v1 `devices` group `cgroup` ([`v1_writes`]), one write(2) per
/// rule on one descriptor per file: the kernel reads each write as one rule, and opening a cgroup
/// file costs several times more than writing to it. Do it before any process enters the group.
pub fn apply_v1(rules: &[DeviceRule], cgroup: &Path) -> SysResult<()> {
    use std::io::Write;
    let mut open: Option<(&'static str, std::fs::File)> = None;
    for (file, line) in v1_writes(rules) {
        let path = cgroup.join(file);
        if open.as_ref().is_none_or(|(f, _)| *f != file) {
            let fd = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| SysError::io("open", Some(path.clone()), &e).args("O_WRONLY"))?;
            open = Some((file, fd));
        }
        if let Some((_, fd)) = open.as_mut() {
            fd.write_all(line.as_bytes()).map_err(|e| {
                SysError::io("write", Some(path.clone()), &e).args(format!("{line:?}"))
            })?;
        }
    }
    Ok(())
}

/// Load the program for `rules` and attach it to the cgroup v2 directory `cgroup`. Do it before
/// any process enters the group.
pub fn apply_v2(rules: &[DeviceRule], cgroup: &Path) -> SysResult<()> {
    let prog = load(&program(rules)).map_err(|e| SysError {
        path: Some(cgroup.to_path_buf()),
        ..e
    })?;
    attach(prog.as_fd(), cgroup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_list_every_default_rule() {
        let doc = include_str!("../../../docs/devices.md");
        for r in DEFAULT {
            assert!(
                doc.contains(&format!("| `{r}` |")),
                "docs/devices.md lacks `{r}`"
            );
        }
    }

    /// (launch's minimal /dev must all be allowed: tested in lower::devices, which sees it.)
    #[test]
    fn the_default_list_is_an_allow_list() {
        let f = Filter::of(DEFAULT);
        assert!(!f.default_allow);
        assert!(check(DEFAULT).is_empty());
        assert!(!f.allows(DeviceKind::Block, 254, 0, Access::READ));
        assert!(
            !f.allows(DeviceKind::Char, 5, 1, Access::WRITE),
            "the host's console"
        );
        assert_eq!(
            v1_writes(DEFAULT)
                .iter()
                .map(|(f, l)| format!("{f} {l}"))
                .collect::<Vec<_>>(),
            [
                "devices.deny a",
                "devices.allow c *:* m",
                "devices.allow b *:* m",
                "devices.allow c 1:3 rwm",
                "devices.allow c 1:5 rwm",
                "devices.allow c 1:7 rwm",
                "devices.allow c 1:8 rwm",
                "devices.allow c 1:9 rwm",
                "devices.allow c 5:0 rwm",
                "devices.allow c 5:2 rwm",
                "devices.allow c 136:* rwm",
                "devices.allow c 10:200 rwm",
            ]
        );
    }
}
