//! The Spec's security part as config.json says it: the five capability sets and the seccomp
//! filter launch would apply (from the same `sys::caps::plan` and the same profile), no_new_privs,
//! and the masked and read-only paths with the defaults written out.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime as oci;
use serde_json::json;

use super::{ExportError, bare, built};
use crate::oci::annotations as key;
use crate::oci::security::spell_choice;
use crate::spec::{CapSet, Paths, Seccomp, SeccompProfile, Security};
use crate::sys::caps::CapSets;
use crate::sys::masked_paths::{DEFAULT_MASKED, DEFAULT_READONLY, expand_for};
use crate::sys::seccomp::{Action, Cmp, Rule, default_profile, native};

fn oci_caps(s: CapSet) -> Result<oci::Capabilities, ExportError> {
    bare("process.capabilities", json!(s.names()))
}

/// `process.capabilities`: every set spelled out, as runtimes set exactly what they are given
/// (none when a set is absent).
pub(super) fn capabilities(sets: &CapSets) -> Result<oci::LinuxCapabilities, ExportError> {
    let mut c: oci::LinuxCapabilities = bare("process.capabilities", json!({}))?;
    c.set_bounding(Some(oci_caps(sets.bounding)?));
    c.set_effective(Some(oci_caps(sets.effective)?));
    c.set_permitted(Some(oci_caps(sets.permitted)?));
    c.set_inheritable(Some(oci_caps(sets.inheritable)?));
    c.set_ambient(Some(oci_caps(sets.ambient)?));
    Ok(c)
}

/// The profile launch would load for a container keeping `kept`, if any.
fn profile(sec: &Security, kept: CapSet) -> Option<SeccompProfile> {
    match &sec.seccomp {
        Seccomp::Default => Some(default_profile(&kept.names())),
        Seccomp::Unconfined => None,
        Seccomp::Custom(p) => Some(p.clone()),
    }
}

/// An action and the `errnoRet` it carries.
fn action(a: Action) -> (oci::LinuxSeccompAction, Option<u32>) {
    use oci::LinuxSeccompAction as A;
    match a {
        Action::Allow => (A::ScmpActAllow, None),
        Action::Errno(e) => (A::ScmpActErrno, Some(u32::from(e))),
        Action::KillThread => (A::ScmpActKillThread, None),
        Action::KillProcess => (A::ScmpActKillProcess, None),
        Action::Trap => (A::ScmpActTrap, None),
        Action::Log => (A::ScmpActLog, None),
        Action::Trace(m) => (A::ScmpActTrace, Some(u32::from(m))),
    }
}

fn arg(index: u8, cmp: Cmp) -> Result<oci::LinuxSeccompArg, ExportError> {
    use oci::LinuxSeccompOperator as Op;
    let (op, value, two) = match cmp {
        Cmp::Ne(v) => (Op::ScmpCmpNe, v, None),
        Cmp::Lt(v) => (Op::ScmpCmpLt, v, None),
        Cmp::Le(v) => (Op::ScmpCmpLe, v, None),
        Cmp::Eq(v) => (Op::ScmpCmpEq, v, None),
        Cmp::Ge(v) => (Op::ScmpCmpGe, v, None),
        Cmp::Gt(v) => (Op::ScmpCmpGt, v, None),
        // libseccomp's order: the mask first, then the value the masked bits must equal.
        Cmp::MaskedEq { mask, value } => (Op::ScmpCmpMaskedEq, mask, Some(value)),
    };
    let mut b = oci::LinuxSeccompArgBuilder::default()
        .index(usize::from(index))
        .value(value)
        .op(op);
    if let Some(t) = two {
        b = b.value_two(t);
    }
    built("linux.seccomp.syscalls.args", b.build())
}

fn syscall(r: &Rule) -> Result<oci::LinuxSyscall, ExportError> {
    let (act, ret) = action(r.action);
    let mut b = oci::LinuxSyscallBuilder::default()
        .names(r.syscalls.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(act);
    if let Some(ret) = ret {
        b = b.errno_ret(ret);
    }
    if !r.args.is_empty() {
        let args = r
            .args
            .iter()
            .map(|a| arg(a.index, a.cmp))
            .collect::<Result<Vec<_>, _>>()?;
        b = b.args(args);
    }
    built("linux.seccomp.syscalls", b.build())
}

/// `linux.seccomp`: the profile launch would load for a container keeping `kept` (the bounding
/// set), for the native architecture (the only one launch filters; every other ABI is killed).
pub(super) fn seccomp(
    sec: &Security,
    kept: CapSet,
) -> Result<Option<oci::LinuxSeccomp>, ExportError> {
    let Some(p) = profile(sec, kept) else {
        return Ok(None);
    };
    let (default, ret) = action(p.default_action);
    let mut b = oci::LinuxSeccompBuilder::default()
        .default_action(default)
        .syscalls(p.rules.iter().map(syscall).collect::<Result<Vec<_>, _>>()?);
    if let Some(ret) = ret {
        b = b.default_errno_ret(ret);
    }
    if let Some(arch) = native() {
        let a: oci::Arch = bare("linux.seccomp.architectures", json!(arch.scmp_name))?;
        b = b.architectures(vec![a]);
    }
    if sec.seccomp_log || p.log {
        b = b.flags(vec![oci::LinuxSeccompFilterFlag::SeccompFilterFlagLog]);
    }
    built("linux.seccomp", b.build()).map(Some)
}

fn path_list(p: &Paths, default: &[crate::sys::masked_paths::Rule], cpus: u32) -> Vec<PathBuf> {
    match p {
        Paths::Default => expand_for(default, cpus),
        Paths::List(v) => v.clone(),
    }
}

fn strings(v: Vec<PathBuf>) -> Option<Vec<String>> {
    // None asked: absent, as runc reads an absent list.
    (!v.is_empty()).then(|| v.iter().map(|p| p.display().to_string()).collect())
}

/// `linux.maskedPaths` (absent for none), the default one written out for `cpus` CPUs.
pub(super) fn masked_paths(sec: &Security, cpus: u32) -> Option<Vec<String>> {
    strings(path_list(&sec.masked_paths, DEFAULT_MASKED, cpus))
}

/// `linux.readonlyPaths` (absent for none).
pub(super) fn readonly_paths(sec: &Security, cpus: u32) -> Option<Vec<String>> {
    strings(path_list(&sec.readonly_paths, DEFAULT_READONLY, cpus))
}

/// What config.json cannot say about the choices behind the sets: the capability choice as the
/// manifest made it, and a custom profile's name.
pub(super) fn annotations(sec: &Security, a: &mut HashMap<&'static str, String>) {
    a.insert(key::CAPABILITIES, spell_choice(sec.capabilities));
    match &sec.seccomp {
        Seccomp::Custom(p) => {
            a.insert(key::SECCOMP_PROFILE, p.name.clone());
        }
        Seccomp::Default | Seccomp::Unconfined => {}
    }
}
