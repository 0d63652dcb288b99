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
        let text = match String::from_utf8(text) {
            Ok(t) => running_names(shell, t),
            Err(e) => panic!("clap_complete wrote a {file} that is not UTF-8: {e}"),
        };
        write(&out.join(file), text.as_bytes());
    }
    let mut man = Vec::new();
    if let Err(e) = clap_mangen::Man::new(args::Cli::command()).render(&mut man) {
        panic!("rendering the man page: {e}");
    }
    write(&out.join("launch.1"), &man);
}

/// Teach the bash, zsh and fish scripts to offer the running containers (`launch ps --names`)
/// for NAME of `launch stop` and `launch exec`: clap_complete knows only static values.
fn running_names(shell: Gen, text: String) -> String {
    match shell {
        Gen::Bash => {
            let mut t = BASH_RUNNING.to_owned() + &text;
            for sub in ["stop", "exec"] {
                let case = format!("        launch__subcmd__{sub})\n");
                t = replace_once(
                    &t,
                    &case,
                    &format!(
                        "{case}            if _launch_running \"$1\"; then\n                return 0\n            fi\n"
                    ),
                );
            }
            t
        }
        Gen::Zsh => {
            let t = replace_once(
                &text,
                "':name -- The manifest'\\''s name (every instance of it) or one instance (`NAME-<id>`):_default'",
                "':name -- The manifest'\\''s name (every instance of it) or one instance (`NAME-<id>`):_launch_running'",
            );
            let t = replace_once(
                &t,
                "':name -- The container'\\''s name or instance:_default'",
                "':name -- The container'\\''s name or instance:_launch_running'",
            );
            replace_once(
                &t,
                "if [ \"$funcstack[1]\" = \"_launch\" ]; then",
                &format!("{ZSH_RUNNING}if [ \"$funcstack[1]\" = \"_launch\" ]; then"),
            )
        }
        Gen::Fish => text + FISH_RUNNING,
        _ => text,
    }
}

/// `text` with `from` replaced by `to`, which must occur exactly once: a clap_complete that writes
/// otherwise fails the build instead of silently losing the completion.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    match text.matches(from).count() {
        1 => text.replacen(from, to, 1),
        n => panic!("completion script: expected `{from}` once, found it {n} times"),
    }
}

const BASH_RUNNING: &str = r#"# NAME of `launch stop` and `launch exec`: the running containers and their instances. Succeeds
# (with COMPREPLY set) when the word being completed is NAME: the first word after the subcommand
# that is neither an option nor an option's value. $1: the launch being completed.
_launch_running() {
    local i w sub=0
    for (( i = 1; i < COMP_CWORD; i++ )); do
        w="${COMP_WORDS[i]}"
        case "$w" in
            --color) i=$((i + 1)) ;;
            -*) ;;
            *) sub=$i; break ;;
        esac
    done
    [[ $sub -gt 0 && "${COMP_WORDS[COMP_CWORD]}" != -* ]] || return 1
    case "${COMP_WORDS[COMP_CWORD-1]}" in --timeout|--color) return 1 ;; esac
    for (( i = sub + 1; i < COMP_CWORD; i++ )); do
        w="${COMP_WORDS[i]}"
        case "$w" in
            --timeout|--color) i=$((i + 1)) ;;
            -*) ;;
            *) return 1 ;;
        esac
    done
    COMPREPLY=( $(compgen -W "$("${1:-launch}" ps --names 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}") )
    return 0
}

"#;

const ZSH_RUNNING: &str = r#"(( $+functions[_launch_running] )) ||
_launch_running() {
    local -a running
    running=(${(f)"$(launch ps --names 2>/dev/null)"})
    _describe -t containers 'running container' running
}

"#;

const FISH_RUNNING: &str = r#"
# NAME of `launch stop` and `launch exec`: the running containers and their instances.
function __fish_launch_wants_name
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_launch_global_optspecs) -- $cmd 2>/dev/null
    or return 1
    contains -- "$argv[1]" stop exec
    or return 1
    set -e argv[1]
    argparse (__fish_launch_global_optspecs) timeout= -- $argv 2>/dev/null
    or return 1
    test (count $argv) -eq 0
end
complete -c launch -n "__fish_launch_wants_name" -f -a "(launch ps --names 2>/dev/null)" -d 'running container'
"#;

fn write(path: &Path, text: &[u8]) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("writing {}: {e}", path.display());
    }
}
