//! What an entry carries besides its content: owner, mode, mtime, xattrs.

use std::ffi::{CStr, CString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;

use super::names::parse_pax_time;
use crate::error::{SysError, SysResult};

/// Owner, mode, time and xattrs of an entry, applied after its content.
pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: TimeSpec,
    pub(super) xattrs: Vec<(CString, Vec<u8>)>,
}

/// Header fields and PAX records (`SCHILY.xattr.*`, sub-second `mtime`) of an entry.
pub(super) fn read_meta<R: Read>(
    entry: &mut tar::Entry<R>,
    archive: &Path,
    ctx: &str,
) -> SysResult<Meta> {
    let field = |e: io::Error| SysError::io("read", Some(archive.into()), &e).args(ctx);
    let header = entry.header();
    let mode = header.mode().map_err(field)? & 0o7777;
    let id = |n: io::Result<u64>| {
        let n = n.map_err(field)?;
        u32::try_from(n)
            .map_err(|_| super::extract::bad(archive, ctx, format!("owner id {n} is out of range")))
    };
    let (uid, gid) = (id(header.uid())?, id(header.gid())?);
    let secs = header.mtime().map_err(field)?;
    let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
    let mut xattrs = Vec::new();
    for ext in entry.pax_extensions().map_err(field)?.into_iter().flatten() {
        let ext = ext.map_err(field)?;
        if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
            let name = CString::new(name)
                .map_err(|_| super::extract::bad(archive, ctx, "xattr name has a NUL"))?;
            xattrs.push((name, ext.value_bytes().to_vec()));
        } else if ext.key_bytes() == b"mtime" {
            mtime = parse_pax_time(ext.value_bytes()).unwrap_or(mtime);
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// fsetxattr(2), which nix does not wrap.
pub(super) fn fsetxattr(fd: BorrowedFd, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: `fd` is open for the call, `name` is NUL-terminated and `value` is a live buffer of
    // `value.len()` bytes; the kernel only reads them.
    let (name, len, value) = (name.as_ptr(), value.len(), value.as_ptr().cast());
    let rc = unsafe { libc::fsetxattr(fd.as_raw_fd(), name, value, len, 0) };
    Errno::result(rc).map(drop)
}
