//! What a list of rules means: the state a cgroup v1 `devices` group is left in when the rules
//! are written to it in order, modelled on the kernel's own code (security/device_cgroup.c,
//! `devcgroup_update_access` and `devcgroup_legacy_check_permission`). The cgroup v2 program is
//! generated from this state, so both versions enforce the same thing (runc does the same with
//! its "emulator", libcontainer/cgroups/devices/devices_emulator.go).
//!
//! The kernel's model, and so this one:
//!
//! - A group has a **default** (allow or deny) and **exceptions** to it, each a (type, major,
//!   minor) key with a set of accesses. A new group copies its parent's; launch's parent is
//!   allow-all without exceptions (the state of a fresh group under the root, and of a cgroup v2
//!   group with no program attached), which is where [`Filter::new`] starts.
//! - `a` (in either file) sets the default and drops every exception: whatever came before it
//!   is forgotten.
//! - Any other rule whose polarity is the opposite of the default **adds** an exception: its
//!   accesses are merged into the exception with exactly the same key, or it is appended.
//! - A rule whose polarity is the default's **removes** its accesses from the exception with
//!   exactly the same key (dropping it when none is left). A key that only overlaps (`c 1:3`
//!   against `c *:*`) is left alone: cgroup v1 cannot punch a hole in a wildcard, and silently
//!   does nothing. [`check`] reports such rules (runc refuses them when the other key is a
//!   wildcard of the rule's; [`check`] reports any overlap, `c *:3` against `c 1:*` too).
//!
//! So there is no "first match" or "last match" at check time: the exceptions all have the same
//! polarity, and their order does not matter. Order matters only while folding the rules: a
//! later rule changes an earlier one with the same key, and a later `a` discards everything.
//!
//! An access (a request for some of r, w, m on one node) is allowed:
//!
//! - default deny: if **one** exception of that type matches the numbers (`*` matches any) and
//!   holds **every** access requested (an open for reading and writing needs `rw` in a single
//!   exception);
//! - default allow: unless **some** exception of that type matching the numbers holds **any** of
//!   the accesses requested.

use super::rule::{Access, DeviceKind, DeviceRule};

/// One exception to the default: a key (type, major, minor) and its accesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exception {
    /// Character or block (never [`DeviceKind::All`]: `a` changes the default instead).
    pub kind: DeviceKind,
    /// The major number; `None` is any.
    pub major: Option<u32>,
    /// The minor number; `None` is any.
    pub minor: Option<u32>,
    /// The accesses the exception allows (default deny) or denies (default allow).
    pub access: Access,
}

impl Exception {
    fn same_key(&self, other: &Exception) -> bool {
        (self.kind, self.major, self.minor) == (other.kind, other.major, other.minor)
    }

    /// Whether this exception is about node `kind major:minor`.
    pub fn covers(&self, kind: DeviceKind, major: u32, minor: u32) -> bool {
        self.kind == kind
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }

    /// As a rule of the given polarity.
    pub fn rule(&self, allow: bool) -> DeviceRule {
        DeviceRule {
            allow,
            kind: self.kind,
            major: self.major,
            minor: self.minor,
            access: self.access,
        }
    }
}

/// The state a devices group is in: a default and its exceptions, in the kernel's list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Everything not excepted is allowed (`true`) or denied.
    pub default_allow: bool,
    /// The exceptions, in the order the kernel lists them (`devices.list`, for default deny).
    pub exceptions: Vec<Exception>,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter::new()
    }
}

impl Filter {
    /// Allow everything: a fresh group under an allow-all parent.
    pub fn new() -> Filter {
        Filter {
            default_allow: true,
            exceptions: Vec::new(),
        }
    }

    /// The state `rules`, written in order to a fresh group, leave it in.
    pub fn of(rules: &[DeviceRule]) -> Filter {
        let mut f = Filter::new();
        for r in rules {
            f.apply(r);
        }
        f
    }

    /// Write one rule, as the kernel does.
    pub fn apply(&mut self, r: &DeviceRule) {
        let Some(ex) = exception(r) else {
            if r.kind == DeviceKind::All {
                self.default_allow = r.allow;
                self.exceptions.clear();
            }
            return;
        };
        if r.allow == self.default_allow {
            self.remove(&ex);
        } else {
            self.add(ex);
        }
    }

    fn add(&mut self, ex: Exception) {
        match self.exceptions.iter_mut().find(|e| e.same_key(&ex)) {
            Some(e) => e.access = e.access | ex.access,
            None => self.exceptions.push(ex),
        }
    }

    fn remove(&mut self, ex: &Exception) {
        for e in self.exceptions.iter_mut().filter(|e| e.same_key(ex)) {
            e.access = e.access.difference(ex.access);
        }
        self.exceptions.retain(|e| !e.access.is_empty());
    }

