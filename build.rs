//! Generates the shell completion scripts and the man page from the command-line definition
//! (src/cli/args.rs), so the binary embeds their text instead of carrying clap_complete and
//! clap_mangen: less code mapped into every launcher (docs/performance.md).

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell as Gen;

#[allow(dead_code)]
mod args {
    include!("src/cli/args.rs");
}

fn main() {
    println!("cargo::rerun-if-changed=src/cli/args.rs");
    println!("cargo::rerun-if-changed=build.rs");
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        panic!("cargo sets OUT_DIR for build scripts");
    };
    for (shell, file) in [
        (Gen::Bash, "launch.bash"),
        (Gen::Zsh, "launch.zsh"),
        (Gen::Fish, "launch.fish"),
        (Gen::Elvish, "launch.elv"),
        (Gen::PowerShell, "launch.ps1"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut args::Cli::command(), "launch", &mut text);
        write(&out.join(file), &text);
    }
    let mut man = Vec::new();
    if let Err(e) = clap_mangen::Man::new(args::Cli::command()).render(&mut man) {
        panic!("rendering the man page: {e}");
    }
    write(&out.join("launch.1"), &man);
}

fn write(path: &Path, text: &[u8]) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("writing {}: {e}", path.display());
    }
}
