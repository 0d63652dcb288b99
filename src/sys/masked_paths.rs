//! Masked and read-only paths (OCI's `maskedPaths` and `readonlyPaths`): the parts of /proc and
//! /sys that show or change the host, not the container, hidden or frozen.
//!
//! A masked file gets the host's /dev/null bound over it (reads are empty, writes vanish); a
//! masked directory gets an empty read-only tmpfs; a read-only path gets a detached copy of
//! itself (open_tree(2)), made read-only with mount_setattr(2), recursively, before move_mount(2)
//! attaches it. Binds go descriptor to descriptor: no `/proc/self/fd` link is walked. A path this kernel does not have is
//! skipped: the lists name files of every kernel version and architecture.
//!
//! When: inside the container's mount namespace, after its /proc and /sys are mounted and
//! **before pivot_root**, with paths resolved under the new root ([`Root`], openat2 with
//! RESOLVE_IN_ROOT). runc does it after pivot_root; doing it before keeps two things runc has to
//! arrange otherwise: every path, and every symlink in it, still resolves inside the container's
//! root (a rootfs that ships `/proc` or `/sys` as a symlink cannot point a mask at a host path),
//! and the file bound over masked files is the host's own /dev/null, opened and checked to be the
//! null device (1:3), not whatever the image's /dev holds. The mounts then move with the root at
//! pivot_root.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use serde::{Deserialize, Serialize};

use crate::error::{SysError, SysResult};
use crate::sys::fs::Root;
use crate::sys::mount::{FsOption, MountAttr, clone_tree, move_to, new_fs, set_attr};

/// Where a default rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One path.
    Path(&'static str),
    /// This name under each `/sys/devices/system/cpu/cpuN/`.
    EachCpu(&'static str),
}

/// A default masked or read-only path, and what it would give a container.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The path (or paths).
    pub target: Target,
    /// What hiding (or freezing) it keeps from the container.
    pub why: &'static str,
}

const fn path(p: &'static str, why: &'static str) -> Rule {
    Rule {
        target: Target::Path(p),
        why,
    }
}

/// The default masked paths: the union of Docker's (moby 28) and podman's lists.
pub const DEFAULT_MASKED: &[Rule] = &[
    path(
        "/proc/acpi",
        "the host's ACPI state and, on old kernels, its controls",
    ),
    path("/proc/asound", "the host's sound cards"),
    path(
        "/proc/interrupts",
        "the host's interrupt counts, thermal events included: a side channel (Docker 28)",
    ),
    path("/proc/kcore", "the kernel's memory, as an ELF core file"),
    path(
        "/proc/keys",
        "the descriptions of keys in the kernel's keyrings, which no namespace separates",
    ),
    path(
        "/proc/latency_stats",
        "the host's latency records (writing resets them)",
    ),
    path(
        "/proc/sched_debug",
        "the scheduler's view of every host process",
    ),
    path(
        "/proc/scsi",
        "the host's SCSI devices (writing adds or removes them)",
    ),
    path(
        "/proc/timer_list",
        "every host timer, with pids and kernel addresses (a KASLR leak)",
    ),
    path("/proc/timer_stats", "the same, on kernels before 4.11"),
    path(
        "/sys/dev/block",
        "the host's block devices and their numbers (podman)",
    ),
    path(
        "/sys/devices/virtual/powercap",
        "RAPL energy counters: a power side channel (CVE-2020-8694)",
    ),
    path(
        "/sys/firmware",
        "ACPI tables, DMI data, and EFI variables a write can brick",
    ),
    path(
        "/sys/fs/selinux",
        "SELinux's interface: programs in the container see SELinux off (podman)",
    ),
    Rule {
        target: Target::EachCpu("thermal_throttle"),
        why: "each CPU's throttle counters: a side channel (Docker 28)",
    },
];

