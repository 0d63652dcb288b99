//! The bridge mode's host side (`launch::sys::net`) against the real kernel.
//!
//! Each scenario runs in a child process (this test binary, one test selected) that
//! `unshare(CLONE_NEWNET)`s before exec: that fresh namespace is "the host", and its bridge,
//! veths, sysctls and nftables table die with the child, pass or fail. The machine's own
//! interfaces, routes and firewall are never touched. "Containers" and an "outside" network
//! are further namespaces, held by fds; sockets are opened in them by threads that setns (a
//! thread's network namespace is its own), and the sockets stay there.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use launch::sys::net::alloc::{Allocator, Holder};
use launch::sys::net::firewall::{self, Port, Protocol};
use launch::sys::net::link::{self, Attachment, BridgeState, Netns};
use launch::sys::net::subnet::Subnet;
use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::common::{inside, new_ns};

const CHILD_ENV: &str = "LAUNCH_NET_HOST_CHILD";
const BRIDGE: &str = "launch0";
const TIMEOUT: Duration = Duration::from_secs(5);

/// Run `net_bridge::NAME` in a child process in a network namespace of its own.
fn as_host(name: &str) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &format!("net_bridge::{name}"),
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1");
    // SAFETY: unshare is a plain system call, fine between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Shown by the harness when this test fails or runs with --nocapture.
    eprintln!("{log}");
    assert!(out.status.success() && log.contains("1 passed"), "{log}");
}

/// Whether this process is the namespaced child; the scenarios do nothing otherwise.
/// The namespace starts with loopback down, as a container's does.
fn child() -> bool {
    let yes = std::env::var_os(CHILD_ENV).is_some();
    if yes {
        launch::sys::net::loopback_up().unwrap();
    }
    yes
}

/// A TCP server on `addr` (in `ns`, or here) that answers each connection with the peer
/// address it saw, for `n` connections.
fn peer_echo(ns: Option<&Netns>, addr: &str, n: usize) -> std::thread::JoinHandle<()> {
    let bind = || TcpListener::bind(addr).unwrap();
    let l = match ns {
        Some(ns) => inside(ns, bind),
        None => bind(),
    };
    std::thread::spawn(move || {
        for _ in 0..n {
            let (mut s, peer) = l.accept().unwrap();
            writeln!(s, "{}", peer.ip()).unwrap();
        }
    })
}

/// Connect (from `ns`, or from here) and read the peer address the server saw.
fn seen_by(ns: Option<&Netns>, to: &str) -> String {
    let connect = || {
        let to: SocketAddr = to.parse().unwrap();
        let s = TcpStream::connect_timeout(&to, TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {to}: {e}"));
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s
    };
    let s = match ns {
        Some(ns) => inside(ns, connect),
        None => connect(),
    };
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim().to_string()
}

/// A UDP server on `addr` that answers one datagram with the peer address it saw.
fn udp_peer_echo(ns: Option<&Netns>, addr: &str) -> std::thread::JoinHandle<()> {
    let bind = || UdpSocket::bind(addr).unwrap();
    let s = match ns {
        Some(ns) => inside(ns, bind),
        None => bind(),
    };
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (_, peer) = s.recv_from(&mut buf).unwrap();
        s.send_to(peer.ip().to_string().as_bytes(), peer).unwrap();
    })
}

