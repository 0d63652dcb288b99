//! The typed channel between the launcher and the container process.
//!
//! A SOCK_SEQPACKET socketpair, close-on-exec: the launcher sends `Release` when the host side
//! (id maps, cgroup join) is ready; the child answers only if a step fails. A successful execve
//! closes the child's end, which the launcher reads as end-of-file: "the command is running".

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use serde::{Deserialize, Serialize};

use crate::error::{SysError, SysResult};

/// Launcher → container.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToChild {
    /// An idmapped copy of a store layer, attached as SCM_RIGHTS (HostAction::IdmapLayers),
    /// sent before the release, in the order ContainerAction::AttachLayers lists them.
    Layer,
    /// The host side is ready: go on with the container steps.
    Release,
    /// The container's network is connected: go on past ContainerAction::AwaitNetwork.
    Network,
    /// The container's /proc, made by the launcher (HostAction::PrepareProc), attached as
    /// SCM_RIGHTS, for ContainerAction::AttachProc.
    Proc,
    /// The launcher's kernel cannot make the container's /proc: ContainerAction::AttachProc
    /// mounts and masks it itself.
    NoProc,
}

/// Container → launcher.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToParent {
    /// The pty master of the container's terminal, attached as SCM_RIGHTS.
    Pty,
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
    /// An eventfd both ends share: the launcher's "go" ([`Channel::wake`]) without the socket's
    /// wake-up. A message on a unix socket wakes its reader as a *sync* wake-up, which the
    /// scheduler answers by running the reader on the sender's CPU, behind the sender: right
    /// for a request and its reply, wrong for the release, after which the launcher works
    /// (makes the container's /proc) while the container process sets itself up. An eventfd's
    /// wake-up lets the container process go on where it ran, on another CPU.
    wake: OwnedFd,
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
    // SAFETY: eventfd(2) with flags; returns a new descriptor or -1.
    let r = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if r < 0 {
        return Err(
            SysError::new("eventfd", None, nix::errno::Errno::last()).args("0, EFD_CLOEXEC")
        );
    }
    // SAFETY: eventfd returned a new descriptor that nothing else owns.
    let wake = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) };
    let other = wake
        .try_clone()
        .map_err(|e| SysError::io("fcntl", None, &e).args("F_DUPFD_CLOEXEC, eventfd"))?;
    Ok((Channel { fd: a, wake }, Channel { fd: b, wake: other }))
}

impl Channel {
    /// Wake the other end's [`Channel::await_wake`] (after sending what it should read then).
    pub fn wake(&self) -> SysResult<()> {
        let one = 1u64.to_ne_bytes();
        loop {
            match nix::unistd::write(&self.wake, &one) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SysError::new("write", None, e).args("launch eventfd, 1")),
            }
        }
    }

    /// Wait for the other end's [`Channel::wake`], or for it to hang up (the launcher died):
    /// then the messages are read as usual (end of file, if it hung up).
    pub fn await_wake(&self) {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        loop {
            // The socket with no events: a hang-up still wakes the wait (always reported), a
            // message does not (its wake-up is the sync one this avoids).
            let mut fds = [
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.fd.as_fd(), PollFlags::empty()),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) | Err(_) => return,
            }
        }
    }

    /// Whether the other end is gone (the launcher died): a hang-up is pending, without waiting.
    pub fn peer_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        // POLLHUP is reported whether asked for or not, once the peer has closed.
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
            Ok(_) | Err(_) => false,
        }
    }

    /// Wait until a message or end-of-file can be read: `Ok(true)`; `Ok(false)` when a signal
    /// interrupted the wait (poll(2) is never restarted, whatever SA_RESTART says) or the
    /// timeout passed.
    pub fn wait_ready(&self, timeout: nix::poll::PollTimeout) -> SysResult<bool> {
        use nix::poll::{PollFd, PollFlags, poll};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(SysError::new("poll", None, e).args("launch channel, POLLIN")),
        }
    }

    /// Send one message.
    pub fn send<T: Serialize>(&self, msg: &T) -> SysResult<()> {
        self.send_with(msg, None)
    }

    /// Send one message, with a file descriptor attached (SCM_RIGHTS).
    pub fn send_with<T: Serialize>(&self, msg: &T, fd: Option<RawFd>) -> SysResult<()> {
        let buf =
            serde_json::to_vec(msg).map_err(|e| SysError::other("sendmsg", None, e.to_string()))?;
        let iov = [IoSlice::new(&buf)];
        let fds = fd.map(|f| [f]);
        let cmsg: Vec<ControlMessage> = fds
            .as_ref()
            .map(|f| vec![ControlMessage::ScmRights(f)])
            .unwrap_or_default();
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SysError::new("sendmsg", None, e).args("launch channel")),
            }
        }
    }

    /// Receive one message and the file descriptor attached to it, if any.
    pub fn recv_with<T: for<'de> Deserialize<'de>>(
        &self,
    ) -> SysResult<Option<(T, Option<OwnedFd>)>> {
        // Messages are a step index and an error: small. (A large zeroed buffer costs RSS.)
        let mut buf = vec![0u8; 16 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => {
                    let mut fd = None;
                    for c in m.cmsgs().map_err(|e| SysError::new("recvmsg", None, e))? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                // SAFETY: the kernel just installed this descriptor for us.
                                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (m.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SysError::new("recvmsg", None, e).args("launch channel")),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(|m| Some((m, fd)))
            .map_err(|e| {
                SysError::other(
                    "recvmsg",
                    None,
                    format!("malformed message on the launch channel: {e}"),
                )
            })
    }

    /// Close this end (the other sees end-of-file once every copy is closed).
    pub fn close(self) {}
}
