//! From what a manifest asks to the five sets the container's process gets.
//!
//! The rules are runc's (and podman's for ambient capabilities):
//! - the bounding set is the kept set: whatever the process later executes (a setuid-root
//!   binary, a file with capabilities) can never hold more;
//! - root (uid 0 in the container) gets the kept set as permitted and effective; execve gives
//!   uid 0 its bounding set again anyway;
//! - another user gets nothing (a setuid(2) away from 0 clears permitted and effective, and
//!   execve gives a non-root user only its ambient set) unless the manifest names capabilities:
//!   those named go to permitted, effective, inheritable and ambient, the one set that survives
//!   execve for a non-root user;
//! - inheritable is otherwise empty (moby and runc since CVE-2022-24769: inheritable capabilities
//!   and a file's inheritable bits would hand capabilities to programs across execve);
//! - nothing outside the host's bounding set is asked of the kernel: those capabilities are left
//!   out and reported, for the layer above to warn about.

use serde::{Deserialize, Serialize};

use super::default::DEFAULT;
use super::set::CapSet;

/// What a manifest (or an OCI file) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapChoice {
    /// launch's default set ([`DEFAULT`]).
    Default,
    /// Exactly these.
    List(CapSet),
    /// The default set with changes, as Docker's `--cap-add` and `--cap-drop`.
    Modify {
        /// Capabilities added (`ALL`: every one).
        add: CapSet,
        /// Capabilities dropped (`ALL`: every one).
        drop: CapSet,
    },
}

impl CapChoice {
    /// The capabilities the container keeps. `Modify` follows Docker: adding ALL keeps every
    /// capability not dropped; dropping ALL keeps exactly those added; otherwise the default set
    /// less those dropped, plus those added (a capability both added and dropped is kept:
    /// [`CapChoice::conflicts`] finds those, for a diagnostic).
    pub fn resolve(self) -> CapSet {
        match self {
            CapChoice::Default => DEFAULT,
            CapChoice::List(set) => set,
            CapChoice::Modify { add, drop } if add == CapSet::ALL => CapSet::ALL.difference(drop),
            CapChoice::Modify { add, drop } if drop == CapSet::ALL => add,
            CapChoice::Modify { add, drop } => DEFAULT.difference(drop).union(add),
        }
    }

    /// The capabilities the manifest names as wanted: those a non-root user gets.
    pub fn named(self) -> CapSet {
        match self {
            CapChoice::Default => CapSet::EMPTY,
            CapChoice::List(set) => set,
            CapChoice::Modify { add, .. } => add.intersection(self.resolve()),
        }
    }

    /// Capabilities both added and dropped, when neither side is ALL: a manifest should say
    /// which it means.
    pub fn conflicts(self) -> CapSet {
        match self {
            CapChoice::Modify { add, drop } if add != CapSet::ALL && drop != CapSet::ALL => {
                add.intersection(drop)
            }
            CapChoice::Default | CapChoice::List(_) | CapChoice::Modify { .. } => CapSet::EMPTY,
        }
    }
}

/// The five capability sets of a process (capabilities(7)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSets {
    /// The most the process and everything it executes can ever hold.
    pub bounding: CapSet,
    /// What the process may make effective.
    pub permitted: CapSet,
    /// What the kernel checks.
    pub effective: CapSet,
    /// What execve may pass on (with a file's inheritable bits, or as ambient).
    pub inheritable: CapSet,
    /// What execve of an ordinary file passes on to a non-root user.
    pub ambient: CapSet,
}

/// How the container's process sets its capabilities around its uid change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapPlan {
    /// The sets the process ends with, before execve.
    pub sets: CapSets,
    /// PR_SET_KEEPCAPS around the uid change: the process leaves uid 0 and must keep its
    /// permitted set through setuid(2) (the kernel clears it otherwise).
    pub keep_caps: bool,
    /// Kept capabilities the host's bounding set lacks (launch's own process cannot hold them,
    /// so neither can the container's): left out of every set.
    pub unavailable: CapSet,
}

