//! `[limits]`: cgroup limits (spelled for this host's layout) and rlimits.

use std::path::{Component, Path, PathBuf};

use super::Cx;
use crate::diag::Problem;
use crate::host::{CgroupLayout, PathKind, v1_name};
use crate::manifest::units::{self, CPU_PERIOD_US, human_size};
use crate::manifest::{Limits, Quantity, Rlimit, Sp};

/// The smallest memory limit we accept: below this even a shell is OOM-killed at start.
const MIN_MEMORY: u64 = 4 << 20;
/// The smallest CPU quota the kernel accepts (1 ms per period).
const MIN_QUOTA_US: u64 = 1000;

/// Resolved limits.
pub(crate) struct Lim {
    /// Parent group, relative to each hierarchy's root.
    pub parent: PathBuf,
    /// Cgroup file writes in order: (controller, file name, value). The controller is the v2
    /// name; on v1 it selects the hierarchy (see [`v1_name`]).
    pub writes: Vec<(&'static str, &'static str, String)>,
    /// setrlimit calls: (RLIMIT_*, soft, hard), `None` = unlimited.
    pub rlimits: Vec<(String, Option<u64>, Option<u64>)>,
}

/// rlimit names users write, and the resource each sets.
const RLIMITS: &[(&str, &str)] = &[
    ("as", "RLIMIT_AS"),
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

/// v2 `cpu.weight` (1–10000) → v1 `cpu.shares` (2–262144): the inverse of the conversion runc
/// and crun apply the other way, so a weight round-trips through them.
pub fn weight_to_shares(w: u64) -> u64 {
    2 + ((w - 1) * 262_142) / 9_999
}

/// v2 `io.weight` (1–10000) → v1 `blkio.weight` (10–1000), linear.
pub fn io_weight_to_v1(w: u64) -> u64 {
    10 + ((w - 1) * 990) / 9_999
}

struct L<'a, 'h> {
    cx: &'a mut Cx<'h>,
    writes: Vec<(&'static str, &'static str, String)>,
    layout: CgroupLayout,
}

impl L<'_, '_> {
    /// Record a write, or a problem if the host lacks the controller.
    fn write(
        &mut self,
        span: std::ops::Range<usize>,
        controller: &'static str,
        file: &'static str,
        value: String,
    ) {
        let facts = &self.cx.host.facts().cgroup;
        if !facts.has(controller) {
            let (layout, name) = match self.layout {
                CgroupLayout::V2 => ("cgroup v2", controller),
                CgroupLayout::V1 => ("cgroup v1", v1_name(controller)),
                CgroupLayout::Hybrid => ("hybrid (v1 controllers)", v1_name(controller)),
                CgroupLayout::None => ("no cgroups", controller),
            };
            if !self.cx.problems.iter().any(|p| p.span == span) {
                self.cx.push(
                    Problem::new(
                        "launch::limits::controller_missing",
                        span,
                        format!("this host cannot apply this limit: no `{name}` controller"),
                    )
                    .label(format!("needs the `{name}` controller; this host has {layout}"))
                    .help(match self.layout {
                        CgroupLayout::V2 => format!("enable `{name}` in the parent's cgroup.subtree_control, or remove this limit"),
                        _ => format!("mount the `{name}` cgroup hierarchy, or remove this limit"),
                    }),
                );
            }
            return;
        }
        self.writes.push((controller, file, value));
    }

    fn v2(&self) -> bool {
        self.layout == CgroupLayout::V2
    }

    fn size(&mut self, q: &Sp<Quantity>) -> Option<u64> {
        units::parse_size(q.get())
            .map_err(|e| {
                self.cx.push(
                    Problem::new("launch::units::size", q.span(), format!("invalid size {}: {e}", q.get()))
                        .label("expected a size like \"512MiB\" or \"1G\"")
                        .help("write a number with a unit: B, KiB, MiB, GiB, TiB (K, M, G, T mean the same)"),
                )
            })
            .ok()
    }

    fn range(&mut self, v: &Sp<i64>, min: i64, max: i64, what: &str) -> Option<u64> {
        if *v.get() < min || *v.get() > max {
            self.cx.push(
                Problem::new(
                    "launch::limits::range",
                    v.span(),
                    format!("{what} {} is out of range", v.get()),
                )
                .label(format!("must be from {min} to {max}"))
                .help(format!("pick a {what} from {min} to {max}")),
            );
            return None;
        }
        Some(*v.get() as u64)
    }
}

pub(crate) fn check(cx: &mut Cx, limits: Option<&Sp<Limits>>) -> Lim {
    let layout = cx.host.facts().cgroup.layout;
    let cpus = cx.host.facts().cpus;
    let memory_swap_ok = cx.host.facts().cgroup.memory_swap;
    let Some(lsp) = limits else {
        return Lim {
            parent: PathBuf::from("launch"),
            writes: vec![],
            rlimits: vec![],
        };
    };
    let l = lsp.get();
    let parent = l
        .parent
        .as_ref()
        .map_or(PathBuf::from("launch"), |p| check_parent(cx, p));
    let mut b = L {
        cx,
        writes: Vec::new(),
        layout,
    };

    if let Some(c) = &l.cpu {
        match units::parse_cpu(c.get()) {
            Err(e) => b.cx.push(
                Problem::new(
                    "launch::units::cpu",
                    c.span(),
                    format!("invalid CPU amount {}: {e}", c.get()),
                )
                .label("expected \"30%\" (of one CPU) or a number of CPUs like 1.5")
                .help("write `cpu = \"30%\"` or `cpu = 1.5`"),
            ),
            Ok(q) if q.quota_us < MIN_QUOTA_US || q.quota_us > cpus as u64 * CPU_PERIOD_US => {
                b.cx.push(
                    Problem::new(
                        "launch::limits::range",
                        c.span(),
                        format!("CPU amount {} is out of range", c.get()),
                    )
                    .label(format!(
                        "this host allows 1% to {}% ({cpus} CPUs)",
                        cpus * 100
                    ))
                    .help(format!("pick an amount from \"1%\" to \"{}%\"", cpus * 100)),
                )
            }
            Ok(q) => {
                if b.v2() {
                    b.write(
                        c.span(),
                        "cpu",
                        "cpu.max",
                        format!("{} {}", q.quota_us, q.period_us),
                    );
                } else {
                    // A new v1 group's period already is the kernel's default, the only period
                    // a manifest can ask for (CPU_PERIOD_US): writing it again costs a bandwidth
                    // update and ~0.1 ms of start-up for nothing.
                    debug_assert_eq!(q.period_us, crate::manifest::units::CPU_PERIOD_US);
                    b.write(c.span(), "cpu", "cpu.cfs_quota_us", q.quota_us.to_string());
                }
            }
        }
    }
    if let Some(w) = &l.cpu_weight {
        if let Some(w) = b.range(w, 1, 10_000, "cpu weight").map(|x| (x, w.span())) {
            let (file, value) = if b.v2() {
                ("cpu.weight", w.0)
            } else {
                ("cpu.shares", weight_to_shares(w.0))
            };
            b.write(w.1, "cpu", file, value.to_string());
        }
    }
    let root_mems =
        b.cx.host
            .facts()
            .cgroup
            .cpuset_root
            .as_ref()
            .map(|r| r.1.clone());
    if let Some(c) = &l.cpuset_cpus {
        if let Some(v) = cpu_list(b.cx, c, Some(cpus)) {
            b.write(c.span(), "cpuset", "cpuset.cpus", v);
            // A v1 cpuset group cannot take tasks until both cpus and mems are set.
            if !b.v2() && l.cpuset_mems.is_none() {
                b.write(
                    c.span(),
                    "cpuset",
                    "cpuset.mems",
                    root_mems.clone().unwrap_or_else(|| "0".into()),
                );
            }
        }
    }
    if let Some(m) = &l.cpuset_mems {
        if let Some(v) = cpu_list(b.cx, m, None) {
            b.write(m.span(), "cpuset", "cpuset.mems", v);
        }
    }
    let memory = l.memory.as_ref().and_then(|m| {
        let v = b.size(m)?;
        if v < MIN_MEMORY {
            b.cx.push(
                Problem::new(
                    "launch::limits::range",
                    m.span(),
                    format!("memory limit {} is too small", human_size(v)),
                )
                .label(format!("less than {}", human_size(MIN_MEMORY)))
                .help("give at least \"4MiB\"; most programs need far more"),
            );
            return None;
        }
        b.write(
            m.span(),
            "memory",
            if b.v2() {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            },
            v.to_string(),
        );
        Some(v)
    });
    if let Some(r) = &l.memory_reservation {
        if let Some(v) = b.size(r) {
            if memory.is_some_and(|m| v > m) {
                b.cx.push(
                    Problem::new(
                        "launch::limits::range",
                        r.span(),
                        "memory_reservation is above the memory limit",
                    )
                    .label("a reservation cannot exceed the limit")
                    .help("lower memory_reservation or raise memory"),
                );
            } else {
                let file = if b.v2() {
                    "memory.low"
                } else {
                    "memory.soft_limit_in_bytes"
                };
                b.write(r.span(), "memory", file, v.to_string());
            }
        }
    }
    if let Some(h) = &l.memory_high {
        if let Some(v) = b.size(h) {
            if !b.v2() {
                b.cx.push(
                    Problem::new(
                        "launch::limits::unsupported",
                        h.span(),
                        "memory_high needs cgroup v2",
                    )
                    .label(
                        format!("this host's memory controller is v1 ({layout:?})").to_lowercase(),
                    )
                    .help("use `memory_reservation` (v1 soft limit) or `memory` instead"),
                );
            } else {
                b.write(h.span(), "memory", "memory.high", v.to_string());
            }
        }
    }
    if let Some(s) = &l.memory_swap {
        if let Some(v) = b.size(s) {
            match memory {
                None => b.cx.push(
                    Problem::new("launch::limits::swap_needs_memory", s.span(), "memory_swap needs a memory limit")
                        .label("memory plus swap, without a memory limit")
                        .help("add `memory = ...` below or equal to memory_swap"),
                ),
                Some(m) if v < m => b.cx.push(
                    Problem::new("launch::limits::range", s.span(), "memory_swap is below the memory limit")
                        .label(format!("memory + swap must be at least memory ({})", human_size(m)))
                        .help("memory_swap counts memory and swap together: raise it to at least `memory`"),
                ),
                Some(_) if !memory_swap_ok => b.cx.push(
                    Problem::new("launch::limits::controller_missing", s.span(), "this host cannot limit swap")
                        .label("no memory.memsw.* files: swap accounting is off")
                        .help("boot with swapaccount=1, or remove memory_swap"),
                ),
                Some(m) if b.v2() => b.write(s.span(), "memory", "memory.swap.max", (v - m).to_string()),
                Some(_) => b.write(s.span(), "memory", "memory.memsw.limit_in_bytes", v.to_string()),
            }
        }
    }
    if let Some(p) = &l.pids {
        if let Some(v) = b.range(p, 1, 4_194_304, "pids limit") {
            b.write(p.span(), "pids", "pids.max", v.to_string());
        }
    }
    if let Some(w) = &l.io_weight {
        if let Some(v) = b.range(w, 1, 10_000, "io weight") {
            if b.v2() {
                b.write(w.span(), "io", "io.weight", format!("default {v}"));
            } else {
                b.write(
                    w.span(),
                    "io",
                    "blkio.weight",
                    io_weight_to_v1(v).to_string(),
                );
            }
        }
    }
    for dev in &l.io {
        io_device(&mut b, dev);
    }
    let writes = b.writes;
    let rlimits = l
        .rlimits
        .iter()
        .filter_map(|(k, v)| rlimit(cx, k, v))
        .collect();
    Lim {
        parent,
        writes,
        rlimits,
    }
}

fn io_device(b: &mut L, dev: &Sp<crate::manifest::IoLimit>) {
    let d = &dev.device;
    let number = if let Some((maj, min)) = d.split_once(':') {
        maj.parse::<u32>().ok().zip(min.parse::<u32>().ok())
    } else {
        match b.cx.host.path_kind(Path::new(d.get().as_str())) {
            Some(PathKind::BlockDevice(maj, min)) => Some((maj, min)),
            _ => None,
        }
    };
    let Some((maj, min)) = number else {
        b.cx.push(
            Problem::new(
                "launch::limits::io_device",
                d.span(),
                format!("`{}` is not a block device", d.get()),
            )
            .label("expected a block device path or \"MAJOR:MINOR\"")
            .help("name a disk, e.g. \"/dev/vda\" or \"254:0\" (see `lsblk -o NAME,MAJ:MIN`)"),
        );
        return;
    };
    let mut v2 = Vec::new();
    let mut rate = |b: &mut L, q: Option<&Sp<Quantity>>, key: &str, v1file: &'static str| {
        if let Some(q) = q {
            if let Some(v) = b.size(q) {
                if b.v2() {
                    v2.push(format!("{key}={v}"));
                } else {
                    b.write(q.span(), "io", v1file, format!("{maj}:{min} {v}"));
                }
            }
        }
    };
    rate(
        b,
        dev.read_bps.as_ref(),
        "rbps",
        "blkio.throttle.read_bps_device",
    );
    rate(
        b,
        dev.write_bps.as_ref(),
        "wbps",
        "blkio.throttle.write_bps_device",
    );
    for (v, key, v1file) in [
        (&dev.read_iops, "riops", "blkio.throttle.read_iops_device"),
        (&dev.write_iops, "wiops", "blkio.throttle.write_iops_device"),
    ] {
        if let Some(n) = v
            .as_ref()
            .and_then(|v| b.range(v, 1, i64::MAX, "iops limit").map(|n| (n, v.span())))
        {
            if b.v2() {
                v2.push(format!("{key}={}", n.0));
            } else {
                b.write(n.1, "io", v1file, format!("{maj}:{min} {}", n.0));
            }
        }
    }
    if b.v2() && !v2.is_empty() {
        b.write(
            dev.span(),
            "io",
            "io.max",
            format!("{maj}:{min} {}", v2.join(" ")),
        );
    }
}

