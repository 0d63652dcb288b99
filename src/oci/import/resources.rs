//! `linux.resources`: cgroup limits into the Spec's `Limits` (device rules are read with the
//! rest of the security part, security.rs).

use serde_json::Value;

use super::linux::parent;
use super::{Cx, Launch, Node};
use crate::lower::cgroups::{LimitKey, blkio_weight_to_io, gaps, shares_to_weight};
use crate::spec::{CpuQuota, IoDevice, Limits};

/// Smallest memory limit (as for a manifest): below it the process cannot even start.
const MIN_MEMORY: u64 = 4 << 20;
/// The kernel's smallest CFS quota and period, and its largest period.
const MIN_QUOTA_US: u64 = 1000;
const MAX_PERIOD_US: u64 = 1_000_000;
/// The period when a quota comes without one (the kernel's default).
const DEFAULT_PERIOD_US: u64 = 100_000;

pub(super) fn check(cx: &mut Cx, l: &Node, launch: &Launch) -> Limits {
    let mut out = Limits::none();
    // Where each limit came from, for the host's gaps.
    let mut at: Vec<(LimitKey, Node)> = Vec::new();
    // `cgroupsPath` is `/PARENT/NAME` (runc's default is `/ID`): launch puts each instance in
    // `PARENT/NAME-ID`, so only the parent is taken; the annotation says it exactly.
    if let Some(p) = cx.get(l, "cgroupsPath") {
        if let Some(s) = cx.str(&p) {
            if let Some(path) = parent(cx, &p, &s) {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    out.parent = dir.to_path_buf();
                }
            }
        }
    }
    if let Some(parent) = &launch.cgroup_parent {
        out.parent = parent.clone();
    }
    let Some(r) = cx.get(l, "resources") else {
        return out;
    };
    let Some(r) = cx.object(
        &r,
        &[
            "devices",
            "memory",
            "cpu",
            "pids",
            "blockIO",
            "hugepageLimits",
            "network",
            "rdma",
            "unified",
        ],
    ) else {
        return out;
    };
    // `devices` is read with the rest of the security part (it depends on the capabilities).
    cx.unsupported(
        &r,
        &[
            ("hugepageLimits", "launch does not limit huge pages yet"),
            ("network", "launch does not set net_cls/net_prio yet"),
            ("rdma", "launch does not limit RDMA yet"),
        ],
    );
    // -1 is how OCI writes "unlimited".
    let limit = |cx: &mut Cx, n: &Node| -> Option<Option<u64>> {
        let v = cx.i64(n)?;
        match v {
            -1 => Some(None),
            v if v > 0 => Some(Some(v as u64)),
            _ => {
                cx.push(
                    "launch::limits::range",
                    n,
                    format!("{v} is not a limit"),
                    "a positive number, or -1 for none",
                    "write a positive value, or -1 (or nothing) for no limit",
                );
                None
            }
        }
    };
    if let Some(m) = cx.get(&r, "memory") {
        if let Some(m) = cx.object(
            &m,
            &[
                "limit",
                "reservation",
                "swap",
                "kernel",
                "kernelTCP",
                "swappiness",
                "disableOOMKiller",
                "useHierarchy",
                "checkBeforeUpdate",
            ],
        ) {
            cx.unsupported(
                &m,
                &[
                    (
                        "kernel",
                        "kernel memory limits are deprecated and not supported",
                    ),
                    (
                        "kernelTCP",
                        "kernel memory limits are deprecated and not supported",
                    ),
                    ("swappiness", "launch does not set swappiness yet"),
                    ("disableOOMKiller", "launch does not disable the OOM killer"),
                    ("useHierarchy", "a cgroup v1 setting launch does not set"),
                    (
                        "checkBeforeUpdate",
                        "launch does not update running containers",
                    ),
                ],
            );
            for (key, lk) in [
                ("limit", LimitKey::Memory),
                ("swap", LimitKey::MemorySwap),
                ("reservation", LimitKey::MemoryReservation),
            ] {
                let Some(n) = cx.get(&m, key) else { continue };
                let Some(v) = limit(cx, &n).flatten() else {
                    continue;
                };
                if lk == LimitKey::Memory && v < MIN_MEMORY {
                    cx.push(
                        "launch::limits::range",
                        &n,
                        format!("memory limit {v} is too small"),
                        "at least 4 MiB (4194304)",
                        "raise the limit to 4194304 bytes or more",
                    );
                    continue;
                }
                match lk {
                    LimitKey::Memory => out.memory = Some(v),
                    LimitKey::MemorySwap => out.memory_swap = Some(v),
                    _ => out.memory_reservation = Some(v),
                }
                at.push((lk, n));
            }
            if let (Some(swap), Some(mem)) = (out.memory_swap, out.memory) {
                if swap < mem {
                    if let Some((_, n)) = at.iter().find(|(k, _)| *k == LimitKey::MemorySwap) {
                        let n = n.clone();
                        cx.push(
                            "launch::limits::range",
                            &n,
                            "swap is below the memory limit",
                            "`swap` is memory plus swap: at least `limit`",
                            "raise `swap` to at least `limit`",
                        );
                    }
                }
            } else if let (Some(_), None, None) = (out.memory_swap, out.memory, m.v.get("limit")) {
                if let Some((_, n)) = at.iter().find(|(k, _)| *k == LimitKey::MemorySwap) {
                    let n = n.clone();
                    cx.push(
                        "launch::limits::swap_needs_memory",
                        &n,
                        "`swap` needs `limit`",
                        "memory plus swap, without a memory limit",
                        "set `limit` as well",
                    );
                }
            }
        }
    }
    if let Some(c) = cx.get(&r, "cpu") {
        if let Some(c) = cx.object(
            &c,
            &[
                "shares",
                "quota",
                "burst",
                "period",
                "realtimeRuntime",
                "realtimePeriod",
                "cpus",
                "mems",
                "idle",
            ],
        ) {
            cx.unsupported(
                &c,
                &[
                    ("burst", "launch does not set CPU burst yet"),
                    (
                        "realtimeRuntime",
                        "launch does not set realtime scheduling limits",
                    ),
                    (
                        "realtimePeriod",
                        "launch does not set realtime scheduling limits",
                    ),
                    ("idle", "launch does not set SCHED_IDLE groups yet"),
                ],
            );
            if let Some(n) = cx.get(&c, "shares") {
                if let Some(s) = cx.u64(&n) {
                    if s > 0 {
                        out.cpu_weight = Some(shares_to_weight(s));
                        at.push((LimitKey::CpuWeight, n));
                    }
                }
            }
            let quota = cx.get(&c, "quota");
            let period = cx.get(&c, "period");
            let q = quota.as_ref().and_then(|n| limit(cx, n));
            let p = period.as_ref().and_then(|n| cx.u64(n));
            match (q, p) {
                (Some(Some(q)), p) => {
                    let p = p.filter(|p| *p > 0).unwrap_or(DEFAULT_PERIOD_US);
                    let n = quota.clone().unwrap_or_else(|| c.clone());
                    if q < MIN_QUOTA_US || !(MIN_QUOTA_US..=MAX_PERIOD_US).contains(&p) {
                        cx.push(
                            "launch::limits::range",
                            &n,
                            format!("quota {q} per period {p} is out of range"),
                            "quota at least 1000 µs; period 1000 to 1000000 µs",
                            "pick a quota of at least 1000 and a period from 1000 to 1000000",
                        );
                    } else {
                        out.cpu = Some(CpuQuota {
                            quota_us: q,
                            period_us: p,
                        });
                        at.push((LimitKey::Cpu, n));
                    }
                }
                (None | Some(None), Some(p)) if p > 0 && p != DEFAULT_PERIOD_US => {
                    if let Some(n) = &period {
                        cx.push(
                            "launch::oci::unsupported",
                            n,
                            "a CPU period without a quota is not supported",
                            "launch sets the period with a quota only",
                            "set `quota` as well, or remove `period`",
                        );
                    }
                }
                _ => {}
            }
            for (key, lk) in [
                ("cpus", LimitKey::CpusetCpus),
                ("mems", LimitKey::CpusetMems),
            ] {
                let Some(n) = cx.get(&c, key) else { continue };
                let Some(s) = cx.str(&n) else { continue };
                if s.is_empty() {
                    continue;
                }
                if !cpu_list_ok(&s) {
                    cx.push(
                        "launch::limits::cpuset",
                        &n,
                        format!("`{s}` is not a CPU or node list"),
                        "a list like 0-2,4",
                        "write numbers and ranges separated by commas, e.g. \"0-1,3\"",
                    );
                    continue;
                }
                if lk == LimitKey::CpusetCpus {
                    out.cpuset_cpus = Some(s);
                } else {
                    out.cpuset_mems = Some(s);
                }
                at.push((lk, n));
            }
        }
    }
    if let Some(p) = cx.get(&r, "pids") {
        if let Some(p) = cx.object(&p, &["limit"]) {
            if let Some(n) = cx.get(&p, "limit") {
                if let Some(v) = limit(cx, &n).flatten() {
                    out.pids = Some(v);
                    at.push((LimitKey::Pids, n));
                }
            }
        }
    }
    if let Some(b) = cx.get(&r, "blockIO") {
        block_io(cx, &b, &mut out, &mut at);
    }
    if let Some(u) = cx.get(&r, "unified") {
        unified(cx, &u, &mut out, &mut at);
    }
    // What this host cannot apply, at the field that asked for it.
    for g in gaps(&out, cx.host.facts()) {
        let n = at
            .iter()
            .rev()
            .find(|(k, _)| *k == g.key)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| r.clone());
        cx.push(g.code, &n, g.message, g.label, g.help);
    }
    out
}

