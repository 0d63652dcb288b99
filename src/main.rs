//! `launch` binary: all logic lives in the library; this only maps the outcome to an exit code.

/// See Cargo.toml: dlmalloc instead of musl's malloc, for start-up time. Its global lock is a
/// plain mutex that the container process inherits from clone3 (no atfork handlers run): sound
/// while the launcher is single-threaded, as it is; a thread allocating during clone3 would leave
/// the child's copy locked.
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> std::process::ExitCode {
    launch::cli::main()
}
