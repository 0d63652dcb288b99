//! One device rule, in the kernel's vocabulary: its type, numbers and access, its cgroup v1 text
//! form (`c 1:3 rwm`, written to `devices.allow` or `devices.deny`) and the parsing of that form.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which device nodes a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DeviceKind {
    /// `a`: every node, character and block, whatever its numbers. cgroup v1 reads it as "the
    /// default for everything" and ignores what follows the letter.
    #[serde(rename = "a")]
    All,
    /// `c`: character devices (null, tty, ptys, tun, ...).
    #[serde(rename = "c")]
    Char,
    /// `b`: block devices (disks, partitions, loop devices).
    #[serde(rename = "b")]
    Block,
}

impl DeviceKind {
    /// The letter cgroup v1 uses.
    pub fn letter(self) -> char {
        match self {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        }
    }
}

/// A set of accesses: `r` (open for reading), `w` (open for writing), `m` (mknod). The bits are
/// the kernel's `DEVCG_ACC_*`, which are also `BPF_DEVCG_ACC_*`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Access(u8);

impl Access {
    /// No access at all (cgroup v1 refuses to write such a rule).
    pub const NONE: Access = Access(0);
    /// `m`: create the node with mknod(2).
    pub const MKNOD: Access = Access(1);
    /// `r`: open the node for reading.
    pub const READ: Access = Access(2);
    /// `w`: open the node for writing.
    pub const WRITE: Access = Access(4);
    /// `rwm`.
    pub const ALL: Access = Access(7);

    /// The kernel's bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From the kernel's bits; bits other than r, w and m are dropped.
    pub const fn from_bits(bits: u8) -> Access {
        Access(bits & Access::ALL.0)
    }

    /// Both sets.
    pub const fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }

    /// What `self` has and `other` has not.
    pub const fn difference(self, other: Access) -> Access {
        Access(self.0 & !other.0)
    }

    /// Whether the two sets share an access.
    pub const fn intersects(self, other: Access) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every access of `other` is in `self`.
    pub const fn contains(self, other: Access) -> bool {
        other.0 & !self.0 == 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Access {
    type Output = Access;
    fn bitor(self, other: Access) -> Access {
        self.union(other)
    }
}

/// `rwm`, in that order (the kernel's, in `devices.list`); empty for no access.
impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [
            (Access::READ, 'r'),
            (Access::WRITE, 'w'),
            (Access::MKNOD, 'm'),
        ] {
            if self.contains(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Access({self})")
    }
}

impl FromStr for Access {
    type Err = RuleError;

    /// One to three of `r`, `w`, `m`, in any order, each at most once.
    fn from_str(s: &str) -> Result<Access, RuleError> {
        parse_access(s, 0).map_err(|e| e.within(s))
    }
}

impl Serialize for Access {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// As [`FromStr`], but `""` reads as no access: whatever is serialized reads back.
impl<'de> Deserialize<'de> for Access {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Access, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(Access::NONE);
        }
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One rule: allow or deny some access to some device nodes. A list of rules is applied in
/// order, as cgroup v1 applies writes to `devices.allow` and `devices.deny` (see
/// [`super::Filter`] for exactly what that means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRule {
    /// Allow (`devices.allow`) or deny (`devices.deny`).
    pub allow: bool,
    /// Character, block, or all devices.
    pub kind: DeviceKind,
    /// The major number; `None` is `*`, any.
    #[serde(default)]
    pub major: Option<u32>,
    /// The minor number; `None` is `*`, any.
    #[serde(default)]
    pub minor: Option<u32>,
    /// The accesses allowed or denied.
    pub access: Access,
}

impl DeviceRule {
    /// `deny a`: nothing is allowed but what later rules allow.
    pub const DENY_ALL: DeviceRule = DeviceRule {
        allow: false,
        kind: DeviceKind::All,
        major: None,
        minor: None,
        access: Access::ALL,
    };

    /// `allow a`: everything is allowed but what later rules deny.
    pub const ALLOW_ALL: DeviceRule = DeviceRule {
        allow: true,
        ..DeviceRule::DENY_ALL
    };

    /// An allow rule.
    pub const fn allow(
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: Access,
    ) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access,
        }
    }

    /// A deny rule.
    pub const fn deny(
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: Access,
    ) -> DeviceRule {
        DeviceRule {
            allow: false,
            ..DeviceRule::allow(kind, major, minor, access)
        }
    }

    /// Parse the cgroup v1 text form, `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`, `b *:* m`), or `a`
    /// alone; `allow` says which file it is meant for.
    pub fn parse(allow: bool, text: &str) -> Result<DeviceRule, RuleError> {
        parse_rule(allow, text, 0).map_err(|e| e.within(text))
    }

    /// The cgroup v1 file this rule is written to.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }

    /// The cgroup v1 text form: `c 1:3 rwm`, `b *:* m`, or `a` (the kernel reads nothing after
    /// an `a`).
    pub fn v1_line(&self) -> String {
        let n = |x: Option<u32>| x.map_or_else(|| "*".to_owned(), |v| v.to_string());
        match self.kind {
            DeviceKind::All => "a".to_owned(),
            DeviceKind::Char | DeviceKind::Block => format!(
                "{} {}:{} {}",
                self.kind.letter(),
                n(self.major),
                n(self.minor),
                self.access
            ),
        }
    }
}