/// The sets for `choice` and a process running as `uid` (in the container), given the
/// capabilities the host can give (`available`: the bounding set of launch's process, see
/// [`super::status::ProcStatus::read_self`]). Pure: the plan shows it, the child applies it.
pub fn plan(choice: CapChoice, uid: u32, available: CapSet) -> CapPlan {
    let wanted = choice.resolve();
    let kept = wanted.intersection(available);
    let unavailable = wanted.difference(available);
    let sets = match uid {
        0 => CapSets {
            bounding: kept,
            permitted: kept,
            effective: kept,
            inheritable: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        },
        _ => {
            let named = choice.named().intersection(kept);
            CapSets {
                bounding: kept,
                permitted: named,
                effective: named,
                inheritable: named,
                ambient: named,
            }
        }
    };
    CapPlan {
        sets,
        keep_caps: uid != 0 && !sets.permitted.is_empty(),
        unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::super::capability::Capability::*;
    use super::super::default::DOCKER;
    use super::*;

    /// This development host: every capability but CAP_SYS_RESOURCE.
    const HOST: CapSet = CapSet::ALL.without(CAP_SYS_RESOURCE);

    #[test]
    fn resolve_default_list_add_drop() {
        assert_eq!(CapChoice::Default.resolve(), DEFAULT);
        let one = CapSet::of(&[CAP_NET_RAW]);
        assert_eq!(CapChoice::List(one).resolve(), one);
        assert_eq!(CapChoice::List(CapSet::EMPTY).resolve(), CapSet::EMPTY);
        let m = CapChoice::Modify {
            add: CapSet::of(&[CAP_NET_RAW, CAP_SYS_ADMIN]),
            drop: CapSet::of(&[CAP_CHOWN, CAP_MKNOD]),
        };
        assert_eq!(
            m.resolve(),
            DEFAULT
                .without(CAP_CHOWN)
                .with(CAP_NET_RAW)
                .with(CAP_SYS_ADMIN)
        );
        // Docker's default, spelt as changes to launch's.
        let docker = CapChoice::Modify {
            add: CapSet::of(&[CAP_NET_RAW, CAP_MKNOD, CAP_AUDIT_WRITE]),
            drop: CapSet::EMPTY,
        };
        assert_eq!(docker.resolve(), DOCKER);
    }

    #[test]
    fn resolve_with_all_follows_docker() {
        let drop_all = CapChoice::Modify {
            add: CapSet::of(&[CAP_KILL]),
            drop: CapSet::ALL,
        };
        assert_eq!(drop_all.resolve(), CapSet::of(&[CAP_KILL]));
        let add_all = CapChoice::Modify {
            add: CapSet::ALL,
            drop: CapSet::of(&[CAP_SYS_ADMIN]),
        };
        assert_eq!(add_all.resolve(), CapSet::ALL.without(CAP_SYS_ADMIN));
        assert_eq!(drop_all.conflicts(), CapSet::EMPTY);
        assert_eq!(add_all.conflicts(), CapSet::EMPTY);
    }

    #[test]
    fn added_and_dropped_is_kept_and_reported() {
        let m = CapChoice::Modify {
            add: CapSet::of(&[CAP_NET_RAW]),
            drop: CapSet::of(&[CAP_NET_RAW, CAP_KILL]),
        };
        assert!(m.resolve().contains(CAP_NET_RAW));
        assert!(!m.resolve().contains(CAP_KILL));
        assert_eq!(m.conflicts(), CapSet::of(&[CAP_NET_RAW]));
        assert_eq!(CapChoice::Default.conflicts(), CapSet::EMPTY);
    }

    #[test]
    fn root_gets_the_kept_set_and_no_inheritable_or_ambient() {
        let p = plan(CapChoice::Default, 0, HOST);
        assert_eq!(
            p.sets,
            CapSets {
                bounding: DEFAULT,
                permitted: DEFAULT,
                effective: DEFAULT,
                inheritable: CapSet::EMPTY,
                ambient: CapSet::EMPTY,
            }
        );
        assert!(!p.keep_caps);
        assert_eq!(p.unavailable, CapSet::EMPTY);
        // Naming capabilities changes nothing for root: no ambient, no inheritable.
        let named = plan(CapChoice::List(CapSet::of(&[CAP_NET_RAW])), 0, HOST);
        assert_eq!(named.sets.ambient, CapSet::EMPTY);
        assert_eq!(named.sets.inheritable, CapSet::EMPTY);
        assert_eq!(named.sets.effective, CapSet::of(&[CAP_NET_RAW]));
    }

    #[test]
    fn a_non_root_user_gets_nothing_unless_it_names_capabilities() {
        let p = plan(CapChoice::Default, 1000, HOST);
        assert_eq!(
            p.sets,
            CapSets {
                bounding: DEFAULT,
                ..CapSets::default()
            }
        );
        assert!(!p.keep_caps, "nothing to keep through setuid");
    }

    #[test]
    fn a_non_root_user_gets_named_capabilities_as_ambient_too() {
        let raw = CapSet::of(&[CAP_NET_RAW]);
        for choice in [
            CapChoice::List(raw),
            CapChoice::Modify {
                add: raw,
                drop: CapSet::EMPTY,
            },
        ] {
            let p = plan(choice, 1000, HOST);
            assert_eq!(p.sets.permitted, raw, "{choice:?}");
            assert_eq!(p.sets.effective, raw);
            assert_eq!(p.sets.inheritable, raw);
            assert_eq!(p.sets.ambient, raw);
            assert!(p.sets.bounding.contains(CAP_NET_RAW));
            assert!(p.keep_caps);
        }
        // Only what is named, not the rest of the default set it was added to.
        let p = plan(
            CapChoice::Modify {
                add: raw,
                drop: CapSet::of(&[CAP_CHOWN]),
            },
            1000,
            HOST,
        );
        assert_eq!(p.sets.ambient, raw);
        assert_eq!(
            p.sets.bounding,
            DEFAULT.with(CAP_NET_RAW).without(CAP_CHOWN)
        );
    }

    #[test]
    fn what_the_host_lacks_is_left_out_and_reported() {
        let asked = CapSet::of(&[CAP_SYS_RESOURCE, CAP_NET_RAW]);
        for uid in [0, 1000] {
            let p = plan(CapChoice::List(asked), uid, HOST);
            let s = p.sets;
            for set in [
                s.bounding,
                s.permitted,
                s.effective,
                s.inheritable,
                s.ambient,
            ] {
                assert!(!set.contains(CAP_SYS_RESOURCE), "uid {uid}: {set}");
            }
            assert_eq!(s.effective, CapSet::of(&[CAP_NET_RAW]), "uid {uid}");
            assert_eq!(p.unavailable, CapSet::of(&[CAP_SYS_RESOURCE]));
        }
        // A host (or an outer container) with nothing left gives nothing.
        let p = plan(CapChoice::Default, 0, CapSet::EMPTY);
        assert_eq!(p.sets, CapSets::default());
        assert_eq!(p.unavailable, DEFAULT);
    }

    #[test]
    fn every_plan_is_one_the_kernel_accepts() {
        // capset(2) and PR_CAP_AMBIENT_RAISE refuse: effective outside permitted, ambient
        // outside permitted ∩ inheritable, anything outside bounding.
        let choices = [
            CapChoice::Default,
            CapChoice::List(CapSet::ALL),
            CapChoice::List(CapSet::EMPTY),
            CapChoice::Modify {
                add: CapSet::ALL,
                drop: CapSet::of(&[CAP_SETPCAP]),
            },
            CapChoice::Modify {
                add: CapSet::of(&[CAP_SYS_ADMIN, CAP_NET_RAW]),
                drop: CapSet::ALL,
            },
        ];
        for choice in choices {
            for uid in [0, 1, 65534] {
                let s = plan(choice, uid, HOST).sets;
                assert!(s.bounding.is_subset(HOST));
                assert!(s.permitted.is_subset(s.bounding), "{choice:?} {uid}");
                assert!(s.effective.is_subset(s.permitted));
                assert!(s.inheritable.is_subset(s.bounding));
                assert!(s.ambient.is_subset(s.permitted.intersection(s.inheritable)));
            }
        }
    }
}
