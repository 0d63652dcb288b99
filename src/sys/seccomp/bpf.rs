//! Classic BPF as seccomp runs it: the instruction encoding, and a small assembler with labels
//! that turns far conditional jumps (their offsets are one byte) into jumps to a nearby `ja`.

use serde::{Deserialize, Serialize};

/// One instruction, laid out as the kernel's `struct sock_filter`, so a program is handed to
/// seccomp(2) without copying (and without allocating, in a forked child).
///
/// Plans write one as a string of its four fields in hex, `"0020 00 00 00000004"` (code, jt,
/// jf, k: the order of `struct sock_filter`), so a filter is one line per instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
#[repr(C)]
pub struct Instruction {
    /// Opcode: class, size, mode or operation, source.
    pub code: u16,
    /// Forward offset when a conditional jump's test holds.
    pub jt: u8,
    /// Forward offset when it does not.
    pub jf: u8,
    /// The constant: offset, operand, jump distance or return value.
    pub k: u32,
}

impl From<Instruction> for String {
    fn from(i: Instruction) -> String {
        format!("{:04x} {:02x} {:02x} {:08x}", i.code, i.jt, i.jf, i.k)
    }
}

impl TryFrom<String> for Instruction {
    type Error = String;
    fn try_from(s: String) -> Result<Instruction, String> {
        let bad = || format!("`{s}` is not a BPF instruction (`code jt jf k` in hex)");
        let f: Vec<&str> = s.split(' ').collect();
        let [code, jt, jf, k] = f.as_slice() else {
            return Err(bad());
        };
        Ok(Instruction {
            code: u16::from_str_radix(code, 16).map_err(|_| bad())?,
            jt: u8::from_str_radix(jt, 16).map_err(|_| bad())?,
            jf: u8::from_str_radix(jf, 16).map_err(|_| bad())?,
            k: u32::from_str_radix(k, 16).map_err(|_| bad())?,
        })
    }
}

const _: () = assert!(size_of::<Instruction>() == size_of::<libc::sock_filter>());
const _: () = assert!(align_of::<Instruction>() == align_of::<libc::sock_filter>());

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

// Opcodes (linux/bpf_common.h): class | size/op | mode/source. BPF_LD|BPF_W|BPF_ABS is
// 0x00|0x00|0x20.
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x04 | 0x50;
const JMP_JA: u16 = 0x05;
const RET_K: u16 = 0x06;

/// A conditional jump's test of the accumulator against a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// `A == k`.
    Eq,
    /// `A > k`, unsigned.
    Gt,
    /// `A >= k`, unsigned.
    Ge,
}

impl Test {
    fn code(self) -> u16 {
        0x05 | match self {
            Test::Eq => 0x10,
            Test::Gt => 0x20,
            Test::Ge => 0x30,
        }
    }
}

/// A place in the program, fixed when it is assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum Item {
    Here(Label),
    Load(u32),
    And(u32),
    Jump(Test, u32, Label, Label),
    Goto(Label),
    Ret(u32),
}

/// A program being written: instructions and labels, all jumps forward.
#[derive(Debug, Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

/// A jump to a label placed before it, or never placed: BPF only jumps forward.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seccomp compiler bug: a jump goes backwards or to no instruction")]
pub struct BadJump;

impl Asm {
    /// A new label, not yet placed.
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Place `l` at the next instruction.
    pub fn here(&mut self, l: Label) {
        self.items.push(Item::Here(l));
    }

    /// `A = seccomp_data[offset]` (a 32-bit word).
    pub fn load(&mut self, offset: u32) {
        self.items.push(Item::Load(offset));
    }

    /// `A &= k`.
    pub fn and(&mut self, k: u32) {
        self.items.push(Item::And(k));
    }

    /// Go to `yes` if `A <test> k`, else to `no`.
    pub fn jump(&mut self, test: Test, k: u32, yes: Label, no: Label) {
        self.items.push(Item::Jump(test, k, yes, no));
    }

    /// Go to `l` (the compiler needs only conditional jumps; `assemble` adds these).
    #[cfg(test)]
    pub fn goto(&mut self, l: Label) {
        self.items.push(Item::Goto(l));
    }

