//! A small NETLINK_ROUTE client: one request at a time, each acknowledged by the kernel.
//!
//! Hand-written rather than a crate (Cargo.toml says why): the bridge mode needs six message
//! types (links, addresses, one route), and their layout is the kernel's stable ABI.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

use crate::error::{SysError, SysResult};

// The kernel's values (include/uapi/linux/{netlink,rtnetlink,if_link,if_addr}.h).
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const SOL_NETLINK: i32 = 270;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;

pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const RTM_NEWROUTE: u16 = 24;

/// nf_tables: (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN, the `inet` family, and the
/// chain attributes a lookup names.
pub(crate) const NFT_MSG_GETCHAIN: u16 = (10 << 8) | 4;
pub(crate) const NFPROTO_INET: u8 = 1;
pub(crate) const NFTA_CHAIN_TABLE: u16 = 1;
pub(crate) const NFTA_CHAIN_NAME: u16 = 3;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_MASTER: u16 = 10;
pub(crate) const IFLA_LINKINFO: u16 = 18;
pub(crate) const IFLA_NET_NS_FD: u16 = 28;
pub(crate) const IFLA_INFO_KIND: u16 = 1;
pub(crate) const IFLA_INFO_DATA: u16 = 2;
pub(crate) const VETH_INFO_PEER: u16 = 1;
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
pub(crate) const IFA_BROADCAST: u16 = 4;
pub(crate) const RTA_OIF: u16 = 4;
pub(crate) const RTA_GATEWAY: u16 = 5;
pub(crate) const RT_TABLE_MAIN: u8 = 254;
pub(crate) const RTPROT_BOOT: u8 = 3;
pub(crate) const RT_SCOPE_UNIVERSE: u8 = 0;
pub(crate) const RTN_UNICAST: u8 = 1;
pub(crate) const IFF_UP: u32 = 1;

const HDR: usize = 16;

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One request being built: the header, the family's fixed header, then attributes.
pub(crate) struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    /// A request of type `ty` (NLM_F_REQUEST|NLM_F_ACK are added).
    pub(crate) fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; HDR];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    /// struct ifinfomsg.
    pub(crate) fn ifinfo(mut self, index: i32, flags: u32, change: u32) -> Msg {
        self.ifinfo_raw(index, flags, change);
        self
    }

    fn ifinfo_raw(&mut self, index: i32, flags: u32, change: u32) {
        // family AF_UNSPEC, pad, type 0.
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    /// struct nfgenmsg: nf_tables family, version 0, resource id 0.
    pub(crate) fn nfgen(mut self, family: u8) -> Msg {
        self.buf.extend_from_slice(&[family, 0, 0, 0]);
        self
    }

    /// struct ifaddrmsg for IPv4.
    pub(crate) fn ifaddr(mut self, prefix: u8, index: u32) -> Msg {
        self.buf
            .extend_from_slice(&[libc::AF_INET as u8, prefix, 0, RT_SCOPE_UNIVERSE]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self
    }

    /// struct rtmsg for an IPv4 unicast route in the main table.
    pub(crate) fn rtmsg(mut self, dst_len: u8) -> Msg {
        self.buf.extend_from_slice(&[
            libc::AF_INET as u8,
            dst_len,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self
    }

    /// An attribute.
    pub(crate) fn attr(mut self, ty: u16, data: &[u8]) -> Msg {
        self.attr_raw(ty, data);
        self
    }

    fn attr_raw(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
    }

    /// A NUL-terminated string attribute.
    pub(crate) fn attr_str(self, ty: u16, s: &str) -> Msg {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }

    /// A u32 attribute.
    pub(crate) fn attr_u32(self, ty: u16, v: u32) -> Msg {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// Open a nested attribute; [`Msg::end`] closes it.
    pub(crate) fn begin(mut self, ty: u16) -> Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Open VETH_INFO_PEER with the peer's ifinfomsg (VETH_INFO_PEER carries one before its
    /// attributes).
    pub(crate) fn begin_peer(mut self) -> Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&VETH_INFO_PEER.to_ne_bytes());
        self.ifinfo_raw(0, 0, 0);
        self
    }

    /// Close the innermost nested attribute.
    pub(crate) fn end(mut self) -> Msg {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// What a failed request is about, for its [`SysError`]: the op (`RTM_NEWLINK`) and the
/// arguments (interface names, kinds, addresses, and the namespace it ran in).
pub(crate) struct What<'a> {
    pub op: &'a str,
    pub args: String,
}

/// A NETLINK_ROUTE socket bound to one network namespace (the one it was opened in).
pub(crate) struct Socket {
    fd: OwnedFd,
    seq: u32,
}

fn ns_err(ns: &Option<PathBuf>, op: &str, e: Errno) -> SysError {
    SysError::new(op, ns.clone(), e)
}

impl Socket {
    /// A socket in the calling thread's network namespace; `ns` names it in errors (None: the
    /// caller's own).
    pub(crate) fn open(ns: Option<PathBuf>) -> SysResult<Socket> {
        Socket::open_protocol(ns, SockProtocol::NetlinkRoute, "NETLINK_ROUTE")
    }

    /// A NETLINK_NETFILTER socket in the caller's network namespace (nf_tables queries).
    pub(crate) fn open_netfilter() -> SysResult<Socket> {
        Socket::open_protocol(None, SockProtocol::NetlinkNetFilter, "NETLINK_NETFILTER")
    }

    fn open_protocol(ns: Option<PathBuf>, protocol: SockProtocol, name: &str) -> SysResult<Socket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            protocol,
        )
        .map_err(|e| ns_err(&ns, "socket", e).args(format!("AF_NETLINK, SOCK_RAW, {name}")))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| ns_err(&ns, "bind", e).args("AF_NETLINK"))?;
        // Extended acks: the kernel's own words for a refusal ("Unknown device type"), capped
        // so an error does not echo the whole request back.
        for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
            let one: libc::c_int = 1;
            // SAFETY: a valid socket and a c_int that outlives the call. Failure only loses the
            // kernel's message text (kernels before 4.12), so it is ignored.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    SOL_NETLINK,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        Ok(Socket { fd, seq: 0 })
    }

    /// Send one request and wait for its acknowledgement; returns the data messages that came
    /// before it (the reply of a GET), each as (type, payload after the netlink header).
    pub(crate) fn request(&mut self, msg: Msg, what: &What<'_>) -> SysResult<Vec<(u16, Vec<u8>)>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let req = msg.finish(seq);
        // The arguments name the namespace already (`in netns …`).
        let err = |e: Errno| SysError::new(what.op, None, e).args(what.args.clone());
        loop {
            match send(self.fd.as_raw_fd(), &req, MsgFlags::empty()) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(err(e)),
            }
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match recv(self.fd.as_fd().as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(err(e)),
            };
            let mut at = 0;
            while at + HDR <= n {
                let len = u32::from_ne_bytes(word(&buf[at..at + 4])) as usize;
                if len < HDR || at + len > n {
                    return Err(
                        SysError::other(what.op, None, "the kernel's reply is cut short")
                            .args(what.args.clone()),
                    );
                }
                let ty = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                let flags = u16::from_ne_bytes([buf[at + 6], buf[at + 7]]);
                let rseq = u32::from_ne_bytes(word(&buf[at + 8..at + 12]));
                let body = &buf[at + HDR..at + len];
                at += align(len);
                if rseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_ERROR => {
                        let code = body.get(0..4).map_or(0, |b| i32::from_ne_bytes(word(b)));
                        if code == 0 {
                            return Ok(out);
                        }
                        let mut e = err(Errno::from_raw(-code));
                        if let Some(m) = ext_ack_message(body, flags) {
                            e = e.with_detail(m);
                        }
                        return Err(e);
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => out.push((ty, body.to_vec())),
                }
            }
        }
    }
}