fn check_parent(cx: &mut Cx, p: &Sp<String>) -> PathBuf {
    let path = Path::new(p.get().as_str());
    let ok = !p.is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !ok {
        cx.push(
            Problem::new(
                "launch::limits::parent",
                p.span(),
                format!("`{}` is not a valid cgroup parent", p.get()),
            )
            .label("a relative path of plain names")
            .help("write a path like \"launch\" or \"ci/jobs\", relative to each hierarchy's root"),
        );
    }
    path.to_path_buf()
}

/// Check a cpuset list like `0-2,4`; `max` bounds the CPU numbers.
fn cpu_list(cx: &mut Cx, v: &Sp<String>, max: Option<u32>) -> Option<String> {
    let parse = |s: &str| -> Option<Vec<u32>> {
        let mut out = vec![];
        for part in s.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b) = (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?);
            if a > b {
                return None;
            }
            out.push(b);
        }
        Some(out)
    };
    match parse(v.get()) {
        None => {
            cx.push(
                Problem::new(
                    "launch::limits::cpuset",
                    v.span(),
                    format!("`{}` is not a CPU list", v.get()),
                )
                .label("expected numbers and ranges, like \"0-1,3\"")
                .help("write a list like \"0\", \"0-3\" or \"0,2\""),
            );
            None
        }
        Some(highs) => {
            if let Some(m) = max {
                if highs.iter().any(|h| *h >= m) {
                    cx.push(
                        Problem::new(
                            "launch::limits::cpuset",
                            v.span(),
                            format!("`{}` names a CPU this host lacks", v.get()),
                        )
                        .label(format!("this host has CPUs 0-{}", m - 1))
                        .help(format!("use CPUs from 0 to {}", m - 1)),
                    );
                    return None;
                }
            }
            Some(v.get().replace(' ', ""))
        }
    }
}

