//! The Plan: the exact, ordered list of steps `launch run` executes. Pure data, no I/O.
//!
//! `launch plan` prints it; `launch run` executes exactly it. Paths that depend on the run carry
//! placeholders the executor fills in: `{id}` (the instance's unique suffix) and `{pid}` (the
//! container's process id, known once it is spawned).

mod action;
mod render;
mod undo;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::sys::idmap::{IdMapLine, OwnerShift, UNMAPPED_OWNER, host_id};
pub use action::{Action, CloneFlag, ContainerAction, HostAction, MountAttr, MountFlag};
pub use render::render_text;
pub use undo::Undo;

use crate::host::HostFacts;
use crate::spec::Spec;

/// Version of the plan's JSON format. Bumped on any incompatible change (2: the plan carries
/// the Spec it was lowered from; 3: a bridge's veth is connected while the container sets itself
/// up, between `release_until_network` and `network_ready`).
pub const PLAN_FORMAT: u32 = 3;

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
    /// What the container is: the Spec the steps were lowered from. `launch exec` takes the
    /// container's identity from it, and `launch run --plan` lowers it again to check the steps.
    pub spec: Spec,
    /// The steps, in execution order.
    pub steps: Vec<Step>,
    /// What the manifest named besides itself, with digests (docs/environments.md): the files
    /// it extends, its env files, its archive or image. A reviewed plan pins them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<crate::lock::Input>,
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

/// One step of a plan: what it is for, and the action. Its side, its effect's text and its undo
/// are derived from the action whenever they are needed, so a plan cannot show one effect and
/// run another. The JSON form carries them too, for readers; reading a plan ignores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it is for, in words.
    pub summary: String,
    /// The step as data, for the executor.
    pub action: Action,
}

impl Step {
    /// A step.
    pub fn new(summary: impl Into<String>, action: impl Into<Action>) -> Step {
        Step {
            summary: summary.into(),
            action: action.into(),
        }
    }

    /// Where it runs.
    pub fn side(&self) -> Side {
        self.action.side()
    }

    /// The concrete effect: the system call with its arguments.
    pub fn effect(&self) -> String {
        self.action.to_string()
    }

    /// How the executor undoes it if a later step fails (host steps that leave something).
    pub fn undo(&self) -> Option<Undo> {
        self.action.undo()
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            side: Side,
            summary: &'a str,
            effect: String,
            undo: Option<String>,
            action: &'a Action,
        }
        Out {
            side: self.side(),
            summary: &self.summary,
            effect: self.effect(),
            undo: self.undo().map(|u| u.to_string()),
            action: &self.action,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// `side`, `effect` and `undo` are derived: whatever a file says of them is ignored.
        #[derive(Deserialize)]
        struct In {
            summary: String,
            action: Action,
        }
        let i = In::deserialize(d)?;
        Ok(Step {
            summary: i.summary,
            action: i.action,
        })
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
    pub fn instantiate(self, id: &str) -> Plan {
        let template = self.instance.clone();
        let concrete = template.replace(ID_PLACEHOLDER, id);
        // Taken, not copied: a plan's seccomp rules alone are hundreds of strings.
        let mut plan = self;
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
        for step in &mut plan.steps {
            if let Action::Host(a) = &mut step.action {
                a.map_names(&|s: &str| s.replace(ID_PLACEHOLDER, id));
            }
        }
        // A step's text is rendered from its (now concrete) action only when it is logged or
        // reported, instead of formatting every step of every run.
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
            .find_map(|s| {
                if let Action::Container(
                    ContainerAction::PivotRoot { new_root: p }
                    | ContainerAction::Chroot { path: p },
                ) = &s.action
                {
                    Some(p.clone())
                } else {
                    None
                }
            })
            .unwrap_or_else(|| self.state_dir().join("root"))
    }
}