fn word(b: &[u8]) -> [u8; 4] {
    let mut w = [0u8; 4];
    for (d, s) in w.iter_mut().zip(b) {
        *d = *s;
    }
    w
}

/// The NLMSGERR_ATTR_MSG string of an extended ack: after the errno and the (capped) header of
/// the request come attributes.
fn ext_ack_message(body: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    // errno (4) + the request's nlmsghdr (16): capped, so no payload follows it.
    attrs(body.get(4 + HDR..)?)
        .find(|(ty, _)| *ty == NLMSGERR_ATTR_MSG)
        .map(|(_, v)| {
            String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string()
        })
}

/// Iterate over the attributes in `buf`: (type without flags, value).
pub(crate) fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at + 4 > buf.len() {
            return None;
        }
        let len = u16::from_ne_bytes([buf[at], buf[at + 1]]) as usize;
        let ty = u16::from_ne_bytes([buf[at + 2], buf[at + 3]]) & 0x3fff;
        if len < 4 || at + len > buf.len() {
            return None;
        }
        let v = &buf[at + 4..at + len];
        at += align(len);
        Some((ty, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length_and_the_nested_flag() {
        let m = Msg::new(RTM_NEWLINK, NLM_F_CREATE)
            .ifinfo(0, 0, 0)
            .attr_str(IFLA_IFNAME, "br")
            .begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end()
            .finish(7);
        assert_eq!(m.len(), 16 + 16 + 8 + 4 + 12);
        assert_eq!(u32::from_ne_bytes(word(&m[0..4])) as usize, m.len());
        let a: Vec<_> = attrs(&m[32..]).collect();
        assert_eq!(a[0], (IFLA_IFNAME, &b"br\0"[..]));
        assert_eq!(a[1].0, IFLA_LINKINFO);
        let inner: Vec<_> = attrs(a[1].1).collect();
        assert_eq!(inner, vec![(IFLA_INFO_KIND, &b"bridge\0"[..])]);
        assert_eq!(
            u16::from_ne_bytes([m[42], m[43]]),
            IFLA_LINKINFO | NLA_F_NESTED
        );
    }
}
