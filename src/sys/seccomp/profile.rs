//! A seccomp profile as launch holds it: typed, with includes/excludes already decided for one
//! container (its kept capabilities, this kernel), ready to compile. The JSON plan carries it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::action::Action;

/// A filter's rules: what happens to each named call, and to every other call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Shown in the plan: `default`, or the profile file's name.
    pub name: String,
    /// What happens to a call no rule matches.
    pub default_action: Action,
    /// The rules, in profile order (the order decides between rules for one call, see compile).
    pub rules: Vec<Rule>,
    /// The profile asked for denials to be logged (OCI `flags: ["SECCOMP_FILTER_FLAG_LOG"]`).
    pub log: bool,
}

/// One rule: these calls, when every argument comparison holds, get this action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Syscall names; names this architecture lacks are skipped when compiling, as runc does.
    /// Borrowed from launch's tables for its own profile (hundreds of names, built and copied on
    /// every run), owned when read from a file.
    pub syscalls: Vec<Cow<'static, str>>,
    /// What happens to a matching call.
    pub action: Action,
    /// Comparisons that must all hold (none: the rule matches every call of these names).
    pub args: Vec<ArgCmp>,
}

impl Rule {
    /// A rule without argument comparisons.
    pub fn new(action: Action, syscalls: &[&'static str]) -> Rule {
        Rule {
            syscalls: syscalls.iter().map(|s| Cow::Borrowed(*s)).collect(),
            action,
            args: Vec::new(),
        }
    }

    /// The same rule, matching only when `cmp` holds for argument `index` too.
    pub fn when(mut self, index: u8, cmp: Cmp) -> Rule {
        self.args.push(ArgCmp { index, cmp });
        self
    }
}

/// A comparison of one syscall argument (0..=5) with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgCmp {
    /// Which argument, 0 to 5.
    pub index: u8,
    /// The comparison.
    pub cmp: Cmp,
}

/// A comparison of a 64-bit argument, unsigned, as libseccomp's `SCMP_CMP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cmp {
    /// `arg != v`.
    Ne(u64),
    /// `arg < v`.
    Lt(u64),
    /// `arg <= v`.
    Le(u64),
    /// `arg == v`.
    Eq(u64),
    /// `arg >= v`.
    Ge(u64),
    /// `arg > v`.
    Gt(u64),
    /// `arg & mask == value` (a profile's `value` is the mask, `valueTwo` the value).
    MaskedEq {
        /// The bits compared.
        mask: u64,
        /// What they must equal.
        value: u64,
    },
}

impl Cmp {
    /// Whether the comparison holds for `arg`: the meaning the compiled filter must have.
    pub fn holds(self, arg: u64) -> bool {
        match self {
            Cmp::Ne(v) => arg != v,
            Cmp::Lt(v) => arg < v,
            Cmp::Le(v) => arg <= v,
            Cmp::Eq(v) => arg == v,
            Cmp::Ge(v) => arg >= v,
            Cmp::Gt(v) => arg > v,
            Cmp::MaskedEq { mask, value } => arg & mask == value,
        }
    }
}
