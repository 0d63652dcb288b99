//! Profile → BPF program for the running architecture.
//!
//! Layout: the architecture check comes first (a foreign ABI is killed, x32 calls on x86_64
//! too), then a binary search over syscall numbers, then the argument checks of the calls that
//! have them, then one `ret` per action. The search is over *ranges* of numbers with the same
//! outcome, not over single calls: an allow-list is mostly runs of allowed numbers, so Docker's
//! effect costs about 150 compares and any call is decided after ~8 of them (a linear compare per
//! call would be ~400 instructions, and ~400 compares for the last one).
//!
//! Several rules for one call: the rules with argument comparisons are tried in profile order
//! and the first whose comparisons all hold decides; else the first rule without comparisons;
//! else the default action. Calls newer than this table (numbers above its highest) get ENOSYS
//! when the default is an errno, so that libc falls back to an older call (as runc does).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::action::Action;
use super::arch::{self, Arch};
use super::bpf::{Asm, BadJump, Instruction, Label, MAX_INSTRUCTIONS, Test};
use super::profile::{ArgCmp, Cmp, Profile};

/// A compiled filter, ready for [`super::load`]; the plan shows its name, rule count and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// The profile's name.
    pub name: String,
    /// (syscall, rule) pairs compiled: names this architecture lacks are not counted.
    pub rules: usize,
    /// `sha256:` and the hex digest of the instructions (8 little-endian bytes each).
    pub digest: String,
    /// The BPF program.
    pub instructions: Vec<Instruction>,
}

/// A profile that cannot become a filter here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// launch has no syscall table for this CPU.
    #[error(
        "seccomp filters are not supported on {0}: launch has syscall tables for x86_64 and aarch64"
    )]
    UnsupportedArch(&'static str),
    /// Longer than the kernel accepts.
    #[error(
        "the seccomp filter `{name}` has {len} instructions; the kernel accepts at most {MAX_INSTRUCTIONS}"
    )]
    TooLong {
        /// The profile's name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// A bug in the compiler.
    #[error(transparent)]
    Jump(#[from] BadJump),
}

/// Compile for the architecture launch runs on.
pub fn compile(profile: &Profile) -> Result<Program, CompileError> {
    let arch = arch::native().ok_or(CompileError::UnsupportedArch(std::env::consts::ARCH))?;
    compile_for(profile, &arch)
}

/// Where a call goes once its number is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    Ret(Action),
    /// The argument checks of this syscall number.
    Args(u32),
}

/// The rules of one call, in the order they are tried.
#[derive(Default)]
struct Chain<'a> {
    with_args: Vec<(&'a [ArgCmp], Action)>,
    otherwise: Option<Action>,
}

/// `struct seccomp_data`: `nr` at 0, `arch` at 4, `args[6]` (u64) from 16.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

