//! `launch-registry`: `launch pull` and `launch login`, in a binary of their own (see
//! src/cli/registry.rs for why).

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> std::process::ExitCode {
    launch::cli::registry::main()
}
