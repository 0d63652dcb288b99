//! The generated programs, run in a small eBPF interpreter (the instructions the generator emits,
//! with the verifier's basic checks), against an independent copy of cgroup v1's own logic fed
//! the rules' v1 text: the v2 program and the v1 files must decide every access alike.

use proptest::prelude::*;

use super::*;
use crate::sys::devices::DEFAULT;

/// A register: the context pointer (r1 at entry) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Ctx,
    Num(u64),
}

/// Run `prog` on `struct bpf_cgroup_dev_ctx { access_type, major, minor }`. Errors for anything
/// the kernel's verifier would refuse of this subset: unknown opcodes, non-zero reserved fields,
/// reads of unset registers, loads not from the context, jumps backwards or out of the program,
/// falling off the end, a return value other than 0 or 1.
fn run(prog: &[Insn], ctx: [u32; 3]) -> Result<u64, String> {
    let mut r: [Option<Val>; 11] = [None; 11];
    r[1] = Some(Val::Ctx);
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        let i = *prog.get(pc).ok_or(format!("pc {pc} is past the end"))?;
        steps += 1;
        if steps > prog.len() {
            return Err("more steps than instructions: a loop".into());
        }
        let dst = usize::from(i.regs & 0x0f);
        let src = usize::from(i.regs >> 4);
        if dst > 10 || src > 10 {
            return Err(format!("pc {pc}: bad register"));
        }
        let num = |r: &[Option<Val>; 11], n: usize| -> Result<u64, String> {
            match r[n] {
                Some(Val::Num(v)) => Ok(v),
                Some(Val::Ctx) => Err(format!("pc {pc}: r{n} is a pointer, used as a number")),
                None => Err(format!("pc {pc}: r{n} read before it is set")),
            }
        };
        let class = i.code & 0x07;
        let op = i.code & 0xf0;
        let x = i.code & 0x08 != 0;
        let jump = |off: i16| -> Result<usize, String> {
            if off < 0 {
                return Err(format!("pc {pc}: backward jump"));
            }
            let to = pc + 1 + off as usize;
            if to >= prog.len() {
                return Err(format!("pc {pc}: jump out of the program"));
            }
            Ok(to)
        };
        match class {
            LDX => {
                if i.code != LDX | W | MEM || i.imm != 0 {
                    return Err(format!("pc {pc}: unsupported load {:#x}", i.code));
                }
                if r[src] != Some(Val::Ctx) {
                    return Err(format!("pc {pc}: load not from the context"));
                }
                let field = match i.off {
                    0 => ctx[0],
                    4 => ctx[1],
                    8 => ctx[2],
                    o => return Err(format!("pc {pc}: context offset {o}")),
                };
                r[dst] = Some(Val::Num(u64::from(field)));
                pc += 1;
            }
            ALU => {
                if i.off != 0 || (x && i.imm != 0) || (!x && src != 0) {
                    return Err(format!("pc {pc}: reserved fields set"));
                }
                let operand = if x {
                    num(&r, src)? as u32
                } else {
                    i.imm as u32
                };
                let v = match op {
                    MOV => operand,
                    AND => num(&r, dst)? as u32 & operand,
                    RSH if operand < 32 => num(&r, dst)? as u32 >> operand,
                    _ => return Err(format!("pc {pc}: unsupported ALU {:#x}", i.code)),
                };
                r[dst] = Some(Val::Num(u64::from(v)));
                pc += 1;
            }
            JMP32 => {
                if x && i.imm != 0 || (!x && src != 0) {
                    return Err(format!("pc {pc}: reserved fields set"));
                }
                let a = num(&r, dst)? as u32;
                let b = if x {
                    num(&r, src)? as u32
                } else {
                    i.imm as u32
                };
                let taken = match op {
                    JEQ => a == b,
                    JNE => a != b,
                    _ => return Err(format!("pc {pc}: unsupported jump {:#x}", i.code)),
                };
                pc = if taken { jump(i.off)? } else { pc + 1 };
            }
            JMP if i.code == JMP | EXIT => {
                if i.regs != 0 || i.off != 0 || i.imm != 0 {
                    return Err(format!("pc {pc}: reserved fields set"));
                }
                let v = num(&r, 0)?;
                return match v {
                    0 | 1 => Ok(v),
                    _ => Err(format!("pc {pc}: returns {v}")),
                };
            }
            _ => return Err(format!("pc {pc}: unsupported opcode {:#x}", i.code)),
        }
    }
}

/// cgroup v1 as the kernel implements it (security/device_cgroup.c), transcribed on its own:
/// `devcgroup_update_access` parsing the written text, the exception list, and
/// `devcgroup_legacy_check_permission`. Starts as a fresh group under an allow-all parent.
#[derive(Debug, Default)]
struct KernelV1 {
    deny_default: bool,
    /// (type: 1 block, 2 char; major, minor with !0 for `*`; access bits)
    exceptions: Vec<(u8, u32, u32, u8)>,
}

