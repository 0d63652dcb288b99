//! Links, addresses and routes through NETLINK_ROUTE: the bridge (created once and kept, like
//! the cgroup parent), a veth pair per container with its peer made directly in the container's
//! network namespace, and the peer's address, loopback and default route set from a netlink
//! socket opened inside that namespace.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;

use super::netlink::{self as nl, Msg, Socket, What};
use super::subnet::Subnet;
use crate::error::{SysError, SysResult};

/// A network namespace, held open by a file descriptor.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    path: PathBuf,
}

impl Netns {
    /// The network namespace of process `pid` (/proc/PID/ns/net).
    pub fn of_pid(pid: i32) -> SysResult<Netns> {
        Netns::open(Path::new(&format!("/proc/{pid}/ns/net")))
    }

    /// A namespace file: /proc/PID/ns/net, or one bound under /run/netns.
    pub fn open(path: &Path) -> SysResult<Netns> {
        let f = std::fs::File::open(path).map_err(|e| {
            SysError::io("open", Some(path.to_path_buf()), &e).args("O_RDONLY|O_CLOEXEC")
        })?;
        Ok(Netns {
            fd: f.into(),
            path: path.to_path_buf(),
        })
    }

    /// A namespace fd the caller already holds; `label` names it in errors.
    pub fn from_fd(fd: OwnedFd, label: impl Into<PathBuf>) -> Netns {
        Netns {
            fd,
            path: label.into(),
        }
    }

    /// The path (or label) that names it in errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A netlink socket inside this namespace: opened by a thread that joined it (setns on a
    /// thread changes only that thread), so the caller's own namespace is never left.
    fn socket(&self) -> SysResult<Socket> {
        let path = self.path.clone();
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
                    SysError::new("setns", Some(path.clone()), e).args("CLONE_NEWNET")
                })?;
                Socket::open(Some(path.clone()))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(SysError::other(
                    "setns",
                    Some(path.clone()),
                    "the thread that joins the namespace panicked",
                ))
            })
        })
    }
}

/// Refuse a name the kernel would (IFNAMSIZ and dev_valid_name), before asking it: its own
/// answer to a long name is a bare ERANGE.
fn check_name(name: &str, op: &str, args: impl FnOnce() -> String) -> SysResult<()> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(SysError::other(
            op,
            None,
            "an interface name is 1 to 15 bytes, without '/', ':' or whitespace",
        )
        .args(args()))
    }
}

fn host() -> SysResult<Socket> {
    Socket::open(None)
}

fn in_ns(ns: &Option<&Netns>) -> String {
    match ns {
        Some(n) => format!("in netns {}", n.path.display()),
        None => "in the host's netns".to_string(),
    }
}

/// The index of link `name`, or None when there is no such link.
fn index_of(sock: &mut Socket, name: &str, ns: Option<&Netns>) -> SysResult<Option<i32>> {
    Ok(link_of(sock, name, ns)?.map(|l| l.index))
}

/// The index and kind (`IFLA_INFO_KIND`: "bridge", "veth"...; None for a physical device) of
/// link `name`, or None when there is no such link.
/// What RTM_GETLINK tells of a link.
struct LinkInfo {
    index: i32,
    kind: Option<String>,
    up: bool,
}

fn link_of(sock: &mut Socket, name: &str, ns: Option<&Netns>) -> SysResult<Option<LinkInfo>> {
    let what = What {
        op: "RTM_GETLINK",
        args: format!("dev {name:?} {}", in_ns(&ns)),
    };
    let msg = Msg::new(nl::RTM_GETLINK, 0)
        .ifinfo(0, 0, 0)
        .attr_str(nl::IFLA_IFNAME, name);
    match sock.request(msg, &what) {
        Ok(replies) => Ok(replies
            .iter()
            .find(|(ty, b)| *ty == nl::RTM_NEWLINK && b.len() >= 16)
            .map(|(_, b)| {
                let index = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
                let flags = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                let kind = nl::attrs(&b[16..])
                    .find(|(t, _)| *t == nl::IFLA_LINKINFO)
                    .and_then(|(_, info)| nl::attrs(info).find(|(t, _)| *t == nl::IFLA_INFO_KIND))
                    .map(|(_, k)| {
                        String::from_utf8_lossy(k)
                            .trim_end_matches('\0')
                            .to_string()
                    });
                LinkInfo {
                    index,
                    kind,
                    up: flags & nl::IFF_UP != 0,
                }
            })),
        Err(e) if e.errno() == Errno::ENODEV => Ok(None),
        Err(e) => Err(e),
    }
}

