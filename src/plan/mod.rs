//! The Plan: the exact, ordered list of steps `launch run` executes. Pure data, no I/O.
//!
//! `launch plan` prints it; `launch run` executes exactly it. Paths that depend on the run carry
//! placeholders the executor fills in: `{id}` (the instance's unique suffix) and `{pid}` (the
//! container's process id, known once it is spawned).

mod action;
mod idmap;
mod render;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use action::{Action, CloneFlag, MountAttr, MountFlag};
pub use idmap::{IdMapLine, OwnerShift, UNMAPPED_OWNER, host_id};
pub use render::render_text;

use crate::host::HostFacts;

/// Version of the plan's JSON format. Bumped on any incompatible change.
pub const PLAN_FORMAT: u32 = 1;

/// Placeholder for the instance's unique suffix in plan paths.
pub const ID_PLACEHOLDER: &str = "{id}";
/// Placeholder for the container's host pid in plan paths.
pub const PID_PLACEHOLDER: &str = "{pid}";

/// A validated, ordered plan for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Format version ([`PLAN_FORMAT`]).
    pub format: u32,
    /// The manifest's `name`.
    pub name: String,
    /// The manifest as named on the command line.
    pub manifest: String,
    /// The instance name, `NAME-{id}`.
    pub instance: String,
    /// The host facts the plan was made from.
    pub host: HostFacts,
    /// Whether the process wants a terminal (`None`: decided at run time from standard input).
    pub terminal: Option<bool>,
    /// How `launch stop` stops this container.
    pub stop: Stop,
    /// The steps, in execution order.
    pub steps: Vec<Step>,
}

/// How `launch stop` ends the container: this signal to its main process, then, after the
/// timeout, SIGKILL to everything in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    /// Canonical signal name (`SIGTERM`).
    pub signal: String,
    /// Milliseconds to wait before SIGKILL.
    pub timeout_ms: u64,
}

/// Where a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// In the launcher, on the host: visible to the host, so it has an undo.
    Host,
    /// In the container process, inside its namespaces: gone when they are.
    Container,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Where it runs.
    pub side: Side,
    /// What it is for, in words.
    pub summary: String,
    /// The concrete effect: the system call with its arguments.
    pub effect: String,
    /// How the executor undoes it if a later step fails (host steps only).
    pub undo: Option<String>,
    /// The step as data, for the executor.
    pub action: Action,
}

impl Step {
    /// A step; its effect and undo text come from the action.
    pub fn new(summary: impl Into<String>, action: Action) -> Step {
        Step {
            side: action.side(),
            summary: summary.into(),
            effect: action.to_string(),
            undo: action.undo(),
            action,
        }
    }
}

impl Plan {
    /// The plan as JSON (`launch plan --format json`). Stable: see docs/plan-format.md.
    pub fn to_json(&self) -> String {
        // A plan holds only strings, numbers, and enums: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// This plan for one run: the instance `NAME-{id}` becomes `NAME-<id>` in every host path
    /// (state dir, cgroups, mount points); effect texts are rendered on demand (below). Only a path
    /// component that is exactly the instance template is replaced, and only its first
    /// occurrence (the state dir or the cgroup), so the user's own text — a command, a bind
    /// source, an environment value that happens to contain `{id}` — runs as written.
    pub fn instantiate(&self, id: &str) -> Plan {
        let template = self.instance.clone();
        let concrete = template.replace(ID_PLACEHOLDER, id);
        let mut plan = self.clone();
        plan.instance = concrete.clone();
        for step in &mut plan.steps {
            step.action.map_paths(&mut |p: &Path| {
                let mut done = false;
                p.components()
                    .map(|c| {
                        if !done && c.as_os_str() == template.as_str() {
                            done = true;
                            PathBuf::from(&concrete)
                        } else {
                            PathBuf::from(c.as_os_str())
                        }
                    })
                    .collect()
            });
        }
        // `effect` and `undo` keep the template's text: the executor renders a step's text from
        // its (now concrete) action only when it logs or reports it, instead of formatting
        // every step of every run.
        plan
    }

    /// The state directory of this instance (with the `{id}` placeholder).
    pub fn state_dir(&self) -> PathBuf {
        self.host.state_root.join(&self.instance)
    }

    /// Where the container's root is mounted before it becomes `/`: the directory its
    /// pivot_root (or chroot) step enters. Plans always have one; `<state dir>/root` otherwise.
    pub fn root(&self) -> PathBuf {
        self.steps
            .iter()
            .find_map(|s| match &s.action {
                Action::PivotRoot { new_root: p } | Action::Chroot { path: p } => Some(p.clone()),
                _ => None,
            })
            .unwrap_or_else(|| self.state_dir().join("root"))
    }
}