impl KernelV1 {
    /// A write to `devices.allow` or `devices.deny`; false if the kernel refuses it.
    fn write(&mut self, file: &str, text: &str) -> bool {
        let b = text.trim().as_bytes(); // strstrip
        let allow = file == "devices.allow";
        let ty = match b.first() {
            Some(b'a') => {
                self.exceptions.clear();
                self.deny_default = !allow;
                return true;
            }
            Some(b'b') => 1,
            Some(b'c') => 2,
            _ => return false,
        };
        let mut i = 1;
        if b.get(i) != Some(&b' ') {
            return false;
        }
        i += 1;
        let number = |i: &mut usize| -> Option<u32> {
            if b.get(*i) == Some(&b'*') {
                *i += 1;
                return Some(!0);
            }
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            std::str::from_utf8(&b[start..*i]).ok()?.parse().ok()
        };
        let Some(major) = number(&mut i) else {
            return false;
        };
        if b.get(i) != Some(&b':') {
            return false;
        }
        i += 1;
        let Some(minor) = number(&mut i) else {
            return false;
        };
        if b.get(i) != Some(&b' ') {
            return false;
        }
        i += 1;
        let mut access = 0u8;
        for _ in 0..3 {
            match b.get(i) {
                Some(b'r') => access |= 2,
                Some(b'w') => access |= 4,
                Some(b'm') => access |= 1,
                None => break,
                Some(_) => return false,
            }
            i += 1;
        }
        let ex = (ty, major, minor, access);
        let add = allow == self.deny_default;
        let same = |e: &(u8, u32, u32, u8)| (e.0, e.1, e.2) == (ty, major, minor);
        if add {
            match self.exceptions.iter_mut().find(|e| same(e)) {
                Some(e) => e.3 |= access,
                None => self.exceptions.push(ex),
            }
        } else {
            for e in self.exceptions.iter_mut().filter(|e| same(e)) {
                e.3 &= !access;
            }
            self.exceptions.retain(|e| e.3 != 0);
        }
        true
    }

    fn check(&self, ty: u8, major: u32, minor: u32, access: u8) -> bool {
        let matching = |e: &&(u8, u32, u32, u8)| {
            e.0 == ty && (e.1 == !0 || e.1 == major) && (e.2 == !0 || e.2 == minor)
        };
        let mut on = self.exceptions.iter().filter(matching);
        if self.deny_default {
            on.any(|e| access & !e.3 == 0)
        } else {
            !on.any(|e| access & e.3 != 0)
        }
    }
}

fn v1(rules: &[DeviceRule]) -> KernelV1 {
    let mut k = KernelV1::default();
    for r in rules {
        k.write(r.v1_file(), &r.v1_line());
    }
    k
}

const MAJORS: &[u32] = &[0, 1, 5, 7, 8, 10, 136, 254, 4095, 0x8000_0000];
const MINORS: &[u32] = &[0, 1, 2, 3, 5, 7, 8, 9, 200, 0xfffff];

