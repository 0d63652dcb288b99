//! The typed channel between the launcher and the container process.
//!
//! A SOCK_SEQPACKET socketpair, close-on-exec: the launcher sends `Release` when the host side
//! (id maps, cgroup join) is ready; the child answers only if a step fails. A successful execve
//! closes the child's end, which the launcher reads as end-of-file: "the command is running".

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
use serde::{Deserialize, Serialize};

use crate::error::{SysError, SysResult};

/// Launcher → container.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToChild {
    /// The host side is ready: go on with the container steps.
    Release,
}

/// Container → launcher.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToParent {
    /// A container step failed; the child exits after sending this.
    Failed {
        /// Index of the failed step in the plan.
        step: usize,
        /// What failed.
        error: SysError,
    },
}

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (launcher's end, child's end).
pub fn pair() -> SysResult<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| {
        SysError::new("socketpair", None, e).args("AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC")
    })?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Send one message.
    pub fn send<T: Serialize>(&self, msg: &T) -> SysResult<()> {
        let buf =
            serde_json::to_vec(msg).map_err(|e| SysError::other("send", None, e.to_string()))?;
        loop {
            match send(self.fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SysError::new("send", None, e).args("launch channel")),
            }
        }
    }

    /// Receive one message; `None` when the other end is closed.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> SysResult<Option<T>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SysError::new("recv", None, e).args("launch channel")),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n]).map(Some).map_err(|e| {
            SysError::other(
                "recv",
                None,
                format!("malformed message on the launch channel: {e}"),
            )
        })
    }
}