    /// Return `k` (a `SECCOMP_RET_*` value).
    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Ret(k));
    }

    /// Lay out and encode. A conditional jump further than 255 instructions gets a `ja` placed
    /// right after it; that moves later code, so layout repeats until every jump fits.
    pub fn assemble(mut self) -> Result<Vec<Instruction>, BadJump> {
        loop {
            let at = self.positions();
            let mut far = None;
            let mut pc = 0;
            for (i, item) in self.items.iter().enumerate() {
                match item {
                    Item::Here(_) => continue,
                    Item::Jump(_, _, yes, no) => {
                        for (which, l) in [(true, yes), (false, no)] {
                            let d = distance(pc, at[l.0])?;
                            if d > usize::from(u8::MAX) {
                                far = Some((i, which, *l));
                            }
                        }
                    }
                    Item::Load(_) | Item::And(_) | Item::Goto(_) | Item::Ret(_) => {}
                }
                pc += 1;
                if far.is_some() {
                    break;
                }
            }
            let Some((i, which, target)) = far else {
                return self.encode(&at);
            };
            let near = self.label();
            if let Item::Jump(_, _, yes, no) = &mut self.items[i] {
                *(if which { yes } else { no }) = near;
            }
            self.items
                .splice(i + 1..i + 1, [Item::Here(near), Item::Goto(target)]);
        }
    }

    /// Each label's instruction index.
    fn positions(&self) -> Vec<usize> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for item in &self.items {
            match item {
                Item::Here(l) => at[l.0] = pc,
                Item::Load(_) | Item::And(_) | Item::Jump(..) | Item::Goto(_) | Item::Ret(_) => {
                    pc += 1
                }
            }
        }
        at
    }

    fn encode(&self, at: &[usize]) -> Result<Vec<Instruction>, BadJump> {
        let mut out = Vec::with_capacity(self.items.len());
        for item in &self.items {
            let pc = out.len();
            let (code, jt, jf, k) = match *item {
                Item::Here(_) => continue,
                Item::Load(off) => (LD_W_ABS, 0, 0, off),
                Item::And(k) => (ALU_AND_K, 0, 0, k),
                Item::Jump(test, k, yes, no) => {
                    let (jt, jf) = (distance(pc, at[yes.0])?, distance(pc, at[no.0])?);
                    (test.code(), jt as u8, jf as u8, k)
                }
                Item::Goto(l) => (JMP_JA, 0, 0, distance(pc, at[l.0])? as u32),
                Item::Ret(k) => (RET_K, 0, 0, k),
            };
            out.push(Instruction { code, jt, jf, k });
        }
        Ok(out)
    }
}

/// Instructions skipped by a jump at `from` landing on `to` (`usize::MAX`: a label never placed).
fn distance(from: usize, to: usize) -> Result<usize, BadJump> {
    match to {
        usize::MAX => Err(BadJump),
        _ => to.checked_sub(from + 1).ok_or(BadJump),
    }
}

/// Runs a program on one `seccomp_data`, as the kernel would: the tests' reference.
#[cfg(test)]
pub fn run(program: &[Instruction], data: &[u8; 64]) -> u32 {
    let word = |off: u32| {
        let o = off as usize;
        u32::from_ne_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]])
    };
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = program[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => a = word(i.k),
            ALU_AND_K => a &= i.k,
            JMP_JA => pc += i.k as usize,
            RET_K => return i.k,
            code => {
                let holds = match code {
                    0x15 => a == i.k,
                    0x25 => a > i.k,
                    0x35 => a >= i.k,
                    other => panic!("opcode {other:#x} is not ours"),
                };
                pc += usize::from(if holds { i.jt } else { i.jf });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_jumps_go_through_a_nearby_ja() {
        let mut asm = Asm::default();
        let (near, far) = (asm.label(), asm.label());
        asm.load(0);
        asm.jump(Test::Eq, 7, far, near);
        asm.here(near);
        for _ in 0..300 {
            asm.ret(1);
        }
        asm.here(far);
        asm.ret(2);
        let p = asm.assemble().unwrap();
        assert_eq!(p.len(), 1 + 1 + 1 + 300 + 1);
        assert_eq!((p[1].jt, p[1].jf), (0, 1));
        assert_eq!((p[2].code, p[2].k), (JMP_JA, 300));
        let mut data = [0u8; 64];
        data[0] = 7;
        assert_eq!(run(&p, &data), 2);
        data[0] = 8;
        assert_eq!(run(&p, &data), 1);
    }

    #[test]
    fn backward_and_dangling_jumps_are_refused() {
        let mut asm = Asm::default();
        let l = asm.label();
        asm.here(l);
        asm.ret(0);
        asm.goto(l);
        assert_eq!(asm.assemble(), Err(BadJump));
        let mut asm = Asm::default();
        let nowhere = asm.label();
        asm.goto(nowhere);
        assert_eq!(asm.assemble(), Err(BadJump));
    }
}