/// Every (type, major, minor, access) of the table gets the same answer from the program, from
/// the kernel's v1 logic fed the v1 text, and from [`Filter::allows`].
fn agree(rules: &[DeviceRule]) -> Result<(), String> {
    let prog = program(rules);
    let kernel = v1(rules);
    let filter = Filter::of(rules);
    for (kind, ty) in [(DeviceKind::Block, 1u8), (DeviceKind::Char, 2u8)] {
        for &major in MAJORS {
            for &minor in MINORS {
                for access in 0..=7u8 {
                    let ctx = [(u32::from(access) << 16) | u32::from(ty), major, minor];
                    let bpf = run(&prog, ctx)? == 1;
                    let want = kernel.check(ty, major, minor, access);
                    let model = filter.allows(kind, major, minor, Access::from_bits(access));
                    if bpf != want || model != want {
                        let rules: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
                        return Err(format!(
                            "{rules:?}: {} {major}:{minor} {}: v1 {want}, program {bpf}, \
                             Filter {model}",
                            kind.letter(),
                            Access::from_bits(access)
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn rules(text: &[&str]) -> Vec<DeviceRule> {
    text.iter().map(|t| t.parse().unwrap()).collect()
}

#[test]
fn the_default_list_agrees_with_v1_and_allows_what_it_says() {
    agree(DEFAULT).unwrap();
    let prog = program(DEFAULT);
    let ask = |ty: u32, major, minor, access: Access| {
        run(&prog, [(u32::from(access.bits()) << 16) | ty, major, minor]).unwrap() == 1
    };
    let rw = Access::READ | Access::WRITE;
    // launch's own /dev, ptys, tun.
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (136, 7),
        (10, 200),
    ] {
        assert!(ask(2, major, minor, Access::ALL), "c {major}:{minor}");
    }
    // The host's disk, /dev/mem, /dev/kmsg, the console: no reads or writes; mknod only.
    assert!(!ask(1, 254, 0, Access::READ));
    assert!(!ask(1, 8, 0, rw));
    assert!(!ask(2, 1, 1, Access::READ));
    assert!(!ask(2, 1, 11, Access::WRITE));
    assert!(!ask(2, 5, 1, Access::WRITE));
    assert!(ask(1, 254, 0, Access::MKNOD));
    assert!(ask(2, 1, 1, Access::MKNOD));
}

#[test]
fn rule_lists_agree_with_v1() {
    let lists: &[&[&str]] = &[
        &[],
        &["deny a"],
        &["allow a"],
        &["deny a", "allow c 1:3 r", "allow c 1:* w"],
        &[
            "allow a",
            "deny c 1:3 w",
            "deny b *:* rwm",
            "deny c 136:* r",
        ],
        &["allow a", "deny c *:* m"],
        // Holes v1 cannot punch: ignored alike.
        &["deny a", "allow c *:* rwm", "deny c 1:3 rwm"],
        &["allow a", "deny b 8:* rwm", "allow b 8:0 r"],
        // Merges, removals, resets.
        &["deny a", "allow c 1:3 r", "allow c 1:3 w", "deny c 1:3 r"],
        &["deny a", "allow c 1:3 rwm", "allow a", "deny b 254:0 rw"],
        &["allow c 1:3 r", "deny c 1:3 r", "deny a", "allow b 7:* rwm"],
        // Numbers past 2^31 compare as u32.
        &["deny a", "allow c 2147483648:1048575 rwm"],
        // Docker's list (with its no-op deny of fuse) and runc's appended after it.
        &[
            "deny a",
            "allow c 1:5 rwm",
            "allow c 1:3 rwm",
            "allow c 1:9 rwm",
            "allow c 1:8 rwm",
            "allow c 5:0 rwm",
            "allow c 5:1 rwm",
            "deny c 10:229 rwm",
            "allow c *:* m",
            "allow b *:* m",
            "allow c 136:* rwm",
            "allow c 5:2 rwm",
            "allow c 10:200 rwm",
        ],
    ];
    for l in lists {
        agree(&rules(l)).unwrap();
    }
    // Rules v1 reads differently than they look: `a` with numbers, no access, ~0 as a number.
    let odd = [
        DeviceRule {
            major: Some(1),
            access: Access::READ,
            ..DeviceRule::DENY_ALL
        },
        DeviceRule::allow(DeviceKind::Char, Some(1), Some(3), Access::NONE),
        DeviceRule::allow(DeviceKind::Char, Some(u32::MAX), Some(3), Access::READ),
        DeviceRule::deny(DeviceKind::Block, Some(8), Some(u32::MAX), Access::ALL),
    ];
    agree(&odd).unwrap();
}

#[test]
fn the_program_reads_as_designed() {
    let p = program(&rules(&["deny a", "allow c 1:3 rw", "allow c 136:* rwm"]));
    let text: Vec<String> = p
        .iter()
        .map(|i| format!("{:02x} {:02x} {} {}", i.code, i.regs, i.off, i.imm))
        .collect();
    assert_eq!(
        text,
        [
            "61 12 0 0",     // w2 = ctx.access_type
            "54 02 0 65535", // w2 &= 0xffff
            "61 13 0 0",     // w3 = ctx.access_type
            "74 03 0 16",    // w3 >>= 16
            "61 14 4 0",     // w4 = ctx.major
            "61 15 8 0",     // w5 = ctx.minor
            "56 02 7 2",     // if w2 != char goto next
            "bc 31 0 0",     // w1 = w3
            "54 01 0 6",     // w1 &= rw
            "5e 31 4 0",     // if w1 != w3 goto next
            "56 04 3 1",     // if w4 != 1 goto next
            "56 05 2 3",     // if w5 != 3 goto next
            "b4 00 0 1",     // r0 = 1
            "95 00 0 0",     // exit
            "56 02 3 2",     // if w2 != char goto next (rwm: no access test)
            "56 04 2 136",   // if w4 != 136 goto next
            "b4 00 0 1",     // r0 = 1
            "95 00 0 0",     // exit
            "b4 00 0 0",     // r0 = 0
            "95 00 0 0",     // exit
        ]
    );
}

/// A rule from a small universe, so that lists often touch the same keys.
fn any_rule() -> impl Strategy<Value = DeviceRule> {
    let number = prop_oneof![
        3 => Just(None),
        2 => Just(Some(1)),
        2 => Just(Some(136)),
        1 => Just(Some(3)),
        1 => Just(Some(u32::MAX)),
    ];
    let kind = prop_oneof![
        1 => Just(DeviceKind::All),
        3 => Just(DeviceKind::Char),
        2 => Just(DeviceKind::Block),
    ];
    (any::<bool>(), kind, number.clone(), number, 0..=7u8).prop_map(
        |(allow, kind, major, minor, access)| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: Access::from_bits(access),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_lists_agree_with_v1(list in prop::collection::vec(any_rule(), 0..8)) {
        if let Err(e) = agree(&list) {
            prop_assert!(false, "{}", e);
        }
    }
}