fn need_index(sock: &mut Socket, name: &str, ns: Option<&Netns>) -> SysResult<i32> {
    index_of(sock, name, ns)?.ok_or_else(|| {
        SysError::new("RTM_GETLINK", None, Errno::ENODEV)
            .args(format!("dev {name:?} {}", in_ns(&ns)))
    })
}

/// Whether link `name` exists in the caller's network namespace.
pub fn link_exists(name: &str) -> SysResult<bool> {
    Ok(index_of(&mut host()?, name, None)?.is_some())
}

/// Whether link `name` exists in namespace `ns`.
pub fn link_exists_in(ns: &Netns, name: &str) -> SysResult<bool> {
    Ok(index_of(&mut ns.socket()?, name, Some(ns))?.is_some())
}

fn set_up(sock: &mut Socket, index: i32, name: &str, ns: Option<&Netns>) -> SysResult<()> {
    let what = What {
        op: "RTM_NEWLINK",
        args: format!("dev {name:?} up {}", in_ns(&ns)),
    };
    let msg = Msg::new(nl::RTM_NEWLINK, 0).ifinfo(index, nl::IFF_UP, nl::IFF_UP);
    sock.request(msg, &what).map(drop)
}

fn add_address(
    sock: &mut Socket,
    index: i32,
    name: &str,
    addr: Ipv4Addr,
    subnet: &Subnet,
    ns: Option<&Netns>,
) -> SysResult<()> {
    let what = What {
        op: "RTM_NEWADDR",
        args: format!("{addr}/{} dev {name:?} {}", subnet.prefix(), in_ns(&ns)),
    };
    // NLM_F_REPLACE: the same address again is no error (a bridge that is kept).
    let msg = Msg::new(nl::RTM_NEWADDR, nl::NLM_F_CREATE | nl::NLM_F_REPLACE)
        .ifaddr(subnet.prefix(), index as u32)
        .attr(nl::IFA_LOCAL, &addr.octets())
        .attr(nl::IFA_ADDRESS, &addr.octets())
        .attr(nl::IFA_BROADCAST, &subnet.broadcast().octets());
    sock.request(msg, &what).map(drop)
}

/// What [`ensure_bridge`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeState {
    /// The bridge was made now.
    Created,
    /// It was there already (its address and state were made sure of).
    Existed,
}

/// Make bridge `name` if it is missing, give it the subnet's gateway address and bring it up.
/// A bridge that exists is kept and only completed: it is shared by every container on it.
pub fn ensure_bridge(name: &str, subnet: &Subnet) -> SysResult<BridgeState> {
    ensure_bridge_index(name, subnet).map(|(_, state)| state)
}

/// [`ensure_bridge`], and the bridge's index (for [`attach`], which then needs no lookup).
pub fn ensure_bridge_index(name: &str, subnet: &Subnet) -> SysResult<(i32, BridgeState)> {
    check_name(name, "RTM_NEWLINK", || {
        format!("dev {name:?} type bridge {}", in_ns(&None))
    })?;
    let mut sock = host()?;
    let (index, up, state) = match link_of(&mut sock, name, None)? {
        Some(l) => (
            bridge_only(name, l.index, l.kind)?,
            l.up,
            BridgeState::Existed,
        ),
        None => {
            let what = What {
                op: "RTM_NEWLINK",
                args: format!("dev {name:?} type bridge {}", in_ns(&None)),
            };
            let msg = Msg::new(nl::RTM_NEWLINK, nl::NLM_F_CREATE | nl::NLM_F_EXCL)
                .ifinfo(0, 0, 0)
                .attr_str(nl::IFLA_IFNAME, name)
                .begin(nl::IFLA_LINKINFO)
                .attr_str(nl::IFLA_INFO_KIND, "bridge")
                .end();
            match sock.request(msg, &what) {
                Ok(_) => {}
                // Another launcher made it in between: it is the same bridge.
                Err(e) if e.errno() == Errno::EEXIST => {}
                Err(e) => return Err(e),
            }
            let l = link_of(&mut sock, name, None)?.ok_or_else(|| {
                SysError::new("RTM_GETLINK", None, Errno::ENODEV)
                    .args(format!("dev {name:?} {}", in_ns(&None)))
            })?;
            (
                bridge_only(name, l.index, l.kind)?,
                l.up,
                BridgeState::Created,
            )
        }
    };
    // A kept bridge normally has its address and is up: then nothing is written (an address
    // dump needs no rtnl lock on recent kernels; a write always takes it).
    let gw = subnet.gateway();
    if state == BridgeState::Created
        || !addresses_of(&mut sock, index, name)?.contains(&(gw, subnet.prefix()))
    {
        add_address(&mut sock, index, name, gw, subnet, None)?;
    }
    if !up {
        set_up(&mut sock, index, name, None)?;
    }
    Ok((index, state))
}