/// `allow c 1:3 rwm`, `deny a`.
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.allow { "allow" } else { "deny" };
        write!(f, "{verb} {}", self.v1_line())
    }
}

impl FromStr for DeviceRule {
    type Err = RuleError;

    /// `allow ` or `deny ` followed by the v1 text form.
    fn from_str(s: &str) -> Result<DeviceRule, RuleError> {
        let lead = s.len() - s.trim_start().len();
        let t = s.trim_start();
        let (allow, rest) = if let Some(r) = t.strip_prefix("allow") {
            (true, r)
        } else if let Some(r) = t.strip_prefix("deny") {
            (false, r)
        } else {
            let word = t.split_whitespace().next().unwrap_or("");
            return Err(RuleError {
                text: s.to_owned(),
                span: lead..lead + word.len(),
                message: if word.is_empty() {
                    "empty device rule".to_owned()
                } else {
                    format!("a device rule starts with `allow` or `deny`, not `{word}`")
                },
                help:
                    "write `allow TYPE MAJOR:MINOR ACCESS` or `deny ...`, e.g. `allow c 1:3 rwm` \
                       or `deny a`"
                        .to_owned(),
            });
        };
        let at = s.len() - rest.len();
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return Err(RuleError {
                text: s.to_owned(),
                span: lead..at + rest.find(char::is_whitespace).unwrap_or(rest.len()),
                message: "a device rule starts with `allow` or `deny`".to_owned(),
                help: "put a space after `allow` or `deny`".to_owned(),
            });
        }
        parse_rule(allow, rest, at).map_err(|e| e.within(s))
    }
}

/// A device rule that does not parse: where, what, and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: {message}; {help}")]
pub struct RuleError {
    /// The whole text parsed.
    pub text: String,
    /// The bytes of `text` at fault.
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// How to write it.
    pub help: String,
}

impl RuleError {
    /// Set the whole text (the parts are parsed from slices of it).
    fn within(mut self, text: &str) -> RuleError {
        self.text = text.to_owned();
        self
    }
}

/// An error at `span` (offsets into the whole text; `text` is filled in by the caller).
fn err(span: Range<usize>, message: impl Into<String>, help: impl Into<String>) -> RuleError {
    RuleError {
        text: String::new(),
        span,
        message: message.into(),
        help: help.into(),
    }
}

const FORM: &str = "write `TYPE MAJOR:MINOR ACCESS`, e.g. `c 1:3 rwm` or `b *:* m`";

/// The fields of `text` (whitespace-separated) with their offsets, `base` added.
fn fields(text: &str, base: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        let tail = &rest[start..];
        let len = tail.find(char::is_whitespace).unwrap_or(tail.len());
        out.push((base + (text.len() - rest.len()) + start, &tail[..len]));
        rest = &tail[len..];
    }
    out
}

