//! The command line: parse arguments, dispatch, map outcomes to exit codes.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Color, Command, ExportFormat, Format, ImportSource, Shell};

mod diff;
mod doctor;
mod images;
mod lock;
pub mod registry;

/// The command-line definition (clap derive). build.rs includes the same file to generate the
/// completion scripts and the man page at build time, so the binary carries their text, not the
/// generators.
mod args {
    include!("args.rs");
}

use crate::diag::{self, Problem};
use crate::exit;
use crate::host::{Host, RealHost};
use crate::manifest::Source;
use crate::plan::{Plan, render_text};

/// The completion scripts and the man page build.rs wrote.
mod generated {
    crate::cold_text! {
        pub(super) static BASH = concat!(env!("OUT_DIR"), "/launch.bash");
        pub(super) static ZSH = concat!(env!("OUT_DIR"), "/launch.zsh");
        pub(super) static FISH = concat!(env!("OUT_DIR"), "/launch.fish");
        pub(super) static ELVISH = concat!(env!("OUT_DIR"), "/launch.elv");
        pub(super) static POWERSHELL = concat!(env!("OUT_DIR"), "/launch.ps1");
        pub(super) static MAN = concat!(env!("OUT_DIR"), "/launch.1");
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::try_parse_from(with_default_command(std::env::args_os().collect()))
        .unwrap_or_else(|e| with_suggestion(e).exit());
    ExitCode::from(run(cli))
}

/// `launch app.toml` means `launch run app.toml`: insert `run` when the first argument that is
/// not an option is not a subcommand. A word that is no file but close to a subcommand's name
/// (`launch rnu`) is left for clap, which refuses it with the suggestion (exit 2), rather than
/// read as a manifest that does not exist.
fn with_default_command(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
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
        // The derived lookup: no need to build the whole clap Command twice.
        let known = word == "help" || <Command as clap::Subcommand>::has_subcommand(&word);
        if !known && (Path::new(&args[i]).exists() || !close_to_a_subcommand(&word)) {
            args.insert(i, "run".into());
        }
    }
    args
}

/// Whether `word` looks like a misspelt subcommand name (`rnu`, `valdiate`).
fn close_to_a_subcommand(word: &str) -> bool {
    subcommand_like(word).is_some()
}

/// The subcommand `word` is a misspelling of: one edit (a swap of two neighbours counts as one)
/// from a name, two for longer words, or close by [`diag::did_you_mean`]. clap's own suggestion
/// (Jaro above 0.7) misses short swaps like `rnu`.
fn subcommand_like(word: &str) -> Option<String> {
    let cli = <Cli as clap::CommandFactory>::command();
    let names: Vec<&str> = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .collect();
    let most = if word.chars().count() >= 6 { 2 } else { 1 };
    names
        .iter()
        .map(|n| (strsim::osa_distance(word, n), *n))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
        .or_else(|| diag::did_you_mean(word, names.iter().copied()))
        .map(str::to_owned)
}

/// clap's refusal of an unknown subcommand, with our suggestion when clap has none.
fn with_suggestion(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::InvalidSubcommand
        && e.get(ContextKind::SuggestedSubcommand).is_none()
        && let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidSubcommand)
        && let Some(name) = subcommand_like(word)
    {
        e.insert(ContextKind::SuggestedSubcommand, ContextValue::String(name));
    }
    e
}

