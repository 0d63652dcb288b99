//! `linux.resources`: the Spec's limits (v1 or v2 spelling, as the host runs them) and its
//! device rules.

use std::collections::HashMap;

use oci_spec::runtime as oci;

use super::{ExportError, built};
use crate::host::{CgroupLayout, HostFacts};
use crate::lower::cgroups::{io_weight_to_v1, weight_to_shares};
use crate::spec::Spec;

fn i64_of(key: &'static str, v: u64) -> Result<i64, ExportError> {
    i64::try_from(v).map_err(|_| ExportError::Inexpressible {
        key,
        why: format!("{v} does not fit OCI's signed 64-bit field"),
    })
}

/// The Spec's device rules as `linux.resources.devices`, in order; none (no device control) is
/// the one rule that allows everything (a runtime otherwise denies all but its default list).
/// runc and crun append their own allowed devices after these, which launch's default list
/// allows too.
fn device_rules(
    rules: &[crate::sys::devices::DeviceRule],
) -> Result<Vec<oci::LinuxDeviceCgroup>, ExportError> {
    use crate::sys::devices::DeviceKind;
    if rules.is_empty() {
        let allow_all = oci::LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwm")
            .build();
        return Ok(vec![built("linux.resources.devices", allow_all)?]);
    }
    rules
        .iter()
        .map(|r| {
            let line = r.v1_line();
            let access = line
                .rsplit(' ')
                .next()
                .filter(|_| r.kind != DeviceKind::All)
                .unwrap_or("rwm");
            let mut d = oci::LinuxDeviceCgroupBuilder::default()
                .allow(r.allow)
                .access(access.to_owned());
            d = match r.kind {
                DeviceKind::All => d.typ(oci::LinuxDeviceType::A),
                DeviceKind::Char => d.typ(oci::LinuxDeviceType::C),
                DeviceKind::Block => d.typ(oci::LinuxDeviceType::B),
            };
            if let Some(m) = r.major {
                d = d.major(i64::from(m));
            }
            if let Some(m) = r.minor {
                d = d.minor(i64::from(m));
            }
            built("linux.resources.devices", d.build())
        })
        .collect()
}

/// The resources: limits through cgroups, and the device rules.
pub(super) fn resources(
    spec: &Spec,
    facts: &HostFacts,
) -> Result<oci::LinuxResources, ExportError> {
    let l = &spec.limits;
    let v2 = match facts.cgroup.layout {
        CgroupLayout::V2 => true,
        CgroupLayout::V1 | CgroupLayout::Hybrid | CgroupLayout::None => false,
    };
    let mut r =
        oci::LinuxResourcesBuilder::default().devices(device_rules(&spec.security.devices)?);
    // Weights and memory.high go through `unified` on v2: OCI's shares and blkio weight are v1
    // scales that runtimes convert to v2 with rounding, so a weight would not arrive exactly.
    let mut unified = HashMap::new();

    let mut cpu = oci::LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if let Some(q) = l.cpu {
        cpu = cpu
            .quota(i64_of("limits.cpu", q.quota_us)?)
            .period(q.period_us);
        any_cpu = true;
    }
    if let Some(w) = l.cpu_weight {
        if v2 {
            unified.insert("cpu.weight".to_owned(), w.to_string());
        } else {
            cpu = cpu.shares(weight_to_shares(w));
            any_cpu = true;
        }
    }
    if let Some(cpus) = &l.cpuset_cpus {
        cpu = cpu.cpus(cpus.clone());
        any_cpu = true;
    }
    if let Some(mems) = &l.cpuset_mems {
        cpu = cpu.mems(mems.clone());
        any_cpu = true;
    }
    if any_cpu {
        r = r.cpu(built("linux.resources.cpu", cpu.build())?);
    }

    let mut mem = oci::LinuxMemoryBuilder::default();
    let mut any_mem = false;
    if let Some(m) = l.memory {
        mem = mem.limit(i64_of("limits.memory", m)?);
        any_mem = true;
        // As launch: swap is limited only together with memory (memory + swap, v1's meaning).
        if let Some(s) = l.memory_swap {
            mem = mem.swap(i64_of("limits.memory_swap", s)?);
        }
    }
    if let Some(res) = l.memory_reservation {
        mem = mem.reservation(i64_of("limits.memory_reservation", res)?);
        any_mem = true;
    }
    if any_mem {
        r = r.memory(built("linux.resources.memory", mem.build())?);
    }
    if let Some(h) = l.memory_high {
        if !v2 {
            return Err(ExportError::Inexpressible {
                key: "limits.memory_high",
                why:
                    "OCI spells it only as `linux.resources.unified` (cgroup v2), and this host's \
                      memory controller is v1: use `memory_reservation` or `memory` instead"
                        .into(),
            });
        }
        unified.insert("memory.high".to_owned(), h.to_string());
    }

    if let Some(p) = l.pids {
        r = r.pids(built(
            "linux.resources.pids",
            oci::LinuxPidsBuilder::default()
                .limit(i64_of("limits.pids", p)?)
                .build(),
        )?);
    }

    let mut bio = oci::LinuxBlockIoBuilder::default();
    let mut any_bio = false;
    if let Some(w) = l.io_weight {
        if v2 {
            unified.insert("io.weight".to_owned(), format!("default {w}"));
        } else {
            let v1 = io_weight_to_v1(w);
            let v1 = u16::try_from(v1).map_err(|_| ExportError::Inexpressible {
                key: "limits.io_weight",
                why: format!("{v1} does not fit OCI's blkio weight"),
            })?;
            bio = bio.weight(v1);
            any_bio = true;
        }
    }
    let throttle = |pick: fn(&crate::spec::IoDevice) -> Option<u64>| {
        l.io.iter()
            .filter_map(|d| pick(d).map(|rate| (d, rate)))
            .map(|(d, rate)| {
                built(
                    "linux.resources.blockIO",
                    oci::LinuxThrottleDeviceBuilder::default()
                        .major(i64::from(d.major))
                        .minor(i64::from(d.minor))
                        .rate(rate)
                        .build(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let rbps = throttle(|d| d.read_bps)?;
    let wbps = throttle(|d| d.write_bps)?;
    let riops = throttle(|d| d.read_iops)?;
    let wiops = throttle(|d| d.write_iops)?;
    if !rbps.is_empty() {
        bio = bio.throttle_read_bps_device(rbps);
        any_bio = true;
    }
    if !wbps.is_empty() {
        bio = bio.throttle_write_bps_device(wbps);
        any_bio = true;
    }
    if !riops.is_empty() {
        bio = bio.throttle_read_iops_device(riops);
        any_bio = true;
    }
    if !wiops.is_empty() {
        bio = bio.throttle_write_iops_device(wiops);
        any_bio = true;
    }
    if any_bio {
        r = r.block_io(built("linux.resources.blockIO", bio.build())?);
    }
    if !unified.is_empty() {
        r = r.unified(unified);
    }
    built("linux.resources", r.build())
}
