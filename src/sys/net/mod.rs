//! Networking: loopback inside a new network namespace, and the host side of the bridge mode
//! (docs/network.md): links, addresses and routes over netlink ([`link`]), the address
//! allocator ([`alloc`]) and launch's nftables table ([`firewall`]).

pub mod alloc;
pub mod files;
pub mod firewall;
pub mod helper;
pub mod link;
mod netlink;
pub mod subnet;

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use crate::error::{SysError, SysResult};

/// ioctl(SIOCGIFFLAGS/SIOCSIFFLAGS) to set IFF_UP on `lo`.
pub fn loopback_up() -> SysResult<()> {
    let err = |op: &str, e: Errno| SysError::new(op, None, e).args("\"lo\"");
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("socket", e).args("AF_INET, SOCK_DGRAM"))?;
    // SAFETY: ifreq is plain data; zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: a valid socket and a properly initialised ifreq that outlives the call.
    if unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        )
    } < 0
    {
        return Err(err("ioctl", Errno::last()).args("SIOCGIFFLAGS, \"lo\""));
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req) } < 0 {
        return Err(err("ioctl", Errno::last()).args("SIOCSIFFLAGS, \"lo\", IFF_UP"));
    }
    Ok(())
}