fn rlimit(
    cx: &mut Cx,
    k: &Sp<String>,
    v: &Sp<Rlimit>,
) -> Option<(String, Option<u64>, Option<u64>)> {
    let Some((_, res)) = RLIMITS.iter().find(|(n, _)| n == k.get()) else {
        let names = RLIMITS.iter().map(|(n, _)| *n);
        let hint = crate::diag::did_you_mean(k.get(), names.clone());
        cx.push(
            Problem::new(
                "launch::limits::rlimit_unknown",
                k.span(),
                format!("unknown rlimit `{}`", k.get()),
            )
            .label(hint.map_or("not a resource limit".into(), |h| {
                format!("did you mean `{h}`?")
            }))
            .help(format!(
                "use one of: {}",
                names.collect::<Vec<_>>().join(", ")
            )),
        );
        return None;
    };
    let (soft, hard) = match v.get() {
        Rlimit::Both(q) => (q, q),
        Rlimit::Split { soft, hard } => (soft, hard),
    };
    let parse = |cx: &mut Cx, q: &Quantity| {
        units::parse_rlimit_value(q)
            .map_err(|e| {
                cx.push(
                    Problem::new(
                        "launch::limits::rlimit_value",
                        v.span(),
                        format!("invalid limit: {e}"),
                    )
                    .label("expected a number or \"unlimited\"")
                    .help("write e.g. `nofile = 1024` or `nofile = { soft = 1024, hard = 4096 }`"),
                )
            })
            .ok()
    };
    let (soft, hard) = (parse(cx, soft)?, parse(cx, hard)?);
    if let (Some(s), h) = (soft, hard) {
        if h.is_some_and(|h| s > h) {
            cx.push(
                Problem::new(
                    "launch::limits::rlimit_value",
                    v.span(),
                    "the soft limit is above the hard limit",
                )
                .label("soft > hard")
                .help("the kernel requires soft <= hard: swap or adjust them"),
            );
            return None;
        }
    } else if hard.is_some() {
        cx.push(
            Problem::new(
                "launch::limits::rlimit_value",
                v.span(),
                "the soft limit is above the hard limit",
            )
            .label("soft is unlimited, hard is not")
            .help("the kernel requires soft <= hard"),
        );
        return None;
    }
    Some(((*res).to_owned(), soft, hard))
}
