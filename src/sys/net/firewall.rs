//! The bridge mode's firewall: nftables table `inet launch`, launch's own, through the `nft` tool
//! (docs/network.md says why not netlink nf_tables). Rules are added and removed per container:
//! each carries the comment `launch:TAG`, and removal deletes by handle only the rules with its
//! tag, so no other rule, ours or anyone's, is touched.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::subnet::Subnet;
use crate::error::{SysError, SysResult};

/// The table: family and name, as nft spells them.
pub const TABLE: &str = "inet launch";

/// The table and its base chains. Loading it again changes nothing (a `table { chain }` block
/// adds what is missing), so every container's script starts with it.
///
/// - `prerouting`/`output` (nat, -100): DNAT of published ports, from outside and from the host
///   itself (the output hook is where the host's own connections to a published port, loopback
///   included, are rewritten);
/// - `postrouting` (nat, 100): masquerade of the containers' outbound traffic, and of the
///   connections DNAT'd from the host's loopback or from another container (hairpin);
/// - `guard` (filter, prerouting 0): drops traffic from the bridge to 127.0.0.0/8 that is not
///   the reply of a DNAT'd connection, the hole `route_localnet` would open otherwise.
pub const TABLE_SCRIPT: &str = "table inet launch {
\tchain prerouting { type nat hook prerouting priority -100; policy accept; }
\tchain output { type nat hook output priority -100; policy accept; }
\tchain postrouting { type nat hook postrouting priority 100; policy accept; }
\tchain guard { type filter hook prerouting priority 0; policy accept; }
}
";

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

/// One container's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRules {
    /// What names its rules: the comment is `launch:TAG`. Letters, digits, `-`, `_`, `.`, `:`.
    pub tag: String,
    /// The bridge it is on.
    pub bridge: String,
    /// The bridge's subnet.
    pub subnet: Subnet,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its published ports.
    pub ports: Vec<Port>,
}

fn check_tag(tag: &str) -> SysResult<()> {
    let ok = !tag.is_empty()
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SysError::other(
            "nft",
            None,
            format!("rule tag {tag:?}: only letters, digits, '-', '_', '.' and ':'"),
        ))
    }
}

/// The `add rule` commands for one container, exactly as [`add`] applies them (after
/// [`TABLE_SCRIPT`]). Pure: the plan shows these.
pub fn rules(c: &ContainerRules) -> SysResult<Vec<String>> {
    check_tag(&c.tag)?;
    Ok(render(
        &c.tag,
        &c.bridge,
        c.subnet,
        &c.address.to_string(),
        &c.ports,
    ))
}

/// [`rules`] before the container's address is known: `address` stands for it (the plan
/// shows `{address}` where the lease goes).
pub fn render(tag: &str, br: &str, net: Subnet, a: &str, ports: &[Port]) -> Vec<String> {
    let comment = format!("comment \"launch:{tag}\"");
    let rule = |chain: &str, body: String| format!("add rule {TABLE} {chain} {body} {comment}");
    let mut v = vec![
        rule(
            "guard",
            format!("iifname \"{br}\" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop"),
        ),
        rule(
            "postrouting",
            format!("ip saddr {a} ip daddr != {net} masquerade"),
        ),
    ];
    if !ports.is_empty() {
        v.push(rule(
            "postrouting",
            format!("oifname \"{br}\" ip saddr 127.0.0.0/8 ip daddr {a} masquerade"),
        ));
    }
    for p in ports {
        let proto = p.protocol.nft();
        let (hp, cp) = (p.host_port, p.container_port);
        let dnat = format!("{proto} dport {hp} dnat ip to {a}:{cp}");
        let h = p.host_address;
        if h.is_unspecified() {
            let m = format!("fib daddr type local {dnat}");
            v.push(rule("prerouting", m.clone()));
            v.push(rule("output", m));
        } else if h.is_loopback() {
            v.push(rule("output", format!("ip daddr {h} {dnat}")));
        } else {
            v.push(rule("prerouting", format!("ip daddr {h} {dnat}")));
            v.push(rule("output", format!("ip daddr {h} {dnat}")));
        }
        if !h.is_loopback() {
            // Hairpin: another container on the bridge reaching this one through the host's
            // address would get the reply straight from this one's address; masquerade it.
            v.push(rule(
                "postrouting",
                format!("ip saddr {net} ip daddr {a} {proto} dport {cp} ct status dnat masquerade"),
            ));
        }
    }
    v
}

