//! The container's confinement beyond its namespaces: capabilities, no_new_privs, the seccomp
//! filter, masked and read-only paths, and the devices it may use.
//!
//! Every field defaults to the secure choice ([`Security::default`]); [`Security::unconfined`]
//! is `profile = "unconfined"`, where each opt-out is also a key of its own. Host-independent
//! like the rest of the Spec: which capabilities this host can give, and which listed paths this
//! kernel has, are decided when the Spec is lowered or run, not here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::sys::caps::{CapChoice, CapSet};
pub use crate::sys::devices::DeviceRule;
pub use crate::sys::seccomp::Profile as SeccompProfile;

/// What the container's process is allowed beyond its namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// The capabilities the process keeps (see `sys::caps::plan` for the five sets). `None`:
    /// untouched (unconfined): root keeps the launcher's, another user gets none, as the kernel
    /// does on its own.
    pub capabilities: Option<CapChoice>,
    /// PR_SET_NO_NEW_PRIVS before execve: setuid bits and file capabilities grant nothing.
    pub no_new_privileges: bool,
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// SECCOMP_FILTER_FLAG_LOG: denied calls are logged by the kernel (dmesg, audit).
    #[serde(default)]
    pub seccomp_log: bool,
    /// Paths hidden from the container (/dev/null or an empty tmpfs over them).
    pub masked_paths: Paths,
    /// Paths made read-only in the container.
    pub readonly_paths: Paths,
    /// The device allow-list (the cgroup device controller), applied in order as cgroup v1
    /// applies rules; empty: no device control.
    #[serde(default = "default_devices")]
    pub devices: Vec<DeviceRule>,
}

fn default_devices() -> Vec<DeviceRule> {
    crate::sys::devices::DEFAULT.to_vec()
}

/// The seccomp filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    /// launch's default profile (Docker's effect, see `sys::seccomp::default_profile`), built
    /// for the capabilities the container keeps.
    Default,
    /// No filter.
    Unconfined,
    /// A profile from a file (Docker or OCI JSON), its includes/excludes decided at validation.
    Custom(SeccompProfile),
}

/// A list of paths inside the container: launch's default one, or the author's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Paths {
    /// The default list (`sys::masked_paths::DEFAULT_MASKED` or `DEFAULT_READONLY`): Docker's
    /// and podman's, where this kernel has them.
    Default,
    /// Exactly these (absolute, normalized); empty: none.
    List(Vec<PathBuf>),
}

impl Default for Security {
    fn default() -> Security {
        Security {
            capabilities: Some(CapChoice::Default),
            no_new_privileges: true,
            seccomp: Seccomp::Default,
            seccomp_log: false,
            masked_paths: Paths::Default,
            readonly_paths: Paths::Default,
            devices: default_devices(),
        }
    }
}

impl Security {
    /// `profile = "unconfined"`: capabilities untouched, no no_new_privs, no filter,
    /// nothing masked or read-only. Namespaces still isolate.
    pub fn unconfined() -> Security {
        Security {
            capabilities: None,
            no_new_privileges: false,
            seccomp: Seccomp::Unconfined,
            seccomp_log: false,
            masked_paths: Paths::List(Vec::new()),
            readonly_paths: Paths::List(Vec::new()),
            devices: Vec::new(),
        }
    }
}
