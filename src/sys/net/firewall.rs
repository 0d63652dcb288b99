//! The bridge mode's firewall: nftables table `inet launch`, launch's own, through the `nft` tool
//! (docs/network.md says why not netlink nf_tables rules). Nothing is added per container but
//! the elements of its published ports: the table's rules are made once per host network
//! namespace, a bridge's once per bridge, and each container's ports are elements of the
//! table's maps (`create element`, so a port another container holds is refused), removed by
//! key at its end. Whether the table and a bridge's rules exist is asked over netlink (a
//! marker chain each), so a start runs no `nft` unless it publishes ports.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::netlink::{self as nl, Msg, Socket, What};
use super::subnet::Subnet;
use crate::error::{SysError, SysResult};

/// The table: family and name, as nft spells them.
pub const TABLE: &str = "inet launch";

/// The chain whose presence says the table below is complete (made in its transaction).
const TABLE_MARKER: &str = "launch-v2";

/// The table: the published ports' maps, the base chains and the rules that look ports up in
/// the maps. Made once, in one transaction with its marker chain.
///
/// - `prerouting`/`output` (nat, -100): DNAT of published ports, from outside and from the host
///   itself (the output hook is where the host's own connections to a published port, loopback
///   included, are rewritten). `*_any` maps ports published on every address (`fib daddr type
///   local`), `*_addr` ports on one host address (both hooks), `*_local` ports on a loopback
///   address (output only: nothing from outside reaches them);
/// - `postrouting` (nat, 100) and `guard` (filter, prerouting 0): the bridges' rules
///   ([`bridge_script`]).
pub const TABLE_SCRIPT: &str = "table inet launch {
\tmap tcp_any { type inet_service : ipv4_addr . inet_service; }
\tmap udp_any { type inet_service : ipv4_addr . inet_service; }
\tmap tcp_addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
\tmap udp_addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
\tmap tcp_local { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
\tmap udp_local { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
\tchain prerouting {
\t\ttype nat hook prerouting priority -100; policy accept;
\t\tfib daddr type local dnat ip to tcp dport map @tcp_any
\t\tfib daddr type local dnat ip to udp dport map @udp_any
\t\tdnat ip to ip daddr . tcp dport map @tcp_addr
\t\tdnat ip to ip daddr . udp dport map @udp_addr
\t}
\tchain output {
\t\ttype nat hook output priority -100; policy accept;
\t\tfib daddr type local dnat ip to tcp dport map @tcp_any
\t\tfib daddr type local dnat ip to udp dport map @udp_any
\t\tdnat ip to ip daddr . tcp dport map @tcp_addr
\t\tdnat ip to ip daddr . udp dport map @udp_addr
\t\tdnat ip to ip daddr . tcp dport map @tcp_local
\t\tdnat ip to ip daddr . udp dport map @udp_local
\t}
\tchain postrouting { type nat hook postrouting priority 100; policy accept; }
\tchain guard { type filter hook prerouting priority 0; policy accept; }
\tchain launch-v2 { }
}
";

/// One bridge's rules, made once with its marker chain `bridge-NAME`:
///
/// - masquerade of its containers' traffic to anything outside the subnet;
/// - masquerade of connections from the host's loopback to a container (DNAT'd published
///   ports; with `route_localnet` on the bridge, the container sees the bridge's address);
/// - hairpin: a container reaching another (or itself) through a published port on a host
///   address is masqueraded, so the reply comes back the way the request went;
/// - the guard: traffic from the bridge to 127.0.0.0/8 that is not a DNAT'd connection's is
///   dropped, the hole `route_localnet` would open otherwise (CVE-2020-8558).
pub fn bridge_script(bridge: &str, net: Subnet) -> String {
    let c = format!("comment \"launch-bridge:{bridge}\"");
    format!(
        "add chain {TABLE} bridge-{bridge}\n\
         add rule {TABLE} postrouting ip saddr {net} ip daddr != {net} masquerade {c}\n\
         add rule {TABLE} postrouting oifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade {c}\n\
         add rule {TABLE} postrouting oifname \"{bridge}\" ip saddr {net} ct status dnat masquerade {c}\n\
         add rule {TABLE} guard iifname \"{bridge}\" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop {c}\n"
    )
}

/// Whether chain `name` exists in the table (NFT_MSG_GETCHAIN; no table is no chain).
fn chain_exists(name: &str) -> SysResult<bool> {
    let what = What {
        op: "NFT_MSG_GETCHAIN",
        args: format!("table {TABLE}, chain {name:?}"),
    };
    let msg = Msg::new(nl::NFT_MSG_GETCHAIN, 0)
        .nfgen(nl::NFPROTO_INET)
        .attr_str(nl::NFTA_CHAIN_TABLE, "launch")
        .attr_str(nl::NFTA_CHAIN_NAME, name);
    match Socket::open_netfilter()?.request(msg, &what) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == nix::errno::Errno::ENOENT => Ok(false),
        Err(e) => Err(e),
    }
}