fn compile_for(profile: &Profile, arch: &Arch) -> Result<Program, CompileError> {
    let mut chains: BTreeMap<u32, Chain> = BTreeMap::new();
    let mut rules = 0;
    for rule in &profile.rules {
        for nr in rule.syscalls.iter().filter_map(|name| arch.number(name)) {
            rules += 1;
            let chain = chains.entry(nr).or_default();
            match rule.args.is_empty() {
                true => {
                    chain.otherwise.get_or_insert(rule.action);
                }
                false => chain.with_args.push((&rule.args, rule.action)),
            }
        }
    }
    let default = profile.default_action;
    let newer = match default {
        Action::Errno(_) => Action::Errno(libc::ENOSYS as u16),
        Action::Allow
        | Action::KillThread
        | Action::KillProcess
        | Action::Trap
        | Action::Log
        | Action::Trace(_) => default,
    };

    // The number line as ranges [start, next start) with one outcome each.
    let mut ranges: Vec<(u32, Outcome)> = vec![(0, Outcome::Ret(default))];
    for (&nr, chain) in &chains {
        let outcome = match (chain.with_args.is_empty(), chain.otherwise) {
            (true, Some(action)) => Outcome::Ret(action),
            (true, None) => Outcome::Ret(default),
            (false, _) => Outcome::Args(nr),
        };
        set_from(&mut ranges, nr, outcome);
        set_from(&mut ranges, nr + 1, Outcome::Ret(default));
    }
    set_from(&mut ranges, arch.max_number() + 1, Outcome::Ret(newer));

    let mut asm = Asm::default();
    let mut targets = Targets::default();
    for &(_, outcome) in &ranges {
        targets.label(outcome, &mut asm);
    }
    let kill = targets.label(Outcome::Ret(Action::KillProcess), &mut asm);

    // The architecture check: a call through another ABI (i386's int 0x80 on x86_64, arm32 on
    // aarch64) would be numbered differently, so this filter cannot judge it.
    let (arch_ok, root) = (asm.label(), node_label(&mut asm, &ranges, &targets));
    asm.load(ARCH);
    asm.jump(Test::Eq, arch.audit_arch, arch_ok, kill);
    asm.here(arch_ok);
    asm.load(NR);
    if let Some(from) = arch.foreign_nr_from {
        // x32 calls carry the x86_64 audit arch and numbers from 0x40000000. Number -1 is let
        // through: a tracer sets it to skip a call, and the kernel answers it with ENOSYS.
        let high = asm.label();
        asm.jump(Test::Ge, from, high, root);
        asm.here(high);
        asm.jump(Test::Eq, u32::MAX, root, kill);
    }
    if ranges.len() > 1 {
        search(&mut asm, &ranges, root, &targets);
    }
    for (&nr, chain) in &chains {
        if let Some(at) = targets.get(Outcome::Args(nr)) {
            asm.here(at);
            arg_checks(&mut asm, chain, default);
        }
    }
    let mut rets: Vec<(Action, Label)> = targets
        .0
        .iter()
        .filter_map(|&(o, l)| match o {
            Outcome::Ret(a) => Some((a, l)),
            Outcome::Args(_) => None,
        })
        .collect();
    // Sorted by return value, so that the program (and its digest) does not depend on hashing.
    rets.sort_by_key(|(a, _)| a.ret());
    for (action, l) in rets {
        asm.here(l);
        asm.ret(action.ret());
    }

    let instructions = asm.assemble()?;
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(CompileError::TooLong {
            name: profile.name.clone(),
            len: instructions.len(),
        });
    }
    Ok(Program {
        name: profile.name.clone(),
        rules,
        digest: digest(&instructions),
        instructions,
    })
}

/// The label of each outcome. A handful of them (the actions, and the calls with argument
/// checks): a list searched in order beats hashing each lookup.
#[derive(Default)]
struct Targets(Vec<(Outcome, Label)>);

impl Targets {
    fn get(&self, o: Outcome) -> Option<Label> {
        self.0.iter().find(|(x, _)| *x == o).map(|&(_, l)| l)
    }

    /// `o`'s label, made now if it has none.
    fn label(&mut self, o: Outcome, asm: &mut Asm) -> Label {
        match self.get(o) {
            Some(l) => l,
            None => {
                let l = asm.label();
                self.0.push((o, l));
                l
            }
        }
    }
}

/// Numbers from `start` on have `outcome` (until a later call changes it).
fn set_from(ranges: &mut Vec<(u32, Outcome)>, start: u32, outcome: Outcome) {
    if let Some(last) = ranges.last_mut().filter(|l| l.0 == start) {
        last.1 = outcome;
        let n = ranges.len();
        if n >= 2 && ranges[n - 2].1 == outcome {
            ranges.pop();
        }
    } else if ranges.last().map(|l| l.1) != Some(outcome) {
        ranges.push((start, outcome));
    }
}

/// The label of the subtree over `ranges`: a leaf's is its outcome's.
fn node_label(asm: &mut Asm, ranges: &[(u32, Outcome)], targets: &Targets) -> Label {
    match ranges {
        // Every outcome of the ranges got its label first thing.
        [(_, outcome)] => targets.get(*outcome).unwrap_or_else(|| asm.label()),
        _ => asm.label(),
    }
}

