//! Seccomp profile files: the OCI runtime-spec's `linux.seccomp` object and Docker's profile
//! format (its superset: `archMap`, `comment`, `includes`/`excludes`), read with serde.
//!
//! Mistakes are reported with the line and column serde_json was at: names are checked while
//! they are read (a misspelt syscall, action, operator, architecture or capability is an error
//! with a suggestion), and each object when it closes (an `errnoRet` its action cannot carry).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::action::{Action, ActionName};
use super::arch::{Arch, SCMP_ARCHES};
use super::known_names::KNOWN;
use super::profile::{ArgCmp, Cmp, Profile, Rule};

/// A mistake in a profile file, where serde_json found it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct ProfileError {
    /// 1-based line (0 when the text ended early and serde_json gave none).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we know: `did you mean `mount`?`.
    pub help: Option<String>,
}

/// Between a message and its help inside a serde error (serde errors carry one string).
const HELP: char = '\u{1f}';

fn error_with_help<E: de::Error>(message: String, help: Option<String>) -> E {
    match help {
        Some(h) => E::custom(format!("{message}{HELP}{h}")),
        None => E::custom(message),
    }
}

fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Parse a profile file; the first mistake is reported with its line and column.
pub fn parse(text: &str) -> Result<ProfileFile, ProfileError> {
    serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let text = full.strip_suffix(&suffix).unwrap_or(&full);
        let (message, help) = match text.split_once(HELP) {
            Some((m, h)) => (m.to_string(), Some(h.to_string())),
            None => (text.to_string(), None),
        };
        ProfileError {
            line,
            column,
            message,
            help,
        }
    })
}

/// A profile file as written (OCI `linux.seccomp`, or a Docker profile).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", try_from = "RawFile")]
pub struct ProfileFile {
    /// What happens to a call no rule matches.
    pub default_action: Action,
    /// libseccomp architectures the profile is for (only the native one is filtered, see mod).
    pub architectures: Vec<String>,
    /// Log denials (`SECCOMP_FILTER_FLAG_LOG` among the OCI flags).
    pub log: bool,
    /// The rules, before includes/excludes are decided.
    pub syscalls: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFile {
    default_action: ActionName,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<ArchName>>,
    arch_map: Option<Vec<ArchMapEntry>>,
    flags: Option<Vec<FlagName>>,
    // A seccomp agent's socket: only SCMP_ACT_NOTIFY uses it, which is refused.
    #[allow(dead_code)]
    listener_path: Option<String>,
    #[allow(dead_code)]
    listener_metadata: Option<String>,
    syscalls: Option<Vec<Entry>>,
}

impl TryFrom<RawFile> for ProfileFile {
    type Error = String;
    fn try_from(raw: RawFile) -> Result<ProfileFile, String> {
        let default_action = raw
            .default_action
            .action(raw.default_errno_ret)
            .map_err(|e| format!("defaultAction: {e}"))?;
        let mut architectures: Vec<String> = Vec::new();
        for a in raw.architectures.into_iter().flatten() {
            architectures.push(a.0);
        }
        for m in raw.arch_map.into_iter().flatten() {
            architectures.push(m.architecture.0);
            architectures.extend(m.sub_architectures.into_iter().flatten().map(|a| a.0));
        }
        // TSYNC is moot (launch is single-threaded when it loads the filter), SPEC_ALLOW and
        // WAIT_KILLABLE_RECV are not offered: only LOG changes what launch does.
        let log = raw
            .flags
            .iter()
            .flatten()
            .any(|f| f.0 == "SECCOMP_FILTER_FLAG_LOG");
        Ok(ProfileFile {
            default_action,
            architectures,
            log,
            syscalls: raw.syscalls.unwrap_or_default(),
        })
    }
}

/// Docker's `archMap`: a native architecture and the compat ones it also runs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: ArchName,
    sub_architectures: Option<Vec<ArchName>>,
}