/// `index` if the link of that name is a bridge. Any other link (someone's veth, a physical
/// device) is not launch's to complete: giving it the gateway's address, bringing it up and
/// turning on its `route_localnet` (all kept) would change an interface launch does not own,
/// and `route_localnet` on an outside interface lets other machines reach the host's
/// loopback-only services.
fn bridge_only(name: &str, index: i32, kind: Option<String>) -> SysResult<i32> {
    if kind.as_deref() == Some("bridge") {
        return Ok(index);
    }
    let kind = kind.map_or(
        "a device without a link kind (physical?)".to_string(),
        |k| format!("kind {k}"),
    );
    Err(SysError::new("RTM_NEWLINK", None, Errno::EEXIST)
        .args(format!("dev {name:?} type bridge {}", in_ns(&None)))
        .with_detail(format!(
            "a link of that name exists and is not a bridge ({kind}): launch leaves it alone; \
             choose another `bridge` name"
        )))
}

/// The host end of instance `NAME-ID`'s veth: `vl-ID` (an interface name has at most 15
/// bytes; the id is what is unique).
pub fn veth_name(instance: &str) -> String {
    format!("vl-{}", instance.rsplit('-').next().unwrap_or(instance))
}

/// One container's end of the bridge: a veth pair, `host` on the bridge, `peer` in the
/// container's namespace with `address` and a default route via the bridge's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The bridge.
    pub bridge: String,
    /// The veth end that stays on the host (at most 15 bytes).
    pub host: String,
    /// The end in the container, named there (usually `eth0`).
    pub peer: String,
    /// The container's address in the bridge's subnet.
    pub address: Ipv4Addr,
    /// The bridge's subnet (its gateway is the bridge's address).
    pub subnet: Subnet,
}

/// Create the veth pair `host_end` ↔ `peer`, the peer directly in `ns`. With `master` (a
/// bridge's index), in the same request: the host end on that bridge and up (the kernel applies
/// IFLA_MASTER and the flags once the pair is registered), one rtnl round trip instead of four.
/// The peer cannot come up in that request (veth refuses to open an end whose pair is not yet
/// linked: ENOTCONN): [`configure_peer`] brings it up.
pub fn create_veth(host_end: &str, peer: &str, ns: &Netns, master: Option<i32>) -> SysResult<()> {
    let what = What {
        op: "RTM_NEWLINK",
        args: format!(
            "dev {host_end:?} {}, type veth, peer {peer:?} in netns {}{}",
            in_ns(&None),
            ns.path.display(),
            master.map_or(String::new(), |m| format!(", master ifindex {m}, up"))
        ),
    };
    check_name(host_end, what.op, || what.args.clone())?;
    check_name(peer, what.op, || what.args.clone())?;
    let up = if master.is_some() { nl::IFF_UP } else { 0 };
    let mut msg = Msg::new(nl::RTM_NEWLINK, nl::NLM_F_CREATE | nl::NLM_F_EXCL)
        .ifinfo(0, up, up)
        .attr_str(nl::IFLA_IFNAME, host_end);
    if let Some(m) = master {
        msg = msg.attr_u32(nl::IFLA_MASTER, m as u32);
    }
    let msg = msg
        .begin(nl::IFLA_LINKINFO)
        .attr_str(nl::IFLA_INFO_KIND, "veth")
        .begin(nl::IFLA_INFO_DATA)
        .begin_peer()
        .attr_str(nl::IFLA_IFNAME, peer)
        .attr_u32(nl::IFLA_NET_NS_FD, ns.fd.as_raw_fd() as u32)
        .end()
        .end()
        .end();
    host()?.request(msg, &what).map(drop)
}

/// Inside `ns`: loopback up, `peer` with `address/prefix` and up, and a default route via the
/// subnet's gateway.
pub fn configure_peer(ns: &Netns, peer: &str, address: Ipv4Addr, subnet: &Subnet) -> SysResult<()> {
    let mut sock = ns.socket()?;
    // Loopback is ifindex 1 in every network namespace (LOOPBACK_IFINDEX): no lookup.
    set_up(&mut sock, 1, "lo", Some(ns))?;
    let index = need_index(&mut sock, peer, Some(ns))?;
    add_address(&mut sock, index, peer, address, subnet, Some(ns))?;
    set_up(&mut sock, index, peer, Some(ns))?;
    let gw = subnet.gateway();
    let what = What {
        op: "RTM_NEWROUTE",
        args: format!("default via {gw} dev {peer:?} {}", in_ns(&Some(ns))),
    };
    let msg = Msg::new(nl::RTM_NEWROUTE, nl::NLM_F_CREATE | nl::NLM_F_EXCL)
        .rtmsg(0)
        .attr(nl::RTA_GATEWAY, &gw.octets())
        .attr_u32(nl::RTA_OIF, index as u32);
    sock.request(msg, &what).map(drop)
}

