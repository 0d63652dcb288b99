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

use nix::errno::Errno;

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
fn write_v1(rules: &[DeviceRule], cgroup: &Path) -> SysResult<()> {
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

/// What `devices.list` shows for a v1 group holding exactly `rules`, if it can tell: with a
/// default of deny, the exceptions in the kernel's order; with a default of allow the list shows
/// `a *:* rwm` whatever is denied, so only an exception-free allow-all can be recognised.
pub fn v1_listing(rules: &[DeviceRule]) -> Option<Vec<String>> {
    let f = Filter::of(rules);
    match (f.default_allow, f.exceptions.is_empty()) {
        (false, _) => Some(
            f.exceptions
                .iter()
                .map(|e| e.rule(true).v1_line())
                .collect(),
        ),
        (true, true) => Some(vec![DeviceRule::ALLOW_ALL.v1_line()]),
        (true, false) => None,
    }
}

/// The name of the shared v1 group whose list is `rules` (`devices-` and 12 hex digits of the
/// SHA-256 of its listing); `None` when the listing cannot show them ([`v1_listing`]).
pub fn v1_parent_name(rules: &[DeviceRule]) -> Option<String> {
    // The default list's name, worked out once (a unit test keeps it true): SHA-256 detects
    // the CPU's features first, and each `cpuid` is a trap to the hypervisor in a VM (~4 µs).
    if rules == DEFAULT {
        return Some(String::from(DEFAULT_V1_PARENT));
    }
    hashed_parent_name(rules)
}

/// [`v1_parent_name`] of [`DEFAULT`].
const DEFAULT_V1_PARENT: &str = "devices-5fa285192220";

fn hashed_parent_name(rules: &[DeviceRule]) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let listing = v1_listing(rules)?;
    let digest = Sha256::digest(listing.join("\n").as_bytes());
    let mut name = String::from("devices-");
    for b in &digest[..6] {
        let _ = write!(name, "{b:02x}");
    }
    Some(name)
}

/// Whether the v1 group `cgroup` holds exactly `rules`, read from its `devices.list`: a group
/// made under a parent holding them starts with a copy of the parent's list (the kernel copies
/// it at mkdir), and a shared group launch made holds them unless someone changed it.
fn v1_holds(rules: &[DeviceRule], cgroup: &Path) -> SysResult<bool> {
    use std::io::Read;
    let Some(want) = v1_listing(rules) else {
        return Ok(false);
    };
    let path = cgroup.join("devices.list");
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
        .map_err(|e| SysError::io("read", Some(path.clone()), &e))?;
    Ok(text.lines().eq(want.iter().map(String::as_str)))
}

/// Give the fresh v1 group `cgroup` exactly `rules`: nothing to write when it inherited them
/// from its parent (read back from `devices.list`), else [`write_v1`]. A parent holding fewer
/// than `rules` makes the writes fail (EPERM: a v1 group never allows more than its parent).
pub fn apply_v1(rules: &[DeviceRule], cgroup: &Path) -> SysResult<()> {
    if v1_holds(rules, cgroup)? {
        return Ok(());
    }
    write_v1(rules, cgroup).map_err(|e| match (e.errno(), cgroup.parent()) {
        (Errno::EPERM, Some(parent)) => {
            let detail = format!(
                "the group above, {}, allows less than this list, and a v1 group never allows more \
                 than its parent: something else changed that group. Remove it (`rmdir`, once \
                 no container is in it) and launch makes it again",
                parent.display()
            );
            e.with_detail(detail)
        }
        _ => e,
    })
}

/// What [`ensure_v1_group`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// The group was there with exactly the list (read back from `devices.list`).
    Kept,
    /// The group was missing, and was made.
    Made,
    /// The group was there with another list: it was taken out of the way (removed when
    /// empty, else renamed to `<name>.stale-<pid>`, for the containers still in it) and made
    /// again.
    Replaced,
}

/// The suffix of a shared group taken out of the way while containers were still in it.
pub const STALE: &str = ".stale";

/// Make sure the shared v1 group `path` holds exactly `rules`, which containers then join.
///
/// Nothing found there is trusted: an existing group is read back (`devices.list`, one read),
/// and kept only when it shows exactly the list. A group with another list (someone widened or
/// narrowed it) is taken out of the way: removed if no process is in it, else renamed beside
/// it, so the containers in it keep running while no new one joins it. The group is then made
/// configured: under a temporary name, with the list written, then renamed into place (v1
/// renames within one parent), so it never appears under `path`'s name with another list. A
/// launcher that loses the race to another uses theirs (read back too). Stale groups left by
/// an earlier replacement are removed here once empty.
pub fn ensure_v1_group(rules: &[DeviceRule], path: &Path) -> SysResult<Shared> {
    let mut found = Shared::Made;
    if path.is_dir() {
        if v1_holds(rules, path)? {
            return Ok(Shared::Kept);
        }
        retire(path)?;
        found = Shared::Replaced;
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(SysError::other(
            "mkdir",
            Some(path.to_path_buf()),
            "no parent",
        ));
    };
    let name = name.to_string_lossy();
    sweep_stale(dir, &name);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::create_dir(&tmp).map_err(|e| SysError::io("mkdir", Some(tmp.clone()), &e))?;
    let made = write_v1(rules, &tmp).and_then(|()| {
        std::fs::rename(&tmp, path).or_else(|e| {
            match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                // Another launcher made it first: use theirs, if it holds the list.
                Errno::EEXIST | Errno::ENOTEMPTY | Errno::EBUSY if path.is_dir() => {
                    let _ = std::fs::remove_dir(&tmp);
                    match v1_holds(rules, path)? {
                        true => Ok(()),
                        false => Err(SysError::other(
                            "read",
                            Some(path.join("devices.list")),
                            "another launcher's group appeared with another list",
                        )),
                    }
                }
                _ => Err(SysError::io("rename", Some(tmp.clone()), &e)
                    .args(format!("to {}", path.display()))),
            }
        })
    });
    if made.is_err() {
        let _ = std::fs::remove_dir(&tmp);
    }
    made.map(|()| found)
}

/// Take the shared group `path` out of the way: rmdir when nothing is in it, else rename it
/// to `<name>.stale-<pid>` beside it (its processes stay where they are).
fn retire(path: &Path) -> SysResult<()> {
    match std::fs::remove_dir(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(_) => {}
    }
    let mut stale = path.as_os_str().to_owned();
    stale.push(format!("{STALE}-{}", std::process::id()));
    std::fs::rename(path, &stale).map_err(|e| {
        SysError::io("rename", Some(path.to_path_buf()), &e)
            .args(format!("to {}", Path::new(&stale).display()))
            .with_detail(
                "the shared device group does not hold the list launch wrote into it, and \
                 could not be moved out of the way",
            )
    })
}

/// Remove the empty stale groups of `name` in `dir` (errors ignored: one still in use stays).
fn sweep_stale(dir: &Path, name: &str) {
    let prefix = format!("{name}{STALE}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir(e.path());
        }
    }
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
    fn the_default_parent_name_is_the_hash_of_the_default_list() {
        assert_eq!(
            hashed_parent_name(DEFAULT).as_deref(),
            Some(DEFAULT_V1_PARENT)
        );
        assert_eq!(v1_parent_name(DEFAULT).as_deref(), Some(DEFAULT_V1_PARENT));
        assert_ne!(
            v1_parent_name(&DEFAULT[1..]).as_deref(),
            Some(DEFAULT_V1_PARENT)
        );
    }

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