/// Binary search over the ranges (at least two), placed at `at`: each node sends numbers at or
/// above its middle range's start right, the others left.
fn search(asm: &mut Asm, ranges: &[(u32, Outcome)], at: Label, targets: &Targets) {
    let mid = ranges.len() / 2;
    let (low, high) = ranges.split_at(mid);
    let (left, right) = (
        node_label(asm, low, targets),
        node_label(asm, high, targets),
    );
    asm.here(at);
    asm.jump(Test::Ge, ranges[mid].0, right, left);
    if low.len() > 1 {
        search(asm, low, left, targets);
    }
    if high.len() > 1 {
        search(asm, high, right, targets);
    }
}

/// The rules of a call with argument comparisons, then its fallback.
fn arg_checks(asm: &mut Asm, chain: &Chain, default: Action) {
    for &(args, action) in &chain.with_args {
        let next_rule = asm.label();
        for cmp in args {
            let pass = asm.label();
            compare(asm, *cmp, pass, next_rule);
            asm.here(pass);
        }
        asm.ret(action.ret());
        asm.here(next_rule);
    }
    asm.ret(chain.otherwise.unwrap_or(default).ret());
}

/// Offsets of an argument's low and high 32-bit words: BPF loads 32 bits at a time.
fn halves(index: u8) -> (u32, u32) {
    let base = ARGS + 8 * u32::from(index);
    match cfg!(target_endian = "little") {
        true => (base, base + 4),
        false => (base + 4, base),
    }
}

/// Go to `pass` if the comparison holds for the 64-bit argument, else to `fail`: the high words
/// decide unless they are equal, then the low words do (all unsigned).
fn compare(asm: &mut Asm, ArgCmp { index, cmp }: ArgCmp, pass: Label, fail: Label) {
    let (lo, hi) = halves(index);
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (l1, l2) = (asm.label(), asm.label());
    match cmp {
        Cmp::Eq(v) | Cmp::Ne(v) => {
            let (vh, vl) = split(v);
            let (yes, no) = match cmp {
                Cmp::Ne(_) => (fail, pass),
                _ => (pass, fail),
            };
            asm.load(hi);
            asm.jump(Test::Eq, vh, l1, no);
            asm.here(l1);
            asm.load(lo);
            asm.jump(Test::Eq, vl, yes, no);
        }
        // arg > v and arg >= v; arg <= v and arg < v are their negations.
        Cmp::Gt(v) | Cmp::Ge(v) | Cmp::Le(v) | Cmp::Lt(v) => {
            let (vh, vl) = split(v);
            let (test, yes, no) = match cmp {
                Cmp::Gt(_) => (Test::Gt, pass, fail),
                Cmp::Ge(_) => (Test::Ge, pass, fail),
                Cmp::Le(_) => (Test::Gt, fail, pass),
                _ => (Test::Ge, fail, pass),
            };
            asm.load(hi);
            asm.jump(Test::Gt, vh, yes, l1);
            asm.here(l1);
            asm.jump(Test::Eq, vh, l2, no);
            asm.here(l2);
            asm.load(lo);
            asm.jump(test, vl, yes, no);
        }
        Cmp::MaskedEq { mask, value } => {
            let ((mh, ml), (vh, vl)) = (split(mask), split(value));
            asm.load(hi);
            asm.and(mh);
            asm.jump(Test::Eq, vh, l1, fail);
            asm.here(l1);
            asm.load(lo);
            asm.and(ml);
            asm.jump(Test::Eq, vl, pass, fail);
        }
    }
}

