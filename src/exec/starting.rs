//! A start record: `<state root>/<name>-<id>/journal`, made by `launch run` before it brings an
//! image root into the store (a pull, an import, an unpack: seconds to minutes), and removed
//! when that ends, before the run's own instance takes over. It is an instance directory like
//! any other, made under the same checks (the state root trusted, created 0711 if needed; the
//! directory 0700; the journal 0600, flock'ed by the launcher for as long as it lives, and
//! naming the launcher by pid and start time), so that:
//!
//! - `launch stop NAME` finds it and sends the launcher SIGTERM, which cancels the pull or
//!   unpack (and checks the launcher's start time first, as for any instance);
//! - `launch ps` lists it as starting; `launch exec` says it is still starting;
//! - `launch gc` (and the next run's claim) removes it if the launcher died, from its journal
//!   (its one undo is the removal of its own directory);
//! - a run's claim ignores it: a launcher still bringing its image in claims no name yet.
//!
//! Its journal says what it is with a `{"starting": MANIFEST}` line.

use std::path::{Path, PathBuf};

use super::journal::{Entry, Journal, Undo};
use super::state;
use crate::error::SysResult;

/// A start record, removed when dropped.
pub struct Starting {
    dir: PathBuf,
    root: PathBuf,
    journal: Option<Journal>,
}

impl Starting {
    /// Record under `root` that this launcher is starting the manifest named `name` (a valid
    /// container name), given as `manifest` on the command line.
    pub fn create(root: &Path, name: &str, manifest: &str) -> SysResult<Starting> {
        // Under the root's lock, as a run's claim: gc never sees the directory before its
        // journal is locked.
        let _lock = state::lock_root(root)?;
        let dir = root.join(format!("{name}-{}", super::new_id()));
        state::mkdir(&dir, 0o700)?;
        let made = (|| {
            let mut journal = Journal::create(&dir)?;
            journal.append(&Entry::Undo(Undo::RemoveTree { path: dir.clone() }))?;
            journal.append(&Entry::Starting {
                starting: manifest.to_owned(),
            })?;
            Ok(journal)
        })();
        match made {
            Ok(journal) => Ok(Starting {
                dir,
                root: root.to_path_buf(),
                journal: Some(journal),
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// The record's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        // Removed under the root's lock, with the journal still locked: gc never takes it for
        // a dead launcher's. If this fails, the lock goes with the process and gc removes it.
        let _lock = state::lock_root(&self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
        self.journal = None;
    }
}
