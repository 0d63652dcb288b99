//! `launch lock` and the lock check of `launch run` (docs/environments.md).

use std::path::{Path, PathBuf};

use super::{Format, Input, load};
use crate::diag::{self, Problem};
use crate::exit;
use crate::lock::{self, LockFile};
use crate::manifest::Source;
use crate::plan::Plan;

/// `launch lock MANIFEST [--update | --check]` (or `--bundle DIR`).
pub fn command(input: &Input, update: bool, check: bool, color: bool) -> u8 {
    let (source, plan) = match load(input, color, Format::Text, false) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (entry, lock_path, existing) = match current(input, &source, &plan) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("launch: error: {e}");
            return exit::INVALID;
        }
    };
    let shown = lock_path.display();
    let old = existing
        .as_ref()
        .and_then(|l| l.entries.iter().find(|e| e.manifest == entry.manifest));
    if old == Some(&entry) {
        println!(
            "{shown} is up to date for {} ({} input{})",
            entry.manifest,
            entry.inputs.len(),
            if entry.inputs.len() == 1 { "" } else { "s" }
        );
        return exit::OK;
    }
    if check || (old.is_some() && !update) {
        let inputs = inputs_for(input, &source, &plan).unwrap_or_default();
        let problems = match old {
            Some(old) => lock::drift(old, &inputs, &lock_path),
            None => vec![not_locked(input, &entry.manifest, &lock_path)],
        };
        eprint!("{}", diag::render_text(&source, &problems, color, 100));
        if !check {
            eprintln!(
                "launch: {shown} was left as it is: `launch lock --update` records the change"
            );
        }
        return exit::INVALID;
    }
    let had_old = old.is_some();
    let mut lock = existing.unwrap_or(LockFile {
        version: lock::LOCK_VERSION,
        entries: Vec::new(),
    });
    let n = entry.inputs.len();
    let name = entry.manifest.clone();
    lock::upsert(&mut lock, entry);
    if let Err(e) = lock::write(&lock_path, &lock) {
        eprintln!("launch: error: {e}");
        return exit::LAUNCHER;
    }
    println!(
        "{} {shown} for {name} ({n} input{})",
        if had_old { "updated" } else { "wrote" },
        if n == 1 { "" } else { "s" }
    );
    exit::OK
}

/// `launch run MANIFEST` (or `--bundle DIR`): with a lock entry for it, every input must match
/// it; with `locked`, there must be one.
pub fn verify(
    input: &Input,
    source: &Source,
    plan: &Plan,
    locked: bool,
    color: bool,
) -> Result<(), u8> {
    let (lock_path, key) = location(input).map_err(|e| fail(&e))?;
    let existing = lock::read(&lock_path).map_err(|e| fail(&e))?;
    let Some(entry) = existing
        .as_ref()
        .and_then(|l| l.entries.iter().find(|e| e.manifest == key))
    else {
        if locked {
            let p = not_locked(input, &key, &lock_path);
            eprint!("{}", diag::render_text(source, &[p], color, 100));
            return Err(exit::INVALID);
        }
        return Ok(());
    };
    let inputs = inputs_for(input, source, plan).map_err(|e| fail(&e))?;
    let problems = lock::drift(entry, &inputs, &lock_path);
    if problems.is_empty() {
        return Ok(());
    }
    eprint!("{}", diag::render_text(source, &problems, color, 100));
    Err(exit::INVALID)
}

fn fail(e: &lock::LockError) -> u8 {
    eprintln!("launch: error: {e}");
    exit::INVALID
}

fn not_locked(input: &Input, key: &str, lock_path: &Path) -> Problem {
    let how = match input {
        Input::Manifest(m) => format!("launch lock {}", m.display()),
        Input::Bundle(dir) => format!("launch lock --bundle {}", dir.display()),
    };
    Problem::new(
        "launch::lock::missing",
        0..0,
        format!("{key} has no entry in {}", lock_path.display()),
    )
    .label("not locked")
    .help(format!("write the lock with `{how}` and commit it"))
}

/// The lock file and the key of the entry for `input`: beside a manifest, or in a bundle.
fn location(input: &Input) -> Result<(PathBuf, String), lock::LockError> {
    match input {
        Input::Manifest(m) => lock::location(m),
        Input::Bundle(dir) => Ok((dir.join(lock::LOCK_FILE), lock::BUNDLE_KEY.to_owned())),
    }
}

/// The inputs, archives and a bundle's tree hashed.
fn inputs_for(
    input: &Input,
    source: &Source,
    plan: &Plan,
) -> Result<Vec<lock::Input>, lock::LockError> {
    if let Input::Bundle(_) = input {
        return lock::bundle_inputs(source, &plan.spec);
    }
    // The manifest parsed before: a parse error here cannot happen; if it did, no spans.
    let m = crate::manifest::parse(source)
        .map_err(|_| lock::LockError::Input("the manifest no longer parses".into()))?;
    lock::inputs(source, &m, &plan.spec, true)
}

/// The entry the manifest makes now, the lock file's path and its current content.
fn current(
    input: &Input,
    source: &Source,
    plan: &Plan,
) -> Result<(lock::Entry, PathBuf, Option<LockFile>), lock::LockError> {
    let (lock_path, key) = location(input)?;
    let existing = lock::read(&lock_path)?;
    let inputs = inputs_for(input, source, plan)?;
    Ok((lock::entry(&key, &inputs)?, lock_path, existing))
}
