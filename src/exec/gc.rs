//! `launch gc`: undo what launchers that no longer exist left behind, from their journals.
//!
//! Runs under the state root's lock (see [`super::state::lock_root`]), also at the start of every
//! `launch run`. An instance whose journal is still flock'ed belongs to a live launcher and is
//! never touched.

use std::path::Path;

use super::journal::Undo;
use super::state;

/// Clean every dead instance under `root`; returns one line per instance cleaned.
pub fn collect(root: &Path) -> Vec<String> {
    clean(&state::list(root))
}

/// Clean the dead ones among `instances` (a [`state::list`] taken under the root's lock).
pub fn clean(instances: &[state::Instance]) -> Vec<String> {
    let mut cleaned = Vec::new();
    for inst in instances {
        if inst.alive {
            continue;
        }
        let mut undos = std::fs::File::open(inst.dir.join("journal"))
            .map(|f| super::journal::read(f).undos)
            .unwrap_or_default();
        // The state directory itself goes last, whatever the journal holds.
        undos.push(Undo::RemoveTree {
            path: inst.dir.clone(),
        });
        let mut errors = Vec::new();
        for u in undos.iter().rev() {
            if let Err(e) = u.run() {
                errors.push(format!("{u}: {e}"));
            }
        }
        let mut line = format!("gc: cleaned up {} (its launcher is gone)", inst.instance());
        for e in errors {
            line.push_str(&format!("\n  could not {e}"));
        }
        cleaned.push(line);
    }
    cleaned
}
