//! The container's /etc/resolv.conf, /etc/hosts and /etc/hostname: written by the launcher
//! into the state directory and bound over the root's own files, so the root filesystem is
//! never changed (as Docker, podman and nspawn do).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{SysError, SysResult};

/// What the three files say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// The container's hostname: /etc/hostname, and its line in /etc/hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Name servers.
    pub nameservers: Vec<IpAddr>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Extra /etc/hosts entries, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<(String, IpAddr)>,
    /// The container's address for its hostname's line, when it is known before the run;
    /// `None` with `leased`: the address the bridge leases it; otherwise 127.0.1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// The hostname's line takes the leased address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leased: bool,
}

/// The files' names in the state directory, and where each is bound in the container.
pub const NAMES: [(&str, &str); 3] = [
    ("resolv.conf", "/etc/resolv.conf"),
    ("hosts", "/etc/hosts"),
    ("hostname", "/etc/hostname"),
];

impl Files {
    /// /etc/resolv.conf.
    pub fn resolv_conf(&self) -> String {
        let mut s = String::from("# written by launch\n");
        for n in &self.nameservers {
            s.push_str(&format!("nameserver {n}\n"));
        }
        if !self.search.is_empty() {
            s.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        s
    }

    /// /etc/hosts, with `leased` the bridge's lease (if any).
    pub fn hosts(&self, leased: Option<Ipv4Addr>) -> String {
        let mut s = String::from(
            "# written by launch\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        );
        if let Some(h) = &self.hostname {
            let a = self
                .address
                .or(leased.filter(|_| self.leased))
                .unwrap_or(Ipv4Addr::new(127, 0, 1, 1));
            s.push_str(&format!("{a}\t{h}\n"));
        }
        for (name, a) in &self.hosts {
            s.push_str(&format!("{a}\t{name}\n"));
        }
        s
    }

    /// The files that are written: (name in the state directory, content).
    pub fn contents(&self, leased: Option<Ipv4Addr>) -> Vec<(&'static str, String)> {
        let mut v = vec![
            (NAMES[0].0, self.resolv_conf()),
            (NAMES[1].0, self.hosts(leased)),
        ];
        if let Some(h) = &self.hostname {
            v.push((NAMES[2].0, format!("{h}\n")));
        }
        v
    }

    /// Write them into `dir` (new files, 0644: the container's users read them).
    pub fn write(&self, dir: &Path, leased: Option<Ipv4Addr>) -> SysResult<()> {
        for (name, text) in self.contents(leased) {
            let path = dir.join(name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| {
                    SysError::io("open", Some(path.clone()), &e).args("O_CREAT|O_EXCL, 0644")
                })?;
            f.write_all(text.as_bytes())
                .map_err(|e| SysError::io("write", Some(path.clone()), &e))?;
        }
        Ok(())
    }
}

/// The host's resolvers: (name servers, search domains) of /etc/resolv.conf. systemd-resolved's
/// stub (127.0.0.53) is replaced by the servers behind it
/// (/run/systemd/resolve/resolv.conf). Servers on loopback are left out: the container's
/// loopback is its own.
pub fn host_resolvers() -> (Vec<IpAddr>, Vec<String>) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut conf = parse_resolv(&read("/etc/resolv.conf"));
    if conf.0.contains(&IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53))) {
        let behind = parse_resolv(&read("/run/systemd/resolve/resolv.conf"));
        if !behind.0.is_empty() {
            conf = behind;
        }
    }
    conf.0.retain(|a| !a.is_loopback());
    conf
}

/// Name servers and search domains of a resolv.conf text.
pub fn parse_resolv(text: &str) -> (Vec<IpAddr>, Vec<String>) {
    let mut servers = Vec::new();
    let mut search = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                // A scoped IPv6 address (`fe80::1%eth0`) names a host interface: not kept.
                if let Some(a) = w.next().and_then(|a| a.parse::<IpAddr>().ok()) {
                    if !servers.contains(&a) {
                        servers.push(a);
                    }
                }
            }
            Some("search") | Some("domain") => {
                search = w.map(str::to_owned).collect();
            }
            _ => {}
        }
    }
    (servers, search)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_parsing_skips_comments_and_scoped_addresses() {
        let (s, d) = parse_resolv(
            "# hi\nnameserver 1.1.1.1\nnameserver fe80::1%eth0\nnameserver 1.1.1.1\nnameserver 2606:4700::1111\nsearch a.example b.example\noptions edns0\n",
        );
        assert_eq!(
            s,
            vec![
                "1.1.1.1".parse::<IpAddr>().unwrap(),
                "2606:4700::1111".parse().unwrap()
            ]
        );
        assert_eq!(d, vec!["a.example", "b.example"]);
    }

    #[test]
    fn hosts_name_the_leased_address() {
        let f = Files {
            hostname: Some("web".into()),
            nameservers: vec![],
            search: vec![],
            hosts: vec![("db".into(), "10.88.0.7".parse().unwrap())],
            address: None,
            leased: true,
        };
        let h = f.hosts(Some(Ipv4Addr::new(10, 88, 0, 5)));
        assert!(h.contains("10.88.0.5\tweb\n"), "{h}");
        assert!(h.contains("10.88.0.7\tdb\n"), "{h}");
        assert!(
            f.contents(None)
                .iter()
                .any(|(n, t)| *n == "hostname" && t == "web\n")
        );
    }
}
