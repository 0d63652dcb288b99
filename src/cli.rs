//! The command line: parse arguments, dispatch, map outcomes to exit codes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::diag::{self, Problem};
use crate::exit;
use crate::host::{Host, RealHost};
use crate::manifest::Source;
use crate::plan::{Plan, render_text};

/// launch: run a container from a TOML manifest.
///
/// A manifest says where the root filesystem comes from, the limits, the namespaces, the mounts
/// and the process. `launch plan` prints the exact steps a run takes.
#[derive(Debug, Parser)]
#[command(name = "launch", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the plan a run of MANIFEST would execute, step by step.
    Plan {
        /// The manifest.
        manifest: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check MANIFEST and report every problem (exit 0 if valid, 2 if not).
    Validate {
        /// The manifest.
        manifest: PathBuf,
        /// Output format (`json`: machine-readable diagnostics with line and column).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the manifest's JSON Schema (draft-07).
    Schema,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs; stable, see docs/.
    Json,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When standard error is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run(cli))
}

fn use_color(c: Color) -> bool {
    match c {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Run a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> u8 {
    let color = use_color(cli.color);
    match cli.command {
        Command::Plan { manifest, format } => match load(&manifest, color, format) {
            Ok((_, plan)) => {
                let out = match format {
                    Format::Text => render_text(&plan),
                    Format::Json => plan.to_json(),
                };
                print(&out)
            }
            Err(code) => code,
        },
        Command::Validate { manifest, format } => match load(&manifest, color, format) {
            Ok((source, plan)) => match format {
                Format::Text => print(&format!(
                    "ok: {} is valid ({} plan steps)\n",
                    source.display_name,
                    plan.steps.len()
                )),
                Format::Json => print(&diag::render_json(&source, &[])),
            },
            Err(code) => code,
        },
        Command::Schema => print(&crate::schema::json_schema()),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "launch", &mut out);
            write_out(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut out) {
                Ok(()) => write_out(&out),
                Err(e) => {
                    eprintln!("error: rendering the man page: {e}");
                    exit::LAUNCHER
                }
            }
        }
    }
}

/// Read, parse and validate a manifest against the real host; on failure print the diagnostics
/// and return the exit code.
fn load(path: &Path, color: bool, format: Format) -> Result<(Source, Plan), u8> {
    let source = match Source::read(path) {
        Ok(s) => s,
        Err(e) => {
            let text = format!(
                "error[launch::manifest::read]: cannot read {}: {e}\n",
                path.display()
            );
            match format {
                Format::Text => eprint!("{text}"),
                Format::Json => {
                    let src = Source::from_text(&path.display().to_string(), Path::new("/"), "");
                    let p = Problem::new(
                        "launch::manifest::read",
                        0..0,
                        format!("cannot read {}: {e}", path.display()),
                    )
                    .help("check the path and its permissions");
                    let _ = print(&diag::render_json(&src, &[p]));
                }
            }
            return Err(exit::INVALID);
        }
    };
    let host = RealHost::probe();
    plan_for(&source, &host)
        .map(|plan| (source.clone(), plan))
        .map_err(|problems| {
            match format {
                Format::Text => {
                    let width = 100;
                    eprint!("{}", diag::render_text(&source, &problems, color, width));
                }
                Format::Json => {
                    let _ = print(&diag::render_json(&source, &problems));
                }
            }
            exit::INVALID
        })
}

/// Parse and validate `source` against `host`.
pub fn plan_for(source: &Source, host: &dyn Host) -> Result<Plan, Vec<Problem>> {
    crate::validate::plan(source, host)
}

fn print(s: &str) -> u8 {
    write_out(s.as_bytes())
}

/// Write to stdout; a closed pipe (`launch plan x | head`) is not an error worth a panic.
fn write_out(b: &[u8]) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(b).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("error: writing to standard output: {e}");
            exit::LAUNCHER
        }
    }
}
