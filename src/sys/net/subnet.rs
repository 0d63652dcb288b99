//! An IPv4 subnet of a bridge: its gateway (the bridge's own address) and its host addresses.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The default bridge and its subnet (podman's default network uses 10.88.0.0/16 too, on a
/// bridge of its own name).
pub const DEFAULT_BRIDGE: &str = "launch0";

/// An IPv4 subnet, `network/prefix` with the host bits zero; prefix 8..=30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// 10.88.0.0/16.
    pub const DEFAULT: Subnet = Subnet {
        network: Ipv4Addr::new(10, 88, 0, 0),
        prefix: 16,
    };

    /// A subnet; None when the prefix is outside 8..=30 or host bits are set.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        if !(8..=30).contains(&prefix) || u32::from(network) & !mask(prefix) != 0 {
            return None;
        }
        Some(Subnet { network, prefix })
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The bridge's own address: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Whether `a` lies in the subnet.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & mask(self.prefix) == u32::from(self.network)
    }

    /// The addresses a container may have: every host address but the gateway.
    pub fn container_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.gateway()) + 1..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX << (32 - u32::from(prefix))
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Subnet, String> {
        s.parse()
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(s: &str) -> Result<Subnet, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX"))?;
        let a: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let p: u8 = p
            .parse()
            .map_err(|_| format!("{p:?} is not a prefix length"))?;
        Subnet::new(a, p)
            .ok_or_else(|| format!("{s:?}: the prefix must be 8 to 30 and the host bits zero"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_subnet() {
        let s = Subnet::DEFAULT;
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 255, 255));
        assert!(s.contains(Ipv4Addr::new(10, 88, 3, 4)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(
            s.container_addresses().next(),
            Some(Ipv4Addr::new(10, 88, 0, 2))
        );
    }

    #[test]
    fn parse() {
        let s: Subnet = "192.168.7.0/29".parse().unwrap();
        let all: Vec<_> = s.container_addresses().map(|a| a.to_string()).collect();
        assert_eq!(
            all,
            [
                "192.168.7.2",
                "192.168.7.3",
                "192.168.7.4",
                "192.168.7.5",
                "192.168.7.6"
            ]
        );
        assert!("10.88.0.1/16".parse::<Subnet>().is_err());
        assert!("10.88.0.0/31".parse::<Subnet>().is_err());
        assert!("10.88.0.0".parse::<Subnet>().is_err());
    }
}
