//! What an entry carries besides its content: owner, mode, mtime, xattrs.

use std::ffi::{CStr, CString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;

use super::names::parse_pax_time;
use crate::error::{SysError, SysResult};
use crate::sys::idmap::OwnerShift;

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

/// An xattr that holds ids, rewritten through the container's maps like the owners are (None: keep
/// it as it is).
///
/// - `security.capability`: file capabilities count only in a user namespace whose root owns
///   them. A v2 entry (no root id: the archive's root) becomes a v3 entry whose root id is the
///   host uid of root inside; a v3 entry's root id goes through the uid map.
/// - `system.posix_acl_access` / `_default`: named-user and named-group entries go through the
///   uid and gid maps.
pub(super) fn shift_xattr(o: &OwnerShift, name: &CStr, value: &[u8]) -> Option<Vec<u8>> {
    const REVISION_MASK: u32 = 0xFF00_0000;
    const V2: u32 = 0x0200_0000;
    const V3: u32 = 0x0300_0000;
    const V2_LEN: usize = 20;
    const ACL_USER: u16 = 0x02;
    const ACL_GROUP: u16 = 0x08;
    let word = |at: usize| {
        value
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    match name.to_bytes() {
        b"security.capability" => {
            let magic = word(0)?;
            let root = match (magic & REVISION_MASK, value.len()) {
                (V2, V2_LEN) => 0,
                (V3, 24) => word(V2_LEN)?,
                _ => return None,
            };
            let mut out = ((magic & !REVISION_MASK) | V3).to_le_bytes().to_vec();
            out.extend_from_slice(&value[4..V2_LEN]);
            out.extend_from_slice(&o.uid(root).to_le_bytes());
            Some(out)
        }
        b"system.posix_acl_access" | b"system.posix_acl_default" => {
            if value.len() < 4 || (value.len() - 4) % 8 != 0 {
                return None;
            }
            let mut out = value.to_vec();
            for entry in out[4..].chunks_exact_mut(8) {
                let tag = u16::from_le_bytes([entry[0], entry[1]]);
                let id = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
                let host = match tag {
                    ACL_USER => o.uid(id),
                    ACL_GROUP => o.gid(id),
                    _ => continue,
                };
                entry[4..8].copy_from_slice(&host.to_le_bytes());
            }
            Some(out)
        }
        _ => None,
    }
}
