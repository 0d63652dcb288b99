//! `launch` binary: all logic lives in the library; this only maps the outcome to an exit code.
fn main() -> std::process::ExitCode {
    launch::cli::main()
}