/// Make sure the table and bridge `bridge`'s rules exist; what was missing is made in one
/// `nft` transaction. Returns the script applied (empty: nothing was missing).
pub fn ensure(bridge: &str, net: Subnet) -> SysResult<String> {
    let mut script = String::new();
    if !chain_exists(TABLE_MARKER)? {
        script.push_str(TABLE_SCRIPT);
    }
    if !chain_exists(&format!("bridge-{bridge}"))? {
        script.push_str(&bridge_script(bridge, net));
    }
    if !script.is_empty() {
        nft(
            &["-f", "-"],
            Some(&script),
            &format!("-f - (table, bridge {bridge})"),
        )?;
    }
    Ok(script)
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as nft, pasta and `launch ps` spell it.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A published port: `host_address:host_port` on the host reaches `container_port` in the
/// container. `host_address` 0.0.0.0 means every address of the host (the `fib daddr type
/// local` match); an address in 127.0.0.0/8 is reached from the host itself only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Port {
    /// tcp or udp.
    pub protocol: Protocol,
    /// The host address, or 0.0.0.0 for all of them.
    pub host_address: Ipv4Addr,
    /// The host port.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
}

impl std::fmt::Display for Port {
    /// `127.0.0.1:8080->80/tcp`, as `docker ps` shows a published port.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_address,
            self.host_port,
            self.container_port,
            self.protocol.nft()
        )
    }
}

/// The map a published port goes in, and its key, as nft writes them.
fn element_key(p: &Port) -> (String, String) {
    let proto = p.protocol.nft();
    let h = p.host_address;
    if h.is_unspecified() {
        (format!("{proto}_any"), p.host_port.to_string())
    } else if h.is_loopback() {
        (format!("{proto}_local"), format!("{h} . {}", p.host_port))
    } else {
        (format!("{proto}_addr"), format!("{h} . {}", p.host_port))
    }
}

/// The `create element` lines that publish `ports` to `address` (a container's; the plan
/// shows `{address}`). Pure: the plan shows these.
pub fn publish_lines(ports: &[Port], address: &str) -> Vec<String> {
    ports
        .iter()
        .map(|p| {
            let (map, key) = element_key(p);
            format!(
                "create element {TABLE} {map} {{ {key} : {address} . {} }}",
                p.container_port
            )
        })
        .collect()
}

/// The `delete element` lines that take `ports` back.
pub fn unpublish_lines(ports: &[Port]) -> Vec<String> {
    ports
        .iter()
        .map(|p| {
            let (map, key) = element_key(p);
            format!("delete element {TABLE} {map} {{ {key} }}")
        })
        .collect()
}

/// Publish `ports` to `address` in one transaction: all or none. A port another container
/// holds fails it ("File exists").
pub fn publish(ports: &[Port], address: Ipv4Addr) -> SysResult<()> {
    let script: String = publish_lines(ports, &address.to_string())
        .into_iter()
        .map(|l| l + "\n")
        .collect();
    nft(&["-f", "-"], Some(&script), "-f - (publish ports)").map(drop)
}

