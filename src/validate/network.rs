//! `[network]` and `[[ports]]`: how the container's network namespace is connected, what it
//! is told about names, and which ports the host publishes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::Cx;
use crate::diag::Problem;
use crate::manifest::{HostPort, Manifest, NetworkMode as M, PortProtocol, Sp};
use crate::spec::{Bridge, Network, NetworkMode, Port, Protocol, Subnet};
use crate::sys::net::subnet::DEFAULT_BRIDGE;

/// The Network part of the Spec. `[namespaces] net` still works (`true` is `none`, `false` is
/// `host`); written beside a `mode` that says otherwise, it is a conflict.
pub(super) fn check(cx: &mut Cx, m: &Manifest) -> Network {
    let n = m.network.as_ref();
    let legacy = m.namespaces.as_ref().and_then(|ns| ns.net.as_ref());
    let written = n.and_then(|n| n.mode.as_ref());
    let mode = match (written, legacy) {
        // `net = true` (a namespace of its own) against `host`, or `net = false` against the rest.
        (Some(w), Some(l)) if (*w.get() == M::Host) == *l.get() => {
            cx.push(
                Problem::new(
                    "launch::network::conflict",
                    l.span(),
                    format!(
                        "`net = {}` contradicts `[network] mode = \"{}\"`",
                        l.get(),
                        mode_name(*w.get())
                    ),
                )
                .label("says the opposite of `[network] mode`")
                .help("remove `net` from `[namespaces]`: `[network] mode` says it all"),
            );
            *w.get()
        }
        (Some(w), _) => *w.get(),
        (None, Some(l)) if !*l.get() => M::Host,
        (None, _) => M::None,
    };
    let facts = cx.host.facts();
    let root = facts.uid == 0;
    let mut out = Network::default();
    let Some(n) = n else {
        out.mode = match mode {
            M::Host => NetworkMode::Host,
            _ => NetworkMode::None,
        };
        out.ports = ports(cx, m, mode);
        return out;
    };
    let only_bridge = |cx: &mut Cx, key: &str, span: std::ops::Range<usize>| {
        if mode != M::Bridge {
            cx.push(
                Problem::new(
                    "launch::network::key",
                    span,
                    format!("`{key}` applies to `mode = \"bridge\"` only"),
                )
                .label(format!("ignored with mode \"{}\"", mode_name(mode)))
                .help(format!("set `mode = \"bridge\"`, or remove `{key}`")),
            );
        }
    };
    for (key, span) in [
        ("bridge", n.bridge.as_ref().map(Sp::span)),
        ("subnet", n.subnet.as_ref().map(Sp::span)),
        ("address", n.address.as_ref().map(Sp::span)),
        ("ip_forward", n.ip_forward.as_ref().map(Sp::span)),
    ] {
        if let Some(span) = span {
            only_bridge(cx, key, span);
        }
    }
    if matches!(mode, M::None) {
        for (key, span) in [
            ("dns", n.dns.as_ref().map(Sp::span)),
            ("dns_search", n.dns_search.as_ref().map(Sp::span)),
            ("hosts", n.hosts.as_ref().map(Sp::span)),
        ] {
            if let Some(span) = span {
                cx.push(
                    Problem::new(
                        "launch::network::key",
                        span,
                        format!("`{key}` with `mode = \"none\"`, which reaches nothing to ask"),
                    )
                    .label("a container with loopback only gets no /etc/resolv.conf or /etc/hosts")
                    .help("choose a mode that connects the container (`bridge`, `pasta`, `slirp`, `host`), or remove the key"),
                );
            }
        }
    }
    out.mode = match mode {
        M::None => NetworkMode::None,
        M::Host => NetworkMode::Host,
        M::Bridge => {
            if !root {
                let span = n.mode.as_ref().map_or(n.span(), Sp::span);
                cx.push(
                    Problem::new(
                        "launch::network::rootless",
                        span,
                        "the bridge mode needs root",
                    )
                    .label("a bridge, veth pairs and firewall rules on the host need CAP_NET_ADMIN there")
                    .help("run launch as root, or use `mode = \"pasta\"` (Debian's `passt`) or `mode = \"slirp\"` (`slirp4netns`)"),
                );
            }
            NetworkMode::Bridge(bridge(cx, n))
        }
        M::Pasta | M::Slirp => {
            let (program, package, found) = match mode {
                M::Pasta => ("pasta", "passt", facts.network.pasta.is_some()),
                _ => (
                    "slirp4netns",
                    "slirp4netns",
                    facts.network.slirp4netns.is_some(),
                ),
            };
            let span = n.mode.as_ref().map_or(n.span(), Sp::span);
            if !found {
                cx.push(
                    Problem::new(
                        "launch::network::helper",
                        span.clone(),
                        format!("`{program}` is not installed"),
                    )
                    .label(format!("mode \"{}\" runs {program}", mode_name(mode)))
                    .help(format!(
                        "install it (`apt-get install {package}`), or use another mode"
                    )),
                );
            } else if root {
                cx.push(
                    Problem::new(
                        "launch::network::helper",
                        span.clone(),
                        format!("`mode = \"{}\"` is a rootless mode", mode_name(mode)),
                    )
                    .label(format!(
                        "{program} drops root and cannot reach a root container's namespace"
                    ))
                    .help("as root, use `mode = \"bridge\"`"),
                );
            } else if !facts.network.tun {
                cx.push(
                    Problem::new(
                        "launch::network::helper",
                        span.clone(),
                        "/dev/net/tun cannot be opened by this user",
                    )
                    .label(format!("{program} makes the container's interface with it"))
                    .help("give it the usual mode: `chmod 0666 /dev/net/tun` (udev's default; opening it grants nothing in the host's network namespace)"),
                );
            }
            if mode == M::Pasta {
                NetworkMode::Pasta
            } else {
                NetworkMode::Slirp
            }
        }
    };
    if let Some(d) = &n.dns {
        out.dns = Some(
            d.iter()
                .filter_map(|a| match a.get().parse::<IpAddr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => {
                        cx.push(
                            Problem::new(
                                "launch::network::address",
                                a.span(),
                                format!("{:?} is not an IP address", a.get()),
                            )
                            .label("a name server is written as an address")
                            .help("write an IPv4 or IPv6 address, like \"1.1.1.1\""),
                        );
                        None
                    }
                })
                .collect(),
        );
    }
    if let Some(d) = &n.dns_search {
        out.dns_search = Some(
            d.iter()
                .filter_map(|s| {
                    let ok = crate::spec::valid_uts_name(s.get()) && !s.get().is_empty();
                    if !ok {
                        cx.push(
                            Problem::new(
                                "launch::network::name",
                                s.span(),
                                format!("{:?} is not a domain name", s.get()),
                            )
                            .label("letters, digits and `-`, in dot-separated labels")
                            .help("write a domain like \"example.internal\""),
                        );
                    }
                    ok.then(|| s.get().clone())
                })
                .collect(),
        );
    }
    if let Some(h) = &n.hosts {
        let mut hosts = BTreeMap::new();
        for (name, addr) in h.get() {
            if name.is_empty() || !crate::spec::valid_uts_name(name) {
                cx.push(
                    Problem::new(
                        "launch::network::name",
                        addr.span(),
                        format!("{name:?} is not a host name"),
                    )
                    .label(format!("the entry of {name:?}"))
                    .help("letters, digits and `-`, in dot-separated labels"),
                );
                continue;
            }
            match addr.get().parse::<IpAddr>() {
                Ok(ip) => {
                    hosts.insert(name.clone(), ip);
                }
                Err(_) => cx.push(
                    Problem::new(
                        "launch::network::address",
                        addr.span(),
                        format!("{:?} is not an IP address", addr.get()),
                    )
                    .label(format!("the address of {name:?}"))
                    .help("write an IPv4 or IPv6 address, like \"10.88.0.7\""),
                ),
            }
        }
        out.hosts = hosts;
    }
    out.ports = ports(cx, m, mode);
    out
}