/// The default read-only paths (Docker's and podman's, the same list).
pub const DEFAULT_READONLY: &[Rule] = &[
    path("/proc/bus", "PCI configuration space and USB devices"),
    path("/proc/fs", "file system settings of the host (nfsd, ...)"),
    path("/proc/irq", "the host's interrupt affinities"),
    path(
        "/proc/sys",
        "sysctls, most of them the host's (kernel.core_pattern runs a host program as root)",
    ),
    path("/proc/sysrq-trigger", "SysRq: crash or reboot the host"),
];

/// The paths of `rules`, with [`Target::EachCpu`] expanded for CPUs 0 to `cpus - 1`: pure, for
/// plans (a path this kernel lacks is skipped when the plan runs).
pub fn expand_for(rules: &[Rule], cpus: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for r in rules {
        match r.target {
            Target::Path(p) => out.push(PathBuf::from(p)),
            Target::EachCpu(name) => out.extend(
                (0..cpus).map(|n| PathBuf::from(format!("/sys/devices/system/cpu/cpu{n}/{name}"))),
            ),
        }
    }
    out
}

/// The paths of `rules`; [`Target::EachCpu`] is expanded against this host's
/// /sys/devices/system/cpu (the container's sysfs shows the same CPUs).
pub fn expand(rules: &[Rule]) -> Vec<PathBuf> {
    let cpus = cpu_dirs(Path::new("/sys/devices/system/cpu"));
    let mut out = Vec::new();
    for r in rules {
        match r.target {
            Target::Path(p) => out.push(PathBuf::from(p)),
            Target::EachCpu(name) => out.extend(cpus.iter().map(|c| c.join(name))),
        }
    }
    out
}

/// The `cpuN` directories under `dir`, in order of N.
fn cpu_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut cpus: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("cpu")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    cpus.sort();
    cpus.into_iter().map(|(_, p)| p).collect()
}

/// The null device, opened: the source bound over masked files.
pub struct DevNull(OwnedFd);

impl DevNull {
    /// Open `/dev/null` (the host's, before pivot_root) and check that it is the null device.
    pub fn open() -> SysResult<DevNull> {
        let at = Path::new("/dev/null");
        let e = |op: &str, x: Errno| SysError::new(op, Some(at.to_path_buf()), x);
        let fd = nix::fcntl::open(
            at,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|x| e("open", x).args("O_PATH|O_NOFOLLOW"))?;
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|x| e("fstat", x))?;
        let char_dev = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        if !char_dev || st.st_rdev != nix::sys::stat::makedev(1, 3) {
            return Err(SysError::other(
                "open",
                Some(at.to_path_buf()),
                "not the null device (character device 1:3)",
            ));
        }
        Ok(DevNull(fd))
    }
}

/// What was done to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// /dev/null bound over a file.
    MaskedFile,
    /// An empty read-only tmpfs mounted on a directory.
    MaskedDir,
    /// Bound onto itself, read-only.
    ReadOnly,
    /// Not there on this kernel (or in this root): nothing to hide.
    Missing,
}

/// One path and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The path inside the container.
    pub path: PathBuf,
    /// What was done.
    pub outcome: Outcome,
}

