//! `[network]` and `[[ports]]`: the manifest's shape of the container's network (meaning is
//! checked by `validate::network`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Sp;

/// The container's network. Omitted: `mode = "none"`, a network namespace of its own with
/// loopback only.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// `"none"` (default): loopback only. `"host"`: the host's network, shared. `"bridge"`
    /// (root): an address on a bridge, outbound traffic masqueraded, `[[ports]]` published.
    /// `"pasta"` or `"slirp"` (rootless): outbound traffic and ports through a helper process
    /// (Debian's `passt` or `slirp4netns`).
    #[serde(default)]
    pub mode: Option<Sp<NetworkMode>>,
    /// `bridge`: the bridge's name (default `launch0`), made once and kept.
    #[serde(default)]
    pub bridge: Option<Sp<String>>,
    /// `bridge`: the bridge's subnet, `ADDRESS/PREFIX` (default `10.88.0.0/16`).
    #[serde(default)]
    pub subnet: Option<Sp<String>>,
    /// `bridge`: a fixed address inside the subnet (default: the lowest free one).
    #[serde(default)]
    pub address: Option<Sp<String>>,
    /// Name servers written to the container's /etc/resolv.conf (default: the host's, with
    /// systemd-resolved's stub resolved to the servers behind it).
    #[serde(default)]
    pub dns: Option<Sp<Vec<Sp<String>>>>,
    /// Search domains for /etc/resolv.conf (default: the host's).
    #[serde(default)]
    pub dns_search: Option<Sp<Vec<Sp<String>>>>,
    /// Extra lines of the container's /etc/hosts: name = address.
    #[serde(default)]
    pub hosts: Option<Sp<BTreeMap<String, Sp<String>>>>,
    /// `bridge`: set `net.ipv4.ip_forward = 1` on the host, which outbound traffic through
    /// masquerade needs. It applies to every interface of the host and is never undone, so
    /// launch only does it when asked (default `false`).
    #[serde(default)]
    pub ip_forward: Option<Sp<bool>>,
}

/// `[network] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A network namespace of its own, loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// A veth pair to a bridge on the host (root only).
    Bridge,
    /// pasta (Debian's `passt`) connects the namespace (rootless).
    Pasta,
    /// slirp4netns connects the namespace (rootless).
    Slirp,
}

/// A published port: `[[ports]]`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// The host's side: a port (`8080`, meaning `127.0.0.1:8080`: the host itself only), or
    /// `"ADDRESS:PORT"` (`"0.0.0.0:8080"`: every address of the host).
    pub host: Sp<HostPort>,
    /// The container's port.
    pub container: Sp<i64>,
    /// `"tcp"` (default) or `"udp"`.
    #[serde(default)]
    pub protocol: Option<Sp<PortProtocol>>,
}

/// `[[ports]] protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// `[[ports]] host`: a port number or `"ADDRESS:PORT"`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema-gen", schemars(untagged))]
pub enum HostPort {
    /// A port on 127.0.0.1.
    Port(i64),
    /// `ADDRESS:PORT`.
    Address(String),
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HostPort;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port number or \"ADDRESS:PORT\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HostPort, E> {
                Ok(HostPort::Port(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HostPort, E> {
                i64::try_from(v)
                    .map(HostPort::Port)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HostPort, E> {
                Ok(HostPort::Address(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}
