//! User namespace id maps, and what they make of an archive's owners.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One line of an id map: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapLine {
    /// First id in the namespace.
    pub inside: u32,
    /// First id on the host.
    pub outside: u32,
    /// Number of ids.
    pub count: u32,
}

/// The host id that `map` gives the id `inside`, if the map has it.
pub fn host_id(map: &[IdMapLine], inside: u32) -> Option<u32> {
    map.iter()
        .find(|l| inside >= l.inside && inside - l.inside < l.count)
        .map(|l| l.outside + (inside - l.inside))
}

/// How an archive's owners (ids inside the container) become the host ids written to disk: through
/// the container's uid and gid maps. An id the maps leave out becomes [`UNMAPPED_OWNER`], which
/// the container sees as the overflow id (nobody) as it would any unmapped owner, and which gives
/// no host user the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerShift {
    /// The uid map.
    pub uid: Vec<IdMapLine>,
    /// The gid map.
    pub gid: Vec<IdMapLine>,
}

/// The host id for unmapped owners.
pub const UNMAPPED_OWNER: u32 = 65534;

impl OwnerShift {
    /// The host uid for the archive's `uid`.
    pub fn uid(&self, uid: u32) -> u32 {
        host_id(&self.uid, uid).unwrap_or(UNMAPPED_OWNER)
    }

    /// The host gid for the archive's `gid`.
    pub fn gid(&self, gid: u32) -> u32 {
        host_id(&self.gid, gid).unwrap_or(UNMAPPED_OWNER)
    }

    /// Whether the uid map has the archive's `uid`.
    pub fn maps_uid(&self, uid: u32) -> bool {
        host_id(&self.uid, uid).is_some()
    }

    /// Whether the gid map has the archive's `gid`.
    pub fn maps_gid(&self, gid: u32) -> bool {
        host_id(&self.gid, gid).is_some()
    }
}

/// `uid 0→100000 ×65536; gid 0→200000 ×65536; unmapped: 65534`.
impl fmt::Display for OwnerShift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges = |map: &[IdMapLine]| {
            map.iter()
                .map(|l| format!("{}\u{2192}{} \u{d7}{}", l.inside, l.outside, l.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "uid {}; gid {}; unmapped: {UNMAPPED_OWNER}",
            ranges(&self.uid),
            ranges(&self.gid)
        )
    }
}

/// Write a process's `uid_map`, `gid_map` or `setgroups` (`file`) from the parent namespace.
pub fn write(pid: nix::unistd::Pid, file: &str, value: &str) -> crate::error::SysResult<()> {
    let path = std::path::PathBuf::from(format!("/proc/{pid}/{file}"));
    std::fs::write(&path, value).map_err(|e| {
        crate::error::SysError::io("write", Some(path.clone()), &e).args(format!("{value:?}"))
    })
}

/// Run newuidmap or newgidmap: `argv` with `{pid}` replaced by the container process. Fails
/// naming the program, its argv, and what it said on stderr.
pub fn run_helper(argv: &[String], pid: nix::unistd::Pid) -> crate::error::SysResult<()> {
    use crate::error::SysError;
    let argv: Vec<String> = argv
        .iter()
        .map(|a| a.replace(crate::plan::PID_PLACEHOLDER, &pid.to_string()))
        .collect();
    let Some((program, args)) = argv.split_first() else {
        return Err(SysError::other("run", None, "an empty id map helper argv"));
    };
    let shown = argv
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    let path = std::path::PathBuf::from(program);
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| SysError::io("execve", Some(path.clone()), &e).args(shown.clone()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = path
        .file_name()
        .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned());
    let file = if name.contains("gid") {
        "/etc/subgid"
    } else {
        "/etc/subuid"
    };
    Err(SysError::other(
        "run",
        Some(path),
        format!(
            "{name} {}: {}; it checks each range against {file} and must be setuid root \
             (Debian's `uidmap` package)",
            out.status,
            stderr.trim()
        ),
    )
    .args(shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A helper that fails is reported with its program, its argv (the pid filled in) and
    /// what it said.
    #[test]
    fn a_failing_helper_names_program_argv_and_stderr() {
        let argv: Vec<String> = [
            "/bin/sh",
            "-c",
            "echo 'newuidmap: uid range [1-65537) -> [100000-165537) not allowed' >&2; exit 1",
            "{pid}",
        ]
        .map(String::from)
        .to_vec();
        let e = run_helper(&argv, nix::unistd::Pid::from_raw(4242)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/bin/sh"), "{text}");
        assert!(text.contains("\"4242\""), "{text}");
        assert!(text.contains("not allowed"), "{text}");
        assert!(text.contains("exit status: 1"), "{text}");
        let missing = ["/nonexistent/newuidmap".to_string()];
        let e = run_helper(&missing, nix::unistd::Pid::from_raw(1)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/newuidmap"), "{e}");
        assert!(run_helper(&["/bin/true".to_string()], nix::unistd::Pid::from_raw(1)).is_ok());
    }
}
