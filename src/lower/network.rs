//! The network's steps: the bridge, the lease, the firewall and the files before the container
//! process exists; its veth or helper once it does; the files' binds inside it.

use std::path::Path;

use super::B;
use crate::host::HostFacts;
use crate::plan::{ContainerAction, HostAction, ID_PLACEHOLDER, MountFlag, PID_PLACEHOLDER};
use crate::spec::{NetworkMode, Protocol, Spec};
use crate::sys::net::files::{Files, NAMES};

/// slirp4netns's fixed address for the container (its `--configure` default).
const SLIRP_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 100);

/// Whether the container gets /etc/resolv.conf, /etc/hosts and /etc/hostname of launch's.
pub(super) fn writes_files(spec: &Spec) -> bool {
    matches!(
        spec.network.mode,
        NetworkMode::Bridge(_) | NetworkMode::Pasta | NetworkMode::Slirp
    )
}

/// Host steps before the container process exists.
pub(super) fn before_spawn(b: &mut B, spec: &Spec, facts: &HostFacts, state: &Path) {
    let net = &spec.network;
    if let NetworkMode::Bridge(br) = &net.mode {
        b.push(
            format!(
                "make sure bridge {} ({}) exists and is up, with launch's nftables table and the \
                 bridge's masquerade (kept, shared by its containers)",
                br.bridge, br.subnet
            ),
            HostAction::NetBridge {
                name: br.bridge.clone(),
                subnet: br.subnet,
            },
        );
        if br.ip_forward {
            b.push(
                "turn on IPv4 forwarding, for outbound traffic (asked for by `ip_forward`; kept)",
                HostAction::IpForward,
            );
        }
        b.push(
            match br.address {
                Some(a) => format!("lease {a} on {}", br.bridge),
                None => format!("lease a free address on {}", br.bridge),
            },
            HostAction::LeaseAddress {
                dir: facts.state_root.clone(),
                bridge: br.bridge.clone(),
                subnet: br.subnet,
                address: br.address,
            },
        );
        if !net.ports.is_empty() {
            b.push(
                format!(
                    "publish {}",
                    net.ports
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                HostAction::PublishPorts {
                    ports: net.ports.clone(),
                },
            );
        }
    }
    if writes_files(spec) {
        let files = Files {
            hostname: spec.hostname.clone(),
            nameservers: net
                .dns
                .clone()
                .unwrap_or_else(|| facts.network.nameservers.clone()),
            search: net
                .dns_search
                .clone()
                .unwrap_or_else(|| facts.network.search.clone()),
            hosts: net.hosts.iter().map(|(n, a)| (n.clone(), *a)).collect(),
            address: match &net.mode {
                NetworkMode::Bridge(br) => br.address,
                NetworkMode::Slirp => Some(SLIRP_ADDRESS),
                NetworkMode::None | NetworkMode::Host | NetworkMode::Pasta => None,
            },
            leased: matches!(&net.mode, NetworkMode::Bridge(br) if br.address.is_none()),
        };
        b.push(
            if spec.hostname.is_some() {
                "write the container's /etc/resolv.conf, /etc/hosts and /etc/hostname"
            } else {
                "write the container's /etc/resolv.conf and /etc/hosts"
            },
            HostAction::NetworkFiles {
                dir: state.to_path_buf(),
                files,
            },
        );
    }
}

/// Whether the container's network is connected while it sets itself up (a bridge): then
/// [`release`] releases it early and [`ContainerAction::AwaitNetwork`] holds it before its
/// command.
pub(super) fn connected_during_setup(spec: &Spec) -> bool {
    matches!(spec.network.mode, NetworkMode::Bridge(_))
}

/// The release of the container process, and for a bridge the connection made meanwhile: the
/// veth's creation and configuration (rtnl requests that wait on the kernel's lock, which a
/// previous container's namespace teardown may hold) overlap the container's mounts.
///
/// `meanwhile`: a step the launcher runs while the container process sets itself up (its
/// /proc, crate::sys::procfs), after an early release.
pub(super) fn release(b: &mut B, spec: &Spec, meanwhile: Option<crate::plan::Step>) {
    let NetworkMode::Bridge(br) = &spec.network.mode else {
        match meanwhile {
            Some(step) => {
                b.push(
                    "release the container process to set itself up",
                    HostAction::ReleaseEarly,
                );
                b.steps.push(step);
                b.push(
                    "wait for the container process to start its command",
                    HostAction::AwaitStart,
                );
            }
            None => b.push("release the container process", HostAction::Release),
        }
        return;
    };
    b.push(
        "release the container process to set itself up; it waits for its network before its \
         command",
        HostAction::ReleaseUntilNetwork,
    );
    // (No /proc of the launcher's with a bridge: see lower::launcher_proc.)
    b.steps.extend(meanwhile);
    b.push(
        format!(
            "meanwhile, connect the container to {}: a veth pair, eth0 inside with the leased \
             address and a default route",
            br.bridge
        ),
        HostAction::Veth {
            bridge: br.bridge.clone(),
            host: crate::sys::net::link::veth_name(&format!("{}-{ID_PLACEHOLDER}", spec.name)),
            peer: "eth0".into(),
            subnet: br.subnet,
        },
    );
    b.push(
        "tell the container process its network is connected; wait for its command to start",
        HostAction::NetworkReady,
    );
}

/// Host steps once the container process exists (after its id maps), before its release.
pub(super) fn after_spawn(b: &mut B, spec: &Spec, facts: &HostFacts) {
    let net = &spec.network;
    let pid_ns = |kind: &str| format!("/proc/{PID_PLACEHOLDER}/ns/{kind}");
    match &net.mode {
        NetworkMode::Bridge(_) => {}
        NetworkMode::Pasta => {
            let program = facts
                .network
                .pasta
                .as_ref()
                .map_or("pasta".into(), |p| p.display().to_string());
            let ports = |proto: Protocol| {
                let v: Vec<String> = net
                    .ports
                    .iter()
                    .filter(|p| p.protocol == proto)
                    .map(|p| {
                        let bind = if p.host_address.is_unspecified() {
                            String::new()
                        } else {
                            format!("{}/", p.host_address)
                        };
                        format!("{bind}{}:{}", p.host_port, p.container_port)
                    })
                    .collect();
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(",")
                }
            };
            let mut argv: Vec<String> = vec![
                program,
                "--config-net".into(),
                "--quiet".into(),
                // Nothing of the host's loopback or its services behind the gateway address:
                // the container reaches the host as any outside machine would.
                "--no-map-gw".into(),
                "-t".into(),
                ports(Protocol::Tcp),
                "-u".into(),
                ports(Protocol::Udp),
                "-T".into(),
                "none".into(),
                "-U".into(),
                "none".into(),
            ];
            argv.push(PID_PLACEHOLDER.into());
            b.push(
                "connect the container's network namespace through pasta (outbound traffic, \
                 published ports)",
                HostAction::NetHelper { argv },
            );
        }
        NetworkMode::Slirp => {
            let program = facts
                .network
                .slirp4netns
                .as_ref()
                .map_or("slirp4netns".into(), |p| p.display().to_string());
            let argv = vec![
                program,
                "--configure".into(),
                "--mtu=65520".into(),
                // Not the host's 127.0.0.1 through 10.0.2.2; and a seccomp filter on slirp4netns
                // itself, as podman runs it. (Not its `--enable-sandbox`: it needs to become gid 0
                // in the container's user namespace, which fails with maps like `user = true`.)
                "--disable-host-loopback".into(),
                "--enable-seccomp".into(),
                format!("--userns-path={}", pid_ns("user")),
                "--netns-type=path".into(),
                pid_ns("net"),
                "tap0".into(),
            ];
            b.push(
                "connect the container's network namespace through slirp4netns (outbound traffic)",
                HostAction::NetHelper { argv },
            );
        }
        NetworkMode::None | NetworkMode::Host => {}
    }
}

/// Container steps: bind launch's files over the root's own (made as empty files where the
/// root has none), after the root and before the manifest's mounts, which may replace them.
pub(super) fn binds(b: &mut B, spec: &Spec, root: &Path, state: &Path) {
    if !writes_files(spec) {
        return;
    }
    b.push(
        "create /etc in the root unless it exists",
        ContainerAction::Mkdir {
            path: root.join("etc"),
            mode: 0o755,
        },
    );
    for (name, at) in NAMES {
        if name == "hostname" && spec.hostname.is_none() {
            continue;
        }
        let target = super::fs::under(root, Path::new(at));
        b.push(
            format!("create the mount point {at}"),
            ContainerAction::Touch {
                path: target.clone(),
            },
        );
        b.push(
            format!("bind launch's {at}"),
            ContainerAction::Mount {
                source: state.join(name).display().to_string(),
                target,
                fstype: "none".into(),
                flags: vec![MountFlag::MS_BIND],
                data: None,
            },
        );
    }
}
