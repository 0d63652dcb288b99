//! `[limits]`: cgroup limits in kernel units, and rlimits. How a limit is spelled on this host
//! (cgroup v1 or v2 files) is the lowering's business ([`crate::lower::cgroups`]); whether the
//! host can apply it is asked of the lowering too, and reported here with the manifest's spans.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use super::Cx;
use crate::diag::Problem;
use crate::host::PathKind;
use crate::lower::cgroups::LimitKey;
use crate::manifest::units::{self, human_size};
use crate::manifest::{Limits, Quantity, Rlimit, Sp};
use crate::spec::{self, CpuQuota, IoDevice, RlimitResource};

/// The smallest memory limit we accept: below this even a shell is OOM-killed at start.
const MIN_MEMORY: u64 = 4 << 20;
/// The smallest CPU quota the kernel accepts (1 ms per period).
const MIN_QUOTA_US: u64 = 1000;

/// Checks one manifest table, remembering where each limit was written.
struct L<'a, 'h> {
    cx: &'a mut Cx<'h>,
    spans: Vec<(LimitKey, Range<usize>)>,
}

impl L<'_, '_> {
    fn size(&mut self, q: &Sp<Quantity>) -> Option<u64> {
        super::size(self.cx, q)
    }

    /// A size for a limit that may also be "max" (or "infinity", "unlimited"): no limit, as
    /// cgroup v2 writes it, the same as leaving the key out.
    fn limit_size(&mut self, q: &Sp<Quantity>) -> Option<u64> {
        if units::is_unlimited(q.get()) {
            return None;
        }
        self.size(q)
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

    /// Remember where `key` was written, and pass its value on.
    fn at<T>(&mut self, key: LimitKey, span: Range<usize>, v: Option<T>) -> Option<T> {
        if v.is_some() {
            self.spans.push((key, span));
        }
        v
    }
}

/// The cgroup limits and the rlimits of `[limits]`.
pub(crate) fn check(cx: &mut Cx, limits: Option<&Sp<Limits>>) -> (spec::Limits, Vec<spec::Rlimit>) {
    let Some(lsp) = limits else {
        return (spec::Limits::none(), vec![]);
    };
    let cpus = cx.host.facts().cpus;
    let l = lsp.get();
    let parent = l
        .parent
        .as_ref()
        .map_or(PathBuf::from("launch"), |p| check_parent(cx, p));
    let mut b = L {
        cx,
        spans: Vec::new(),
    };
    let mut out = spec::Limits::none();
    out.parent = parent;

    if let Some(c) = l.cpu.as_ref().filter(|c| !units::is_unlimited(c.get())) {
        let quota = match units::parse_cpu(c.get()) {
            Err(e) => {
                b.cx.push(
                    Problem::new(
                        "launch::units::cpu",
                        c.span(),
                        format!("invalid CPU amount {}: {e}", c.get()),
                    )
                    .label("expected \"30%\" (of one CPU) or a number of CPUs like 1.5")
                    .help("write `cpu = \"30%\"`, `cpu = 1.5` or `cpu = \"300m\"` (0.3 CPUs)"),
                );
                None
            }
            Ok(q) if q.quota_us < MIN_QUOTA_US || q.quota_us > cpus as u64 * q.period_us => {
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
                );
                None
            }
            Ok(q) => Some(CpuQuota {
                quota_us: q.quota_us,
                period_us: q.period_us,
            }),
        };
        out.cpu = b.at(LimitKey::Cpu, c.span(), quota);
    }
    if let Some(w) = &l.cpu_weight {
        let v = b.range(w, 1, 10_000, "cpu weight");
        out.cpu_weight = b.at(LimitKey::CpuWeight, w.span(), v);
    }
    if let Some(c) = &l.cpuset_cpus {
        let v = cpu_list(b.cx, c, Some(cpus));
        out.cpuset_cpus = b.at(LimitKey::CpusetCpus, c.span(), v);
    }
    if let Some(m) = &l.cpuset_mems {
        let v = cpu_list(b.cx, m, None).filter(|list| {
            // Nodes this host has: a node it lacks is refused by the kernel (EINVAL on
            // cpuset.mems) at run time.
            let online = b.cx.host.facts().numa_nodes.clone();
            let Some(online) = online else { return true };
            let have = expand_list(&online);
            let missing: Vec<u32> = expand_list(list)
                .into_iter()
                .filter(|n| !have.contains(n))
                .collect();
            if missing.is_empty() {
                return true;
            }
            b.cx.push(
                Problem::new(
                    "launch::limits::cpuset",
                    m.span(),
                    format!("`{}` names a memory node this host lacks", m.get()),
                )
                .label(format!("this host's memory nodes are {online}"))
                .help(format!("use nodes from {online}")),
            );
            false
        });
        out.cpuset_mems = b.at(LimitKey::CpusetMems, m.span(), v);
    }
    if let Some(m) = &l.memory {
        let v = b.limit_size(m).filter(|v| {
            let ok = *v >= MIN_MEMORY;
            if !ok {
                b.cx.push(
                    Problem::new(
                        "launch::limits::range",
                        m.span(),
                        format!("memory limit {} is too small", human_size(*v)),
                    )
                    .label(format!("less than {}", human_size(MIN_MEMORY)))
                    .help("give at least \"4MiB\"; most programs need far more"),
                );
            }
            ok
        });
        out.memory = b.at(LimitKey::Memory, m.span(), v);
    }
    if let Some(r) = &l.memory_reservation {
        let v = b.size(r).filter(|v| {
            let ok = out.memory.is_none_or(|m| *v <= m);
            if !ok {
                b.cx.push(
                    Problem::new(
                        "launch::limits::range",
                        r.span(),
                        "memory_reservation is above the memory limit",
                    )
                    .label("a reservation cannot exceed the limit")
                    .help("lower memory_reservation or raise memory"),
                );
            }
            ok
        });
        out.memory_reservation = b.at(LimitKey::MemoryReservation, r.span(), v);
    }
    if let Some(h) = &l.memory_high {
        let v = b.limit_size(h);
        out.memory_high = b.at(LimitKey::MemoryHigh, h.span(), v);
    }
    if let Some(s) = &l.memory_swap {
        let v = b.limit_size(s).filter(|v| match out.memory {
            None => {
                b.cx.push(
                    Problem::new("launch::limits::swap_needs_memory", s.span(), "memory_swap needs a memory limit")
                        .label("memory plus swap, without a memory limit")
                        .help("add `memory = ...` below or equal to memory_swap"),
                );
                false
            }
            Some(m) if *v < m => {
                b.cx.push(
                    Problem::new("launch::limits::range", s.span(), "memory_swap is below the memory limit")
                        .label(format!("memory + swap must be at least memory ({})", human_size(m)))
                        .help("memory_swap counts memory and swap together: raise it to at least `memory`"),
                );
                false
            }
            Some(_) => true,
        });
        out.memory_swap = b.at(LimitKey::MemorySwap, s.span(), v);
    }
    if let Some(p) = &l.pids {
        let v = b.range(p, 1, 4_194_304, "pids limit");
        out.pids = b.at(LimitKey::Pids, p.span(), v);
    }
    if let Some(w) = &l.io_weight {
        let v = b.range(w, 1, 10_000, "io weight");
        out.io_weight = b.at(LimitKey::IoWeight, w.span(), v);
    }
    for dev in &l.io {
        if let Some(d) = io_device(&mut b, dev) {
            b.spans.push((LimitKey::Io(out.io.len()), dev.span()));
            out.io.push(d);
        }
    }
    // What this host cannot apply, at the key that asked for it.
    for gap in crate::lower::cgroups::gaps(&out, b.cx.host.facts()) {
        let span = b
            .spans
            .iter()
            .find(|(k, _)| *k == gap.key)
            .map_or(lsp.span(), |(_, s)| s.clone());
        b.cx.push(
            Problem::new(gap.code, span, gap.message)
                .label(gap.label)
                .help(gap.help),
        );
    }
    let rlimits = l
        .rlimits
        .iter()
        .filter_map(|(k, v)| rlimit(cx, k, v))
        .collect();
    (out, rlimits)
}

