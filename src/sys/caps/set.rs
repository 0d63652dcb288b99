//! A set of capabilities, as the kernel keeps one: a bitmask with bit N for capability N.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::capability::{Capability, UnknownCapability, canonical};

/// A set of capabilities. Plans serialize it as the list of names, in the kernel's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(u64);

impl CapSet {
    /// No capability.
    pub const EMPTY: CapSet = CapSet(0);

    /// Every capability launch knows (0 to [`Capability::LAST`]).
    pub const ALL: CapSet = CapSet((1 << (Capability::LAST as u64 + 1)) - 1);

    /// The set with exactly these capabilities.
    pub const fn of(caps: &[Capability]) -> CapSet {
        let mut bits = 0;
        let mut i = 0;
        while i < caps.len() {
            bits |= 1 << caps[i] as u64;
            i += 1;
        }
        CapSet(bits)
    }

    /// The set of a kernel bitmask (`CapBnd: 000001fffeffffff`); bits above the capabilities
    /// launch knows (a newer kernel's) are left out.
    pub const fn from_bits(bits: u64) -> CapSet {
        CapSet(bits & Self::ALL.0)
    }

    /// The kernel bitmask.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The two 32-bit words capset(2) takes (version 3): capabilities 0–31, then 32–63.
    pub const fn words(self) -> [u32; 2] {
        [self.0 as u32, (self.0 >> 32) as u32]
    }

    /// Whether `cap` is in the set.
    pub const fn contains(self, cap: Capability) -> bool {
        self.0 & (1 << cap as u64) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many capabilities the set holds.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The set with `cap` added.
    pub const fn with(self, cap: Capability) -> CapSet {
        CapSet(self.0 | 1 << cap as u64)
    }

    /// The set without `cap`.
    pub const fn without(self, cap: Capability) -> CapSet {
        CapSet(self.0 & !(1 << cap as u64))
    }

    /// Capabilities in either set.
    pub const fn union(self, other: CapSet) -> CapSet {
        CapSet(self.0 | other.0)
    }

    /// Capabilities in both sets.
    pub const fn intersection(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// Capabilities in `self` and not in `other`.
    pub const fn difference(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    /// Whether every capability of `self` is in `other`.
    pub const fn is_subset(self, other: CapSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The capabilities, by number.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }

    /// The set named by a list, as a manifest or an OCI file writes it: each name as
    /// [`Capability::parse`] reads it, or `ALL` (Docker's word for every capability). Every
    /// unknown name is reported, not only the first.
    pub fn parse<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<CapSet, Vec<UnknownCapability>> {
        let mut set = CapSet::EMPTY;
        let mut unknown = Vec::new();
        for name in names {
            if canonical(name) == "CAP_ALL" {
                set = CapSet::ALL;
                continue;
            }
            match Capability::parse(name) {
                Ok(c) => set = set.with(c),
                Err(e) => unknown.push(e),
            }
        }
        match unknown.is_empty() {
            true => Ok(set),
            false => Err(unknown),
        }
    }

    /// The set of a hexadecimal mask as /proc/PID/status shows it (`000001fffeffffff`).
    pub fn from_hex(hex: &str) -> Option<CapSet> {
        u64::from_str_radix(hex.trim(), 16)
            .ok()
            .map(CapSet::from_bits)
    }

    /// The names, as OCI's config.json lists them.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Capability::name).collect()
    }
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> CapSet {
        iter.into_iter().fold(CapSet::EMPTY, CapSet::with)
    }
}

/// `CAP_CHOWN, CAP_KILL`, or `none`.
impl std::fmt::Display for CapSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.names().join(", "))
    }
}