fn cpu_list_ok(s: &str) -> bool {
    s.split(',').all(|part| {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            (Ok(a), Ok(b)) => a <= b,
            _ => false,
        }
    })
}

fn block_io<'v>(cx: &mut Cx, b: &Node<'v>, out: &mut Limits, at: &mut Vec<(LimitKey, Node<'v>)>) {
    let Some(b) = cx.object(
        b,
        &[
            "weight",
            "leafWeight",
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ],
    ) else {
        return;
    };
    cx.unsupported(
        &b,
        &[
            ("leafWeight", "launch does not set leaf weights"),
            ("weightDevice", "launch does not set per-device weights yet"),
        ],
    );
    if let Some(n) = cx.get(&b, "weight") {
        if let Some(w) = cx.u64(&n) {
            if (10..=1000).contains(&w) {
                out.io_weight = Some(blkio_weight_to_io(w));
                at.push((LimitKey::IoWeight, n));
            } else if w != 0 {
                cx.push(
                    "launch::limits::range",
                    &n,
                    format!("block I/O weight {w} is out of range"),
                    "10 to 1000",
                    "pick a weight from 10 to 1000",
                );
            }
        }
    }
    for (key, which) in [
        ("throttleReadBpsDevice", 0),
        ("throttleWriteBpsDevice", 1),
        ("throttleReadIOPSDevice", 2),
        ("throttleWriteIOPSDevice", 3),
    ] {
        let Some(list) = cx.get(&b, key) else {
            continue;
        };
        let Some(items) = cx.array(&list) else {
            continue;
        };
        for i in items {
            let Some(o) = cx.object(&i, &["major", "minor", "rate"]) else {
                continue;
            };
            let mut num = |k: &str| cx.required(&o, k, "a number").and_then(|n| cx.u64(&n));
            let (Some(major), Some(minor), Some(rate)) = (num("major"), num("minor"), num("rate"))
            else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (u32::try_from(major), u32::try_from(minor)) else {
                cx.push(
                    "launch::limits::io_device",
                    &o,
                    "device numbers out of range",
                    "major and minor are 32-bit",
                    "fix `major` and `minor`",
                );
                continue;
            };
            let idx = match out
                .io
                .iter()
                .position(|d| d.major == major && d.minor == minor)
            {
                Some(idx) => idx,
                None => {
                    out.io.push(IoDevice {
                        major,
                        minor,
                        read_bps: None,
                        write_bps: None,
                        read_iops: None,
                        write_iops: None,
                    });
                    out.io.len() - 1
                }
            };
            let d = &mut out.io[idx];
            let slot = match which {
                0 => &mut d.read_bps,
                1 => &mut d.write_bps,
                2 => &mut d.read_iops,
                _ => &mut d.write_iops,
            };
            *slot = Some(rate);
            at.push((LimitKey::Io(idx), o));
        }
    }
}