fn mode_name(m: M) -> &'static str {
    match m {
        M::None => "none",
        M::Host => "host",
        M::Bridge => "bridge",
        M::Pasta => "pasta",
        M::Slirp => "slirp",
    }
}

/// The bridge, its subnet and the container's fixed address, if any.
fn bridge(cx: &mut Cx, n: &crate::manifest::Network) -> Bridge {
    let name = match &n.bridge {
        Some(b) => {
            let v = b.get();
            let ok = !v.is_empty()
                && v.len() <= 15
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                cx.push(
                    Problem::new(
                        "launch::network::bridge",
                        b.span(),
                        format!("{v:?} cannot name an interface"),
                    )
                    .label("1 to 15 letters, digits, `-`, `_` or `.`")
                    .help("choose a short name like \"launch1\""),
                );
            }
            v.clone()
        }
        None => DEFAULT_BRIDGE.to_string(),
    };
    let subnet = match &n.subnet {
        Some(s) => match s.get().parse::<Subnet>() {
            Ok(net) => net,
            Err(e) => {
                cx.push(
                    Problem::new(
                        "launch::network::subnet",
                        s.span(),
                        format!("not a subnet: {e}"),
                    )
                    .label("ADDRESS/PREFIX, prefix 8 to 30, host bits zero")
                    .help("write a private subnet like \"10.89.0.0/24\""),
                );
                Subnet::DEFAULT
            }
        },
        None => Subnet::DEFAULT,
    };
    let address = n.address.as_ref().and_then(|a| {
        let problem = match a.get().parse::<Ipv4Addr>() {
            Err(_) => format!("{:?} is not an IPv4 address", a.get()),
            Ok(ip) if !subnet.contains(ip) => format!("{ip} is outside the subnet {subnet}"),
            Ok(ip) if !subnet.container_addresses().any(|c| c == ip) => {
                format!("{ip} is the subnet's network, gateway or broadcast address")
            }
            Ok(ip) => return Some(ip),
        };
        cx.push(
            Problem::new("launch::network::address", a.span(), problem)
                .label("the container's address on the bridge")
                .help(format!(
                    "choose an address in {subnet} from {} up, or remove `address` for the lowest free one",
                    Ipv4Addr::from(u32::from(subnet.gateway()) + 1)
                )),
        );
        None
    });
    Bridge {
        bridge: name,
        subnet,
        address,
        ip_forward: n.ip_forward.as_ref().is_some_and(|f| *f.get()),
    }
}

