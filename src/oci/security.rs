//! The rules both directions share for the Spec's security part: the five capability sets a
//! choice gives (what `launch run` applies, hence what a bundle must list), the annotation that
//! keeps the choice as the manifest wrote it, and how a bundle's masked and read-only lists are
//! recognised as the defaults.

use std::path::{Path, PathBuf};

use crate::spec::{CapChoice, CapSet};
use crate::sys::caps::{CapSets, plan};
use crate::sys::masked_paths::{Rule, Target};

/// The five sets a process running as `uid` gets for `choice`, from the capabilities
/// `available` (the launcher's bounding set). `None` (unconfined) leaves them as the kernel
/// does: everything available in the bounding set, held by root, none by another user after
/// its setuid(2), nothing inheritable or ambient.
pub(crate) fn cap_sets(choice: Option<CapChoice>, uid: u32, available: CapSet) -> CapSets {
    match choice {
        Some(c) => plan(c, uid, available).sets,
        None => {
            let held = if uid == 0 { available } else { CapSet::EMPTY };
            CapSets {
                bounding: available,
                permitted: held,
                effective: held,
                inheritable: CapSet::EMPTY,
                ambient: CapSet::EMPTY,
            }
        }
    }
}

/// A set as the annotation writes it: `ALL`, or the names joined by `,` (nothing for none).
fn spell_set(s: CapSet) -> String {
    if s == CapSet::ALL {
        return "ALL".to_owned();
    }
    s.names().join(",")
}

fn parse_set(s: &str) -> Option<CapSet> {
    CapSet::parse(s.split(',').map(str::trim).filter(|n| !n.is_empty())).ok()
}

/// The `org.launch.capabilities` value of a choice: `unconfined`, `default`, `list:NAMES`, or
/// `add:NAMES;drop:NAMES` (NAMES: `CAP_X,CAP_Y`, `ALL`, or nothing).
pub(crate) fn spell_choice(c: Option<CapChoice>) -> String {
    match c {
        None => "unconfined".to_owned(),
        Some(CapChoice::Default) => "default".to_owned(),
        Some(CapChoice::List(s)) => format!("list:{}", spell_set(s)),
        Some(CapChoice::Modify { add, drop }) => {
            format!("add:{};drop:{}", spell_set(add), spell_set(drop))
        }
    }
}

/// The choice an `org.launch.capabilities` value names; `None` when it is not one.
pub(crate) fn parse_choice(s: &str) -> Option<Option<CapChoice>> {
    match s.trim() {
        "unconfined" => return Some(None),
        "default" => return Some(Some(CapChoice::Default)),
        _ => {}
    }
    if let Some(names) = s.trim().strip_prefix("list:") {
        return Some(Some(CapChoice::List(parse_set(names)?)));
    }
    let (add, drop) = s.trim().split_once(';')?;
    let add = parse_set(add.trim().strip_prefix("add:")?)?;
    let drop = parse_set(drop.trim().strip_prefix("drop:")?)?;
    Some(Some(CapChoice::Modify { add, drop }))
}

/// The sysfs directory of every CPU.
const CPU_DIR: &str = "/sys/devices/system/cpu";

