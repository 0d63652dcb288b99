//! `launch` binary: all logic lives in the library; this only maps the outcome to an exit code.

/// A bump arena in front of the system allocator (see src/arena.rs): 1 MiB of address space,
/// of which a start touches what it uses.
#[global_allocator]
static ALLOC: launch::arena::Arena<{ 1 << 20 }> = launch::arena::Arena::new();

fn main() -> std::process::ExitCode {
    launch::cli::main()
}