/// One `syscalls` entry: names, action, argument comparisons and Docker's conditions.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The syscall names.
    pub names: Vec<String>,
    /// Their action.
    pub action: Action,
    /// Comparisons that must all hold.
    pub args: Vec<ArgCmp>,
    /// Docker: the entry applies only when all of these hold.
    pub includes: Filter,
    /// Docker: the entry is dropped when any of these holds.
    pub excludes: Filter,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEntry {
    names: Option<Vec<SyscallName>>,
    // Docker's older spelling, one name per entry.
    name: Option<SyscallName>,
    action: ActionName,
    errno_ret: Option<u32>,
    args: Option<Vec<RawArg>>,
    #[allow(dead_code)]
    comment: Option<String>,
    includes: Option<Filter>,
    excludes: Option<Filter>,
}

/// Checked while serde_json is still inside the object, so that a mistake found only once every
/// field is known (an `errnoRet` its action cannot carry) is placed at the entry's closing brace.
impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        struct Fields;
        impl<'de> de::Visitor<'de> for Fields {
            type Value = Entry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a syscalls entry (an object)")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                let raw = RawEntry::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Entry::try_from(raw).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(Fields)
    }
}

impl TryFrom<RawEntry> for Entry {
    type Error = String;
    fn try_from(raw: RawEntry) -> Result<Entry, String> {
        let names: Vec<String> = raw
            .names
            .into_iter()
            .flatten()
            .chain(raw.name)
            .map(|n| n.0)
            .collect();
        if names.is_empty() {
            return Err("this syscalls entry names no syscall: give `names`".to_string());
        }
        let action = raw.action.action(raw.errno_ret)?;
        let args = raw
            .args
            .into_iter()
            .flatten()
            .map(RawArg::cmp)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Entry {
            names,
            action,
            args,
            includes: raw.includes.unwrap_or_default(),
            excludes: raw.excludes.unwrap_or_default(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: CmpName,
}

impl RawArg {
    fn cmp(self) -> Result<ArgCmp, String> {
        if self.index > 5 {
            return Err(format!(
                "argument index {} is out of range: syscalls have arguments 0 to 5",
                self.index
            ));
        }
        let v = self.value;
        let cmp = match self.op {
            CmpName::SCMP_CMP_NE => Cmp::Ne(v),
            CmpName::SCMP_CMP_LT => Cmp::Lt(v),
            CmpName::SCMP_CMP_LE => Cmp::Le(v),
            CmpName::SCMP_CMP_EQ => Cmp::Eq(v),
            CmpName::SCMP_CMP_GE => Cmp::Ge(v),
            CmpName::SCMP_CMP_GT => Cmp::Gt(v),
            CmpName::SCMP_CMP_MASKED_EQ => Cmp::MaskedEq {
                mask: v,
                value: self.value_two,
            },
        };
        Ok(ArgCmp {
            index: self.index as u8,
            cmp,
        })
    }
}

/// Docker's `includes`/`excludes`: capabilities, architectures (Go's names) and a kernel version.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Filter {
    /// `CAP_SYS_ADMIN` form.
    #[serde(default, deserialize_with = "caps")]
    pub caps: Vec<String>,
    /// `amd64`, `arm64`, ...
    #[serde(default, deserialize_with = "go_arches")]
    pub arches: Vec<String>,
    /// `(major, minor)`.
    #[serde(default, deserialize_with = "kernel_version")]
    pub min_kernel: Option<(u32, u32)>,
}

/// What decides Docker's includes/excludes for one container.
#[derive(Debug, Clone, Copy)]
pub struct Conditions<'a> {
    /// The capabilities the container keeps, `CAP_SYS_ADMIN` or `SYS_ADMIN` form.
    pub caps: &'a [&'a str],
    /// The architecture filtered.
    pub arch: &'a Arch,
    /// The running kernel's `(major, minor)`.
    pub kernel: (u32, u32),
}

