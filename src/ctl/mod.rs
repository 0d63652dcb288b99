//! Lifecycle commands on running containers: `ps`, `stop`, `exec`, `gc`. They find instances
//! through the state root (see [`crate::exec::state`]).

mod enter;
pub(crate) mod ps;
mod stop;

pub use enter::exec;
pub use ps::ps;
pub use stop::stop;

use std::path::Path;

use crate::exec::state::{self, Instance};
use crate::exit;

/// The live instances `name` designates: an instance name (`seed-1a2b3c4d`), or a manifest name
/// (every live instance of it). Prints the error and returns the exit code when there is none.
fn find(root: &Path, name: &str) -> Result<Vec<Instance>, u8> {
    let found: Vec<Instance> = state::list(root)
        .into_iter()
        .filter(|i| i.alive && (i.instance() == name || i.name() == name))
        .collect();
    if found.is_empty() {
        eprintln!("launch: error: no running container named `{name}` (see `launch ps`)");
        return Err(exit::INVALID);
    }
    Ok(found)
}

/// `launch gc`: clean up after launchers that are gone.
pub fn gc(root: &Path) -> u8 {
    if !root.is_dir() {
        println!("gc: nothing to clean up");
        return exit::OK;
    }
    let _lock = match state::lock_root(root) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("launch: error: {e}");
            return exit::LAUNCHER;
        }
    };
    let lines = crate::exec::gc::collect(root);
    if lines.is_empty() {
        println!("gc: nothing to clean up");
    }
    for l in lines {
        println!("{l}");
    }
    exit::OK
}
