//! `launch` binary: all logic lives in the library; this only maps the outcome to an exit code.

/// See Cargo.toml: dlmalloc instead of musl's malloc, for start-up time.
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> std::process::ExitCode {
    launch::cli::main()
}