impl Serialize for CapSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for CapSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CapSet, D::Error> {
        Ok(Vec::<Capability>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::capability::Capability::*;
    use super::CapSet;

    #[test]
    fn all_is_the_41_capabilities_and_nothing_above() {
        assert_eq!(CapSet::ALL.len(), 41);
        assert_eq!(CapSet::ALL.bits(), 0x1ff_ffff_ffff);
        assert_eq!(CapSet::from_bits(u64::MAX), CapSet::ALL);
        assert!(CapSet::ALL.contains(CAP_CHECKPOINT_RESTORE));
    }

    #[test]
    fn set_algebra() {
        let a = CapSet::of(&[CAP_CHOWN, CAP_KILL, CAP_NET_RAW]);
        let b = CapSet::of(&[CAP_KILL, CAP_SYS_ADMIN]);
        assert_eq!(
            a.union(b),
            CapSet::of(&[CAP_CHOWN, CAP_KILL, CAP_NET_RAW, CAP_SYS_ADMIN])
        );
        assert_eq!(a.intersection(b), CapSet::of(&[CAP_KILL]));
        assert_eq!(a.difference(b), CapSet::of(&[CAP_CHOWN, CAP_NET_RAW]));
        assert!(CapSet::of(&[CAP_KILL]).is_subset(a));
        assert!(!b.is_subset(a));
        assert!(CapSet::EMPTY.is_subset(CapSet::EMPTY));
        assert_eq!(
            a.without(CAP_KILL).with(CAP_BPF),
            CapSet::of(&[CAP_CHOWN, CAP_NET_RAW, CAP_BPF])
        );
        assert_eq!(a.len(), 3);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![CAP_CHOWN, CAP_KILL, CAP_NET_RAW]
        );
        assert_eq!(a.iter().collect::<CapSet>(), a);
    }

    #[test]
    fn the_two_capset_words() {
        let s = CapSet::of(&[
            CAP_CHOWN,
            CAP_SETFCAP,
            CAP_MAC_OVERRIDE,
            CAP_CHECKPOINT_RESTORE,
        ]);
        assert_eq!(s.words(), [1 | 1 << 31, 1 | 1 << 8]);
        assert_eq!(CapSet::ALL.words(), [u32::MAX, 0x1ff]);
    }

    #[test]
    fn proc_status_masks() {
        // This development host's bounding set: everything but CAP_SYS_RESOURCE (24).
        let bnd = CapSet::from_hex("000001fffeffffff\n").unwrap();
        assert_eq!(bnd, CapSet::ALL.without(CAP_SYS_RESOURCE));
        assert_eq!(CapSet::from_hex("0000000000000000"), Some(CapSet::EMPTY));
        assert_eq!(
            CapSet::from_hex("0000000000002000"),
            Some(CapSet::of(&[CAP_NET_RAW]))
        );
        assert_eq!(CapSet::from_hex("xyz"), None);
    }

    #[test]
    fn lists_of_names() {
        assert_eq!(
            CapSet::parse(["NET_RAW", "cap_mknod", "CAP_NET_RAW"]),
            Ok(CapSet::of(&[CAP_NET_RAW, CAP_MKNOD]))
        );
        assert_eq!(CapSet::parse(["all"]), Ok(CapSet::ALL));
        assert_eq!(CapSet::parse(["CAP_ALL"]), Ok(CapSet::ALL));
        assert_eq!(CapSet::parse([]), Ok(CapSet::EMPTY));
        let errs = CapSet::parse(["SYS_ADMN", "KILL", "NET_RWA"]).unwrap_err();
        let named: Vec<_> = errs
            .iter()
            .map(|e| (e.name.as_str(), e.suggestion))
            .collect();
        assert_eq!(
            named,
            vec![
                ("SYS_ADMN", Some(CAP_SYS_ADMIN)),
                ("NET_RWA", Some(CAP_NET_RAW))
            ]
        );
    }

    #[test]
    fn display_and_json_use_the_names() {
        let s = CapSet::of(&[CAP_KILL, CAP_CHOWN]);
        assert_eq!(s.to_string(), "CAP_CHOWN, CAP_KILL");
        assert_eq!(CapSet::EMPTY.to_string(), "none");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["CAP_CHOWN","CAP_KILL"]"#);
        assert_eq!(serde_json::from_str::<CapSet>(&json).unwrap(), s);
    }
}
