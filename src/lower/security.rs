//! The Spec's security part on this host: the capability sets (what the host's bounding set
//! allows), the seccomp filter (compiled for this architecture and kernel), and the masked and
//! read-only path lists. One computation for `launch run`'s plan and for `launch exec`, so a
//! process entering the container gets exactly what its main process got.

use std::path::PathBuf;

use crate::host::HostFacts;
use crate::spec::{CapChoice, CapSet, Paths, Seccomp, Security, Spec};
use crate::sys::caps::{self, CapPlan};
use crate::sys::masked_paths::{self, DEFAULT_MASKED, DEFAULT_READONLY};
use crate::sys::seccomp::{self, Profile, Program};

/// How the container's process is confined, decided for this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// The five capability sets and how to reach them; `None`: untouched.
    pub caps: Option<CapPlan>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// The filter: the rules, their compiled program, and whether denials are logged.
    pub seccomp: Option<Filter>,
}

/// A seccomp filter ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The rules.
    pub profile: Profile,
    /// The BPF program. Empty when the profile could not be compiled here (validation reports
    /// that first): the kernel refuses an empty program, so the run fails closed, never open.
    pub program: Program,
    /// SECCOMP_FILTER_FLAG_LOG.
    pub log: bool,
}

impl Confinement {
    /// Whether the filter must be loaded before the capabilities are dropped: without
    /// no_new_privs the kernel takes a filter only from a process with CAP_SYS_ADMIN, which
    /// the kept set may lack (runc does the same).
    pub fn seccomp_early(&self) -> bool {
        self.seccomp.is_some() && !self.no_new_privs
    }
}

/// The confinement `s` gives a process running as `uid` (in the container) started by a
/// launcher whose bounding set is `available`.
pub fn confinement(s: &Security, uid: u32, available: CapSet) -> Confinement {
    let caps = s
        .capabilities
        .map(|choice| caps::plan(choice, uid, available));
    let seccomp = match &s.seccomp {
        Seccomp::Unconfined => None,
        Seccomp::Default => {
            // The capabilities the container keeps decide which calls the profile allows.
            let kept = s
                .capabilities
                .map_or(available, CapChoice::resolve)
                .intersection(available);
            let profile = seccomp::default_profile(&kept.names());
            // The common case (the default capabilities) was compiled when launch was built.
            Some(match seccomp::precompiled(kept) {
                Some(program) => Filter {
                    profile,
                    program,
                    log: s.seccomp_log,
                },
                None => filter(profile, s.seccomp_log),
            })
        }
        Seccomp::Custom(p) => Some(filter(p.clone(), s.seccomp_log || p.log)),
    };
    Confinement {
        caps,
        no_new_privs: s.no_new_privileges,
        seccomp,
    }
}

fn filter(profile: Profile, log: bool) -> Filter {
    let program = seccomp::compile(&profile).unwrap_or_else(|_| Program {
        name: profile.name.clone(),
        rules: 0,
        digest: String::from("none: not compiled"),
        instructions: Vec::new(),
    });
    Filter {
        profile,
        program,
        log,
    }
}

/// The masked paths, defaults expanded for this host's CPUs.
pub fn masked(spec: &Spec, facts: &HostFacts) -> Vec<PathBuf> {
    paths(&spec.security.masked_paths, DEFAULT_MASKED, facts)
}

/// The read-only paths, defaults expanded.
pub fn readonly(spec: &Spec, facts: &HostFacts) -> Vec<PathBuf> {
    paths(&spec.security.readonly_paths, DEFAULT_READONLY, facts)
}

fn paths(p: &Paths, default: &[masked_paths::Rule], facts: &HostFacts) -> Vec<PathBuf> {
    match p {
        Paths::Default => masked_paths::expand_for(default, facts.cpus),
        Paths::List(l) => l.clone(),
    }
}