fn udp_seen_by(ns: Option<&Netns>, to: &str) -> String {
    let bind = || UdpSocket::bind("0.0.0.0:0").unwrap();
    let s = match ns {
        Some(ns) => inside(ns, bind),
        None => bind(),
    };
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.send_to(b"?", to).unwrap();
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A container: its namespace on the bridge, veth `vl-NAME` ↔ `eth0`.
fn container(name: &str, address: Ipv4Addr) -> Netns {
    let ns = new_ns(&format!("container {name}"));
    link::attach(
        &ns,
        &Attachment {
            bridge: BRIDGE.into(),
            host: format!("vl-{name}"),
            peer: "eth0".into(),
            address,
            subnet: Subnet::DEFAULT,
        },
        None,
    )
    .unwrap();
    ns
}

/// The "outside": a namespace behind bridge `up0` (198.51.100.1/24 on the host side,
/// 198.51.100.2 outside, its default route back through the host).
fn outside() -> Netns {
    let net: Subnet = "198.51.100.0/24".parse().unwrap();
    link::ensure_bridge("up0", &net).unwrap();
    let ns = new_ns("outside");
    link::attach(
        &ns,
        &Attachment {
            bridge: "up0".into(),
            host: "up0p".into(),
            peer: "wan0".into(),
            address: Ipv4Addr::new(198, 51, 100, 2),
            subnet: net,
        },
        None,
    )
    .unwrap();
    ns
}

/// The table and the bridge's rules, as a bridge-mode start makes them (once).
fn firewall_for_bridge() -> String {
    firewall::ensure(BRIDGE, Subnet::DEFAULT).unwrap()
}

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 0, last)
}

#[test]
fn container_reaches_the_host_side_over_tcp_and_udp() {
    as_host("host_container_reaches_the_host_side");
}

