//! The architecture a filter is compiled for: its audit number, its name in profiles and its
//! syscall numbers. Only the architecture launch itself runs on: libc defines the numbers of the
//! target only, and a container runs the host's native ABI.

/// `table! { SYS_read, ... }`: this architecture's `(name, number)` pairs, from libc.
macro_rules! table {
    ($($sys:ident),* $(,)?) => {
        /// This architecture's syscalls, `("SYS_read", 0)`.
        pub const NUMBERS: &[(&str, u32)] = &[$((stringify!($sys), libc::$sys as u32)),*];
    };
}
use table;

/// The architecture filters are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    /// The kernel's name (`uname -m`): `x86_64`.
    pub name: &'static str,
    /// Go's name, which Docker profiles use in `includes.arches`: `amd64`.
    pub go_name: &'static str,
    /// libseccomp's name, as in a profile's `architectures`: `SCMP_ARCH_X86_64`.
    pub scmp_name: &'static str,
    /// `seccomp_data.arch` for this ABI (`AUDIT_ARCH_*`, linux/audit.h; libc lacks them).
    pub audit_arch: u32,
    /// Syscall numbers at or above this belong to another ABI sharing the audit arch (x32 on
    /// x86_64), refused like a foreign architecture.
    pub foreign_nr_from: Option<u32>,
    numbers: &'static [(&'static str, u32)],
}

impl Arch {
    /// The number of a syscall on this architecture, `None` if it has no such call.
    pub fn number(&self, name: &str) -> Option<u32> {
        // The table is in byte order of its names (a test checks): a binary search, not a scan
        // of ~460 names for each of the ~300 a profile has (that scan was most of the cost of
        // compiling the default profile, on every run).
        self.numbers
            .binary_search_by(|(sys, _)| sys.as_bytes()[4..].cmp(name.as_bytes()))
            .ok()
            .map(|i| self.numbers[i].1)
    }

    /// The highest syscall number libc knows here: calls above it are newer than this table.
    pub fn max_number(&self) -> u32 {
        self.numbers.iter().map(|&(_, nr)| nr).max().unwrap_or(0)
    }

    /// The whole table, for tests that need many calls.
    #[cfg(test)]
    pub fn numbers_for_tests(&self) -> &'static [(&'static str, u32)] {
        self.numbers
    }

    /// Whether a profile's architecture name (libseccomp's, Go's or the kernel's) means this one.
    pub fn is_named(&self, name: &str) -> bool {
        name == self.name || name == self.go_name || name == self.scmp_name
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "table_x86_64.rs"]
mod x86_64;

#[cfg(target_arch = "aarch64")]
#[path = "table_aarch64.rs"]
mod aarch64;

/// The architecture launch runs on, `None` where launch has no syscall table.
pub fn native() -> Option<Arch> {
    #[cfg(target_arch = "x86_64")]
    return Some(Arch {
        name: "x86_64",
        go_name: "amd64",
        scmp_name: "SCMP_ARCH_X86_64",
        audit_arch: 0xC000_003E,
        // __X32_SYSCALL_BIT: x32 calls enter with the x86_64 audit arch, numbered from here.
        foreign_nr_from: Some(0x4000_0000),
        numbers: x86_64::NUMBERS,
    });
    #[cfg(target_arch = "aarch64")]
    return Some(Arch {
        name: "aarch64",
        go_name: "arm64",
        scmp_name: "SCMP_ARCH_AARCH64",
        audit_arch: 0xC000_00B7,
        foreign_nr_from: None,
        numbers: aarch64::NUMBERS,
    });
    #[allow(unreachable_code)]
    None
}

/// libseccomp's architecture names, as a profile's `architectures` and `archMap` spell them.
pub const SCMP_ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

#[cfg(test)]
mod tests {
    use super::native;

    #[test]
    fn the_native_table_has_the_calls_we_filter() {
        let arch = native().unwrap();
        for name in [
            "read", "write", "clone", "clone3", "unshare", "mount", "keyctl", "seccomp",
        ] {
            assert!(arch.number(name).is_some(), "{name}");
        }
        assert_eq!(arch.number("no_such_call"), None);
        assert_eq!(arch.number("clone3"), Some(libc::SYS_clone3 as u32));
        assert!(arch.max_number() >= libc::SYS_clone3 as u32);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_numbers_are_the_kernels() {
        let arch = native().unwrap();
        assert_eq!(arch.number("read"), Some(0));
        assert_eq!(arch.number("getpid"), Some(39));
        assert_eq!(arch.number("clone3"), Some(435));
        assert!(arch.is_named("amd64") && arch.is_named("SCMP_ARCH_X86_64"));
        assert!(!arch.is_named("SCMP_ARCH_X86"));
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    /// `number` searches the table by bisection: it must be in strict byte order of its names
    /// (without the `SYS_` prefix), and every name must be found.
    #[test]
    fn the_table_is_sorted_and_every_name_is_found() {
        let arch = native().unwrap();
        let t = arch.numbers_for_tests();
        for w in t.windows(2) {
            assert!(w[0].0[4..] < w[1].0[4..], "{} before {}", w[0].0, w[1].0);
        }
        for (sys, nr) in t {
            assert_eq!(arch.number(&sys[4..]), Some(*nr), "{sys}");
        }
        assert_eq!(arch.number("no_such_call"), None);
        assert_eq!(arch.number(""), None);
    }
}
