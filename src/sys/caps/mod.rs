//! Capabilities: names, sets, launch's default set, the five sets a container's process gets
//! (planned from the manifest's choice and the user it runs as), and setting them; and
//! no_new_privs.
//!
//! ```text
//! CapChoice (default | list | add/drop) ─┐
//! uid in the container ──────────────────┼─plan()▶ CapPlan ─apply(plan, set_ids)▶ kernel
//! ProcStatus::read_self()?.sets.bounding ┘
//! ```
//! The plan is plain data: the planner builds it, the plan shows it, the container's process
//! only calls [`apply`] (then [`set_no_new_privs`], then seccomp's `load`, then execve).

mod apply;
mod capability;
mod default;
mod plan;
mod set;
mod status;

pub use apply::{apply, bounding_now, drop_bounding, set_keep_caps, set_no_new_privs, set_sets};
pub use capability::{Capability, UnknownCapability};
pub use default::{DEFAULT, DOCKER, DOCKER_ONLY, KEPT, Reason};
pub use plan::{CapChoice, CapPlan, CapSets, plan};
pub use set::CapSet;
pub use status::ProcStatus;