/// Apply [`TABLE_SCRIPT`] and the container's [`rules`] in one nft transaction (all or none).
/// Returns the script applied.
pub fn add(c: &ContainerRules) -> SysResult<String> {
    let mut script = TABLE_SCRIPT.to_string();
    for r in rules(c)? {
        script.push_str(&r);
        script.push('\n');
    }
    nft(
        &["-f", "-"],
        Some(&script),
        &format!("-f - (rules of launch:{})", c.tag),
    )?;
    Ok(script)
}

/// The rules tagged `launch:TAG` in the table: (chain, handle, rule text as nft lists it).
pub fn tagged(tag: &str) -> SysResult<Vec<(String, u64, String)>> {
    check_tag(tag)?;
    let want = format!("comment \"launch:{tag}\"");
    let Some(listing) = list()? else {
        return Ok(Vec::new());
    };
    // `nft -a list table` ends each rule with `# handle N`; chains open with `chain NAME {`.
    let mut out = Vec::new();
    let mut chain = String::new();
    for line in listing.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("chain ") {
            chain = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            continue;
        }
        let Some((rule, handle)) = line.rsplit_once(" # handle ") else {
            continue;
        };
        if !rule.ends_with(&want) {
            continue;
        }
        if let Ok(h) = handle.trim().parse() {
            out.push((chain.clone(), h, rule.to_string()));
        }
    }
    Ok(out)
}

/// Delete the rules tagged `launch:TAG` (one transaction). Returns the script applied: empty
/// when there was nothing to delete (already removed, or no table), which is success.
pub fn remove(tag: &str) -> SysResult<String> {
    let script: String = tagged(tag)?
        .iter()
        .map(|(chain, handle, _)| format!("delete rule {TABLE} {chain} handle {handle}\n"))
        .collect();
    if !script.is_empty() {
        nft(
            &["-f", "-"],
            Some(&script),
            &format!("-f - (delete launch:{tag})"),
        )?;
    }
    Ok(script)
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
    fn rules_for_a_container_with_ports() {
        let c = ContainerRules {
            tag: "web".into(),
            bridge: "launch0".into(),
            subnet: Subnet::DEFAULT,
            address: Ipv4Addr::new(10, 88, 0, 5),
            ports: vec![
                Port {
                    protocol: Protocol::Tcp,
                    host_address: Ipv4Addr::LOCALHOST,
                    host_port: 8080,
                    container_port: 80,
                },
                Port {
                    protocol: Protocol::Udp,
                    host_address: Ipv4Addr::UNSPECIFIED,
                    host_port: 5353,
                    container_port: 53,
                },
            ],
        };
        let r = rules(&c).unwrap().join("\n");
        assert_eq!(
            r,
            r#"add rule inet launch guard iifname "launch0" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop comment "launch:web"
add rule inet launch postrouting ip saddr 10.88.0.5 ip daddr != 10.88.0.0/16 masquerade comment "launch:web"
add rule inet launch postrouting oifname "launch0" ip saddr 127.0.0.0/8 ip daddr 10.88.0.5 masquerade comment "launch:web"
add rule inet launch output ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.88.0.5:80 comment "launch:web"
add rule inet launch prerouting fib daddr type local udp dport 5353 dnat ip to 10.88.0.5:53 comment "launch:web"
add rule inet launch output fib daddr type local udp dport 5353 dnat ip to 10.88.0.5:53 comment "launch:web"
add rule inet launch postrouting ip saddr 10.88.0.0/16 ip daddr 10.88.0.5 udp dport 53 ct status dnat masquerade comment "launch:web""#
        );
    }

    #[test]
    fn a_tag_cannot_escape_the_comment() {
        let c = ContainerRules {
            tag: "x\" drop".into(),
            bridge: "launch0".into(),
            subnet: Subnet::DEFAULT,
            address: Ipv4Addr::new(10, 88, 0, 5),
            ports: vec![],
        };
        assert!(rules(&c).is_err());
    }
}
