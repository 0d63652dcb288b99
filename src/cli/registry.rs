//! The registry commands, `launch pull` and `launch login`, and the binary that runs them:
//! `launch-registry` (src/bin/launch-registry.rs), installed beside `launch`.
//!
//! Why a binary of its own: the HTTP and TLS client (ureq, rustls, ring) is 1.7 MB of code. Linked
//! into `launch`, it moved the code every container start runs apart (+0.45 MiB peak RSS, slower
//! starts: docs/performance.md); in a binary of its own it costs a start nothing. It also keeps the
//! parsing of what a network sends in a process that does nothing else. `launch pull ...` and
//! `launch login ...` exec it with the same arguments; `[rootfs] image` runs it to pull
//! (image/resolve.rs).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::args::{Cli, Command};
use super::{print, use_color};
use crate::exit;

/// `launch-registry`'s main: `pull` and `login`, parsed as `launch` parses them.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = use_color(cli.color);
    ExitCode::from(match cli.command {
        Command::Pull { image, platform } => pull(&image, platform.as_deref(), color),
        Command::Login {
            registry,
            username,
            password,
            password_stdin,
        } => login(&registry, username, password, password_stdin, color),
        _ => {
            eprintln!("launch-registry: error: it runs `pull` and `login`; the rest is `launch`'s");
            exit::INVALID
        }
    })
}

/// The `launch-registry` binary beside this one.
pub fn helper() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding launch's own binary: {e}"))?;
    let helper = exe.with_file_name("launch-registry");
    match helper.is_file() {
        true => Ok(helper),
        false => Err(format!(
            "{} is missing: launch-registry ships beside launch (cargo builds both)",
            helper.display()
        )),
    }
}

/// `launch pull|login ...`: exec `launch-registry` with the same arguments.
pub(crate) fn delegate() -> u8 {
    use std::os::unix::process::CommandExt;
    let helper = match helper() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("launch: error: {e}");
            return exit::LAUNCHER;
        }
    };
    let e = std::process::Command::new(&helper)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!("launch: error: execve({}): {e}", helper.display());
    exit::LAUNCHER
}

/// `launch pull`: resolve, download and verify into the store; print the digest.
pub(crate) fn pull(image: &str, platform: Option<&str>, color: bool) -> u8 {
    use crate::image::registry::{self, PullError, PullOptions, manifest::parse_platform};
    let fail = |e: PullError| {
        eprint!("{}", registry::error::render(&e, color));
        e.exit_code()
    };
    let reference = match crate::image::reference::Reference::parse(image) {
        Ok(r) => r,
        Err(e) => return fail(e.into()),
    };
    let mut opts = PullOptions::default();
    if let Some(p) = platform {
        match parse_platform(p) {
            Ok(p) => opts.platform = Some(p),
            Err(e) => return fail(e.into()),
        }
    }
    registry::cancel::install();
    let root = registry::store::default_root();
    let mut progress = registry::progress::Reporter::new(std::io::stderr().is_terminal());
    match registry::pull(&reference, &opts, &root, &mut progress) {
        Ok(p) => {
            let size: u64 = p.layers.iter().map(|l| l.size).sum();
            print(&format!(
                "{}\ndigest: {}\nplatform: {}\nlayers: {} ({})\n",
                p.reference,
                p.manifest,
                p.platform,
                p.layers.len(),
                registry::progress::bytes(size)
            ))
        }
        Err(e) => {
            progress.finish();
            fail(e)
        }
    }
}

/// `launch login`: check the credentials against the registry, then store them.
pub(crate) fn login(
    registry: &str,
    username: String,
    password: Option<String>,
    password_stdin: bool,
    color: bool,
) -> u8 {
    use crate::image::registry::{self, client::insecure_from_env};
    let password = match (password, password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("launch: error: reading the password from standard input: {e}");
                return exit::INVALID;
            }
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            eprintln!(
                "launch: error: no password: give --password-stdin (and the password on standard input) or --password"
            );
            return exit::INVALID;
        }
    };
    let registry = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let credentials = crate::image::auth::Credentials { username, password };
    if let Err(e) = registry::login(registry, &credentials, insecure_from_env()) {
        eprint!("{}", registry::error::render(&e, color));
        return e.exit_code();
    }
    let Some(file) = crate::image::auth::launch_auth_file() else {
        eprintln!(
            "launch: error: nowhere to store credentials: set HOME, XDG_CONFIG_HOME or LAUNCH_AUTH_FILE"
        );
        return exit::LAUNCHER;
    };
    match crate::image::auth::store(&file, registry, &credentials) {
        Ok(()) => {
            eprintln!(
                "launch: logged in to {registry}; credentials stored in {}",
                file.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("launch: error: storing credentials: {e}");
            exit::LAUNCHER
        }
    }
}