    /// Whether `access` to node `kind major:minor` is allowed. `kind` is [`DeviceKind::Char`] or
    /// [`DeviceKind::Block`] (a node is one or the other); `access` may be empty (the kernel
    /// asks with no access for, e.g., an execve of a node).
    pub fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: Access) -> bool {
        let mut on_node = self
            .exceptions
            .iter()
            .filter(|e| e.covers(kind, major, minor));
        if self.default_allow {
            !on_node.any(|e| e.access.intersects(access))
        } else {
            on_node.any(|e| e.access.contains(access))
        }
    }

    /// The cgroup v1 writes that put a fresh group in this state, in order: the default (`a`
    /// to `devices.deny` or `devices.allow`), then each exception to the other file. The same
    /// state as the rules it came from, with nothing a later rule undid.
    pub fn rules(&self) -> Vec<DeviceRule> {
        let default = if self.default_allow {
            DeviceRule::ALLOW_ALL
        } else {
            DeviceRule::DENY_ALL
        };
        std::iter::once(default)
            .chain(self.exceptions.iter().map(|e| e.rule(!self.default_allow)))
            .collect()
    }
}

/// The exception a rule adds or removes: `None` for `a` (it sets the default instead) and for
/// a rule without access, which cgroup v1 refuses to parse (EINVAL; [`check`] reports it).
fn exception(r: &DeviceRule) -> Option<Exception> {
    // The kernel stores `*` as ~0: that number is `*`.
    let number = |n: Option<u32>| n.filter(|&v| v != u32::MAX);
    match r.kind {
        DeviceKind::All => None,
        DeviceKind::Char | DeviceKind::Block if r.access.is_empty() => None,
        DeviceKind::Char | DeviceKind::Block => Some(Exception {
            kind: r.kind,
            major: number(r.major),
            minor: number(r.minor),
            access: r.access,
        }),
    }
}

/// A rule that does not do what it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// `a` with numbers or a partial access: cgroup v1 reads only the letter.
    #[error(
        "`{0}`: an `a` rule sets the default for every device and access; its numbers and access are ignored"
    )]
    AllWithFields(DeviceRule),
    /// No access at all: cgroup v1 refuses the write (EINVAL).
    #[error("`{0}`: the rule names no access (one or more of r, w, m)")]
    NoAccess(DeviceRule),
    /// A number that the kernel reads as `*`.
    #[error("`{0}`: 4294967295 is how the kernel spells `*`; write `*` for any number")]
    WildcardNumber(DeviceRule),
    /// A rule that would take access out of an overlapping exception with another key: cgroup
    /// v1 only edits the exception with exactly the same key, and ignores the rest.
    #[error(
        "`{rule}` does not take away what the earlier `{other}` {verb}: cgroup v1 only changes a rule with exactly the same type and numbers"
    )]
    HolePunch {
        /// The rule that would punch the hole.
        rule: DeviceRule,
        /// The overlapping exception, as the rule that made it.
        other: DeviceRule,
        /// "allows" or "denies".
        verb: &'static str,
    },
}

