//! `[security]`: capabilities, no_new_privs, seccomp, masked and read-only paths.

use super::Cx;
use crate::spec::{Process, Security};

/// The Security part of the Spec.
pub(super) fn check(_cx: &mut Cx, _s: Option<&()>, _p: &Process) -> Security {
    Security::default()
}
