//! What the container used, read from its cgroups after it exits (before they are removed):
//! CPU time, peak memory, peak pids, and whether the OOM killer struck.

use std::path::{Path, PathBuf};

use crate::manifest::units::human_size;

/// Usage of one run. `None`: not measured (no such controller in use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// CPU time, nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Peak memory, bytes.
    pub memory_peak: Option<u64>,
    /// The memory limit in force, bytes.
    pub memory_limit: Option<u64>,
    /// Peak number of processes.
    pub pids_peak: Option<u64>,
    /// Processes the OOM killer killed.
    pub oom_kills: Option<u64>,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn num(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file)?.trim().parse().ok()
}

/// The value of `key` in a flat keyed file (`cpu.stat`, `memory.events`, `memory.oom_control`).
fn keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    read(dir, file)?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Only what the OOM verdict needs, from the group holding the memory limit: two small reads
/// at every exit instead of the whole report.
pub fn oom_only(memory_group: &Path) -> Stats {
    let mut s = Stats::default();
    if memory_group.join("memory.events").exists() {
        s.oom_kills = keyed(memory_group, "memory.events", "oom_kill");
        s.memory_limit = num(memory_group, "memory.max");
    } else {
        s.oom_kills = keyed(memory_group, "memory.oom_control", "oom_kill");
        s.memory_limit = num(memory_group, "memory.limit_in_bytes").filter(|l| *l < (1 << 62));
    }
    s
}

/// Read the usage of the container's groups (v1: one per hierarchy; v2: one).
pub fn collect(groups: &[PathBuf]) -> Stats {
    let mut s = Stats::default();
    let set = |slot: &mut Option<u64>, v: Option<u64>| {
        if v.is_some() {
            *slot = v;
        }
    };
    for g in groups {
        let v2 = g.join("cgroup.controllers").exists();
        if v2 {
            set(
                &mut s.cpu_ns,
                keyed(g, "cpu.stat", "usage_usec").map(|u| u * 1000),
            );
            set(&mut s.memory_peak, num(g, "memory.peak"));
            set(&mut s.memory_limit, num(g, "memory.max"));
            set(&mut s.oom_kills, keyed(g, "memory.events", "oom_kill"));
        } else {
            set(&mut s.cpu_ns, num(g, "cpuacct.usage"));
            set(&mut s.memory_peak, num(g, "memory.max_usage_in_bytes"));
            // v1 reports "no limit" as a huge page-aligned number.
            set(
                &mut s.memory_limit,
                num(g, "memory.limit_in_bytes").filter(|l| *l < (1 << 62)),
            );
            set(&mut s.oom_kills, keyed(g, "memory.oom_control", "oom_kill"));
        }
        set(&mut s.pids_peak, num(g, "pids.peak"));
    }
    s
}

impl Stats {
    /// One line for `--stats`.
    pub fn line(&self) -> String {
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

    /// The OOM verdict, if the OOM killer struck.
    pub fn oom_line(&self, exit_code: u8) -> Option<String> {
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