pub(crate) fn use_color(c: Color) -> bool {
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
            bundle,
            stats,
            locked,
        } => {
            let plan = match (plan, Input::from_args(manifest, bundle)) {
                (Some(file), _) => match read_plan(&file) {
                    Ok(p) => p,
                    Err(code) => return code,
                },
                (None, Some(input)) => match load(&input, color, Format::Text, true) {
                    Ok((source, p)) => {
                        if let Err(code) = lock::verify(&input, &source, &p, locked, color) {
                            return code;
                        }
                        p
                    }
                    Err(code) => return code,
                },
                (None, None) => return exit::INVALID,
            };
            match crate::exec::run(plan, &crate::exec::RunOptions { verbose, stats }) {
                Ok(code) => code,
                Err(failure) => {
                    eprintln!("{failure}");
                    failure.exit_code
                }
            }
        }
        Command::Plan {
            manifest,
            bundle,
            format,
            explain,
        } => match Input::from_args(manifest, bundle)
            .ok_or(exit::INVALID)
            .and_then(|input| load(&input, color, format, false))
        {
            Ok((source, plan)) => {
                let origins = explain.then(|| crate::manifest::origins(&source));
                let out = match (format, origins) {
                    (Format::Text, None) => render_text(&plan),
                    (Format::Text, Some(o)) => render_text(&plan) + &render_origins(&o),
                    (Format::Json, None) => plan.to_json(),
                    (Format::Json, Some(o)) => plan_json_with_origins(&plan, &o),
                };
                print(&out)
            }
            Err(code) => code,
        },
        Command::Validate {
            manifest,
            bundle,
            format,
        } => match Input::from_args(manifest, bundle)
            .ok_or(exit::INVALID)
            .and_then(|input| load(&input, color, format, false))
        {
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
        Command::Doctor { manifest, format } => doctor::doctor(manifest.as_deref(), format, color),
        Command::Ps { names: true, .. } => crate::ctl::ps::names(&crate::host::state_root()),
        Command::Ps { format, .. } => {
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
        Command::Images => images::images(color),
        Command::Rmi { image } => images::rmi(&image, color),
        Command::Prune => images::prune(color),
        Command::Import { source } => images::import(source, color),
        Command::Export {
            format: ExportFormat::Oci { manifest, dir },
        } => match load(&Input::Manifest(manifest), color, Format::Text, false) {
            Ok((_, plan)) => export_oci(&plan, &dir),
            Err(code) => code,
        },
        // The registry client is a binary of its own (src/bin/launch-registry.rs).
        Command::Pull { .. } | Command::Login { .. } => registry::delegate(),
        Command::Diff { a, b, format } => diff::command(&a, &b, format, color),
        Command::Lock {
            manifest,
            bundle,
            update,
            check,
        } => match Input::from_args(manifest, bundle) {
            Some(input) => lock::command(&input, update, check, color),
            None => exit::INVALID,
        },
        Command::Schema => print(crate::schema::json_schema()),
        Command::Completions { shell } => write_out(match shell {
            Shell::Bash => &generated::BASH,
            Shell::Zsh => &generated::ZSH,
            Shell::Fish => &generated::FISH,
            Shell::Elvish => &generated::ELVISH,
            Shell::Powershell => &generated::POWERSHELL,
        }),
        Command::Man => write_out(&generated::MAN),
    }
}

/// What a run, plan or validate reads: a manifest, or an OCI bundle's config.json.
enum Input {
    Manifest(std::path::PathBuf),
    Bundle(std::path::PathBuf),
}

impl Input {
    /// clap makes sure exactly one is given.
    fn from_args(
        manifest: Option<std::path::PathBuf>,
        bundle: Option<std::path::PathBuf>,
    ) -> Option<Input> {
        match (manifest, bundle) {
            (_, Some(b)) => Some(Input::Bundle(b)),
            (Some(m), None) => Some(Input::Manifest(m)),
            (None, None) => None,
        }
    }
}

/// Read, parse and validate a manifest (or a bundle's config.json) against the real host; on
/// failure print the diagnostics and return the exit code. `run`: for `launch run` (an image
/// root's resolution is recorded in the state root, for `launch stop`).
fn load(input: &Input, color: bool, format: Format, run: bool) -> Result<(Source, Plan), u8> {
    let (read, path) = match input {
        Input::Manifest(p) if p.as_os_str() == "-" => (
            Source::read_stdin(),
            std::path::PathBuf::from(crate::manifest::STDIN_NAME),
        ),
        Input::Manifest(p) => (Source::read(p), p.clone()),
        Input::Bundle(dir) => (
            crate::oci::import::read_bundle(dir),
            dir.join("config.json"),
        ),
    };
    let source = read_source(read, &path, format)?;
    let mut host = RealHost::probe();
    if let Input::Manifest(manifest) = input {
        host = resolve_root(host, &source, manifest, color, format, run)?;
    }
    let planned = match input {
        Input::Manifest(_) => plan_for(&source, &host),
        Input::Bundle(_) => crate::oci::import::plan(&source, &host),
    };
    planned
        .map(|plan| (source.clone(), plan))
        .map_err(|problems| {
            report_problems(&source, problems, color, format);
            exit::INVALID
        })
}

