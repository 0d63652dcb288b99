//! What the container used, read from its cgroups after it exits (before they are removed):
//! CPU time, peak memory, peak pids, and whether the OOM killer struck.

use std::path::{Path, PathBuf};

use crate::manifest::units::human_size;
use crate::sys::cgroup::{self, Usage, Want};

/// Usage of one run, as the cgroup driver reads it.
pub type Stats = Usage;

/// Only what the OOM verdict needs, from the group holding the memory limit: two small reads
/// at every exit instead of the whole report.
pub fn oom_only(memory_group: &Path) -> Stats {
    cgroup::usage(&[memory_group], Want::Oom)
}

/// Read the usage of the container's groups (v1: one per hierarchy; v2: one).
pub fn collect(groups: &[PathBuf]) -> Stats {
    cgroup::usage(groups, Want::All)
}

/// The report lines of a run's usage.
pub trait Report {
    /// One line for `--stats`.
    fn line(&self) -> String;
    /// The OOM verdict, if the OOM killer struck.
    fn oom_line(&self, exit_code: u8) -> Option<String>;
}

impl Report for Stats {
    fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ns) = self.cpu_ns {
            parts.push(format!("cpu {:.3} s", ns as f64 / 1e9));
        }
        if let Some(p) = self.memory_peak {
            parts.push(format!("memory peak {}", human_size(p)));
        }
        if let Some(p) = self.pids_peak {
            parts.push(format!("pids peak {p}"));
        }
        if parts.is_empty() {
            return "launch: stats: nothing measured (the container has no cgroup: set [limits])"
                .into();
        }
        format!("launch: stats: {}", parts.join(", "))
    }

    fn oom_line(&self, exit_code: u8) -> Option<String> {
        let kills = self.oom_kills.filter(|k| *k > 0)?;
        let limit = self
            .memory_limit
            .map_or(String::new(), |l| format!(", limit {}", human_size(l)));
        Some(if exit_code == 137 {
            format!("launch: killed: out of memory{limit}")
        } else {
            format!(
                "launch: warning: the OOM killer killed {kills} process(es) in the container{limit}"
            )
        })
    }
}