fn io_device(b: &mut L, dev: &Sp<crate::manifest::IoLimit>) -> Option<IoDevice> {
    let d = &dev.device;
    // What is wrong with the name, in words: a missing path is not "not a block device".
    let mut why = None;
    let number = if let Some((maj, min)) = d.split_once(':') {
        maj.parse::<u32>().ok().zip(min.parse::<u32>().ok())
    } else {
        match b.cx.host.path_kind(Path::new(d.get().as_str())) {
            Some(PathKind::BlockDevice(maj, min)) => Some((maj, min)),
            None => {
                why = Some("no such file on this host");
                None
            }
            Some(_) => {
                why = Some("it exists, but is not a block device");
                None
            }
        }
    };
    let Some((major, minor)) = number else {
        let (message, label) = match why {
            Some("no such file on this host") => (
                format!("`{}` does not exist", d.get()),
                "no such device on this host".to_string(),
            ),
            Some(w) => (
                format!("`{}` is not a block device", d.get()),
                w.to_string(),
            ),
            None => (
                format!("`{}` is not a block device", d.get()),
                "expected a block device path or \"MAJOR:MINOR\"".to_string(),
            ),
        };
        b.cx.push(
            Problem::new("launch::limits::io_device", d.span(), message)
                .label(label)
                .help("name a disk, e.g. \"/dev/vda\" or \"254:0\" (see `lsblk -o NAME,MAJ:MIN`)"),
        );
        return None;
    };
    let read_bps = dev.read_bps.as_ref().and_then(|q| b.size(q));
    let write_bps = dev.write_bps.as_ref().and_then(|q| b.size(q));
    let read_iops = dev
        .read_iops
        .as_ref()
        .and_then(|v| b.range(v, 1, i64::MAX, "iops limit"));
    let write_iops = dev
        .write_iops
        .as_ref()
        .and_then(|v| b.range(v, 1, i64::MAX, "iops limit"));
    Some(IoDevice {
        major,
        minor,
        read_bps,
        write_bps,
        read_iops,
        write_iops,
    })
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

/// The numbers a list like `0-2,4` names (up to 4096 of them: a list is a host's CPUs or
/// nodes).
fn expand_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            out.extend((a..=b).take(4096));
        }
    }
    out
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