/// What is wrong with `rules`, each with the index of its rule. The hole-punch check is runc's
/// (its emulator refuses those lists); the others catch rules cgroup v1 would refuse or read
/// differently than written.
pub fn check(rules: &[DeviceRule]) -> Vec<(usize, Problem)> {
    let mut out = Vec::new();
    let mut f = Filter::new();
    for (i, r) in rules.iter().enumerate() {
        match r.kind {
            DeviceKind::All => {
                if r.major.is_some() || r.minor.is_some() || r.access != Access::ALL {
                    out.push((i, Problem::AllWithFields(*r)));
                }
            }
            DeviceKind::Char | DeviceKind::Block => {
                if r.access.is_empty() {
                    out.push((i, Problem::NoAccess(*r)));
                }
                if r.major == Some(u32::MAX) || r.minor == Some(u32::MAX) {
                    out.push((i, Problem::WildcardNumber(*r)));
                }
            }
        }
        if let Some(ex) = exception(r) {
            // A rule of the default's polarity removes; what it shares with an exception of
            // another key stays (runc refuses the wildcard cases; any overlap is the same).
            let overlap = |e: &&Exception| {
                e.kind == ex.kind
                    && (e.major, e.minor) != (ex.major, ex.minor)
                    && (e.major.is_none() || ex.major.is_none() || e.major == ex.major)
                    && (e.minor.is_none() || ex.minor.is_none() || e.minor == ex.minor)
                    && e.access.intersects(ex.access)
            };
            if r.allow == f.default_allow {
                if let Some(e) = f.exceptions.iter().find(overlap) {
                    out.push((
                        i,
                        Problem::HolePunch {
                            rule: *r,
                            other: e.rule(!f.default_allow),
                            verb: if f.default_allow { "denies" } else { "allows" },
                        },
                    ));
                }
            }
        }
        f.apply(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &[&str]) -> Vec<DeviceRule> {
        text.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn later_rules_change_the_same_key_and_a_resets() {
        let f = Filter::of(&rules(&[
            "deny a",
            "allow c 1:3 r",
            "allow c 1:3 w",
            "allow c 1:5 rwm",
            "deny c 1:5 m",
            "allow b 8:* r",
            "deny b 8:* r",
        ]));
        assert!(!f.default_allow);
        let listed: Vec<String> = f.rules().iter().map(|r| r.to_string()).collect();
        assert_eq!(listed, ["deny a", "allow c 1:3 rw", "allow c 1:5 rw"]);
        let f = Filter::of(&rules(&[
            "deny a",
            "allow c 1:3 rwm",
            "allow a",
            "deny b *:* r",
        ]));
        assert!(f.default_allow);
        assert_eq!(f.rules()[1].to_string(), "deny b *:* r");
    }

    #[test]
    fn one_exception_must_hold_every_access_asked() {
        use DeviceKind::Char;
        let f = Filter::of(&rules(&["deny a", "allow c 1:3 r", "allow c 1:* w"]));
        assert!(f.allows(Char, 1, 3, Access::READ));
        assert!(f.allows(Char, 1, 3, Access::WRITE));
        // r from one exception and w from another is not rw.
        assert!(!f.allows(Char, 1, 3, Access::READ | Access::WRITE));
        assert!(!f.allows(DeviceKind::Block, 1, 3, Access::READ));
        // Default allow: any overlap denies.
        let f = Filter::of(&rules(&["allow a", "deny c 1:3 w"]));
        assert!(f.allows(Char, 1, 3, Access::READ));
        assert!(!f.allows(Char, 1, 3, Access::READ | Access::WRITE));
        assert!(f.allows(Char, 1, 3, Access::NONE));
    }

    #[test]
    fn holes_in_wildcards_are_reported_and_ignored() {
        let list = rules(&[
            "deny a",
            "allow c *:* rwm",
            "deny c 1:3 rwm",
            "deny c 1:5 m",
        ]);
        let f = Filter::of(&list);
        assert!(
            f.allows(DeviceKind::Char, 1, 3, Access::ALL),
            "v1 ignores the hole"
        );
        let p = check(&list);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].0, 2);
        assert_eq!(
            p[0].1.to_string(),
            "`deny c 1:3 rwm` does not take away what the earlier `allow c *:* rwm` allows: \
             cgroup v1 only changes a rule with exactly the same type and numbers"
        );
        // Overlapping keys, neither wider: c 1:3 stays allowed.
        let list = rules(&["deny a", "allow c 1:* rwm", "deny c *:3 r"]);
        assert!(Filter::of(&list).allows(DeviceKind::Char, 1, 3, Access::READ));
        assert!(matches!(check(&list)[..], [(2, Problem::HolePunch { .. })]));
        // Disjoint keys or accesses are fine.
        assert!(check(&rules(&["deny a", "allow c 1:* rwm", "deny c 2:3 r"])).is_empty());
        assert!(check(&rules(&["allow a", "deny b 8:* w", "allow b 8:0 r"])).is_empty());
        // Removing from the exact key is fine, and so is an access the wildcard lacks.
        assert!(
            check(&rules(&[
                "deny a",
                "allow c *:* m",
                "deny c *:* m",
                "deny c 1:3 r"
            ]))
            .is_empty()
        );
        assert!(check(&rules(&["deny a", "allow c *:* m", "deny c 1:3 r"])).is_empty());
    }

    #[test]
    fn rules_v1_would_misread_are_reported() {
        let a = DeviceRule {
            major: Some(1),
            ..DeviceRule::DENY_ALL
        };
        let none = DeviceRule::allow(DeviceKind::Char, Some(1), Some(3), Access::NONE);
        let max = DeviceRule::allow(DeviceKind::Char, Some(u32::MAX), Some(3), Access::READ);
        let p = check(&[a, none, max]);
        assert!(matches!(p[0], (0, Problem::AllWithFields(_))), "{p:?}");
        assert!(matches!(p[1], (1, Problem::NoAccess(_))), "{p:?}");
        assert!(matches!(p[2], (2, Problem::WildcardNumber(_))), "{p:?}");
        // As the kernel reads them: `a` whatever follows, nothing for no access, MAX as `*`.
        let f = Filter::of(&[a, none, max]);
        assert!(!f.default_allow);
        assert_eq!(f.exceptions.len(), 1);
        assert_eq!(f.exceptions[0].major, None);
    }
}
