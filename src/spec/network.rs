//! The container's network, as its author described it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

pub use crate::sys::net::firewall::{Port, Protocol};
pub use crate::sys::net::subnet::Subnet;

/// What the container's network namespace is connected to, and what it is told about names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// How it is connected (`"mode": "bridge"` and the bridge's keys, in this object).
    #[serde(flatten)]
    pub mode: NetworkMode,
    /// Name servers for /etc/resolv.conf; `None`: the host's (lowering reads them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<IpAddr>>,
    /// Search domains for /etc/resolv.conf; `None`: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_search: Option<Vec<String>>,
    /// Extra /etc/hosts entries, name → address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, IpAddr>,
    /// Published ports, in the manifest's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
}

/// How the container's network namespace is connected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum NetworkMode {
    /// Its own namespace (or a joined one) with loopback only.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// A veth pair to a bridge on the host.
    Bridge(Bridge),
    /// A pasta helper process.
    Pasta,
    /// A slirp4netns helper process.
    Slirp,
}

impl NetworkMode {
    /// The mode's name, as the manifest spells it.
    pub fn name(&self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Bridge(_) => "bridge",
            NetworkMode::Pasta => "pasta",
            NetworkMode::Slirp => "slirp",
        }
    }

    /// Whether the container reaches beyond its own namespace (and so gets /etc/resolv.conf,
    /// /etc/hosts and /etc/hostname written for it).
    pub fn connected(&self) -> bool {
        !matches!(self, NetworkMode::None)
    }
}

/// The bridge mode's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    /// The bridge's name.
    pub bridge: String,
    /// Its subnet (the bridge has the first address).
    pub subnet: Subnet,
    /// A fixed address for the container; `None`: the lowest free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// Turn on `net.ipv4.ip_forward` on the host (kept).
    #[serde(default)]
    pub ip_forward: bool,
}
