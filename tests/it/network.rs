//! Issue 14's proof for the root bridge mode, end to end: real `launch run`s against the real
//! kernel, their traffic, their files, their leftovers.
//!
//! Each scenario runs in a child process (this test binary, one test selected) that unshares
//! its network namespace (and a mount namespace with private propagation) before exec: that
//! namespace is "the host side". `launch` started from there inherits it, so its bridge,
//! veths, sysctls and nftables table live and die there; the machine's own interfaces, routes
//! and firewall are never touched, and the mounts a scenario makes never reach the machine.
//! Servers on the host side are threads of the child; an "outside" network
//! (198.51.100.0/24, behind bridge `up0`) is a further namespace held by an fd. Containers use
//! the host's /usr (`rootfs host = true`): bash's /dev/tcp and /dev/udp are their clients,
//! python3 their servers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use launch::sys::net::link::{self, Attachment, Netns};
use launch::sys::net::subnet::Subnet;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;

use crate::common::{inside, new_ns};
use crate::fixtures::*;

const CHILD_ENV: &str = "LAUNCH_NETWORK_HOST_CHILD";
/// How long a client waits for a connection or an answer.
const WAIT: Duration = Duration::from_secs(5);
/// The container's servers: the host's python3 (Debian's python3-minimal).
const PYTHON: &str = "/usr/bin/python3";

// --- the host side: a network namespace of the test's own ---------------------------------------

/// Run `network::NAME` in a child process in a network namespace (and a private mount
/// namespace) of its own; fail with its output unless that one test passed.
fn as_host(name: &str) {
    need_root();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &format!("network::{name}"),
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: unshare and mount are plain system calls, fine between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let e = std::io::Error::from;
            nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).map_err(e)?;
            // Mounts made here (read-only sysctls, a small tmpfs) stay here, and other tests'
            // mounts do not come in.
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(e)
        });
    }
    let out = finish(
        cmd.spawn().unwrap(),
        format!("network::{name} as the host side"),
    );
    // Shown by the harness when this test fails or runs with --nocapture.
    eprintln!("{}{}", out.stdout, out.stderr);
    assert!(
        out.status.success() && out.stdout.contains("1 passed"),
        "{out}"
    );
}

/// Whether this process is the namespaced child; the scenarios do nothing otherwise. Its
/// loopback starts down, as a new namespace's does.
fn child() -> bool {
    let yes = std::env::var_os(CHILD_ENV).is_some();
    if yes {
        ip("link set lo up");
    }
    yes
}

/// `ip ARGS` in this process's network namespace, or its stderr.
fn try_ip(args: &str) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .unwrap_or_else(|e| panic!("ip {args}: {e} (Debian's iproute2)"));
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

#[track_caller]
fn ip(args: &str) -> String {
    try_ip(args).unwrap_or_else(|e| panic!("ip {args}: {e}"))
}

