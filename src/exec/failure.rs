//! How a failed run is reported: the step, its cause, what was undone, and the exit code.

use super::journal::Undo;
use crate::error::SysError;
use crate::exit;
use crate::plan::{Action, ContainerAction, HostAction, Plan, Side, Step};

/// A run that failed: the step, its cause, and what the unwinding could not undo.
#[derive(Debug)]
pub struct Failure {
    /// 1-based step number and the plan's step count.
    pub step: (usize, usize),
    /// The step as planned (with the run's id and pid filled in).
    pub planned: Step,
    /// What went wrong.
    pub error: SysError,
    /// How many undo actions ran.
    pub undone: usize,
    /// Undo actions that failed.
    pub undo_errors: Vec<(Undo, SysError)>,
    /// The exit code to report (125, or 126/127 for execve failures, 128+N when signal N
    /// cancelled start-up).
    pub exit_code: u8,
    /// The signal that cancelled start-up, if that is why the run stopped.
    pub cancelled: Option<i32>,
    /// Run-time values for the planned text's placeholders (`{pid}`, `{address}`), once known.
    pub values: Vec<(&'static str, String)>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = match self.planned.side() {
            Side::Host => "host",
            Side::Container => "container",
        };
        if let Some(sig) = self.cancelled {
            let name = nix::sys::signal::Signal::try_from(sig).map_or("a signal", |s| s.as_str());
            writeln!(
                f,
                "launch: start-up cancelled by {name} at step {}/{} ({side}): {}; the container never ran",
                self.step.0, self.step.1, self.planned.summary
            )?;
        } else {
            writeln!(
                f,
                "launch: error: step {}/{} ({side}) failed: {}",
                self.step.0, self.step.1, self.planned.summary
            )?;
            let mut planned = self.planned.effect();
            for (k, v) in &self.values {
                planned = planned.replace(k, v);
            }
            writeln!(f, "  planned: {planned}")?;
            writeln!(f, "  cause:   {}", self.error)?;
        }
        write!(
            f,
            "  undone:  {} step{}",
            self.undone,
            if self.undone == 1 { "" } else { "s" }
        )?;
        for (u, e) in &self.undo_errors {
            write!(f, "\n  undo failed: {u}: {e}")?;
        }
        Ok(())
    }
}

pub(super) fn failure(
    plan: &Plan,
    at: usize,
    error: SysError,
    undone: usize,
    undo_errors: Vec<(Undo, SysError)>,
    cancelled: Option<i32>,
    values: Vec<(&'static str, String)>,
) -> Failure {
    // Rendered afresh: the instantiated plan's texts are the template's (see Plan::instantiate).
    let planned = plan.steps.get(at).map_or_else(
        || Step::new("prepare the run", HostAction::Release),
        |s| Step::new(s.summary.clone(), s.action.clone()),
    );
    let exit_code = if let Some(sig) = cancelled {
        (128 + sig) as u8
    } else if let Action::Container(ContainerAction::Exec { .. }) = planned.action {
        exit::of_exec_error(&error)
    } else {
        exit::LAUNCHER
    };
    Failure {
        step: (at + 1, plan.steps.len()),
        planned,
        error,
        undone,
        undo_errors,
        exit_code,
        cancelled,
        values,
    }
}

/// A failed step: by default the one being run; the release step reports the container step
/// that failed instead.
pub(super) struct StepError {
    pub(super) at: Option<usize>,
    pub(super) error: SysError,
}

impl From<SysError> for StepError {
    fn from(error: SysError) -> StepError {
        StepError { at: None, error }
    }
}
