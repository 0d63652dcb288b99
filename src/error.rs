//! Error types shared by the executor and the facility modules.
//!
//! A user never sees a bare errno: every failed system call becomes a [`SysError`] naming the
//! operation, its arguments and the path it acted on.

use std::fmt;
use std::path::PathBuf;

/// A failed system call (or file operation), with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SysError {
    /// The operation, spelled like the syscall: `mount`, `pivot_root`, `openat2`, `write`.
    pub op: String,
    /// The arguments that matter, rendered for a human: `MS_BIND|MS_REC`, `"0 1000 1"`.
    pub args: String,
    /// The path the call acted on, if any.
    pub path: Option<PathBuf>,
    /// The raw errno (0 when the failure is not an errno, e.g. a malformed archive).
    pub errno: i32,
    /// Extra context when errno alone does not explain it.
    pub detail: Option<String>,
}

impl SysError {
    /// An errno-carrying failure of `op` on `path`.
    pub fn new(op: impl Into<String>, path: Option<PathBuf>, errno: nix::errno::Errno) -> Self {
        SysError {
            op: op.into(),
            args: String::new(),
            path,
            errno: errno as i32,
            detail: None,
        }
    }

    /// Build from a `std::io::Error`, keeping the errno when there is one.
    pub fn io(op: impl Into<String>, path: Option<PathBuf>, err: &std::io::Error) -> Self {
        SysError {
            op: op.into(),
            args: String::new(),
            path,
            errno: err.raw_os_error().unwrap_or(0),
            detail: if err.raw_os_error().is_some() {
                None
            } else {
                Some(err.to_string())
            },
        }
    }

    /// A failure that is not an errno (bad input data, protocol violation).
    pub fn other(op: impl Into<String>, path: Option<PathBuf>, detail: impl Into<String>) -> Self {
        SysError {
            op: op.into(),
            args: String::new(),
            path,
            errno: 0,
            detail: Some(detail.into()),
        }
    }

    /// Attach the arguments that matter.
    pub fn args(mut self, args: impl Into<String>) -> Self {
        self.args = args.into();
        self
    }

    /// Attach an explanation.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The errno as nix's type.
    pub fn errno(&self) -> nix::errno::Errno {
        nix::errno::Errno::from_raw(self.errno)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        match (&self.path, self.args.is_empty()) {
            (Some(p), true) => write!(f, "({})", p.display())?,
            (Some(p), false) => write!(f, "({}, {})", p.display(), self.args)?,
            (None, false) => write!(f, "({})", self.args)?,
            (None, true) => {}
        }
        if self.errno != 0 {
            let e = self.errno();
            write!(f, ": {} ({:?})", e.desc(), e)?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SysError {}

/// Result of a system-level operation.
pub type SysResult<T> = Result<T, SysError>;