/// The whole attachment: [`create_veth`] on the bridge and up, then [`configure_peer`]. On
/// failure after the pair exists, the host end is deleted again (which deletes its peer).
/// `bridge_index`: the bridge's index when the caller knows it (it made sure of the bridge in
/// this run); looked up otherwise.
pub fn attach(ns: &Netns, a: &Attachment, bridge_index: Option<i32>) -> SysResult<()> {
    let br = match bridge_index {
        Some(i) => i,
        None => need_index(&mut host()?, &a.bridge, None)?,
    };
    create_veth(&a.host, &a.peer, ns, Some(br))?;
    if let Err(mut e) = configure_peer(ns, &a.peer, a.address, &a.subnet) {
        if let Err(u) = delete_link(&a.host) {
            let note = format!("and deleting {:?} again failed: {u}", a.host);
            e.detail = Some(match e.detail.take() {
                Some(d) => format!("{d}; {note}"),
                None => note,
            });
        }
        return Err(e);
    }
    Ok(())
}

/// Delete host link `name` (a veth's host end takes its peer with it). Returns false when it
/// was already gone: an undo that finds nothing to do has succeeded.
pub fn delete_link(name: &str) -> SysResult<bool> {
    let what = What {
        op: "RTM_DELLINK",
        args: format!("dev {name:?} {}", in_ns(&None)),
    };
    let msg = Msg::new(nl::RTM_DELLINK, 0)
        .ifinfo(0, 0, 0)
        .attr_str(nl::IFLA_IFNAME, name);
    match host()?.request(msg, &what) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Errno::ENODEV => Ok(false),
        Err(e) => Err(e),
    }
}

/// The IPv4 addresses on host link `name` (empty when it has none or does not exist).
pub fn addresses(name: &str) -> SysResult<Vec<Ipv4Addr>> {
    let mut sock = host()?;
    let Some(index) = index_of(&mut sock, name, None)? else {
        return Ok(Vec::new());
    };
    Ok(addresses_of(&mut sock, index, name)?
        .into_iter()
        .map(|(a, _)| a)
        .collect())
}

/// The IPv4 addresses, with their prefix lengths, on the host link at `index`.
fn addresses_of(sock: &mut Socket, index: i32, name: &str) -> SysResult<Vec<(Ipv4Addr, u8)>> {
    let what = What {
        op: "RTM_GETADDR",
        args: format!("dev {name:?} {}", in_ns(&None)),
    };
    let msg = Msg::new(nl::RTM_GETADDR, libc::NLM_F_DUMP as u16).ifaddr(0, 0);
    let mut out = Vec::new();
    for (ty, body) in sock.request(msg, &what)? {
        if ty != nl::RTM_NEWADDR || body.len() < 8 || body[0] != libc::AF_INET as u8 {
            continue;
        }
        if u32::from_ne_bytes([body[4], body[5], body[6], body[7]]) != index as u32 {
            continue;
        }
        let prefix = body[1];
        for (t, v) in nl::attrs(&body[8..]) {
            if t == nl::IFA_LOCAL && v.len() == 4 {
                out.push((Ipv4Addr::new(v[0], v[1], v[2], v[3]), prefix));
            }
        }
    }
    Ok(out)
}

/// Write a sysctl under /proc/sys/net of the caller's network namespace.
fn sysctl(path: &str, value: &str) -> SysResult<String> {
    let p = PathBuf::from(format!("/proc/sys/net/{path}"));
    let old = std::fs::read_to_string(&p)
        .map_err(|e| SysError::io("read", Some(p.clone()), &e))?
        .trim()
        .to_string();
    // Most starts find it set already: no write.
    if old == value {
        return Ok(old);
    }
    std::fs::write(&p, value)
        .map_err(|e| SysError::io("write", Some(p.clone()), &e).args(value))?;
    Ok(old)
}

/// net.ipv4.conf.BRIDGE.route_localnet = 1: lets traffic to a published port on 127.0.0.1,
/// DNAT'd to a container, leave through the bridge and its replies come back (docs/network.md).
pub fn set_route_localnet(bridge: &str) -> SysResult<()> {
    sysctl(&format!("ipv4/conf/{bridge}/route_localnet"), "1").map(drop)
}

/// net.ipv4.ip_forward = 1, only when the manifest asks (it affects every interface). Returns
/// the value it had.
pub fn enable_ip_forward() -> SysResult<bool> {
    Ok(sysctl("ipv4/ip_forward", "1")? == "1")
}
