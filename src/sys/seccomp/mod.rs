//! seccomp-BPF, in pure Rust: profiles (launch's default, or an OCI/Docker JSON file), their
//! compilation to a BPF program for the running architecture, and loading it.
//!
//! ```text
//! default_profile(caps) ─┐
//! parse(json)?.resolve() ┴▶ Profile ─compile()?▶ Program (name, rules, digest) ─load()▶ kernel
//! ```
//! Profile and Program are plain data: the planner builds them, the plan shows and carries
//! them, the container's process only calls [`load`] (after no_new_privs, last before execve).
//!
//! Only the native ABI is filtered: a call through another one (i386's `int 0x80` on x86_64,
//! arm32 on aarch64, x32) kills the process, whatever a profile's `architectures` lists.

mod action;
mod arch;
mod bpf;
mod compile;
mod default;
mod json;
mod known_names;
mod load;
mod precompiled;
mod profile;

pub use action::{Action, ActionName};
pub use arch::{Arch, native};
pub use bpf::{Instruction, MAX_INSTRUCTIONS};
pub use compile::{CompileError, Program, compile};
pub use default::{
    ALWAYS, CLONE_NAMESPACES, Group, NAME as DEFAULT_NAME, WITH_CAP, default_profile,
};
pub use json::{
    Conditions, Entry, Filter, ProfileError, ProfileFile, cap_name, parse, parse_kernel_version,
};
pub use load::{LoadFlags, load};
pub use precompiled::lookup as precompiled;
pub use profile::{ArgCmp, Cmp, Profile, Rule};