/// Take `ports` back; those already gone count as taken back.
pub fn unpublish(ports: &[Port]) -> SysResult<()> {
    let lines = unpublish_lines(ports);
    let all: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if nft(&["-f", "-"], Some(&all), "-f - (unpublish ports)").is_ok() {
        return Ok(());
    }
    // One missing element fails the whole transaction: each on its own, missing ones skipped.
    for l in lines {
        if let Err(e) = nft(&["-f", "-"], Some(&format!("{l}\n")), &l) {
            let gone = e.detail.as_deref().is_some_and(|d| {
                d.contains("No such file or directory") || d.contains("does not exist")
            });
            if !gone {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Delete the whole table. False when there was none.
pub fn delete_table() -> SysResult<bool> {
    if list()?.is_none() {
        return Ok(false);
    }
    nft(
        &["delete", "table", "inet", "launch"],
        None,
        "delete table inet launch",
    )?;
    Ok(true)
}

/// `nft -a list table inet launch`, or None when there is no such table.
pub fn list() -> SysResult<Option<String>> {
    match nft(
        &["-a", "list", "table", "inet", "launch"],
        None,
        "-a list table inet launch",
    ) {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.detail
                .as_deref()
                .is_some_and(|d| d.contains("No such file or directory")) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Run nft with `args`, `stdin` as its input; its stdout, or an error carrying its stderr.
fn nft(args: &[&str], stdin: Option<&str>, shown: &str) -> SysResult<String> {
    let path = Some(PathBuf::from("nft"));
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let mut err = SysError::io("execve", path.clone(), &e).args(shown.to_string());
            if e.kind() == std::io::ErrorKind::NotFound {
                err = err
                    .with_detail("the bridge mode's firewall needs nft: Debian's nftables package");
            }
            err
        })?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(text.as_bytes())
            .map_err(|e| SysError::io("write", path.clone(), &e).args("stdin"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| SysError::io("waitpid", path.clone(), &e))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(
        SysError::other("nft", path, format!("{}: {}", out.status, stderr.trim()))
            .args(shown.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_elements_of_the_map_of_their_kind() {
        let port = |protocol, host_address, host_port, container_port| Port {
            protocol,
            host_address,
            host_port,
            container_port,
        };
        let ports = [
            port(Protocol::Tcp, Ipv4Addr::LOCALHOST, 8080, 80),
            port(Protocol::Udp, Ipv4Addr::UNSPECIFIED, 5353, 53),
            port(Protocol::Tcp, Ipv4Addr::new(192, 0, 2, 10), 8443, 443),
        ];
        assert_eq!(
            publish_lines(&ports, "10.88.0.5"),
            [
                "create element inet launch tcp_local { 127.0.0.1 . 8080 : 10.88.0.5 . 80 }",
                "create element inet launch udp_any { 5353 : 10.88.0.5 . 53 }",
                "create element inet launch tcp_addr { 192.0.2.10 . 8443 : 10.88.0.5 . 443 }",
            ]
        );
        assert_eq!(
            unpublish_lines(&ports),
            [
                "delete element inet launch tcp_local { 127.0.0.1 . 8080 }",
                "delete element inet launch udp_any { 5353 }",
                "delete element inet launch tcp_addr { 192.0.2.10 . 8443 }",
            ]
        );
    }

    #[test]
    fn a_bridges_rules_name_its_subnet_and_carry_its_marker() {
        let s = bridge_script("launch0", Subnet::DEFAULT);
        assert!(
            s.starts_with("add chain inet launch bridge-launch0\n"),
            "{s}"
        );
        assert!(
            s.contains("ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 masquerade"),
            "{s}"
        );
        assert_eq!(
            s.matches("comment \"launch-bridge:launch0\"").count(),
            4,
            "{s}"
        );
    }
}