fn parse_rule(allow: bool, text: &str, base: usize) -> Result<DeviceRule, RuleError> {
    let f = fields(text, base);
    let end = base + text.len();
    let Some(&(at, kind)) = f.first() else {
        return Err(err(base..end, "empty device rule", FORM));
    };
    let kind = match kind {
        "a" => DeviceKind::All,
        "c" => DeviceKind::Char,
        "b" => DeviceKind::Block,
        other => {
            return Err(err(
                at..at + other.len(),
                format!("unknown device type `{other}`"),
                "use `c` (character devices), `b` (block devices) or `a` (all devices)",
            ));
        }
    };
    if kind == DeviceKind::All {
        // The kernel stops reading at the `a`: anything after it would be a promise it does
        // not keep. Only the spelling `devices.list` prints is accepted as well.
        let rest: Vec<&str> = f[1..].iter().map(|(_, s)| *s).collect();
        if rest.is_empty() || rest == ["*:*", "rwm"] {
            return Ok(DeviceRule {
                allow,
                ..DeviceRule::DENY_ALL
            });
        }
        let from = f[1].0;
        return Err(err(
            from..end,
            "`a` means every device and every access: cgroup v1 ignores what follows it",
            "write `a` alone, or use `c` or `b` for some devices",
        ));
    }
    let Some(&(at, numbers)) = f.get(1) else {
        return Err(err(end..end, "expected MAJOR:MINOR after the type", FORM));
    };
    let Some(colon) = numbers.find(':') else {
        return Err(err(
            at..at + numbers.len(),
            format!("expected MAJOR:MINOR, found `{numbers}`"),
            "use `*` for any number, e.g. `1:3`, `136:*` or `*:*`",
        ));
    };
    let major = parse_number(&numbers[..colon], at, "major")?;
    let minor = parse_number(&numbers[colon + 1..], at + colon + 1, "minor")?;
    let Some(&(at, access)) = f.get(2) else {
        return Err(err(
            end..end,
            "expected the access after MAJOR:MINOR",
            "write one or more of `r` (read), `w` (write), `m` (mknod), e.g. `rwm`",
        ));
    };
    let access = parse_access(access, at)?;
    if let Some(&(extra, _)) = f.get(3) {
        return Err(err(extra..end, "unexpected text after the access", FORM));
    }
    Ok(DeviceRule {
        allow,
        kind,
        major,
        minor,
        access,
    })
}

fn parse_number(s: &str, at: usize, what: &str) -> Result<Option<u32>, RuleError> {
    let span = at..at + s.len().max(1);
    if s == "*" {
        return Ok(None);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            span,
            format!("the {what} number must be a decimal number or `*`, not `{s}`"),
            "e.g. `1:3`, `136:*` or `*:*`",
        ));
    }
    match s.parse::<u32>() {
        // ~0 is how the kernel stores `*`: the number would silently mean "any".
        Ok(u32::MAX) | Err(_) => Err(err(
            span,
            format!("the {what} number `{s}` is too large"),
            format!("device numbers are below {}; use `*` for any", u32::MAX),
        )),
        Ok(n) => Ok(Some(n)),
    }
}

fn parse_access(s: &str, at: usize) -> Result<Access, RuleError> {
    let help = "write one or more of `r` (read), `w` (write), `m` (mknod), e.g. `rwm`";
    if s.is_empty() {
        return Err(err(at..at, "empty access", help));
    }
    let mut access = Access::NONE;
    for (i, c) in s.char_indices() {
        let bit = match c {
            'r' => Access::READ,
            'w' => Access::WRITE,
            'm' => Access::MKNOD,
            other => {
                return Err(err(
                    at + i..at + i + other.len_utf8(),
                    format!("unknown access `{other}`"),
                    help,
                ));
            }
        };
        if access.contains(bit) {
            return Err(err(
                at + i..at + i + 1,
                format!("`{c}` appears twice"),
                help,
            ));
        }
        access = access | bit;
    }
    Ok(access)
}

#[cfg(test)]
mod tests {
    use super::DeviceKind::*;
    use super::*;