/// Whether `p` is `/sys/devices/system/cpu/cpuN/NAME` for some N.
fn is_cpu_path(p: &Path, name: &str) -> bool {
    let Ok(rest) = p.strip_prefix(CPU_DIR) else {
        return false;
    };
    let mut c = rest.components();
    let cpu = c.next().and_then(|d| d.as_os_str().to_str());
    let is_cpu = cpu
        .and_then(|d| d.strip_prefix("cpu"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    is_cpu && c.as_path() == Path::new(name)
}

/// Whether `list` is the default list `rules` as some host writes it (any number of CPUs):
/// then it imports as the default, which each host expands for its own CPUs.
pub(crate) fn is_default_list(list: &[PathBuf], rules: &[Rule]) -> bool {
    let mut rest = list;
    for r in rules {
        match r.target {
            Target::Path(p) => match rest.split_first() {
                Some((first, tail)) if first == Path::new(p) => rest = tail,
                Some(_) | None => return false,
            },
            Target::EachCpu(name) => {
                let n = rest.iter().take_while(|p| is_cpu_path(p, name)).count();
                rest = &rest[n..];
            }
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::caps::{Capability::*, DEFAULT};
    use crate::sys::masked_paths::{DEFAULT_MASKED, DEFAULT_READONLY, expand_for};

    #[test]
    fn choices_spell_and_parse_back() {
        let some = CapSet::of(&[CAP_NET_RAW, CAP_CHOWN]);
        for c in [
            None,
            Some(CapChoice::Default),
            Some(CapChoice::List(CapSet::EMPTY)),
            Some(CapChoice::List(some)),
            Some(CapChoice::List(CapSet::ALL)),
            Some(CapChoice::Modify {
                add: some,
                drop: CapSet::ALL,
            }),
            Some(CapChoice::Modify {
                add: CapSet::ALL,
                drop: CapSet::EMPTY,
            }),
        ] {
            let s = spell_choice(c);
            assert_eq!(parse_choice(&s), Some(c), "{s}");
        }
        assert_eq!(
            spell_choice(Some(CapChoice::List(some))),
            "list:CAP_CHOWN,CAP_NET_RAW"
        );
        assert_eq!(
            spell_choice(Some(CapChoice::Modify {
                add: CapSet::of(&[CAP_NET_RAW]),
                drop: CapSet::EMPTY
            })),
            "add:CAP_NET_RAW;drop:"
        );
        for bad in [
            "",
            "list",
            "list:CAP_NOPE",
            "add:CAP_KILL",
            "drop:;add:",
            "maybe",
        ] {
            assert_eq!(parse_choice(bad), None, "{bad}");
        }
    }

    #[test]
    fn unconfined_sets_are_the_kernels_own() {
        let root = cap_sets(None, 0, CapSet::ALL);
        assert_eq!(root.bounding, CapSet::ALL);
        assert_eq!(root.effective, CapSet::ALL);
        assert_eq!(root.ambient, CapSet::EMPTY);
        let user = cap_sets(None, 1000, DEFAULT);
        assert_eq!(user.bounding, DEFAULT);
        assert_eq!(user.permitted, CapSet::EMPTY);
        assert_eq!(
            cap_sets(Some(CapChoice::Default), 0, CapSet::ALL).effective,
            DEFAULT
        );
    }

    #[test]
    fn default_lists_match_for_any_number_of_cpus() {
        for cpus in [0, 1, 2, 64] {
            let list = expand_for(DEFAULT_MASKED, cpus);
            assert!(is_default_list(&list, DEFAULT_MASKED), "{cpus}");
            assert!(!is_default_list(&list, DEFAULT_READONLY));
        }
        let two = expand_for(DEFAULT_MASKED, 2);
        assert!(two.contains(&PathBuf::from(
            "/sys/devices/system/cpu/cpu1/thermal_throttle"
        )));
        let ro = expand_for(DEFAULT_READONLY, 8);
        assert!(is_default_list(&ro, DEFAULT_READONLY));
        // One path less, one more, another order: the author's own list.
        assert!(!is_default_list(&ro[1..], DEFAULT_READONLY));
        let mut more = ro.clone();
        more.push("/proc/kcore".into());
        assert!(!is_default_list(&more, DEFAULT_READONLY));
        let mut swapped = ro.clone();
        swapped.swap(0, 1);
        assert!(!is_default_list(&swapped, DEFAULT_READONLY));
        assert!(!is_default_list(&[], DEFAULT_READONLY));
        assert!(!is_cpu_path(
            Path::new("/sys/devices/system/cpu/cpufreq/thermal_throttle"),
            "thermal_throttle"
        ));
    }
}
