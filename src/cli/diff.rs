//! `launch diff A B`: each side a manifest, a saved JSON plan, or a git revision of a manifest
//! (`HEAD:app.toml`, `main~3:./app.toml`).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Format, Input, load, load_source, print};
use crate::exit;
use crate::manifest::Source;
use crate::plan::Plan;

/// A saved plan larger than this is not one.
const MAX_PLAN: u64 = 64 << 20;

/// Exit 0: no difference; 1: differences; 2: a side cannot be read or is invalid.
pub fn command(a: &str, b: &str, format: Format, color: bool) -> u8 {
    let pa = match side(a, color) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let pb = match side(b, color) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let d = crate::diff::diff(a, &pa, b, &pb);
    let out = match format {
        Format::Text => crate::diff::render_text(&d),
        Format::Json => serde_json::to_string_pretty(&d).unwrap_or_default() + "\n",
    };
    let code = print(&out);
    if code != exit::OK {
        return code;
    }
    if d.is_empty() { exit::OK } else { 1 }
}

fn side(arg: &str, color: bool) -> Result<Plan, u8> {
    let path = Path::new(arg);
    if path.exists() {
        if is_plan(path) {
            return read_plan(path);
        }
        return load(
            &Input::Manifest(path.to_path_buf()),
            color,
            Format::Text,
            false,
        )
        .map(|(_, p)| p);
    }
    let Some((rev, file)) = arg
        .split_once(':')
        .filter(|(r, f)| !r.is_empty() && !f.is_empty())
    else {
        eprintln!(
            "error[launch::manifest::read]: cannot read {arg}: no such file (a side of `launch \
             diff` is a manifest, a saved plan, or REV:PATH of a manifest in git)"
        );
        return Err(exit::INVALID);
    };
    let git = Git::at(rev).map_err(|e| fail(arg, &e))?;
    let abs = git.absolute(file);
    let text = git.show(&abs).map_err(|e| fail(arg, &e))?;
    if file.ends_with(".json") {
        return parse_plan(arg, &text);
    }
    // What it extends and its env files come from the same revision.
    let source = Source::with_files(arg, &abs, &text, &|p| {
        git.show(p).map_err(std::io::Error::other)
    });
    load_source(source, &abs, color)
}

fn fail(arg: &str, e: &str) -> u8 {
    eprintln!("error[launch::manifest::read]: cannot read {arg}: {e}");
    exit::INVALID
}

/// A saved plan: a `.json` file, or one whose first non-blank byte is `{`.
fn is_plan(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "json") {
        return true;
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn read_plan(path: &Path) -> Result<Plan, u8> {
    let shown = path.display().to_string();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PLAN + 1).read_to_string(&mut text))
        .map_err(|e| fail(&shown, &e.to_string()))?;
    if text.len() as u64 > MAX_PLAN {
        return Err(fail(&shown, "larger than 64 MiB: not a plan"));
    }
    parse_plan(&shown, &text)
}

fn parse_plan(shown: &str, text: &str) -> Result<Plan, u8> {
    let plan: Plan = serde_json::from_str(text).map_err(|e| {
        fail(
            shown,
            &format!("not a plan (line {}, column {}): {e}", e.line(), e.column()),
        )
    })?;
    if plan.format != crate::plan::PLAN_FORMAT {
        return Err(fail(
            shown,
            &format!(
                "plan format {} (this launch reads {}): make the plan again",
                plan.format,
                crate::plan::PLAN_FORMAT
            ),
        ));
    }
    Ok(plan)
}

/// A git revision of the repository the current directory is in.
struct Git {
    rev: String,
    top: PathBuf,
    cwd: PathBuf,
}

impl Git {
    fn at(rev: &str) -> Result<Git, String> {
        let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
        let top = run(&["rev-parse", "--show-toplevel"])?;
        Ok(Git {
            rev: rev.to_owned(),
            top: PathBuf::from(top.trim_end()),
            cwd,
        })
    }

    /// As git reads `REV:PATH`: relative to the repository's top, unless it starts with `./` or
    /// `../` (relative to the current directory).
    fn absolute(&self, file: &str) -> PathBuf {
        let base = if file.starts_with("./") || file.starts_with("../") {
            &self.cwd
        } else {
            &self.top
        };
        crate::validate::normalize(&base.join(file))
    }

    /// A file of the revision, by its absolute path in the work tree.
    fn show(&self, abs: &Path) -> Result<String, String> {
        let rel = abs.strip_prefix(&self.top).map_err(|_| {
            format!(
                "{} is outside the repository {}",
                abs.display(),
                self.top.display()
            )
        })?;
        let spec = format!("{}:{}", self.rev, rel.display());
        run(&["show", &spec])
    }
}

/// `git ARGS` in the current directory: its stdout, or its stderr as the error.
fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("git {}: not UTF-8", args.join(" ")))
}
