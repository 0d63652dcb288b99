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
    /// Log each plan step to stderr as it runs (also: LAUNCH_LOG=1).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the container MANIFEST describes (`launch MANIFEST` is the same).
    Run {
        /// The manifest.
        #[arg(required_unless_present = "plan")]
        manifest: Option<PathBuf>,
        /// Run a plan saved with `launch plan --format json` instead, exactly as it is.
        #[arg(long, value_name = "PLAN.json", conflicts_with = "manifest")]
        plan: Option<PathBuf>,
        /// At exit, print CPU time, peak memory and peak pids from the container's cgroups.
        #[arg(long)]
        stats: bool,
    },
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
    /// List the running containers, with their CPU time and memory.
    Ps {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Stop a running container: its stop signal, then SIGKILL after its stop_timeout.
    Stop {
        /// The manifest's name (every instance of it) or one instance (`NAME-<id>`).
        name: String,
        /// Override the manifest's stop_timeout (`2s`, `500ms`).
        #[arg(long)]
        timeout: Option<String>,
    },
    /// Run a command inside a running container (its namespaces, cgroups, user, env and cwd).
    Exec {
        /// The container's name or instance.
        name: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Clean up what launchers that no longer exist left behind.
    Gc,
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
    let cli = Cli::parse_from(with_default_command(std::env::args_os().collect()));
    ExitCode::from(run(cli))
}

/// `launch app.toml` means `launch run app.toml`: insert `run` when the first argument that is
/// not an option is not a subcommand.
fn with_default_command(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let cmd = Cli::command();
    // The first word that is neither an option nor the value of `--color`.
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--color" {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    if let Some(word) = args.get(i).map(|w| w.to_string_lossy().into_owned()) {
        let known = word == "help"
            || cmd
                .get_subcommands()
                .any(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word));
        if !known {
            args.insert(i, "run".into());
        }
    }
    args
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
    let verbose =
        cli.verbose || std::env::var_os("LAUNCH_LOG").is_some_and(|v| !v.is_empty() && v != "0");
    match cli.command {
        Command::Run {
            manifest,
            plan,
            stats,
        } => {
            let plan = match (manifest, plan) {
                (_, Some(file)) => match read_plan(&file) {
                    Ok(p) => p,
                    Err(code) => return code,
                },
                (Some(m), None) => match load(&m, color, Format::Text) {
                    Ok((_, p)) => p,
                    Err(code) => return code,
                },
                (None, None) => return exit::INVALID,
            };
            match crate::exec::run(&plan, &crate::exec::RunOptions { verbose, stats }) {
                Ok(code) => code,
                Err(failure) => {
                    eprintln!("{failure}");
                    failure.exit_code
                }
            }
        }
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
        Command::Ps { format } => {
            crate::ctl::ps(&crate::host::state_root(), format == Format::Json)
        }
        Command::Stop { name, timeout } => {
            let timeout = match timeout.map(|t| {
                crate::manifest::units::parse_duration_ms(&crate::manifest::Quantity::Str(t))
            }) {
                None => None,
                Some(Ok(ms)) => Some(std::time::Duration::from_millis(ms)),
                Some(Err(e)) => {
                    eprintln!("launch: error: --timeout: {e}");
                    return exit::INVALID;
                }
            };
            crate::ctl::stop(&crate::host::state_root(), &name, timeout)
        }
        Command::Exec { name, command } => {
            crate::ctl::exec(&crate::host::state_root(), &name, &command)
        }
        Command::Gc => crate::ctl::gc(&crate::host::state_root()),
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

/// Read a plan saved with `launch plan --format json`.
fn read_plan(path: &Path) -> Result<Plan, u8> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("launch: error: cannot read plan {}: {e}", path.display());
        exit::INVALID
    })?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| {
        eprintln!(
            "launch: error: {} is not a launch plan: {e}",
            path.display()
        );
        exit::INVALID
    })?;
    if plan.format != crate::plan::PLAN_FORMAT {
        eprintln!(
            "launch: error: {} has plan format {}; this launch runs format {}",
            path.display(),
            plan.format,
            crate::plan::PLAN_FORMAT
        );
        return Err(exit::INVALID);
    }
    Ok(plan)
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

#[cfg(test)]
mod tests {
    use super::with_default_command;

    fn words(v: &[&str]) -> Vec<String> {
        with_default_command(v.iter().map(|s| s.into()).collect())
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_manifest_alone_means_run() {
        assert_eq!(
            words(&["launch", "app.toml"]),
            ["launch", "run", "app.toml"]
        );
        assert_eq!(
            words(&["launch", "-v", "app.toml"]),
            ["launch", "-v", "run", "app.toml"]
        );
        assert_eq!(
            words(&["launch", "--color", "never", "a.toml"]),
            ["launch", "--color", "never", "run", "a.toml"]
        );
        assert_eq!(
            words(&["launch", "plan", "a.toml"]),
            ["launch", "plan", "a.toml"]
        );
        assert_eq!(words(&["launch", "--help"]), ["launch", "--help"]);
    }
}