#[test]
fn host_container_reaches_the_host_side() {
    if !child() {
        return;
    }
    assert_eq!(
        link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap(),
        BridgeState::Created
    );
    // Kept and shared: a second container finds it.
    assert_eq!(
        link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap(),
        BridgeState::Existed
    );
    assert_eq!(link::addresses(BRIDGE).unwrap(), [addr(1)]);
    // A kept bridge whose address and state were taken away gets them back.
    let ip = |args: &[&str]| {
        let st = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    ip(&["addr", "flush", "dev", BRIDGE]);
    ip(&["link", "set", BRIDGE, "down"]);
    assert_eq!(
        link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap(),
        BridgeState::Existed
    );
    assert_eq!(link::addresses(BRIDGE).unwrap(), [addr(1)]);
    let c = container("c1", addr(2));
    assert!(link::link_exists("vl-c1").unwrap());
    assert!(link::link_exists_in(&c, "eth0").unwrap());
    // The peer's name never existed on the host side.
    assert!(!link::link_exists("eth0").unwrap());

    let server = peer_echo(None, "10.88.0.1:7000", 1);
    assert_eq!(seen_by(Some(&c), "10.88.0.1:7000"), "10.88.0.2");
    server.join().unwrap();
    let server = udp_peer_echo(None, "10.88.0.1:7001");
    assert_eq!(udp_seen_by(Some(&c), "10.88.0.1:7001"), "10.88.0.2");
    server.join().unwrap();
    // And the other way: the host side reaches a server in the container.
    let server = peer_echo(Some(&c), "0.0.0.0:80", 1);
    assert_eq!(seen_by(None, "10.88.0.2:80"), "10.88.0.1");
    server.join().unwrap();
    // The host side's routes: the bridge's subnet, nothing of the container's.
    let route = std::fs::read_to_string("/proc/net/route").unwrap();
    assert!(
        route.contains("launch0") && !route.contains("eth0"),
        "{route}"
    );
}

#[test]
fn two_containers_talk_by_address() {
    as_host("host_two_containers_talk");
}

#[test]
fn host_two_containers_talk() {
    if !child() {
        return;
    }
    link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap();
    let a = container("a", addr(2));
    let b = container("b", addr(3));
    let server = peer_echo(Some(&b), "0.0.0.0:9000", 1);
    assert_eq!(seen_by(Some(&a), "10.88.0.3:9000"), "10.88.0.2");
    server.join().unwrap();
}

#[test]
fn masquerade_hides_containers_behind_the_host_side_address() {
    as_host("host_masquerade");
}

#[test]
fn host_masquerade() {
    if !child() {
        return;
    }
    link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap();
    let c = container("c", addr(2));
    let wan = outside();
    // Forwarding in this test's own namespace (per network namespace).
    assert!(!link::enable_ip_forward().unwrap());
    let applied = firewall_for_bridge();
    assert!(applied.contains("ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 masquerade"));
    // Made once: a second start finds it (a netlink lookup) and applies nothing.
    assert_eq!(firewall_for_bridge(), "");
    let server = peer_echo(Some(&wan), "198.51.100.2:7000", 2);
    assert_eq!(seen_by(Some(&c), "198.51.100.2:7000"), "198.51.100.1");
    // Without the rule the outside sees the container's own address: the rule did it.
    assert!(firewall::delete_table().unwrap());
    assert_eq!(seen_by(Some(&c), "198.51.100.2:7000"), "10.88.0.2");
    server.join().unwrap();
}

#[test]
fn published_ports_reach_the_container_from_loopback_and_addresses() {
    as_host("host_published_ports");
}

#[test]
fn host_published_ports() {
    if !child() {
        return;
    }
    link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap();
    link::set_route_localnet(BRIDGE).unwrap();
    let c = container("web", addr(5));
    let wan = outside();
    link::enable_ip_forward().unwrap();
    let tcp = |host_address, host_port| Port {
        protocol: Protocol::Tcp,
        host_address,
        host_port,
        container_port: 80,
    };
    let ports = vec![
        tcp(Ipv4Addr::LOCALHOST, 8080),
        tcp(Ipv4Addr::new(198, 51, 100, 1), 8081),
        tcp(Ipv4Addr::UNSPECIFIED, 8082),
        Port {
            protocol: Protocol::Udp,
            host_address: Ipv4Addr::LOCALHOST,
            host_port: 5353,
            container_port: 53,
        },
    ];
    firewall_for_bridge();
    firewall::publish(&ports, addr(5)).unwrap();
    let table = firewall::list().unwrap().unwrap();
    for element in [
        "127.0.0.1 . 8080 : 10.88.0.5 . 80",
        "198.51.100.1 . 8081 : 10.88.0.5 . 80",
        "8082 : 10.88.0.5 . 80",
        "127.0.0.1 . 5353 : 10.88.0.5 . 53",
    ] {
        assert!(table.contains(element), "{element}\n{table}");
    }
    // A port published already is refused, whoever holds it.
    let again = firewall::publish(&ports[..1], addr(6)).unwrap_err();
    assert!(again.to_string().contains("File exists"), "{again}");
    let server = peer_echo(Some(&c), "0.0.0.0:80", 6);
    // From the host side's own loopback: masqueraded to the bridge's address.
    assert_eq!(seen_by(None, "127.0.0.1:8080"), "10.88.0.1");
    // From the host side's own address, and from outside through it.
    assert_eq!(seen_by(None, "198.51.100.1:8081"), "198.51.100.1");
    assert_eq!(seen_by(Some(&wan), "198.51.100.1:8081"), "198.51.100.2");
    // 0.0.0.0: every address of the host side, loopback included.
    assert_eq!(seen_by(None, "127.0.0.1:8082"), "10.88.0.1");
    assert_eq!(seen_by(Some(&wan), "198.51.100.1:8082"), "198.51.100.2");
    // The loopback-only port is not published to the outside.
    let refused = inside(&wan, || {
        TcpStream::connect_timeout(&"198.51.100.1:8080".parse().unwrap(), TIMEOUT)
    });
    assert!(refused.is_err());
    // Hairpin: another container through the host side's address.
    let other = container("other", addr(6));
    assert_eq!(seen_by(Some(&other), "198.51.100.1:8082"), "10.88.0.1");
    server.join().unwrap();
    let udp = udp_peer_echo(Some(&c), "0.0.0.0:53");
    assert_eq!(udp_seen_by(None, "127.0.0.1:5353"), "10.88.0.1");
    udp.join().unwrap();
}

#[test]
fn removal_leaves_no_link_address_or_rule() {
    as_host("host_removal");
}

#[test]
fn host_removal() {
    if !child() {
        return;
    }
    link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap();
    let dir = scratch("removal");
    let alloc = Allocator::new(&dir, BRIDGE, Subnet::DEFAULT);
    let me = Holder::me().unwrap();
    let a1 = alloc.allocate("gone", me, None).unwrap();
    let a2 = alloc.allocate("stays", me, None).unwrap();
    let gone = container("gone", a1);
    let _stays = container("stays", a2);
    let port = |host_port| Port {
        protocol: Protocol::Tcp,
        host_address: Ipv4Addr::LOCALHOST,
        host_port,
        container_port: 80,
    };
    firewall_for_bridge();
    firewall::publish(&[port(8080)], a1).unwrap();
    firewall::publish(&[port(8081)], a2).unwrap();
    let before = firewall::list().unwrap().unwrap();
    assert!(
        before.contains(&format!("127.0.0.1 . 8080 : {a1} . 80")),
        "{before}"
    );

    firewall::unpublish(&[port(8080)]).unwrap();
    assert!(link::delete_link("vl-gone").unwrap());
    assert!(alloc.release(a1, "gone").unwrap());

    assert!(!link::link_exists("vl-gone").unwrap());
    assert!(!link::link_exists_in(&gone, "eth0").unwrap());
    let table = firewall::list().unwrap().unwrap();
    assert!(!table.contains(&a1.to_string()), "{table}");
    // The other container's port and link, and the kept bridge and rules, are untouched.
    assert!(
        table.contains(&format!("127.0.0.1 . 8081 : {a2} . 80")),
        "{table}"
    );
    assert!(link::link_exists("vl-stays").unwrap());
    assert_eq!(link::addresses(BRIDGE).unwrap(), [addr(1)]);
    assert!(link::addresses("vl-gone").unwrap().is_empty());
    assert_eq!(
        alloc
            .leases()
            .unwrap()
            .iter()
            .map(|l| l.address)
            .collect::<Vec<_>>(),
        [a2]
    );
    // Undoing again finds nothing and succeeds (gc after a partial cleanup).
    assert!(!link::delete_link("vl-gone").unwrap());
    firewall::unpublish(&[port(8080)]).unwrap();
    assert!(firewall::delete_table().unwrap());
    assert!(firewall::list().unwrap().is_none());
    assert!(!firewall::delete_table().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failures_name_the_operation_the_interface_and_the_namespace_and_roll_back() {
    as_host("host_failures");
}

#[test]
fn host_failures() {
    if !child() {
        return;
    }
    let ns = new_ns("container y");
    let a = Attachment {
        bridge: "nobridge".into(),
        host: "vl-x".into(),
        peer: "eth0".into(),
        address: addr(2),
        subnet: Subnet::DEFAULT,
    };
    let e = link::attach(&ns, &a, None).unwrap_err();
    assert_eq!(e.errno(), Errno::ENODEV);
    assert_eq!(
        e.to_string(),
        "RTM_GETLINK(dev \"nobridge\" in the host's netns): No such device (ENODEV)"
    );
    // The pair made before the failure is gone again, both ends.
    assert!(!link::link_exists("vl-x").unwrap());
    assert!(!link::link_exists_in(&ns, "eth0").unwrap());

    link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap();
    let c = container("x", addr(2));
    let e = link::create_veth("vl-x", "eth1", &c, None).unwrap_err();
    assert_eq!(e.errno(), Errno::EEXIST);
    assert_eq!(
        e.to_string(),
        "RTM_NEWLINK(dev \"vl-x\" in the host's netns, type veth, peer \"eth1\" in netns \
         container x): File exists (EEXIST)"
    );
    // A link missing inside the namespace: the error names the namespace.
    let e = link::configure_peer(&c, "eth9", addr(3), &Subnet::DEFAULT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "RTM_GETLINK(dev \"eth9\" in netns container x): No such device (ENODEV)"
    );
    let e = link::ensure_bridge("a-name-too-long-for-linux", &Subnet::DEFAULT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "RTM_NEWLINK(dev \"a-name-too-long-for-linux\" type bridge in the host's netns): \
         an interface name is 1 to 15 bytes, without '/', ':' or whitespace"
    );
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("launch-net-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Processes that hold addresses; killed when dropped.
struct Sleepers(Vec<std::process::Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn allocator_gives_twenty_live_holders_distinct_addresses_and_takes_back_a_dead_ones() {
    let dir = scratch("alloc");
    let net: Subnet = "10.88.0.0/27".parse().unwrap();
    let alloc = Allocator::new(&dir, BRIDGE, net);
    let mut sleepers = Sleepers(
        (0..20)
            .map(|_| Command::new("sleep").arg("60").spawn().unwrap())
            .collect(),
    );
    let holders: Vec<Holder> = sleepers
        .0
        .iter()
        .map(|c| Holder::of_pid(c.id() as i32).unwrap())
        .collect();
    // All at once, each on its own thread with its own lock file description.
    let got: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let hs: Vec<_> = holders
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let alloc = alloc.clone();
                s.spawn(move || alloc.allocate(&format!("c{i}"), *h, None).unwrap())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut distinct = got.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 20, "{got:?}");
    assert!(got.iter().all(|a| net.contains(*a) && *a != net.gateway()));

    // A live holder's address is refused to anyone else.
    let me = Holder::me().unwrap();
    let e = alloc.allocate("thief", me, Some(got[3])).unwrap_err();
    assert_eq!(e.errno(), Errno::EADDRINUSE);
    // Its holder dies: the address comes back, asked for or not.
    sleepers.0[7].kill().unwrap();
    sleepers.0[7].wait().unwrap();
    assert_eq!(alloc.allocate("heir", me, Some(got[7])).unwrap(), got[7]);
    // 29 container addresses in a /27: 9 free, then none, until a holder dies.
    for i in 0..9 {
        alloc.allocate(&format!("fill{i}"), me, None).unwrap();
    }
    let e = alloc.allocate("none", me, None).unwrap_err();
    assert_eq!(e.errno(), Errno::EADDRNOTAVAIL);
    sleepers.0[8].kill().unwrap();
    sleepers.0[8].wait().unwrap();
    assert_eq!(alloc.allocate("last", me, None).unwrap(), got[8]);
    // The state is a plain file: ADDRESS PID START_TIME OWNER.
    let text = std::fs::read_to_string(alloc.path()).unwrap();
    assert_eq!(text.lines().count(), 29);
    assert!(text.contains(&format!("{} {} ", got[7], me.pid)), "{text}");
    drop(sleepers);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_bridge_does_not_open_the_host_sides_loopback_to_containers() {
    as_host("host_localnet_guard");
}

/// route_localnet on the bridge (needed for ports published on 127.0.0.1) would let a
/// container reach the host's loopback-only services by routing 127.0.0.0/8 to the bridge
/// (CVE-2020-8558 in kube-proxy); the guard rule drops that.
#[test]
fn host_localnet_guard() {
    if !child() {
        return;
    }
    link::ensure_bridge(BRIDGE, &Subnet::DEFAULT).unwrap();
    link::set_route_localnet(BRIDGE).unwrap();
    let c = container("c", addr(2));
    // The container (root in its own namespace) sends 127.0.0.2 to the bridge instead of its
    // own loopback, and accepts replies from it.
    inside(&c, || {
        std::fs::write("/proc/sys/net/ipv4/conf/eth0/route_localnet", "1").unwrap();
        for args in [
            "route del local 127.0.0.0/8 dev lo table local",
            "route add 127.0.0.2/32 via 10.88.0.1",
        ] {
            let st = Command::new("ip").args(args.split(' ')).status().unwrap();
            assert!(st.success(), "ip {args}");
        }
    });
    let _server = peer_echo(None, "127.0.0.2:7100", 1);
    let try_connect = || {
        inside(&c, || {
            TcpStream::connect_timeout(&"127.0.0.2:7100".parse().unwrap(), Duration::from_secs(1))
        })
    };
    firewall_for_bridge();
    assert!(try_connect().is_err());
    // Without launch's rules, the hole is real: this is what the guard closes.
    assert!(firewall::delete_table().unwrap());
    assert!(try_connect().is_ok());
}
