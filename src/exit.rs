//! Exit codes. Documented in docs/exit-codes.md; the container's own status passes through.

/// Success.
pub const OK: u8 = 0;
/// The manifest is invalid, unreadable, or the command line is wrong.
pub const INVALID: u8 = 2;
/// `launch` itself failed (a plan step failed, with everything undone).
pub const LAUNCHER: u8 = 125;
/// The command was found but could not be executed.
pub const CANNOT_EXEC: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;