impl Conditions<'_> {
    fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| cap_name(c) == cap)
    }
    fn is_arch(&self, arches: &[String]) -> bool {
        arches.iter().any(|a| self.arch.is_named(a))
    }
}

impl Entry {
    /// Whether Docker would keep this entry for a container with these conditions.
    pub fn applies(&self, c: &Conditions) -> bool {
        let inc = &self.includes;
        let exc = &self.excludes;
        inc.caps.iter().all(|cap| c.has_cap(cap))
            && (inc.arches.is_empty() || c.is_arch(&inc.arches))
            && inc.min_kernel.is_none_or(|k| c.kernel >= k)
            && !exc.caps.iter().any(|cap| c.has_cap(cap))
            && !c.is_arch(&exc.arches)
            && exc.min_kernel.is_none_or(|k| c.kernel < k)
    }
}

impl ProfileFile {
    /// The profile for one container: entries whose includes/excludes do not hold are dropped.
    pub fn resolve(&self, name: &str, c: &Conditions) -> Profile {
        Profile {
            name: name.to_string(),
            default_action: self.default_action,
            rules: self
                .syscalls
                .iter()
                .filter(|e| e.applies(c))
                .map(|e| Rule {
                    syscalls: e.names.iter().cloned().map(Cow::Owned).collect(),
                    action: e.action,
                    args: e.args.clone(),
                })
                .collect(),
            log: self.log,
        }
    }
}

/// `SYS_ADMIN` and `cap_sys_admin` both mean `CAP_SYS_ADMIN`.
pub fn cap_name(name: &str) -> String {
    let up = name.to_ascii_uppercase();
    match up.starts_with("CAP_") {
        true => up,
        false => format!("CAP_{up}"),
    }
}

/// Architecture names Docker profiles use in `includes.arches` (Go's, with libseccomp's short
/// ones), and the kernel's for ours.
const GO_ARCHES: &[&str] = &[
    "386",
    "x86",
    "amd64",
    "x86_64",
    "x32",
    "arm",
    "arm64",
    "aarch64",
    "mips",
    "mipsle",
    "mipsel",
    "mips64",
    "mips64le",
    "mipsel64",
    "mips64n32",
    "mipsel64n32",
    "ppc",
    "ppc64",
    "ppc64le",
    "s390",
    "s390x",
    "riscv64",
    "loong64",
    "loongarch64",
    "parisc",
    "parisc64",
    "m68k",
    "sh",
    "sheb",
];

/// The OCI runtime-spec's seccomp flags.
const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// A string that must be one of `known`, else an error naming it, with a suggestion.
fn one_of<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
    known: &[&str],
    normalize: fn(&str) -> String,
) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let n = normalize(&s);
    match known.contains(&n.as_str()) {
        true => Ok(n),
        false => Err(error_with_help(
            format!("unknown {what} `{s}`"),
            suggestion(&n, known.iter().copied()),
        )),
    }
}

fn same(s: &str) -> String {
    s.to_string()
}

fn caps<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<CapName>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.0)
        .collect())
}

fn go_arches<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<GoArch>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.0)
        .collect())
}

fn kernel_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(u32, u32)>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    parse_kernel_version(&s).map(Some).ok_or_else(|| {
        error_with_help(
            format!("minKernel `{s}` is not a kernel version"),
            Some("write MAJOR.MINOR, e.g. \"4.8\"".to_string()),
        )
    })
}

/// `6.18.44-fc` → `(6, 18)`.
pub fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Declares a string newtype read with [`one_of`].
macro_rules! checked_name {
    ($ty:ident, $what:literal, $known:expr, $normalize:expr) => {
        struct $ty(String);
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                one_of(d, $what, $known, $normalize).map($ty)
            }
        }
    };
}