/// `sha256:` + hex of the instructions as the kernel reads them (little-endian on our arches).
fn digest(instructions: &[Instruction]) -> String {
    use std::fmt::Write;
    let mut bytes = Vec::with_capacity(instructions.len() * 8);
    for i in instructions {
        bytes.extend_from_slice(&i.code.to_le_bytes());
        bytes.extend_from_slice(&[i.jt, i.jf]);
        bytes.extend_from_slice(&i.k.to_le_bytes());
    }
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in Sha256::digest(&bytes) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::seccomp::bpf::run;
    use crate::sys::seccomp::default::default_profile;
    use crate::sys::seccomp::profile::Rule;

    fn arch() -> Arch {
        arch::native().unwrap()
    }

    /// `seccomp_data` for a call on `audit_arch`.
    fn data(audit_arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&nr.to_ne_bytes());
        d[4..8].copy_from_slice(&audit_arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        d
    }

    fn call(p: &Program, name: &str, args: [u64; 6]) -> u32 {
        let nr = arch().number(name).unwrap();
        run(&p.instructions, &data(arch().audit_arch, nr, args))
    }

    fn profile(default: Action, rules: Vec<Rule>) -> Profile {
        Profile {
            name: "test".into(),
            default_action: default,
            rules,
            log: false,
        }
    }

    const EPERM: Action = Action::Errno(1);

    #[test]
    fn the_arch_check_comes_first() {
        let p = compile(&profile(Action::Allow, vec![])).unwrap();
        let i = &p.instructions;
        assert_eq!((i[0].code, i[0].k), (0x20, 4), "load seccomp_data.arch");
        assert_eq!((i[1].code, i[1].k, i[1].jt), (0x15, arch().audit_arch, 0));
        assert_eq!((i[2].code, i[2].k), (0x20, 0), "load seccomp_data.nr");
        // i386 (AUDIT_ARCH_I386), on the same numbers, is killed.
        let d = data(0x4000_0003, 39, [0; 6]);
        assert_eq!(run(i, &d), libc::SECCOMP_RET_KILL_PROCESS);
        assert_eq!(call(&p, "getpid", [0; 6]), libc::SECCOMP_RET_ALLOW);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_calls_are_killed_but_minus_one_is_not() {
        let p = compile(&profile(Action::Allow, vec![])).unwrap();
        let x32_getpid = 0x4000_0000 | 39;
        let run_nr = |nr| run(&p.instructions, &data(arch().audit_arch, nr, [0; 6]));
        assert_eq!(run_nr(x32_getpid), libc::SECCOMP_RET_KILL_PROCESS);
        assert_eq!(run_nr(0x7fff_ffff), libc::SECCOMP_RET_KILL_PROCESS);
        assert_eq!(run_nr(u32::MAX), libc::SECCOMP_RET_ALLOW);
        // ld arch, jeq, ld nr, jge x32, jeq -1, ret allow, ret kill.
        assert_eq!(p.instructions.len(), 7);
    }

    #[test]
    fn a_small_profile_is_small_and_exact() {
        let p = compile(&profile(
            EPERM,
            vec![Rule::new(
                Action::Allow,
                &["read", "write", "no_such_call_here"],
            )],
        ))
        .unwrap();
        assert_eq!(p.rules, 2, "names this arch lacks are not counted");
        for name in ["read", "write"] {
            assert_eq!(call(&p, name, [0; 6]), libc::SECCOMP_RET_ALLOW, "{name}");
        }
        assert_eq!(call(&p, "mount", [0; 6]), EPERM.ret());
        // Beyond the table's last call: ENOSYS, so libc falls back.
        let beyond = arch().max_number() + 1;
        let d = data(arch().audit_arch, beyond, [0; 6]);
        assert_eq!(run(&p.instructions, &d), Action::Errno(38).ret());
        let prelude = if arch().foreign_nr_from.is_some() {
            5
        } else {
            3
        };
        // ranges: [0,read) [read..=write] [write+1, max] [beyond..): 3 compares, 4 rets
        // (EPERM, ALLOW, ENOSYS, KILL) on x86_64 where read=0 and write=1 make 3 ranges.
        let (compares, rets) = if arch().number("read") == Some(0) {
            (2, 4)
        } else {
            (3, 4)
        };
        assert_eq!(p.instructions.len(), prelude + compares + rets);
    }

    /// Every comparison, on values around both halves' edges, against [`Cmp::holds`].
    #[test]
    fn argument_comparisons_use_both_halves() {
        let edges = [
            0u64,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0001,
            0x2_ffff_ffff,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut cmps = Vec::new();
        for &v in &edges {
            cmps.extend([
                Cmp::Ne(v),
                Cmp::Lt(v),
                Cmp::Le(v),
                Cmp::Eq(v),
                Cmp::Ge(v),
                Cmp::Gt(v),
                Cmp::MaskedEq {
                    mask: v,
                    value: v & 0x1_0000_00ff,
                },
            ]);
        }
        for cmp in cmps {
            for index in [0u8, 3, 5] {
                let p = compile(&profile(
                    EPERM,
                    vec![Rule::new(Action::Allow, &["personality"]).when(index, cmp)],
                ))
                .unwrap();
                for &arg in &edges {
                    let mut args = [0x5555_5555_5555_5555u64; 6];
                    args[index as usize] = arg;
                    let want = if cmp.holds(arg) { Action::Allow } else { EPERM };
                    assert_eq!(
                        call(&p, "personality", args),
                        want.ret(),
                        "{cmp:?} on arg{index} = {arg:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn rules_with_arguments_come_before_the_plain_rule_of_a_call() {
        let p = compile(&profile(
            Action::Allow,
            vec![
                Rule::new(Action::Errno(22), &["personality"]),
                Rule::new(Action::Log, &["personality"]).when(0, Cmp::Eq(8)),
                Rule::new(Action::Allow, &["personality"]).when(0, Cmp::Eq(0)),
                Rule::new(Action::Trap, &["personality"]).when(0, Cmp::Eq(0)),
            ],
        ))
        .unwrap();
        let ask = |v| call(&p, "personality", [v, 0, 0, 0, 0, 0]);
        assert_eq!(ask(0), Action::Allow.ret(), "first matching rule wins");
        assert_eq!(ask(8), Action::Log.ret());
        assert_eq!(ask(9), Action::Errno(22).ret(), "then the plain rule");
        assert_eq!(call(&p, "getpid", [0; 6]), Action::Allow.ret());
    }

    #[test]
    fn far_targets_still_compile_and_decide_right() {
        // 200 calls each with its own argument check: blocks far beyond one byte of offset.
        let names: Vec<&str> = super::arch::native()
            .map(|a| {
                a.numbers_for_tests()
                    .iter()
                    .map(|(n, _)| &n[4..])
                    .take(200)
                    .collect()
            })
            .unwrap();
        let rules: Vec<Rule> = names
            .iter()
            .map(|n| Rule::new(Action::Allow, &[n]).when(1, Cmp::Gt(7)))
            .collect();
        let p = compile(&profile(EPERM, rules)).unwrap();
        assert!(p.instructions.len() > 1000);
        for n in &names {
            assert_eq!(call(&p, n, [0, 8, 0, 0, 0, 0]), Action::Allow.ret(), "{n}");
            assert_eq!(call(&p, n, [0, 7, 0, 0, 0, 0]), EPERM.ret(), "{n}");
        }
    }

    #[test]
    fn too_long_is_refused() {
        let names: Vec<&str> = arch()
            .numbers_for_tests()
            .iter()
            .map(|(n, _)| &n[4..])
            .collect();
        let mut rules = Vec::new();
        for v in 0..20 {
            for n in &names {
                rules.push(Rule::new(Action::Allow, &[n]).when(0, Cmp::Eq(v)));
            }
        }
        let err = compile(&profile(EPERM, rules)).unwrap_err();
        assert!(matches!(err, CompileError::TooLong { .. }), "{err}");
        assert!(err.to_string().contains("at most 4096"));
    }

    #[test]
    fn digests_are_stable_and_tell_programs_apart() {
        let a = compile(&default_profile(&[])).unwrap();
        let b = compile(&default_profile(&[])).unwrap();
        let c = compile(&default_profile(&["CAP_SYS_ADMIN"])).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, c.digest);
        assert!(a.digest.starts_with("sha256:") && a.digest.len() == 7 + 64);
    }
}