/// `/proc/kcore` → `proc/kcore`, for [`Root`].
fn relative(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

/// Open `p` under the root, `None` if it does not exist.
fn open_under(root: &Root, p: &Path) -> SysResult<Option<OwnedFd>> {
    match root.open_path(relative(p)) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.errno() == Errno::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// Mask `p` (a path inside the container, `/proc/kcore`): /dev/null over a file, an empty
/// read-only tmpfs over a directory; nothing if it does not exist.
pub fn mask(root: &Root, p: &Path, null: &mut LazyNull) -> SysResult<Outcome> {
    let Some(fd) = open_under(root, p)? else {
        return Ok(Outcome::Missing);
    };
    let shown = root.path().join(relative(p));
    let st = nix::sys::stat::fstat(fd.as_fd())
        .map_err(|e| SysError::new("fstat", Some(shown.clone()), e))?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    // Both made detached, then attached by descriptor: this works the same whether `root` is
    // in this mount namespace or a detached tree (a /proc the launcher prepares).
    let tree = match is_dir {
        true => new_fs(
            "tmpfs",
            &[FsOption::String("source", "tmpfs")],
            &[
                MountAttr::MOUNT_ATTR_RDONLY,
                MountAttr::MOUNT_ATTR_NOSUID,
                MountAttr::MOUNT_ATTR_NODEV,
                MountAttr::MOUNT_ATTR_NOEXEC,
            ],
            &shown,
        )?,
        false => clone_tree(&null.get()?.0, &shown, false)?,
    };
    move_to(&tree, &fd, &shown)?;
    Ok(match is_dir {
        true => Outcome::MaskedDir,
        false => Outcome::MaskedFile,
    })
}

/// The null device, opened the first time a masked file needs it.
#[derive(Default)]
pub struct LazyNull(Option<DevNull>);

impl LazyNull {
    fn get(&mut self) -> SysResult<&DevNull> {
        if self.0.is_none() {
            self.0 = Some(DevNull::open()?);
        }
        match &self.0 {
            Some(n) => Ok(n),
            None => Err(SysError::other("open", None, "/dev/null")),
        }
    }
}

/// Make `p` (a path inside the container) read-only, with everything mounted beneath it;
/// nothing if it does not exist.
pub fn make_readonly(root: &Root, p: &Path) -> SysResult<Outcome> {
    let Some(fd) = open_under(root, p)? else {
        return Ok(Outcome::Missing);
    };
    let shown = root.path().join(relative(p));
    // A detached copy of the path's mount, made read-only before it is attached over the path:
    // never a moment when the bind is there and writable, and no second lookup to reach it.
    let tree = clone_tree(&fd, &shown, true)?;
    set_attr(&tree, &shown, &[MountAttr::MOUNT_ATTR_RDONLY], true)?;
    move_to(&tree, &fd, &shown)?;
    Ok(Outcome::ReadOnly)
}

/// Make `readonly` read-only, then mask `masked` (runc's order: a mask under a read-only path
/// is mounted on top of it), stopping at the first failure. Returns what was done to each path.
pub fn apply(root: &Root, masked: &[PathBuf], readonly: &[PathBuf]) -> SysResult<Vec<Done>> {
    let mut null = LazyNull::default();
    let mut done = Vec::with_capacity(masked.len() + readonly.len());
    for p in readonly {
        let outcome = make_readonly(root, p)?;
        done.push(Done {
            path: p.clone(),
            outcome,
        });
    }
    for p in masked {
        let outcome = mask(root, p, &mut null)?;
        done.push(Done {
            path: p.clone(),
            outcome,
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lists() {
        let masked = expand(DEFAULT_MASKED);
        for p in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/sys/firmware",
        ] {
            assert!(masked.contains(&PathBuf::from(p)), "{p}");
        }
        let ro = expand(DEFAULT_READONLY);
        assert_eq!(
            ro,
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
            .map(PathBuf::from)
        );
        for p in masked.iter().chain(&ro) {
            assert!(p.is_absolute(), "{}", p.display());
        }
    }

    #[test]
    fn each_cpu_expands_in_cpu_order() {
        let dir = std::env::temp_dir().join(format!("launch-cpus-{}", std::process::id()));
        for d in ["cpu10", "cpu2", "cpufreq", "cpuidle", "online"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let found = cpu_dirs(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, vec![dir.join("cpu2"), dir.join("cpu10")]);
        assert_eq!(cpu_dirs(Path::new("/nonexistent")), Vec::<PathBuf>::new());
    }

    #[test]
    fn paths_are_taken_under_the_root() {
        assert_eq!(relative(Path::new("/proc/kcore")), Path::new("proc/kcore"));
        assert_eq!(relative(Path::new("proc/kcore")), Path::new("proc/kcore"));
    }

    #[test]
    fn dev_null_is_the_null_device() {
        assert!(DevNull::open().is_ok());
    }
}
