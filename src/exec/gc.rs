//! `launch gc`: undo what launchers that no longer exist left behind, from their journals.
//!
//! Runs under the state root's lock (see [`super::state::lock_root`]), also at the start of every
//! `launch run`. An instance whose journal is still flock'ed belongs to a live launcher and is
//! never touched. A journal is input, not a command: each entry must name something of its own
//! instance (a path beneath its directory, a cgroup named after it, a process with the start
//! time it recorded), or the instance is reported and left alone. An undo that fails keeps the
//! instance, journal included, so the next gc tries again.

use std::path::{Component, Path};

use super::journal::Undo;
use super::state;

/// Clean every dead instance under `root`; returns one line per instance cleaned or refused.
pub fn collect(root: &Path) -> Vec<String> {
    clean(&state::list(root))
}

/// Clean the dead ones among `instances` (a [`state::list`] taken under the root's lock).
pub fn clean(instances: &[state::Instance]) -> Vec<String> {
    let mut lines = Vec::new();
    for inst in instances {
        if inst.alive {
            continue;
        }
        let journal = std::fs::File::open(inst.dir.join("journal"))
            .map(super::journal::read)
            .unwrap_or_default();
        let undos = journal.undos;
        if let Some(why) = undos.iter().find_map(|u| untrusted(u, &inst.dir).err()) {
            lines.push(format!(
                "gc: left {} alone: its journal {why}; remove it by hand once you have looked",
                inst.dir.display()
            ));
            continue;
        }
        // Links and rules are undone in the caller's network namespace: from another one they
        // would be "removed" (nothing of that name here) and forgotten, left for good where
        // they are. Only once their namespace is gone (with them) is it safe to go on.
        let elsewhere = journal
            .netns
            .filter(|ns| Some(*ns) != super::journal::netns_of("self"));
        let networked = undos
            .iter()
            .any(|u| matches!(u, Undo::UnpublishPorts { .. } | Undo::DeleteLink { .. }));
        if let Some(ns) = elsewhere.filter(|ns| networked && super::journal::netns_alive(*ns)) {
            lines.push(format!(
                "gc: left {} alone: its links and firewall rules are in network namespace \
                 net:[{ns}], not this one; run `launch gc` there",
                inst.instance()
            ));
            continue;
        }
        let mut errors = Vec::new();
        for u in undos.iter().rev() {
            if let Err(e) = u.run() {
                errors.push(format!("{u}: {e}"));
            }
        }
        let mut line = format!("gc: cleaned up {} (its launcher is gone)", inst.instance());
        if errors.is_empty() {
            // The state directory itself goes last, whatever the journal holds.
            let dir = Undo::RemoveTree {
                path: inst.dir.clone(),
            };
            if let Err(e) = dir.run() {
                errors.push(format!("{dir}: {e}"));
            }
        } else {
            line = format!(
                "gc: could not clean up all of {} (kept for the next gc)",
                inst.instance()
            );
        }
        for e in errors {
            line.push_str(&format!("\n  could not {e}"));
        }
        lines.push(line);
    }
    lines
}

/// Whether `u` names only what belongs to the instance in `dir`; why not, in words.
fn untrusted(u: &Undo, dir: &Path) -> Result<(), String> {
    let plain = |p: &Path| {
        p.is_absolute()
            && p.components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    match u {
        Undo::RemoveTree { path } => {
            if !plain(path) || !path.starts_with(dir) {
                return Err(format!("names {} outside its directory", path.display()));
            }
            // Every directory between the instance's and the target must be a real one: a
            // symlink planted on the way would lead the removal elsewhere.
            let mut at = dir.to_path_buf();
            let rest = path.strip_prefix(dir).unwrap_or(Path::new(""));
            let mut comps = rest.components().peekable();
            while let Some(c) = comps.next() {
                if comps.peek().is_none() {
                    break;
                }
                at.push(c);
                match std::fs::symlink_metadata(&at) {
                    Ok(md) if md.file_type().is_dir() => {}
                    Ok(_) => {
                        return Err(format!("leads through {}, not a directory", at.display()));
                    }
                    Err(_) => return Ok(()),
                }
            }
            Ok(())
        }
        Undo::RemoveCgroup { path } => {
            let named = dir.file_name().is_some_and(|n| path.file_name() == Some(n));
            if !plain(path) || !named {
                return Err(format!(
                    "names cgroup {}, not one named after it",
                    path.display()
                ));
            }
            match path.parent().map(nix::sys::statfs::statfs) {
                Some(Ok(fs))
                    if fs.filesystem_type() == nix::sys::statfs::CGROUP_SUPER_MAGIC
                        || fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC =>
                {
                    Ok(())
                }
                // Gone already: nothing to remove.
                Some(Err(nix::errno::Errno::ENOENT)) => Ok(()),
                Some(Ok(_)) | Some(Err(_)) | None => Err(format!(
                    "names {}, which is not in a cgroup filesystem",
                    path.display()
                )),
            }
        }
        // Killed only if it still is the process the launcher recorded (Undo::run checks the
        // start time; without one it kills nothing).
        Undo::KillProcess { .. } | Undo::KillHelper { .. } => Ok(()),
        // The network's undos touch only what is named after the instance: its lease in the
        // state root, its rules' tag, its veth.
        Undo::ReleaseAddress { dir: d, owner, .. } => {
            if Some(d.as_path()) != dir.parent() || Some(owner.as_str()) != instance(dir) {
                return Err(format!(
                    "releases {owner}'s lease in {}, not its own in the state root",
                    d.display()
                ));
            }
            Ok(())
        }
        // Elements of the port maps, by key: a key is held by one container at a time
        // (`create element`), and every `launch run` collects dead launchers' instances
        // before it publishes anything.
        Undo::UnpublishPorts { .. } => Ok(()),
        Undo::DeleteLink { name } => {
            let own = instance(dir).map(crate::sys::net::link::veth_name);
            match own.as_deref() == Some(name.as_str()) {
                true => Ok(()),
                false => Err(format!("deletes link {name}, not its own veth")),
            }
        }
    }
}

/// The instance an instance directory is named after.
fn instance(dir: &Path) -> Option<&str> {
    dir.file_name().and_then(|n| n.to_str())
}
