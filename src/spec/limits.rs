//! Resource limits, in kernel units and independent of the cgroup version that applies them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Limits applied through cgroups. `None` everywhere: no cgroup is made at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The parent group, relative to each hierarchy's root (`launch`).
    pub parent: PathBuf,
    /// CPU bandwidth.
    pub cpu: Option<CpuQuota>,
    /// Relative CPU weight, 1–10000 (the v2 scale).
    pub cpu_weight: Option<u64>,
    /// CPUs the container may run on, a list like `0-1,3`.
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use, a list like `0`.
    pub cpuset_mems: Option<String>,
    /// Hard memory limit, bytes.
    pub memory: Option<u64>,
    /// Memory plus swap, bytes (at least `memory`).
    pub memory_swap: Option<u64>,
    /// Memory kept under pressure, bytes.
    pub memory_reservation: Option<u64>,
    /// Throttle point above which the kernel reclaims hard, bytes.
    pub memory_high: Option<u64>,
    /// Maximum number of tasks.
    pub pids: Option<u64>,
    /// Relative I/O weight, 1–10000 (the v2 scale).
    pub io_weight: Option<u64>,
    /// Per-device I/O limits.
    pub io: Vec<IoDevice>,
}

impl Limits {
    /// No limits, under the default parent.
    pub fn none() -> Limits {
        Limits {
            parent: PathBuf::from("launch"),
            cpu: None,
            cpu_weight: None,
            cpuset_cpus: None,
            cpuset_mems: None,
            memory: None,
            memory_swap: None,
            memory_reservation: None,
            memory_high: None,
            pids: None,
            io_weight: None,
            io: vec![],
        }
    }

    /// Whether any limit is set (and so the container gets cgroups of its own).
    pub fn any(&self) -> bool {
        let Limits {
            parent: _,
            cpu,
            cpu_weight,
            cpuset_cpus,
            cpuset_mems,
            memory,
            memory_swap,
            memory_reservation,
            memory_high,
            pids,
            io_weight,
            io,
        } = self;
        cpu.is_some()
            || cpu_weight.is_some()
            || cpuset_cpus.is_some()
            || cpuset_mems.is_some()
            || memory.is_some()
            || memory_swap.is_some()
            || memory_reservation.is_some()
            || memory_high.is_some()
            || pids.is_some()
            || io_weight.is_some()
            || !io.is_empty()
    }
}

/// CPU bandwidth: `quota_us` of CPU time in every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuQuota {
    /// Microseconds of CPU time per period.
    pub quota_us: u64,
    /// The period, in microseconds.
    pub period_us: u64,
}

/// I/O limits for one block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoDevice {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Bytes read per second.
    pub read_bps: Option<u64>,
    /// Bytes written per second.
    pub write_bps: Option<u64>,
    /// Reads per second.
    pub read_iops: Option<u64>,
    /// Writes per second.
    pub write_iops: Option<u64>,
}