/// `nft` with `script` on its stdin.
#[track_caller]
fn nft(args: &[&str], script: &str) -> String {
    let mut c = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nft (Debian's nftables)");
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The interfaces of this network namespace (/proc/net is the reader's namespace; sysfs's
/// /sys/class/net would be the machine's).
fn links() -> Vec<String> {
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    dev.lines()
        .skip(2)
        .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
        .collect()
}

/// The host ends of containers' veths (`vl-ID`).
fn veths() -> Vec<String> {
    links()
        .into_iter()
        .filter(|l| l.starts_with("vl-"))
        .collect()
}

/// Every element of launch's port maps in this namespace, as `MAP: KEY : ADDRESS . PORT`.
fn port_elements() -> Vec<String> {
    // No table: no elements.
    let out = Command::new("nft")
        .args(["list", "table", "inet", "launch"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut v = Vec::new();
    let mut map = String::new();
    let mut inside = false;
    let mut text = String::new();
    for l in table.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("map ") {
            map = rest.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(rest) = l.strip_prefix("elements = {") {
            inside = true;
            text = rest.to_string();
        } else if inside {
            text.push(' ');
            text.push_str(l);
        }
        if inside && text.contains('}') {
            inside = false;
            for e in text.trim_end_matches('}').split(',') {
                let e = e.trim();
                if !e.is_empty() {
                    v.push(format!("{map}: {e}"));
                }
            }
            text.clear();
        }
    }
    v
}

/// The port elements that map to `address`.
fn elements_to(address: &str) -> Vec<String> {
    port_elements()
        .into_iter()
        .filter(|e| e.contains(&format!(": {address} . ")))
        .collect()
}

/// The leased address of `instance` in the sandbox's lease file of bridge launch0.
fn address_of(sb: &Sandbox, instance: &str) -> String {
    leases(sb, "launch0")
        .iter()
        .find(|l| l.ends_with(&format!(" {instance}")))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no lease of {instance}"))
        .to_string()
}

/// A sysctl of this network namespace.
fn sysctl(path: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/net/{path}"))
        .unwrap()
        .trim()
        .to_string()
}

/// A lease file or its lock in the state root (the bridges' allocators keep them).
fn is_lease_file(name: &str) -> bool {
    name.ends_with(".leases") || name.ends_with(".lock")
}

/// The lease lines of `bridge` in the sandbox's state root: `ADDRESS PID START_TIME OWNER`.
fn leases(sb: &Sandbox, bridge: &str) -> Vec<String> {
    std::fs::read_to_string(sb.state.join(format!("{bridge}.leases")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The instance directories in the state root.
fn instances(sb: &Sandbox) -> Vec<String> {
    sb.state_entries()
        .into_iter()
        .filter(|e| !is_lease_file(e))
        .collect()
}

/// The host end of an instance's veth.
fn veth_of(instance: &str) -> String {
    format!("vl-{}", instance.rsplit('-').next().unwrap())
}

/// Nothing of the sandbox's containers is left: the same mounts, no process, no container
/// cgroup, no instance directory, no lease (the lease files may stay, empty), no `vl-` link,
/// no rule tagged by launch.
#[track_caller]
fn assert_net_clean(sb: &Sandbox, host: &Host, cg: Option<&Cgroups>, out: &dyn fmt::Display) {
    assert_mounts(&host.mounts, out);
    assert_no_processes(sb.dir.to_str().unwrap(), out);
    if let Some(cg) = cg {
        cg.assert_empty(out);
    }
    assert_eq!(
        instances(sb),
        Vec::<String>::new(),
        "instance directories left in the state root\n{out}"
    );
    for f in sb.state_entries() {
        if let Some(bridge) = f.strip_suffix(".leases") {
            let left = leases(sb, bridge);
            assert!(left.is_empty(), "leases left on {bridge}: {left:?}\n{out}");
        }
    }
    // A veth goes with its container's network namespace, which the kernel tears down
    // asynchronously once the container is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !veths().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(veths(), Vec::<String>::new(), "veths left\n{out}");
    assert_eq!(
        port_elements(),
        Vec::<String>::new(),
        "published ports left\n{out}"
    );
}

/// The "outside": a namespace behind bridge `up0` (198.51.100.1/24 is the host side's
/// address there, 198.51.100.2 the outside's, whose default route goes back through the
/// host side). Scaffolding, made with launch's link module as net_bridge.rs tests it.
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

// --- servers and clients ------------------------------------------------------------------------

/// A TCP server bound now on `addr` (in `ns`, or here) that reads a line from each of `n`
/// connections and answers with the peer address it saw.
fn tcp_server(ns: Option<&Netns>, addr: &str, n: usize) -> JoinHandle<()> {
    let bind = || TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let l = match ns {
        Some(ns) => inside(ns, bind),
        None => bind(),
    };
    std::thread::spawn(move || {
        for _ in 0..n {
            let (s, peer) = l.accept().unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut line = String::new();
            let mut r = BufReader::new(s);
            r.read_line(&mut line).unwrap();
            writeln!(r.get_mut(), "{}", peer.ip()).unwrap();
        }
    })
}

/// A UDP server bound now on `addr` that answers each of `n` datagrams with the peer address.
fn udp_server(ns: Option<&Netns>, addr: &str, n: usize) -> JoinHandle<()> {
    let bind = || UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let s = match ns {
        Some(ns) => inside(ns, bind),
        None => bind(),
    };
    s.set_read_timeout(Some(WAIT * 6)).unwrap();
    std::thread::spawn(move || {
        for _ in 0..n {
            let mut buf = [0u8; 64];
            let (_, peer) = s.recv_from(&mut buf).unwrap();
            s.send_to(format!("{}\n", peer.ip()).as_bytes(), peer)
                .unwrap();
        }
    })
}

/// Ask a TCP server (ours, or the container's) who we are: the peer address it saw.
fn ask_tcp(to: &str) -> Result<String, String> {
    let to: SocketAddr = to.parse().unwrap();
    let s = TcpStream::connect_timeout(&to, WAIT).map_err(|e| format!("connect {to}: {e}"))?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(s);
    r.get_mut()
        .write_all(b"?\n")
        .map_err(|e| format!("send to {to}: {e}"))?;
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| format!("read from {to}: {e}"))?;
    Ok(line.trim().to_string())
}

/// The same over UDP.
fn ask_udp(to: &str) -> Result<String, String> {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.send_to(b"?\n", to)
        .map_err(|e| format!("send to {to}: {e}"))?;
    let mut buf = [0u8; 64];
    let n = s
        .recv(&mut buf)
        .map_err(|e| format!("recv from {to}: {e}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

/// bash functions for the container's side: `tcp HOST PORT LABEL` and `udp HOST PORT LABEL`
/// send a line and print `LABEL ANSWER`. (bash's `read` takes one byte per read(2), which on
/// a datagram socket gets the first byte of the datagram and drops the rest: `head` reads the
/// answer whole.)
const BASH_CLIENTS: &str = r#"
tcp() { exec 3<>"/dev/tcp/$1/$2" || { echo "$3 cannot connect"; return; }
        echo "?" >&3; read -r -t 5 a <&3; echo "$3 $a"; exec 3<&-; }
udp() { exec 3<>"/dev/udp/$1/$2" || { echo "$3 cannot connect"; return; }
        echo "?" >&3; a=$(timeout 5 head -n 1 <&3); echo "$3 $a"; exec 3<&-; }
"#;

/// The container's server: for each `tcp/PORT` or `udp/PORT` argument, answer every
/// connection or datagram with the peer address; print `ready` once all are bound; run until
/// standard input closes.
const PY_SERVER: &str = r#"
import socket, sys, threading
def tcp(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    def serve():
        while True:
            c, a = s.accept()
            with c:
                c.recv(64)
                c.sendall((a[0] + "\n").encode())
    return serve
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    def serve():
        while True:
            d, a = s.recvfrom(64)
            s.sendto((a[0] + "\n").encode(), a)
    return serve
for arg in sys.argv[1:]:
    proto, _, port = arg.partition("/")
    if proto in ("tcp", "udp"):
        threading.Thread(target=(tcp if proto == "tcp" else udp)(int(port)), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"#;

/// A container serving `specs` (`tcp/80`, `udp/53`) with python3, its command line marked
/// with the sandbox (so a leftover is found).
fn py_server(sb: &Sandbox, name: &str, specs: &[&str]) -> App {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: the containers' servers are python3 (Debian's python3-minimal)"
    );
    let mut argv = vec![PYTHON, "-c", PY_SERVER];
    argv.extend_from_slice(specs);
    let mark = sb.dir.to_str().unwrap();
    argv.push(mark);
    App::new(name, "").command(&argv)
}

/// `bash -c SCRIPT`, marked with the sandbox, with [`BASH_CLIENTS`] defined.
fn bash(sb: &Sandbox, name: &str, script: &str) -> App {
    let script = format!(": {}\n{BASH_CLIENTS}\n{script}", sb.dir.display());
    App::new(name, "").command(&["/bin/bash", "-c", &script])
}

/// `sh -c SCRIPT` marked with the sandbox.
fn marked(sb: &Sandbox, name: &str, script: &str) -> App {
    App::new(name, &format!(": {}; {script}", sb.dir.display()))
}

/// Prints the container's eth0 address on a line of its own.
const PRINT_ADDRESS: &str = "set -- $(ip -4 -o addr show dev eth0); echo \"${4%/*}\"";

/// `[network]` for the default bridge, plus `more` keys.
fn bridge(more: &str) -> String {
    format!("[network]\nmode = \"bridge\"\n{more}")
}

/// `[[ports]]` entries: (host, container, protocol), `host` as written in TOML.
fn ports(list: &[(&str, u16, &str)]) -> String {
    list.iter()
        .map(|(h, c, p)| format!("[[ports]]\nhost = {h}\ncontainer = {c}\nprotocol = \"{p}\"\n"))
        .collect()
}

/// The step that failed, from `launch: error: step N/M`: its index in the plan.
#[track_caller]
fn failed_step(out: &Out) -> usize {
    let at = out
        .stderr
        .split("step ")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no failed step named\n{out}"));
    at - 1
}

/// Assert the run failed at the plan's `op` step (exit 125, the step's effect and `needle`
/// on stderr).
#[track_caller]
fn expect_failed_at(out: &Out, plan: &serde_json::Value, op: &str, needle: &str) {
    let idx = find_step(plan, |a| a["op"] == op);
    assert_eq!(
        failed_step(out),
        idx,
        "not the {op} step that failed\n{out}"
    );
    expect_step_failed(out, plan, idx, needle);
}

/// A path bound read-only over itself in the test's private mount namespace (a sysctl of the
/// test's network namespace): writes to it fail with EROFS. Unbound when dropped.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn new(path: &str) -> ReadOnly {
        let p = PathBuf::from(path);
        nix::mount::mount(Some(&p), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        nix::mount::mount(
            None::<&str>,
            &p,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .unwrap();
        ReadOnly(p)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

// --- 1. outbound traffic ------------------------------------------------------------------------

/// A container reaches TCP and UDP servers on the host side (the bridge's address) and, with
/// `ip_forward = true`, in an outside network, which sees the host side's outer address
/// (masquerade), not the container's.
#[test]
fn outbound_tcp_and_udp_reach_the_host_side_and_the_outside_masqueraded() {
    let machine = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    as_host("host_outbound");
    // ip_forward is per network namespace: the machine's own never changed.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        machine
    );
}

#[test]
fn host_outbound() {
    if !child() {
        return;
    }
    let sb = Sandbox::new("net-out");
    let wan = outside();
    let host = Host::snapshot();
    let servers = [
        tcp_server(None, "0.0.0.0:7000", 1),
        udp_server(None, "0.0.0.0:7001", 1),
        tcp_server(Some(&wan), "198.51.100.2:7002", 1),
        udp_server(Some(&wan), "198.51.100.2:7003", 1),
    ];
    assert_eq!(sysctl("ipv4/ip_forward"), "0");
    let m = bash(
        &sb,
        "out",
        &format!(
            "{PRINT_ADDRESS}\ntcp 10.88.0.1 7000 host-tcp\nudp 10.88.0.1 7001 host-udp\n\
             tcp 198.51.100.2 7002 outside-tcp\nudp 198.51.100.2 7003 outside-udp"
        ),
    )
    .tables(&bridge("ip_forward = true"))
    .write(&sb);
    let out = sb.run(&m);
    out.expect_stdout(
        "10.88.0.2\n\
         host-tcp 10.88.0.2\n\
         host-udp 10.88.0.2\n\
         outside-tcp 198.51.100.1\n\
         outside-udp 198.51.100.1\n",
    );
    for s in servers {
        s.join().unwrap();
    }
    // Asked for, and kept (docs/network.md): in this namespace only.
    assert_eq!(sysctl("ipv4/ip_forward"), "1");
    assert_net_clean(&sb, &host, None, &out);
}

// --- 2. published ports -------------------------------------------------------------------------

/// Published TCP and UDP ports answered by a server in the container: from the host side's
/// loopback (the default `host = PORT` form), from its own address (`0.0.0.0:PORT`, which
/// includes loopback), and from outside through that address; a loopback-only port is not
/// reachable from outside. The rules in the kernel while it runs are the plan's.
#[test]
fn published_ports_answer_from_loopback_and_the_host_sides_address() {
    as_host("host_published_ports");
}

#[test]
fn host_published_ports() {
    if !child() {
        return;
    }
    let sb = Sandbox::new("net-ports");
    let wan = outside();
    let host = Host::snapshot();
    let m = py_server(&sb, "web", &["tcp/80", "udp/53"])
        .tables(&bridge("ip_forward = true"))
        .tables(&ports(&[
            ("8080", 80, "tcp"),
            ("\"0.0.0.0:8081\"", 80, "tcp"),
            ("5353", 53, "udp"),
            ("\"0.0.0.0:5354\"", 53, "udp"),
        ]))
        .write(&sb);
    let plan = sb.plan(&m);
    let mut run = Running::start(&sb, &["run", m.to_str().unwrap()]);
    run.wait_for("ready");

    let ask = |r: Result<String, String>| r.unwrap_or_else(|e| panic!("{e}"));
    // From the host side's loopback: masqueraded to the bridge's address on the way in.
    assert_eq!(ask(ask_tcp("127.0.0.1:8080")), "10.88.0.1");
    assert_eq!(ask(ask_udp("127.0.0.1:5353")), "10.88.0.1");
    // From the host side's own address, and on loopback too (0.0.0.0 is every address).
    assert_eq!(ask(ask_tcp("198.51.100.1:8081")), "198.51.100.1");
    assert_eq!(ask(ask_udp("198.51.100.1:5354")), "198.51.100.1");
    assert_eq!(ask(ask_tcp("127.0.0.1:8081")), "10.88.0.1");
    assert_eq!(ask(ask_udp("127.0.0.1:5354")), "10.88.0.1");
    // From outside, through that address: the container sees the real client.
    assert_eq!(
        ask(inside(&wan, || ask_tcp("198.51.100.1:8081"))),
        "198.51.100.2"
    );
    assert_eq!(
        ask(inside(&wan, || ask_udp("198.51.100.1:5354"))),
        "198.51.100.2"
    );
    // The loopback-only port is the host side's alone.
    let refused = inside(&wan, || ask_tcp("198.51.100.1:8080"));
    assert!(refused.is_err(), "{refused:?}");

    // The kernel holds the plan's elements, with the leased address where the plan shows
    // `{address}`.
    let instance = instances(&sb).pop().unwrap();
    let address = address_of(&sb, &instance);
    let idx = find_step(&plan, |a| a["op"] == "publish_ports");
    let effect = plan["steps"][idx]["effect"].as_str().unwrap();
    let planned: Vec<String> = effect
        .trim_start_matches("nft -f -: ")
        .split("; ")
        .map(|l| {
            let (_, rest) = l.split_once(" inet launch ").unwrap();
            let (map, element) = rest.split_once(' ').unwrap();
            let element = element.trim_start_matches("{ ").trim_end_matches(" }");
            format!("{map}: {}", element.replace("{address}", &address))
        })
        .collect();
    let mut live = elements_to(&address);
    live.sort();
    let mut want = planned.clone();
    want.sort();
    assert_eq!(live, want, "planned: {planned:#?}");

    let out = run.finish("");
    out.expect_stdout("ready\n");
    assert_net_clean(&sb, &host, None, &out);
}

// --- 3. two containers --------------------------------------------------------------------------

/// Two containers on the bridge: one with a fixed address serves, the other reaches it by
/// address and by the name its `hosts` gives.
#[test]
fn two_containers_talk_by_address_and_by_hosts_name() {
    as_host("host_two_containers");
}

#[test]
fn host_two_containers() {
    if !child() {
        return;
    }
    let sb = Sandbox::new("net-two");
    let host = Host::snapshot();
    let server = py_server(&sb, "alpha", &["tcp/9000", "udp/9001"])
        .tables(&bridge("address = \"10.88.0.10\""))
        .toml();
    let server = sb.write("alpha.toml", server);
    let mut alpha = Running::start(&sb, &["run", server.to_str().unwrap()]);
    alpha.wait_for("ready");
    let client = bash(
        &sb,
        "beta",
        &format!(
            "{PRINT_ADDRESS}\ngetent ahostsv4 alpha | head -n 1\ntcp 10.88.0.10 9000 by-address\n\
             tcp alpha 9000 by-name\nudp alpha 9001 udp-by-name"
        ),
    )
    .tables(&bridge("hosts = { alpha = \"10.88.0.10\" }"))
    .toml();
    let client = sb.write("beta.toml", client);
    let out = sb.run(&client);
    out.expect_code(0);
    assert_eq!(
        out.lines(),
        [
            "10.88.0.2",
            "10.88.0.10 STREAM alpha",
            "by-address 10.88.0.2",
            "by-name 10.88.0.2",
            "udp-by-name 10.88.0.2",
        ],
        "{out}"
    );
    let out = alpha.finish("");
    out.expect_stdout("ready\n");
    assert_net_clean(&sb, &host, None, &out);
}

// --- 4. DNS settings ----------------------------------------------------------------------------

/// /etc/resolv.conf, /etc/hosts and /etc/hostname inside: the manifest's servers and search
/// domains, the hostname on the leased address, the `hosts` entries; without `dns`, the host
/// side's resolvers. The host's own files are untouched.
#[test]
fn dns_settings_are_visible_inside() {
    as_host("host_dns");
}

#[test]
fn host_dns() {
    if !child() {
        return;
    }
    let etc = |f: &str| std::fs::read_to_string(Path::new("/etc").join(f)).unwrap_or_default();
    let before = ["resolv.conf", "hosts", "hostname"].map(etc);
    let sb = Sandbox::new("net-dns");
    let host = Host::snapshot();
    // `getent ahostsv4`, not `getent hosts`, which asks for IPv6 first, finds none in
    // /etc/hosts and asks the name servers, which do not answer here (5 s timeouts).
    let script = format!(
        "cat /etc/resolv.conf; echo --; cat /etc/hosts; echo --; cat /etc/hostname; hostname; \
         for n in box db; do getent ahostsv4 $n | head -n 1; done; {PRINT_ADDRESS}"
    );
    let m = marked(&sb, "dns", &script)
        .top("hostname = \"box\"")
        .tables(&bridge(
            "dns = [\"192.0.2.53\", \"2001:db8::53\"]\n\
             dns_search = [\"example.internal\", \"corp.example\"]\n\
             hosts = { db = \"10.88.0.7\", db6 = \"2001:db8::7\" }",
        ))
        .write(&sb);
    let out = sb.run(&m);
    out.expect_stdout(
        "# written by launch\n\
         nameserver 192.0.2.53\n\
         nameserver 2001:db8::53\n\
         search example.internal corp.example\n\
         --\n\
         # written by launch\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         10.88.0.2\tbox\n\
         10.88.0.7\tdb\n\
         2001:db8::7\tdb6\n\
         --\n\
         box\n\
         box\n\
         10.88.0.2       STREAM box\n\
         10.88.0.7       STREAM db\n\
         10.88.0.2\n",
    );
    assert_net_clean(&sb, &host, None, &out);

    // Without `dns`: the host side's resolvers (loopback ones cannot be reached from the
    // container; systemd-resolved's stub stands for the servers behind it).
    let parse = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("nameserver "))
            .map(|a| a.trim().to_string())
            .collect()
    };
    let mut servers = parse(&before[0]);
    if servers.iter().any(|s| s == "127.0.0.53") {
        servers = parse(&std::fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap());
    }
    servers.retain(|s| {
        s.parse::<std::net::IpAddr>()
            .is_ok_and(|a| !a.is_loopback())
    });
    let m = marked(&sb, "dns", "grep ^nameserver /etc/resolv.conf; true")
        .tables(&bridge(""))
        .write(&sb);
    let out = sb.run(&m);
    out.expect_code(0);
    assert_eq!(
        out.lines(),
        servers
            .iter()
            .map(|s| format!("nameserver {s}"))
            .collect::<Vec<_>>(),
        "{out}"
    );
    assert_net_clean(&sb, &host, None, &out);
    assert_eq!(["resolv.conf", "hosts", "hostname"].map(etc), before);
}

// --- 5. twenty at once --------------------------------------------------------------------------

/// 20 containers started at once, all running together: 20 distinct addresses (the lowest
/// ones), each leased to its own launcher, 20 veths, each its rules; all exit and nothing is
/// left, no lease either.
#[test]
fn twenty_containers_at_once_get_distinct_addresses() {
    as_host("host_twenty");
}

#[test]
fn host_twenty() {
    if !child() {
        return;
    }
    let sb = Sandbox::new("net-twenty");
    let host = Host::snapshot();
    let m = marked(
        &sb,
        "many",
        &format!("{PRINT_ADDRESS}; echo ready; read x; echo bye"),
    )
    .top("multiple = true")
    .tables(&bridge(""))
    .write(&sb);
    let mut runs: Vec<Running> = (0..20)
        .map(|_| Running::start(&sb, &["run", m.to_str().unwrap()]))
        .collect();
    let mut by_address: BTreeMap<Ipv4Addr, i32> = BTreeMap::new();
    for r in &mut runs {
        let lines = r.wait_for("ready");
        let a: Ipv4Addr = lines.last().unwrap().parse().unwrap();
        assert!(
            by_address.insert(a, r.pid()).is_none(),
            "{a} given twice: {by_address:?}"
        );
    }
    // All 20 run now: the 20 lowest addresses, each leased to its own launcher.
    let want: BTreeSet<Ipv4Addr> = (2..22).map(|i| Ipv4Addr::new(10, 88, 0, i)).collect();
    assert_eq!(by_address.keys().copied().collect::<BTreeSet<_>>(), want);
    let lease_lines = leases(&sb, "launch0");
    assert_eq!(lease_lines.len(), 20, "{lease_lines:#?}");
    let inst = instances(&sb);
    for l in &lease_lines {
        let f: Vec<&str> = l.split(' ').collect();
        let a: Ipv4Addr = f[0].parse().unwrap();
        assert_eq!(
            f[1],
            by_address[&a].to_string(),
            "{a} is not leased to its launcher: {l}"
        );
        assert!(inst.contains(&f[3].to_string()), "{l}: owner unknown");
    }
    assert_eq!(inst.len(), 20);
    let mut v = veths();
    v.sort();
    let mut own: Vec<String> = inst.iter().map(|i| veth_of(i)).collect();
    own.sort();
    assert_eq!(v, own);
    // No ports: nothing of theirs in the firewall (the bridge's rules serve them all).
    assert_eq!(port_elements(), Vec::<String>::new());

    let outs: Vec<Out> = std::thread::scope(|s| {
        let hs: Vec<_> = runs
            .into_iter()
            .map(|r| s.spawn(move || r.finish("go\n")))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        o.expect_code(0);
        assert_eq!(o.lines().last().map(String::as_str), Some("bye"), "{o}");
    }
    let all: String = outs.iter().map(|o| o.to_string()).collect();
    assert_net_clean(&sb, &host, None, &all);
}

// --- 6. rollback at each network step -----------------------------------------------------------

/// The bridge step refused: (1) a link of the bridge's name that is not a bridge (a veth
/// here; launch used to give it the gateway's address, bring it up and set its route_localnet,
/// all kept, and fail only at the veth step); (2) the kernel refusing
/// the `route_localnet` write (its sysctl directory read-only: EROFS). Nothing is left, and
/// the foreign link is as it was.
#[test]
fn refused_net_bridge_step_is_rolled_back() {
    as_host("host_rollback_net_bridge");
}

#[test]
fn host_rollback_net_bridge() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-rb-bridge"), Cgroups::new());
    let m = marked(&sb, "rb", "echo RAN")
        .limits(&cg)
        .tables(&bridge(""))
        .write(&sb);
    let plan = sb.plan(&m);

    ip("link add launch0 type veth peer name launch0p");
    let host = Host::snapshot();
    let out = sb.run(&m);
    expect_failed_at(&out, &plan, "net_bridge", "EEXIST");
    assert!(out.stderr.contains("not a bridge (kind veth)"), "{out}");
    assert!(!out.stdout.contains("RAN"), "{out}");
    assert_net_clean(&sb, &host, Some(&cg), &out);
    // The veth of that name is untouched: no address, still down, route_localnet as it was.
    assert_eq!(ip("-4 -o addr show dev launch0"), "");
    assert!(
        !ip("-o link show dev launch0").contains(",UP"),
        "brought up"
    );
    assert_eq!(sysctl("ipv4/conf/launch0/route_localnet"), "0");
    ip("link del launch0");

    // The kernel refuses the sysctl write: the bridge itself is made and kept (docs: kept,
    // shared), nothing else.
    let ro = ReadOnly::new("/proc/sys/net/ipv4/conf");
    let host = Host::snapshot();
    let out = sb.run(&m);
    expect_failed_at(&out, &plan, "net_bridge", "EROFS");
    assert!(out.stderr.contains("route_localnet"), "{out}");
    assert_net_clean(&sb, &host, Some(&cg), &out);
    drop(ro);
    assert!(links().contains(&"launch0".to_string()));
    // And with the sysctl writable again, the kept bridge is completed and used.
    let out = sb.run(&m);
    out.expect_stdout("RAN\n");
    assert_eq!(sysctl("ipv4/conf/launch0/route_localnet"), "1");
}

/// The ip_forward step refused by the kernel (the sysctl read-only: EROFS).
#[test]
fn refused_ip_forward_step_is_rolled_back() {
    as_host("host_rollback_ip_forward");
}

#[test]
fn host_rollback_ip_forward() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-rb-fwd"), Cgroups::new());
    let m = marked(&sb, "rb", "echo RAN")
        .limits(&cg)
        .tables(&bridge("ip_forward = true"))
        .write(&sb);
    let plan = sb.plan(&m);
    let ro = ReadOnly::new("/proc/sys/net/ipv4/ip_forward");
    let host = Host::snapshot();
    let out = sb.run(&m);
    expect_failed_at(&out, &plan, "ip_forward", "EROFS");
    assert!(!out.stdout.contains("RAN"), "{out}");
    assert_net_clean(&sb, &host, Some(&cg), &out);
    assert_eq!(sysctl("ipv4/ip_forward"), "0");
    drop(ro);
}

/// The lease refused: a fixed address that a running container holds (EADDRINUSE, naming
/// it), and a /30 subnet whose one container address is taken (EADDRNOTAVAIL). The running
/// container keeps everything of its own; the refused one leaves nothing.
#[test]
fn refused_lease_is_rolled_back() {
    as_host("host_rollback_lease");
}

#[test]
fn host_rollback_lease() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-rb-lease"), Cgroups::new());
    let host = Host::snapshot();
    for (net, more) in [
        ("launch0", "address = \"10.88.0.5\""),
        ("lt30", "bridge = \"lt30\"\nsubnet = \"10.99.0.0/30\""),
    ] {
        let holder = sb.write(
            "holder.toml",
            marked(&sb, "holder", "echo ready; read x")
                .tables(&bridge(more))
                .toml(),
        );
        let mut run = Running::start(&sb, &["run", holder.to_str().unwrap()]);
        run.wait_for("ready");
        let held = instances(&sb);
        let (lease, rules) = (leases(&sb, net), port_elements());
        assert_eq!(lease.len(), 1, "{lease:?}");

        let m = marked(&sb, "rb", "echo RAN")
            .limits(&cg)
            .tables(&bridge(more))
            .write(&sb);
        let plan = sb.plan(&m);
        let out = sb.run(&m);
        if net == "launch0" {
            expect_failed_at(&out, &plan, "lease_address", "EADDRINUSE");
            assert!(
                out.stderr.contains(&format!("held by {}", held[0])),
                "{out}"
            );
        } else {
            expect_failed_at(&out, &plan, "lease_address", "EADDRNOTAVAIL");
        }
        assert!(!out.stdout.contains("RAN"), "{out}");
        cg.assert_empty(&out);
        // Only the holder's: its instance, lease, veth and rules.
        assert_eq!(instances(&sb), held, "{out}");
        assert_eq!(leases(&sb, net), lease, "{out}");
        assert_eq!(veths(), [veth_of(&held[0])], "{out}");
        assert_eq!(port_elements(), rules, "{out}");

        let out = run.finish("\n");
        out.expect_stdout("ready\n");
        assert_net_clean(&sb, &host, Some(&cg), &out);
    }
}

/// The firewall's part of the bridge step refused by the kernel: `table inet launch` already
/// has a `prerouting` chain of another type (filter), so the transaction that declares it as
/// nat fails and adds nothing. The table that was there stays as it was.
#[test]
fn refused_firewall_step_is_rolled_back() {
    as_host("host_rollback_firewall");
}

#[test]
fn host_rollback_firewall() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-rb-nft"), Cgroups::new());
    let m = marked(&sb, "rb", "echo RAN")
        .limits(&cg)
        .tables(&bridge(""))
        .tables(&ports(&[("8080", 80, "tcp")]))
        .write(&sb);
    let plan = sb.plan(&m);
    nft(
        &["-f", "-"],
        "table inet launch {\n\tchain prerouting { type filter hook prerouting priority 0; policy accept; }\n}\n",
    );
    let table = nft(&["list", "table", "inet", "launch"], "");
    let host = Host::snapshot();
    let out = sb.run(&m);
    // The kernel words it "Operation not supported" (6.18) or "File exists" (6.1).
    expect_failed_at(&out, &plan, "net_bridge", "Could not process rule");
    assert!(!out.stdout.contains("RAN"), "{out}");
    assert_net_clean(&sb, &host, Some(&cg), &out);
    assert_eq!(nft(&["list", "table", "inet", "launch"], ""), table);
}

/// Publishing refused: the host port is published already (here by hand, as another
/// container's would be), so `create element` fails with "File exists" after the lease, and
/// the element that was there stays.
#[test]
fn refused_publish_step_is_rolled_back() {
    as_host("host_rollback_publish");
}

#[test]
fn host_rollback_publish() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-rb-publish"), Cgroups::new());
    let m = marked(&sb, "rb", "echo RAN")
        .limits(&cg)
        .tables(&bridge(""))
        .tables(&ports(&[("8080", 80, "tcp")]))
        .write(&sb);
    let plan = sb.plan(&m);
    launch::sys::net::firewall::ensure("launch0", Subnet::DEFAULT).unwrap();
    nft(
        &[
            "add",
            "element",
            "inet",
            "launch",
            "tcp_local",
            "{ 127.0.0.1 . 8080 : 10.88.0.9 . 80 }",
        ],
        "",
    );
    let held = port_elements();
    let host = Host::snapshot();
    let out = sb.run(&m);
    expect_failed_at(&out, &plan, "publish_ports", "File exists");
    assert!(!out.stdout.contains("RAN"), "{out}");
    assert_eq!(port_elements(), held, "{out}");
    nft(
        &[
            "delete",
            "element",
            "inet",
            "launch",
            "tcp_local",
            "{ 127.0.0.1 . 8080 }",
        ],
        "",
    );
    assert_net_clean(&sb, &host, Some(&cg), &out);
}

/// The veth step refused by the kernel: the bridge has 7 levels of devices stacked on it
/// (macvlans enslaved to further bridges), the kernel's limit (MAX_NEST_DEV 8), so a port
/// enslaved to it would nest one level too deep (EMLINK) after the pair exists and the
/// container process runs.
#[test]
fn refused_veth_step_is_rolled_back() {
    as_host("host_rollback_veth");
}

#[test]
fn host_rollback_veth() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-rb-veth"), Cgroups::new());
    let m = marked(&sb, "rb", "echo RAN")
        .limits(&cg)
        .tables(&bridge(""))
        .tables(&ports(&[("8080", 80, "tcp")]))
        .write(&sb);
    let plan = sb.plan(&m);
    ip("link add launch0 type bridge");
    let mut lower = "launch0".to_string();
    for i in 1..=4 {
        ip(&format!(
            "link add m{i} link {lower} type macvlan mode bridge"
        ));
        if i < 4 {
            ip(&format!("link add b{i} type bridge"));
            ip(&format!("link set m{i} master b{i}"));
            lower = format!("b{i}");
        }
    }
    // The kernel's refusal, shown once by hand.
    ip("link add probe0 type veth peer name probe1");
    let e = try_ip("link set probe0 master launch0").unwrap_err();
    assert!(e.contains("Too many links"), "{e}");
    ip("link del probe0");

    let host = Host::snapshot();
    let out = sb.run(&m);
    expect_failed_at(&out, &plan, "veth", "EMLINK");
    assert!(!out.stdout.contains("RAN"), "{out}");
    assert_net_clean(&sb, &host, Some(&cg), &out);
}

/// A full state root (a tmpfs of N inodes, for N = 1, 2, …): each run fails where the kernel
/// first refuses a new file (ENOSPC), at the state directory, the lease or the network
/// files, and leaves nothing; releasing the lease needs no free inode (it used to need one,
/// so the instance directory was kept, and gc could never remove it either). Once N is
/// enough, the run succeeds and leaves nothing either.
#[test]
fn full_state_root_is_rolled_back_at_every_step() {
    as_host("host_rollback_full_state_root");
}

#[test]
fn host_rollback_full_state_root() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-rb-full"), Cgroups::new());
    let m = marked(&sb, "rb", "echo RAN")
        .top("hostname = \"full\"")
        .limits(&cg)
        .tables(&bridge(""))
        .write(&sb);
    let plan = sb.plan(&m);
    let mut failed_at = Vec::new();
    let mut ran = false;
    for n in 1..=24 {
        nix::mount::mount(
            Some("tmpfs"),
            &sb.state,
            Some("tmpfs"),
            MsFlags::empty(),
            Some(format!("nr_inodes={n},mode=0711").as_str()),
        )
        .unwrap();
        let host = Host::snapshot();
        let out = sb.run(&m);
        if out.code() == Some(0) {
            out.expect_stdout("RAN\n");
        } else {
            let idx = failed_step(&out);
            expect_step_failed(&out, &plan, idx, "ENOSPC");
            assert!(!out.stdout.contains("RAN"), "{out}");
            failed_at.push(
                plan["steps"][idx]["action"]["op"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_net_clean(&sb, &host, Some(&cg), &out);
        nix::mount::umount(&sb.state).unwrap();
        if out.code() == Some(0) {
            ran = true;
            break;
        }
    }
    assert!(ran, "no run succeeded; failed at {failed_at:?}");
    for op in ["state_dir", "lease_address", "network_files"] {
        assert!(failed_at.iter().any(|f| f == op), "{failed_at:?}");
    }
}

// --- 7. SIGKILL, then gc ------------------------------------------------------------------------

/// The launcher SIGKILLed while its container runs: the container dies with it, its rules and
/// lease stay (and its veth, while something holds the container's namespace, here the test)
/// until `launch gc`, which removes them all; a second gc finds nothing.
#[test]
fn gc_after_sigkill_leaves_no_link_rule_or_lease() {
    as_host("host_gc_after_sigkill");
}

#[test]
fn host_gc_after_sigkill() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-gc"), Cgroups::new());
    let host = Host::snapshot();
    let m = marked(&sb, "killed", "echo ready; read x")
        .limits(&cg)
        .tables(&bridge(""))
        .tables(&ports(&[("8080", 80, "tcp")]))
        .write(&sb);
    let mut run = Running::start(&sb, &["run", m.to_str().unwrap()]);
    run.wait_for("ready");
    let instance = instances(&sb).pop().unwrap();
    let journal = std::fs::File::open(sb.state.join(&instance).join("journal")).unwrap();
    let pid = launch::exec::journal::read(journal).state.unwrap().pid;
    let netns = Netns::open(Path::new(&format!("/proc/{pid}/ns/net"))).unwrap();
    let vl = veth_of(&instance);
    assert_eq!(veths(), std::slice::from_ref(&vl));
    let address = address_of(&sb, &instance);
    assert_eq!(elements_to(&address).len(), 1, "{:#?}", port_elements());
    let lease = leases(&sb, "launch0");
    assert_eq!(lease.len(), 1);
    assert!(lease[0].ends_with(&format!(" {instance}")), "{lease:?}");

    run.signal(Signal::SIGKILL);
    let out = run.finish("");
    assert_eq!(out.status.code(), None, "not killed\n{out}");
    assert!(
        processes_gone(&sb.dir.display().to_string(), Duration::from_secs(2)),
        "the container outlived its launcher\n{out}"
    );
    // Left for gc: the published port, the lease (its holder is dead), the veth (its
    // namespace is held here), the instance directory.
    assert_eq!(elements_to(&address).len(), 1, "{out}");
    assert_eq!(leases(&sb, "launch0"), lease, "{out}");
    assert_eq!(veths(), std::slice::from_ref(&vl), "{out}");
    assert_eq!(instances(&sb), std::slice::from_ref(&instance), "{out}");

    // A gc from another network namespace (here a new empty one) finds no such link or rule
    // there: it must not count them as removed and forget them (it used to).
    let mut cmd = sb.command(&["gc"]);
    // SAFETY: unshare is a plain system call, fine between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    let elsewhere = sb.launch_with(cmd, &["gc", "(from another network namespace)"]);
    elsewhere.expect_code(0);
    assert!(
        elsewhere.stdout.contains(&format!("left {instance} alone")),
        "{elsewhere}"
    );
    assert_eq!(elements_to(&address).len(), 1, "{elsewhere}");
    assert_eq!(leases(&sb, "launch0"), lease, "{elsewhere}");
    assert_eq!(veths(), std::slice::from_ref(&vl), "{elsewhere}");
    assert_eq!(
        instances(&sb),
        std::slice::from_ref(&instance),
        "{elsewhere}"
    );

    let gc = sb.launch(&["gc"]);
    gc.expect_code(0);
    assert!(gc.stdout.contains(&instance), "{gc}");
    assert_net_clean(&sb, &host, Some(&cg), &gc);
    // The container's end went with the host's.
    assert!(!link::link_exists_in(&netns, "eth0").unwrap(), "{gc}");
    let again = sb.launch(&["gc"]);
    again.expect_code(0);
    assert!(!again.stdout.contains(&instance), "{again}");
    assert_net_clean(&sb, &host, Some(&cg), &again);
}

/// A launcher SIGKILLed in a network namespace that then goes away (nothing else in it): its
/// links and rules went with it, so a gc from elsewhere cleans up the rest (the lease, the
/// instance directory, the cgroups).
#[test]
fn gc_after_the_launchers_network_namespace_is_gone() {
    as_host("host_gc_namespace_gone");
}

#[test]
fn host_gc_namespace_gone() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-gc-gone"), Cgroups::new());
    let host = Host::snapshot();
    let m = marked(&sb, "gone", "echo ready; read x")
        .limits(&cg)
        .tables(&bridge(""))
        .write(&sb);
    let mut cmd = sb.command(&["run", m.to_str().unwrap()]);
    cmd.stdin(Stdio::piped());
    // SAFETY: unshare is a plain system call, fine between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    let mut run = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(run.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let instance = instances(&sb).pop().unwrap();
    assert_eq!(leases(&sb, "launch0").len(), 1);
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(
        processes_gone(&sb.dir.display().to_string(), Duration::from_secs(2)),
        "the container outlived its launcher"
    );
    let gc = sb.launch(&["gc"]);
    gc.expect_code(0);
    assert!(
        gc.stdout.contains(&format!("cleaned up {instance}")),
        "{gc}"
    );
    assert_net_clean(&sb, &host, Some(&cg), &gc);
}

// --- known bugs ---------------------------------------------------------------------------------

/// A root whose /etc/resolv.conf is a dangling symlink, as on every host using
/// systemd-resolved's stub (`/etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf`,
/// Ubuntu's default): the mount point is the symlink's target, made inside the root (as runc
/// and crun do), and the container reads launch's file through the symlink.
#[test]
fn dangling_resolv_conf_symlink_is_followed_inside_the_root() {
    as_host("host_dangling_resolv_conf");
}

#[test]
fn host_dangling_resolv_conf() {
    if !child() {
        return;
    }
    let (sb, cg) = (Sandbox::new("net-dangling"), Cgroups::new());
    // A small root of the static busybox (a copy of the whole fixture root takes minutes in
    // the emulated v2 guest).
    let root = sb.dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox (apt-get install busybox-static; .ci/run installs it)");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let conf = root.join("etc/resolv.conf");
    let _ = std::fs::remove_file(&conf);
    std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", &conf).unwrap();
    let m = marked(&sb, "dangling", "busybox cat /etc/resolv.conf")
        .rootfs("path = \"root\"")
        .limits(&cg)
        .tables(&bridge("dns = [\"192.0.2.53\"]"))
        .write(&sb);
    let host = Host::snapshot();
    let out = sb.run(&m);
    out.expect_code(0);
    assert!(out.stdout.contains("nameserver 192.0.2.53\n"), "{out}");
    // The symlink is the root's own, untouched; its target is an empty mount point.
    assert_eq!(
        std::fs::read_link(&conf).unwrap(),
        Path::new("../run/systemd/resolve/stub-resolv.conf")
    );
    assert_net_clean(&sb, &host, Some(&cg), &out);
}

// --- 8. the plan --------------------------------------------------------------------------------

/// `launch plan` of a bridge manifest shows the network's steps as they run: the bridge,
/// forwarding, the lease, the exact nftables script with `{address}` for the lease, the
/// files, the veth, the binds (snapshot, the sandbox's path replaced).
#[test]
fn plan_shows_the_rules_and_the_veth() {
    need_root();
    let sb = Sandbox::new("net-plan");
    let m = App::new("web", "true")
        .top("hostname = \"web\"")
        .tables(&bridge(
            "ip_forward = true\ndns = [\"192.0.2.53\"]\ndns_search = [\"example.internal\"]\n\
             hosts = { db = \"10.88.0.7\" }",
        ))
        .tables(&ports(&[
            ("8080", 80, "tcp"),
            ("\"0.0.0.0:5353\"", 53, "udp"),
            ("\"192.0.2.10:8443\"", 443, "tcp"),
        ]))
        .write(&sb);
    let json = sb.plan(&m);
    // The network's steps: the host's, and the container's binds of launch's files.
    let ours: Vec<usize> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            let op = s["action"]["op"].as_str().unwrap_or("");
            let summary = s["summary"].as_str().unwrap_or("");
            [
                "net_bridge",
                "ip_forward",
                "lease_address",
                "publish_ports",
                "network_files",
                "veth",
            ]
            .contains(&op)
                || summary == "create /etc in the root unless it exists"
                || summary.starts_with("create the mount point /etc/")
                || summary.starts_with("bind launch's /etc/")
        })
        .map(|(i, _)| i + 1)
        .collect();
    let out = sb.launch(&["plan", m.to_str().unwrap()]);
    out.expect_code(0);
    // The text's steps by number: `NN  side  summary`, then the indented lines under it.
    let mut blocks: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut at = None;
    for line in out.stdout.lines() {
        let mut w = line.split_whitespace();
        let head = (w.next().and_then(|n| n.parse::<usize>().ok()), w.next());
        match head {
            (Some(n), Some("host" | "container")) => {
                at = Some(n);
                blocks.entry(n).or_default().push(normalize(line));
            }
            _ if at.is_some() && line.starts_with("     ") => {
                blocks
                    .entry(at.unwrap())
                    .or_default()
                    .push(format!("    {}", line.trim()));
            }
            _ => at = None,
        }
    }
    let text: String = ours
        .iter()
        .map(|n| {
            let b = blocks
                .get(n)
                .unwrap_or_else(|| panic!("step {n} is not in the text plan\n{out}"));
            // Without the step's number, which depends on the host's cgroups.
            let first = b[0].split_once(' ').unwrap().1;
            format!("{first}\n{}\n", b[1..].join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace(sb.dir.to_str().unwrap(), "[SANDBOX]");
    insta::assert_snapshot!("network-bridge-plan", text);
}

// --- validation ---------------------------------------------------------------------------------

/// `mode = "bridge"` without root: `launch::network::rootless` at the mode's value (the test
/// host is root, so diagnostics.rs cannot show it with `launch validate`).
#[test]
fn bridge_mode_without_root_is_diagnosed() {
    let text = "name = \"web\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n\
                [network]\nmode = \"bridge\"\n";
    let src = launch::manifest::Source::from_text("web.toml", Path::new("/src"), text);
    let mut user = crate::common::hybrid();
    user.facts.uid = 1000;
    user.facts.gid = 1000;
    let problems = launch::validate::spec(&src, &user).unwrap_err();
    let p = problems
        .iter()
        .find(|p| p.code == "launch::network::rootless")
        .unwrap_or_else(|| {
            panic!(
                "no launch::network::rootless in {:?}",
                problems.iter().map(|p| p.code).collect::<Vec<_>>()
            )
        });
    assert_eq!(&text[p.span.clone()], "\"bridge\"");
    assert!(p.help.as_deref().unwrap_or("").contains("pasta"), "{p:?}");
    // As root, the same manifest is valid.
    let root = crate::common::hybrid();
    if let Err(problems) = launch::validate::spec(&src, &root) {
        panic!(
            "refused as root: {:?}",
            problems.iter().map(|p| p.code).collect::<Vec<_>>()
        );
    }
}

// --- ps and exec ------------------------------------------------------------------------------

/// `launch ps` shows a bridge container's address and ports; `launch exec` enters its network
/// namespace (the command sees eth0 with that address).
#[test]
fn ps_shows_the_address_and_exec_enters_the_network() {
    as_host("host_ps_and_exec");
}

#[test]
fn host_ps_and_exec() {
    if !child() {
        return;
    }
    let sb = Sandbox::new("net-ps");
    let m = marked(&sb, "psnet", "echo ready; read _")
        .tables(&bridge(""))
        .tables(&ports(&[("8080", 80, "tcp")]))
        .write(&sb);
    let mut run = Running::start(&sb, &["run", m.to_str().unwrap()]);
    run.wait_for("ready");
    let ps = sb.launch(&["ps", "--format", "json"]);
    ps.expect_code(0);
    let rows: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["network"], "bridge", "{ps}");
    let address = row["address"].as_str().unwrap().to_owned();
    assert!(address.starts_with("10.88."), "{ps}");
    assert_eq!(
        row["ports"],
        serde_json::json!(["127.0.0.1:8080->80/tcp"]),
        "{ps}"
    );
    let text = sb.launch(&["ps"]);
    assert!(text.stdout.contains(&address), "{text}");
    assert!(text.stdout.contains("127.0.0.1:8080->80/tcp"), "{text}");
    let exec = sb.launch(&["exec", "psnet", "--", "/bin/sh", "-c", PRINT_ADDRESS]);
    exec.expect_stdout(&format!("{address}\n"));
    run.finish("\n").expect_code(0);
}
