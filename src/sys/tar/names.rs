//! Archive entry names and PAX times, checked before anything touches the disk.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sys::time::TimeSpec;

use super::{NAME_MAX, PATH_MAX};

/// An archive path as a relative path without `.` components, or why it is refused.
pub(super) fn normalise(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.contains(&0) {
        return Err("contains a NUL byte".into());
    }
    if raw.len() > PATH_MAX {
        return Err(format!("is {} bytes long, over PATH_MAX", raw.len()));
    }
    if raw.starts_with(b"/") {
        return Err("is an absolute path".into());
    }
    let mut rel = PathBuf::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("leaves the root (contains `..`)".into()),
            c if c.len() > NAME_MAX => return Err("has a name over NAME_MAX".into()),
            c => rel.push(OsStr::from_bytes(c)),
        }
    }
    Ok(rel)
}

/// A PAX time, `seconds[.fraction]`.
pub(super) fn parse_pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    if secs < 0 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None; // pre-1970 fractions count backwards; the header's whole seconds will do
    }
    let nanos = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
    Some(TimeSpec::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_dots_and_refuses_escapes() {
        assert_eq!(
            normalise(b"./etc//passwd/."),
            Ok(PathBuf::from("etc/passwd"))
        );
        assert_eq!(normalise(b"./"), Ok(PathBuf::new()));
        let why = |raw: &[u8]| normalise(raw).unwrap_err();
        assert_eq!(why(b"../etc/passwd"), "leaves the root (contains `..`)");
        assert_eq!(why(b"a/b/../../.."), "leaves the root (contains `..`)");
        assert_eq!(why(b"/etc/passwd"), "is an absolute path");
        assert_eq!(why(b"a\0b"), "contains a NUL byte");
        assert_eq!(why(&[b'a'; 256]), "has a name over NAME_MAX");
        assert_eq!(
            why(&b"a/".repeat(2100)),
            "is 4200 bytes long, over PATH_MAX"
        );
    }

    #[test]
    fn pax_times_keep_nanoseconds() {
        let t = |secs, nanos| Some(TimeSpec::new(secs, nanos));
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            t(1_700_000_000, 500_000_000)
        );
        assert_eq!(parse_pax_time(b"12"), t(12, 0));
        assert_eq!(parse_pax_time(b"1.1234567891"), t(1, 123_456_789));
        assert_eq!(parse_pax_time(b"-1.5"), None);
        assert_eq!(parse_pax_time(b"1.x"), None);
    }
}