/// Plan a manifest already read (a git revision's, for `launch diff`) against the real host, as
/// [`load`] does: its root brought into the store first.
fn load_source(source: Source, manifest: &Path, color: bool) -> Result<Plan, u8> {
    let host = resolve_root(
        RealHost::probe(),
        &source,
        manifest,
        color,
        Format::Text,
        false,
    )?;
    plan_for(&source, &host).map_err(|problems| {
        report_problems(&source, problems, color, Format::Text);
        exit::INVALID
    })
}

/// A manifest (or config.json) as read, or the `launch::manifest::read` diagnostic printed
/// and the exit code.
fn read_source<E: std::fmt::Display>(
    read: Result<Source, E>,
    path: &Path,
    format: Format,
) -> Result<Source, u8> {
    read.map_err(|e| {
        match format {
            Format::Text => eprintln!(
                "error[launch::manifest::read]: cannot read {}: {e}",
                path.display()
            ),
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
        exit::INVALID
    })
}

/// Bring an image or tar root into the store (pulled, imported or unpacked) before validation,
/// which then sees it pinned by digest; on failure print the diagnostic and return the exit code.
/// `run`: record the resolution in the state root, for `launch stop`.
fn resolve_root(
    host: RealHost,
    source: &Source,
    manifest: &Path,
    color: bool,
    format: Format,
    run: bool,
) -> Result<RealHost, u8> {
    use crate::image::resolve::{Options, Unresolved, for_source};
    let opts = Options {
        start_record: run.then(|| (crate::host::state_root(), manifest.display().to_string())),
        progress: true,
    };
    match for_source(source, &opts) {
        Ok(Some(image)) => Ok(host.with_image(image)),
        Ok(None) => Ok(host),
        Err(Unresolved::Cancelled(sig)) => {
            eprintln!(
                "launch: start-up cancelled by {} while the root was brought into the store \
                 (an image pulled or unpacked, an archive extracted): what was half written is \
                 removed (a partial download is kept, to resume)",
                crate::image::cancel::name(sig)
            );
            Err((128 + sig) as u8)
        }
        Err(Unresolved::Problem(problem)) => {
            report_problems(source, vec![*problem], color, format);
            Err(exit::INVALID)
        }
    }
}

/// Print validation's problems: text on stderr, or JSON on stdout.
fn report_problems(source: &Source, problems: Vec<Problem>, color: bool, format: Format) {
    match format {
        Format::Text => eprint!("{}", diag::render_text(source, &problems, color, 100)),
        Format::Json => {
            let _ = print(&diag::render_json(source, &problems));
        }
    }
}

/// `launch export oci`: the plan carries the validated Spec and the facts it was lowered with.
fn export_oci(plan: &Plan, dir: &Path) -> u8 {
    match crate::oci::export::write_bundle(&plan.spec, &plan.host, dir) {
        Ok(()) => {
            for w in crate::oci::export::warnings(&plan.spec) {
                eprintln!("launch: warning: {w}");
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("launch: error: export oci: {e}");
            if e.is_usage() {
                exit::INVALID
            } else {
                exit::LAUNCHER
            }
        }
    }
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
    let here = RealHost::probe();
    match crate::lower::verify(&plan, here.facts()) {
        Ok(()) => Ok(plan),
        Err(crate::lower::Refusal::OtherHost(diffs)) => {
            eprintln!(
                "launch: error: {} was made for another host (or user); it differs in:",
                path.display()
            );
            for d in diffs {
                eprintln!("  - {d}");
            }
            eprintln!(
                "  help: make the plan again here (`launch plan --format json APP.toml`) and review it"
            );
            Err(exit::INVALID)
        }
        Err(crate::lower::Refusal::Tampered { step, plan, spec }) => {
            eprintln!(
                "launch: error: {} was changed after it was made: its steps are not what its spec lowers to",
                path.display()
            );
            eprintln!("  step {step} in the plan: {plan}");
            eprintln!("  from its spec:    {spec}");
            eprintln!(
                "  help: a plan runs exactly as reviewed; change the manifest and make the plan again"
            );
            Err(exit::INVALID)
        }
    }
}

/// `launch plan --explain`: where each value of the manifest was written.
fn render_origins(origins: &[crate::manifest::Origin]) -> String {
    let width = origins
        .iter()
        .map(|o| o.key.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("\nwhere each value came from:\n");
    for o in origins {
        let pad = width - o.key.chars().count();
        out.push_str(&format!("  {}{}  {}\n", o.key, " ".repeat(pad), o.place));
    }
    out
}

/// The JSON plan with an `origins` array beside its fields (`run --plan` ignores it).
fn plan_json_with_origins(plan: &Plan, origins: &[crate::manifest::Origin]) -> String {
    let Ok(mut v) = serde_json::to_value(plan) else {
        return plan.to_json();
    };
    if let (Some(map), Ok(o)) = (v.as_object_mut(), serde_json::to_value(origins)) {
        map.insert("origins".into(), o);
    }
    serde_json::to_string_pretty(&v).unwrap_or_else(|_| plan.to_json()) + "\n"
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

    /// `launch exec NAME CMD ARGS...` with or without `--`; the command's own options stay its.
    #[test]
    fn exec_takes_the_command_with_or_without_a_double_dash() {
        use clap::Parser;
        let exec = |v: &[&str]| match super::Cli::try_parse_from(v).map(|c| c.command) {
            Ok(super::Command::Exec { name, command }) => Ok((name, command)),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.kind()),
        };
        let want = |c: &[&str]| Ok(("web".to_string(), c.iter().map(|s| s.to_string()).collect()));
        assert_eq!(
            exec(&["launch", "exec", "web", "ls", "-l"]),
            want(&["ls", "-l"])
        );
        assert_eq!(
            exec(&["launch", "exec", "web", "--", "ls", "-l"]),
            want(&["ls", "-l"])
        );
        assert_eq!(
            exec(&["launch", "exec", "web", "sh", "-c", "echo -v --color"]),
            want(&["sh", "-c", "echo -v --color"])
        );
        // Options after the command are the command's, even launch's own global ones.
        assert_eq!(
            exec(&["launch", "exec", "web", "ls", "-v", "--color", "never"]),
            want(&["ls", "-v", "--color", "never"])
        );
        // A command that starts with `-` still needs `--`; after it, everything is verbatim.
        assert_eq!(
            exec(&["launch", "exec", "web", "--", "--", "x"]),
            want(&["--", "x"])
        );
        assert_eq!(
            exec(&["launch", "-v", "exec", "web", "--", "-x"]),
            want(&["-x"])
        );
        assert_eq!(
            exec(&["launch", "exec", "web"]),
            Err(clap::error::ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn a_misspelt_subcommand_is_left_for_clap_to_suggest() {
        assert_eq!(
            words(&["launch", "rnu", "a.toml"]),
            ["launch", "rnu", "a.toml"]
        );
        assert_eq!(words(&["launch", "valdiate"]), ["launch", "valdiate"]);
        assert_eq!(super::subcommand_like("rnu").as_deref(), Some("run"));
        assert_eq!(super::subcommand_like("exce").as_deref(), Some("exec"));
        assert_eq!(super::subcommand_like("web"), None);
        // Not close to any: a manifest.
        assert_eq!(
            words(&["launch", "web.toml"]),
            ["launch", "run", "web.toml"]
        );
        // A file of that name is a manifest, however close its name.
        let dir = std::env::temp_dir().join(format!("launch-rnu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rnu");
        std::fs::write(&file, "").unwrap();
        let f = file.to_string_lossy().into_owned();
        assert_eq!(words(&["launch", &f]), ["launch", "run", f.as_str()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
