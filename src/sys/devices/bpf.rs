//! The cgroup v2 form of a device filter: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, generated from the [`Filter`] the rules leave (so it enforces
//! exactly what cgroup v1 would). The kernel runs it on every open and mknod of a device node by
//! a process of the group (or of a group below it) and allows the access only if it returns 1.
//!
//! The program is the one runc and crun emit (runc's libcontainer/cgroups/devices/devicefilter.go,
//! from crun's ebpf.c, from systemd), with three differences:
//!
//! - numbers are compared with 32-bit jumps (`BPF_JMP32`, Linux 5.1), so a number above 2^31 is
//!   compared as the u32 it is instead of a sign-extended 64-bit immediate;
//! - in default-allow mode an exception denies when the request shares **any** access with it,
//!   as cgroup v1 does (runc's program denies only when the exception holds **all** of them, so
//!   `deny c 1:3 w` does not stop an open for reading and writing there);
//! - for the same reason, a default-allow exception always tests the access, even `rwm` (cgroup
//!   v1 lets an access-less request, such as an execve of a node, through).
//!
//! Layout, with `ctx` the kernel's `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32
//! minor; }` in r1 and `access_type` = `(access << 16) | type`:
//!
//! ```text
//!   w2 = ctx.access_type & 0xffff      type: 1 block, 2 char
//!   w3 = ctx.access_type >> 16         access: 1 mknod, 2 read, 4 write
//!   w4 = ctx.major
//!   w5 = ctx.minor
//! per exception:
//!   if w2 != TYPE goto next
//!   w1 = w3; w1 &= ACCESS;             default deny:  if w1 != w3 goto next   (all asked held)
//!                                      default allow: if w1 == 0 goto next    (any asked held)
//!   if w4 != MAJOR goto next           (left out for `*`)
//!   if w5 != MINOR goto next           (left out for `*`)
//!   r0 = !DEFAULT; exit
//! next: ...
//!   r0 = DEFAULT; exit
//! ```
//!
//! In default-deny mode the access test is left out for an `rwm` exception (it always holds).

use super::filter::Filter;
use super::rule::{Access, DeviceKind, DeviceRule};

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// Opcode: class | operation | source.
    pub code: u8,
    /// Destination register in the low nibble, source register in the high one (the bitfield
    /// order of little-endian machines).
    pub regs: u8,
    /// Jump offset, in instructions, from the next one.
    pub off: i16,
    /// The immediate operand.
    pub imm: i32,
}

const _: () = assert!(size_of::<Insn>() == 8);
#[cfg(not(target_endian = "little"))]
compile_error!("struct bpf_insn's register bitfields are laid out for little-endian machines only");

// Classes, operations and sources (linux/bpf_common.h, linux/bpf.h).
/// Load from memory into a register.
pub const LDX: u8 = 0x01;
/// 32-bit arithmetic (the upper half of the destination is zeroed).
pub const ALU: u8 = 0x04;
/// 64-bit jumps, and exit.
pub const JMP: u8 = 0x05;
/// 32-bit jumps: compare the lower halves.
pub const JMP32: u8 = 0x06;
/// Size of a load: a 32-bit word.
pub const W: u8 = 0x00;
/// Mode of a load: from memory at register + offset.
pub const MEM: u8 = 0x60;
/// Operand: the immediate.
pub const K: u8 = 0x00;
/// Operand: the source register.
pub const X: u8 = 0x08;
/// `dst &= src`.
pub const AND: u8 = 0x50;
/// `dst >>= src`, logical.
pub const RSH: u8 = 0x70;
/// `dst = src`.
pub const MOV: u8 = 0xb0;
/// Jump if equal.
pub const JEQ: u8 = 0x10;
/// Jump if not equal.
pub const JNE: u8 = 0x50;
/// Return r0.
pub const EXIT: u8 = 0x90;

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`: the type in the context.
fn type_code(kind: DeviceKind) -> i32 {
    match kind {
        DeviceKind::Block => 1,
        DeviceKind::Char => 2,
        // The Filter's exceptions are never `a`; matching it would be a bug, and matching
        // nothing is the safe way for it to show (the default applies).
        DeviceKind::All => 0,
    }
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0x0f) | (src << 4),
        off,
        imm,
    }
}

/// The program enforcing `rules` (folded into a [`Filter`] first).
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    filter_program(&Filter::of(rules))
}

/// The program enforcing `filter`.
pub fn filter_program(filter: &Filter) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX | W | MEM, 2, 1, 0, 0),
        insn(ALU | AND | K, 2, 0, 0, 0xffff),
        insn(LDX | W | MEM, 3, 1, 0, 0),
        insn(ALU | RSH | K, 3, 0, 0, 16),
        insn(LDX | W | MEM, 4, 1, 4, 0),
        insn(LDX | W | MEM, 5, 1, 8, 0),
    ];
    let default = i32::from(filter.default_allow);
    for e in &filter.exceptions {
        // Tests, each jumping to the next block when it fails; patched once the block's length
        // is known (a block is at most 8 instructions: every offset fits).
        let mut block: Vec<Insn> = vec![insn(JMP32 | JNE | K, 2, 0, 0, type_code(e.kind))];
        let test_access = filter.default_allow || e.access != Access::ALL;
        if test_access {
            block.push(insn(ALU | MOV | X, 1, 3, 0, 0));
            block.push(insn(ALU | AND | K, 1, 0, 0, i32::from(e.access.bits())));
            block.push(if filter.default_allow {
                insn(JMP32 | JEQ | K, 1, 0, 0, 0)
            } else {
                insn(JMP32 | JNE | X, 1, 3, 0, 0)
            });
        }
        if let Some(m) = e.major {
            block.push(insn(JMP32 | JNE | K, 4, 0, 0, m as i32));
        }
        if let Some(m) = e.minor {
            block.push(insn(JMP32 | JNE | K, 5, 0, 0, m as i32));
        }
        block.push(insn(ALU | MOV | K, 0, 0, 0, 1 - default));
        block.push(insn(JMP | EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            let class = ins.code & 0x07;
            let op = ins.code & 0xf0;
            if class == JMP32 && (op == JNE || op == JEQ) {
                // From the instruction after this one to the first of the next block.
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(ALU | MOV | K, 0, 0, 0, default));
    p.push(insn(JMP | EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests;
