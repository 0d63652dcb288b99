//! setns(2): enter an existing namespace by path (`/proc/PID/ns/net`, `/run/netns/NAME`), the
//! container side of a namespace the Spec says to join rather than create.

use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;

use super::clone::{CloneFlag, flag_bits};
use crate::error::{SysError, SysResult};

/// Enter the namespace of kind `kind` that `path` refers to. The kind is passed to setns so the
/// kernel refuses a file of another kind (EINVAL) instead of joining the wrong namespace.
pub fn join(path: &Path, kind: CloneFlag) -> SysResult<()> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| SysError::new("open", Some(path.to_path_buf()), e).args("O_RDONLY"))?;
    let bits = CloneFlags::from_bits_truncate(flag_bits(&[kind]) as i32);
    setns(&fd, bits)
        .map_err(|e| SysError::new("setns", Some(path.to_path_buf()), e).args(format!("{kind:?}")))
}