/// `unified`: cgroup v2 files by name. The ones the Spec has a place for are read; a value
/// here wins over the v1-scale field it duplicates (`cpu.weight` over `shares`), as in runc.
fn unified<'v>(cx: &mut Cx, u: &Node<'v>, out: &mut Limits, at: &mut Vec<(LimitKey, Node<'v>)>) {
    let Some(u) = cx.object(u, &["memory.high", "cpu.weight", "io.weight"]) else {
        return;
    };
    let Value::Object(map) = u.v else { return };
    for (k, v) in map {
        let n = u.child(k, v);
        let Some(s) = cx.str(&n) else { continue };
        let num = |cx: &mut Cx, lo: u64, hi: u64| -> Option<u64> {
            match s.trim().parse::<u64>() {
                Ok(v) if (lo..=hi).contains(&v) => Some(v),
                _ => {
                    cx.push(
                        "launch::limits::range",
                        &n,
                        format!("`{s}` is not a number from {lo} to {hi}"),
                        format!("{lo} to {hi}"),
                        format!("write a number from {lo} to {hi}"),
                    );
                    None
                }
            }
        };
        match k.as_str() {
            "memory.high" => {
                if s.trim() == "max" {
                    continue;
                }
                if let Some(v) = num(cx, 1, u64::MAX) {
                    out.memory_high = Some(v);
                    at.push((LimitKey::MemoryHigh, n));
                }
            }
            "cpu.weight" => {
                if let Some(v) = num(cx, 1, 10_000) {
                    out.cpu_weight = Some(v);
                    at.push((LimitKey::CpuWeight, n));
                }
            }
            "io.weight" => {
                // The file's own syntax: `default N` sets the weight of every device.
                let w = s
                    .trim()
                    .strip_prefix("default ")
                    .unwrap_or(s.trim())
                    .to_owned();
                let v = match w.parse::<u64>() {
                    Ok(v) if (1..=10_000).contains(&v) => Some(v),
                    _ => {
                        cx.push(
                            "launch::limits::range",
                            &n,
                            format!("`{s}` is not an I/O weight"),
                            "`default N` or N, N from 1 to 10000",
                            "write e.g. \"default 100\"",
                        );
                        None
                    }
                };
                if let Some(v) = v {
                    out.io_weight = Some(v);
                    at.push((LimitKey::IoWeight, n));
                }
            }
            other => cx.push(
                "launch::oci::unsupported",
                &n,
                format!("cgroup file `{other}` is not supported yet"),
                "launch writes memory.high, cpu.weight and io.weight from `unified`",
                "remove it, or use the typed field in linux.resources",
            ),
        }
    }
}