/// `[[ports]]`: each a port the host publishes; none may be published twice.
fn ports(cx: &mut Cx, m: &Manifest, mode: M) -> Vec<Port> {
    let mut out: Vec<(Port, std::ops::Range<usize>)> = Vec::new();
    for p in &m.ports {
        if matches!(mode, M::None | M::Host) {
            cx.push(
                Problem::new(
                    "launch::network::ports",
                    p.span(),
                    format!("a published port with `mode = \"{}\"`", mode_name(mode)),
                )
                .label(match mode {
                    M::Host => "the container's own sockets are the host's already",
                    _ => "nothing outside the container reaches it",
                })
                .help("set `[network] mode = \"bridge\"` (root) or `\"pasta\"` (rootless), or remove the port"),
            );
            continue;
        }
        if mode == M::Slirp {
            cx.push(
                Problem::new(
                    "launch::network::ports",
                    p.span(),
                    "a published port with `mode = \"slirp\"`",
                )
                .label("launch publishes ports through pasta, not slirp4netns")
                .help("use `mode = \"pasta\"` (Debian's `passt`) to publish ports rootless"),
            );
            continue;
        }
        let in_range = |cx: &mut Cx, v: i64, span: std::ops::Range<usize>, what: &str| {
            match u16::try_from(v) {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    cx.push(
                        Problem::new(
                            "launch::network::port",
                            span,
                            format!("{v} is not a port number"),
                        )
                        .label(format!("the {what} port"))
                        .help("a port is 1 to 65535"),
                    );
                    None
                }
            }
        };
        let host = match p.host.get() {
            HostPort::Port(n) => {
                in_range(cx, *n, p.host.span(), "host").map(|n| (Ipv4Addr::LOCALHOST, n))
            }
            HostPort::Address(s) => {
                let parsed = s
                    .rsplit_once(':')
                    .and_then(|(a, n)| Some((a.parse::<Ipv4Addr>().ok()?, n.parse::<u16>().ok()?)));
                match parsed {
                    Some((a, n)) if n > 0 => Some((a, n)),
                    _ => {
                        cx.push(
                            Problem::new(
                                "launch::network::port",
                                p.host.span(),
                                format!("{s:?} is not IPV4-ADDRESS:PORT"),
                            )
                            .label("the host's address and port")
                            .help("write \"127.0.0.1:8080\" (the host itself), \"0.0.0.0:8080\" (every address), or just 8080"),
                        );
                        None
                    }
                }
            }
        };
        let container = in_range(cx, *p.container.get(), p.container.span(), "container's");
        let protocol = match p.protocol.as_ref().map(|x| *x.get()) {
            None | Some(PortProtocol::Tcp) => Protocol::Tcp,
            Some(PortProtocol::Udp) => Protocol::Udp,
        };
        let (Some((host_address, host_port)), Some(container_port)) = (host, container) else {
            continue;
        };
        let port = Port {
            protocol,
            host_address,
            host_port,
            container_port,
        };
        let clash = out.iter().find(|(q, _)| {
            q.protocol == port.protocol
                && q.host_port == port.host_port
                && (q.host_address == port.host_address
                    || q.host_address.is_unspecified()
                    || port.host_address.is_unspecified())
        });
        if let Some((q, _)) = clash {
            cx.push(
                Problem::new(
                    "launch::network::ports",
                    p.host.span(),
                    format!(
                        "{}:{}/{} is published twice",
                        port.host_address,
                        port.host_port,
                        port.protocol.nft()
                    ),
                )
                .label(format!("already published as {q}"))
                .help("publish each host port once; change one of them"),
            );
            continue;
        }
        out.push((port, p.span()));
    }
    out.into_iter().map(|(p, _)| p).collect()
}