fn rlimit(cx: &mut Cx, k: &Sp<String>, v: &Sp<Rlimit>) -> Option<spec::Rlimit> {
    // Manifests spell them as `ulimit` does, lower case only.
    let known = RlimitResource::ALL
        .into_iter()
        .find(|r| r.short_name() == *k.get());
    let Some(resource) = known else {
        let lower: Vec<String> = RlimitResource::ALL.iter().map(|r| r.short_name()).collect();
        let names = lower.iter().map(String::as_str);
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
    // RLIMIT_NOFILE above fs.nr_open: setrlimit fails with EPERM even for root.
    if resource == spec::RlimitResource::RLIMIT_NOFILE {
        let nr_open = cx.host.facts().nr_open;
        // `None` is unlimited: above any ceiling.
        let highest = match (soft, hard) {
            (Some(s), Some(h)) => s.max(h),
            _ => u64::MAX,
        };
        if let Some(max) = nr_open.filter(|m| highest > *m) {
            cx.push(
                Problem::new(
                    "launch::limits::rlimit_value",
                    v.span(),
                    format!("`nofile` above this host's fs.nr_open ({max})"),
                )
                .label(format!("at most {max} files can be open per process here"))
                .help(format!(
                    "lower it to {max} or less (\"unlimited\" is above it too), or raise the \
                     sysctl fs.nr_open"
                )),
            );
            return None;
        }
    }
    Some(spec::Rlimit {
        resource,
        soft,
        hard,
    })
}