checked_name!(SyscallName, "syscall", KNOWN, same);
checked_name!(ArchName, "architecture", SCMP_ARCHES, same);
// The capability names come from the one list launch has (sys::caps).
checked_name!(
    CapName,
    "capability",
    &crate::sys::caps::Capability::ALL.map(crate::sys::caps::Capability::name),
    cap_name
);
checked_name!(GoArch, "architecture", GO_ARCHES, same);
checked_name!(FlagName, "seccomp flag", FLAGS, same);

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = ActionName::ALL.map(ActionName::name);
        let s = one_of(d, "action", &names, same)?;
        ActionName::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| de::Error::custom(format!("unknown action `{s}`")))
    }
}

/// An operator as profiles spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
enum CmpName {
    SCMP_CMP_NE,
    SCMP_CMP_LT,
    SCMP_CMP_LE,
    SCMP_CMP_EQ,
    SCMP_CMP_GE,
    SCMP_CMP_GT,
    SCMP_CMP_MASKED_EQ,
}

impl CmpName {
    const ALL: [(CmpName, &'static str); 7] = [
        (CmpName::SCMP_CMP_NE, "SCMP_CMP_NE"),
        (CmpName::SCMP_CMP_LT, "SCMP_CMP_LT"),
        (CmpName::SCMP_CMP_LE, "SCMP_CMP_LE"),
        (CmpName::SCMP_CMP_EQ, "SCMP_CMP_EQ"),
        (CmpName::SCMP_CMP_GE, "SCMP_CMP_GE"),
        (CmpName::SCMP_CMP_GT, "SCMP_CMP_GT"),
        (CmpName::SCMP_CMP_MASKED_EQ, "SCMP_CMP_MASKED_EQ"),
    ];
}

impl<'de> Deserialize<'de> for CmpName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = CmpName::ALL.map(|(_, n)| n);
        let s = one_of(d, "operator", &names, same)?;
        CmpName::ALL
            .into_iter()
            .find(|(_, n)| *n == s)
            .map(|(op, _)| op)
            .ok_or_else(|| de::Error::custom(format!("unknown operator `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::seccomp::native;

    fn err(text: &str) -> ProfileError {
        parse(text).unwrap_err()
    }

    const DOCKER_STYLE: &str = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "archMap": [
    { "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] }
  ],
  "syscalls": [
    { "names": ["read", "write", "arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW", "comment": "io" },
    { "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
      "excludes": { "caps": ["CAP_SYS_ADMIN"] } },
    { "names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["SYS_ADMIN"] } },
    { "names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": { "arches": ["amd64"] } },
    { "names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": { "arches": ["arm64"] } },
    { "names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": { "minKernel": "4.8" } },
    { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
      "args": [ { "index": 0, "value": 8, "op": "SCMP_CMP_EQ" } ] },
    { "name": "kill", "action": "SCMP_ACT_LOG" },
    { "names": ["clone"], "action": "SCMP_ACT_ALLOW",
      "args": [ { "index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" } ] }
  ]
}"#;

    fn resolve(file: &ProfileFile, caps: &[&str], kernel: (u32, u32)) -> Profile {
        let arch = native().unwrap();
        file.resolve(
            "docker-style",
            &Conditions {
                caps,
                arch: &arch,
                kernel,
            },
        )
    }

    fn names(p: &Profile) -> Vec<&str> {
        p.rules
            .iter()
            .flat_map(|r| r.syscalls.iter().map(|s| s.as_ref()))
            .collect()
    }

    #[test]
    fn docker_profiles_parse_and_resolve_like_docker() {
        let file = parse(DOCKER_STYLE).unwrap();
        assert_eq!(file.default_action, Action::Errno(1));
        assert!(file.architectures.contains(&"SCMP_ARCH_X32".to_string()));
        let plain = resolve(&file, &[], (6, 1));
        let n = names(&plain);
        assert!(n.contains(&"clone3") && !n.contains(&"mount") && n.contains(&"ptrace"));
        assert_eq!(n.contains(&"arch_prctl"), cfg!(target_arch = "x86_64"));
        assert_eq!(n.contains(&"cacheflush"), cfg!(target_arch = "aarch64"));
        let admin = resolve(&file, &["CAP_SYS_ADMIN"], (4, 4));
        let n = names(&admin);
        assert!(!n.contains(&"clone3") && n.contains(&"mount") && !n.contains(&"ptrace"));
        let clone = admin
            .rules
            .iter()
            .find(|r| r.syscalls == ["clone"])
            .unwrap();
        assert_eq!(
            clone.args,
            [ArgCmp {
                index: 0,
                cmp: Cmp::MaskedEq {
                    mask: 2114060288,
                    value: 0
                }
            }]
        );
        let kill = admin.rules.iter().find(|r| r.syscalls == ["kill"]).unwrap();
        assert_eq!(kill.action, Action::Log);
    }

    #[test]
    fn oci_profiles_parse() {
        let file = parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        assert!(file.log);
        let p = resolve(&file, &[], (6, 0));
        assert_eq!(p.rules[0].action, Action::Errno(libc::EPERM as u16));
        // Go writes empty lists as null.
        let file =
            parse(r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": null}"#).unwrap();
        assert_eq!(file.default_action, Action::KillProcess);
    }

    #[test]
    fn a_misspelt_syscall_is_named_with_a_suggestion_and_its_place() {
        let e = err(
            "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [\n    {\"names\": [\"read\", \"mont\"], \"action\": \"SCMP_ACT_ERRNO\"}\n  ]\n}",
        );
        assert_eq!(e.message, "unknown syscall `mont`");
        assert_eq!(e.help.as_deref(), Some("did you mean `mount`?"));
        // Just after the name: serde_json reports where it stopped reading.
        assert_eq!((e.line, e.column), (4, 30));
    }

    #[test]
    fn a_misspelt_action_operator_arch_or_cap_is_named() {
        let e = err(r#"{"defaultAction": "SCMP_ACT_ALOW"}"#);
        assert_eq!(e.message, "unknown action `SCMP_ACT_ALOW`");
        assert_eq!(e.help.as_deref(), Some("did you mean `SCMP_ACT_ALLOW`?"));
        assert_eq!((e.line, e.column), (1, 34));

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQU"}]}]}"#,
        );
        assert_eq!(e.message, "unknown operator `SCMP_CMP_EQU`");
        assert_eq!(e.help.as_deref(), Some("did you mean `SCMP_CMP_EQ`?"));
        assert_eq!(e.line, 2);

        let e =
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_46"]}"#);
        assert_eq!(e.message, "unknown architecture `SCMP_ARCH_X86_46`");
        assert!(e.help.unwrap().contains("SCMP_ARCH_X86_64"));

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"],
                "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMN"]}}]}"#,
        );
        assert_eq!(e.message, "unknown capability `CAP_SYS_ADMN`");
        assert_eq!(e.help.as_deref(), Some("did you mean `CAP_SYS_ADMIN`?"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_placed() {
        let e = err("{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"sycalls\": []}");
        assert!(
            e.message.starts_with("unknown field `sycalls`"),
            "{}",
            e.message
        );
        assert_eq!(e.line, 2);

        let e = err(
            "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [\n {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"errnoRet\": 1}\n]}",
        );
        assert!(
            e.message.contains("errnoRet is only meaningful"),
            "{}",
            e.message
        );
        assert_eq!(e.line, 2, "the entry's line");

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(e.message.contains("argument index 6"), "{}", e.message);

        let e = err(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
        assert!(e.message.contains("seccomp agent"), "{}", e.message);

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(e.message.contains("names no syscall"), "{}", e.message);

        let e = err("{\"defaultAction\": \"SCMP_ACT_ALLOW\",");
        assert!(e.message.contains("EOF"), "{}", e.message);
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("4"), None);
        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ptrace"],
                "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}"#,
        );
        assert_eq!(e.message, "minKernel `four` is not a kernel version");
    }
}