    #[test]
    fn the_text_form_round_trips() {
        for (text, rule) in [
            (
                "c 1:3 rwm",
                DeviceRule::allow(Char, Some(1), Some(3), Access::ALL),
            ),
            (
                "b *:* m",
                DeviceRule::allow(Block, None, None, Access::MKNOD),
            ),
            (
                "c 136:* rw",
                DeviceRule::allow(Char, Some(136), None, Access::READ | Access::WRITE),
            ),
            ("a", DeviceRule::ALLOW_ALL),
        ] {
            assert_eq!(DeviceRule::parse(true, text), Ok(rule), "{text}");
            assert_eq!(rule.v1_line(), text);
            assert_eq!(rule.v1_file(), "devices.allow");
            let shown = rule.to_string();
            assert_eq!(shown, format!("allow {text}"));
            assert_eq!(shown.parse::<DeviceRule>(), Ok(rule));
        }
        assert_eq!("deny a".parse(), Ok(DeviceRule::DENY_ALL));
        assert_eq!(DeviceRule::DENY_ALL.v1_file(), "devices.deny");
        // Lenient on spacing and access order; canonical when written.
        let r = DeviceRule::parse(false, "  c\t1:3   mwr ").unwrap();
        assert_eq!(r.v1_line(), "c 1:3 rwm");
        assert_eq!(
            DeviceRule::parse(true, "a *:* rwm"),
            Ok(DeviceRule::ALLOW_ALL)
        );
    }

    #[test]
    fn bad_rules_say_where_and_how() {
        let cases: &[(&str, &str, Range<usize>)] = &[
            ("", "empty device rule", 0..0),
            ("x 1:3 rwm", "unknown device type `x`", 0..1),
            ("c", "expected MAJOR:MINOR after the type", 1..1),
            ("c 1.3 rwm", "expected MAJOR:MINOR, found `1.3`", 2..5),
            (
                "c one:3 rwm",
                "major number must be a decimal number or `*`",
                2..5,
            ),
            (
                "c 1: rwm",
                "minor number must be a decimal number or `*`",
                4..5,
            ),
            (
                "c 1:4294967295 r",
                "minor number `4294967295` is too large",
                4..14,
            ),
            ("c 1:99999999999 r", "too large", 4..15),
            ("c 1:3", "expected the access", 5..5),
            ("c 1:3 rwx", "unknown access `x`", 8..9),
            ("c 1:3 rr", "`r` appears twice", 7..8),
            ("c 1:3 r extra", "unexpected text after the access", 8..13),
            ("a 1:3 r", "`a` means every device", 2..7),
        ];
        for (text, message, span) in cases {
            let e = DeviceRule::parse(true, text).unwrap_err();
            assert!(e.message.contains(message), "{text}: {e}");
            assert_eq!(&e.span, span, "{text}: {e}");
            assert_eq!(e.text, *text);
            assert!(!e.help.is_empty());
        }
        let e = "permit c 1:3 r".parse::<DeviceRule>().unwrap_err();
        assert_eq!(e.span, 0..6);
        assert!(
            e.to_string().contains("starts with `allow` or `deny`"),
            "{e}"
        );
        let e = "allow c 1:3 q".parse::<DeviceRule>().unwrap_err();
        assert_eq!((e.span, e.text.as_str()), (12..13, "allow c 1:3 q"));
        let e = "allowc 1:3 r".parse::<DeviceRule>().unwrap_err();
        assert_eq!(e.span, 0..6);
    }

    #[test]
    fn serde_form_is_explicit() {
        let r = DeviceRule::allow(Char, Some(136), None, Access::READ | Access::WRITE);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"allow":true,"kind":"c","major":136,"minor":null,"access":"rw"}"#
        );
        assert_eq!(serde_json::from_str::<DeviceRule>(&json).unwrap(), r);
        let short: DeviceRule =
            serde_json::from_str(r#"{"allow":false,"kind":"a","access":"rwm"}"#).unwrap();
        assert_eq!(short, DeviceRule::DENY_ALL);
        assert!(
            serde_json::from_str::<DeviceRule>(r#"{"allow":true,"kind":"c","access":"rwx"}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown access `x`")
        );
    }
}
