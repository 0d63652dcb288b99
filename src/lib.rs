//! `launch`: a TOML manifest → validated [`plan::Plan`] → executed container.

/// Embed files that are printed on request only (completions, man page, schema) in a section of
/// their own, `.launch_text`, instead of among the strings every run reads: the kernel maps a
/// launcher's read-only data 64 KiB at a time around each page it touches, and ~100 KiB of text
/// interleaved there would be mapped into every launcher (docs/performance.md).
#[macro_export]
#[doc(hidden)]
macro_rules! cold_text {
    ($($(#[$doc:meta])* $vis:vis static $name:ident = $path:expr;)+) => {$(
        $(#[$doc])*
        #[unsafe(link_section = ".launch_text")]
        $vis static $name: [u8; include_bytes!($path).len()] = *include_bytes!($path);
    )+};
}

pub mod cli;
pub mod ctl;
pub mod diag;
pub mod diff;
pub mod doctor;
pub mod error;
pub mod exec;
pub mod exit;
pub mod host;
pub mod image;
pub mod lock;
pub mod lower;
pub mod manifest;
pub mod oci;
pub mod plan;
pub mod schema;
pub mod spec;
pub mod sys;
pub mod validate;
