//! One module per kernel facility. Each holds the parent (host) side and the child (container) side
//! of its facility together.

pub mod caps;
pub mod cgroup;
pub mod clone;
pub mod devices;
pub mod fs;
pub mod idmap;
pub mod masked_paths;
pub mod mount;
pub mod net;
pub mod ns;
pub mod overlay;
pub mod pgo;
pub mod process;
pub mod procfs;
pub mod pty;
pub mod rlimit;
pub mod seccomp;
pub mod tar;
