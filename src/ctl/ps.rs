//! `launch ps`: the running containers, with what they use.

use std::path::Path;

use serde::Serialize;

use crate::exec::state;
use crate::exit;
use crate::manifest::units::human_size;

/// One row of `launch ps --format json`.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The manifest's name.
    pub name: String,
    /// The instance, `name-<id>`.
    pub instance: String,
    /// The container's main process (host pid).
    pub pid: i32,
    /// The launcher's pid.
    pub launcher_pid: i32,
    /// Unix time it started.
    pub started: u64,
    /// Seconds since it started.
    pub uptime_seconds: u64,
    /// Its manifest.
    pub manifest: String,
    /// CPU time so far (ns), if it has a CPU-accounting cgroup.
    pub cpu_ns: Option<u64>,
    /// Memory in use (bytes), if it has a memory cgroup.
    pub memory_bytes: Option<u64>,
    /// Its network mode (`none`, `host`, `bridge`, `pasta`, `slirp`; empty while starting).
    pub network: String,
    /// Its address on the bridge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::Ipv4Addr>,
    /// Its published ports, `127.0.0.1:8080->80/tcp`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Still starting: its launcher is bringing the image in, there is no container yet (`pid`
    /// is 0). Only present when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub starting: bool,
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// A start record's row (see [`crate::exec::starting`]): started when its directory was made.
fn starting_row(i: &state::Instance, manifest: &str, now: u64) -> Row {
    use std::os::unix::fs::MetadataExt;
    let started = std::fs::symlink_metadata(&i.dir).map_or(now, |m| m.mtime().max(0) as u64);
    Row {
        name: i.name(),
        instance: i.instance(),
        pid: 0,
        launcher_pid: i.launcher.map_or(0, |l| l.0),
        started,
        uptime_seconds: now.saturating_sub(started),
        manifest: manifest.to_owned(),
        cpu_ns: None,
        memory_bytes: None,
        network: String::new(),
        address: None,
        ports: vec![],
        starting: true,
    }
}

/// The rows for every live instance with a state file, and every live start record.
pub fn rows(root: &Path) -> Vec<Row> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let live: Vec<state::Instance> = state::list(root).into_iter().filter(|i| i.alive).collect();
    let starting = live
        .iter()
        .filter_map(|i| Some(starting_row(i, i.starting.as_deref()?, now)));
    live.iter()
        .filter_map(|i| i.state.clone())
        .map(|s| {
            let u = crate::sys::cgroup::usage(&s.cgroups, crate::sys::cgroup::Want::Now);
            let (cpu_ns, memory_bytes) = (u.cpu_ns, u.memory_current);
            Row {
                name: s.name,
                instance: s.instance,
                pid: s.pid,
                launcher_pid: s.launcher_pid,
                started: s.started,
                uptime_seconds: now.saturating_sub(s.started),
                manifest: s.manifest,
                cpu_ns,
                memory_bytes,
                network: s.network.mode.clone(),
                address: s.network.address,
                ports: s.network.ports.iter().map(|p| p.to_string()).collect(),
                starting: false,
            }
        })
        .chain(starting)
        .collect()
}

/// `launch ps --names`: each running container's manifest name, then each instance, one a line,
/// sorted (what `launch stop` and `launch exec` take as NAME). The completion scripts call it;
/// it reads no cgroup, to answer at once.
pub fn names(root: &Path) -> u8 {
    let live: Vec<state::Instance> = state::list(root).into_iter().filter(|i| i.alive).collect();
    let names: std::collections::BTreeSet<String> = live.iter().map(|i| i.name()).collect();
    let instances: std::collections::BTreeSet<String> = live.iter().map(|i| i.instance()).collect();
    let mut out = String::new();
    for n in names.iter().chain(&instances) {
        out.push_str(n);
        out.push('\n');
    }
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(_) => exit::LAUNCHER,
    }
}

/// `launch ps [--format json]`.
pub fn ps(root: &Path, json: bool) -> u8 {
    let rows = rows(root);
    let out = if json {
        serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
    } else {
        let mut out = format!(
            "{:<24} {:>8} {:>8} {:>10} {:>10}  {:<16} {:<24} {}\n",
            "NAME", "PID", "UPTIME", "CPU", "MEMORY", "NETWORK", "PORTS", "MANIFEST"
        );
        for r in &rows {
            let cpu = r
                .cpu_ns
                .map_or("-".to_string(), |n| format!("{:.2}s", n as f64 / 1e9));
            let mem = r.memory_bytes.map_or("-".to_string(), human_size);
            let pid = match r.starting {
                true => "starting".to_owned(),
                false => r.pid.to_string(),
            };
            // The address where there is one, else the mode.
            let net = match (&r.address, r.network.as_str()) {
                (Some(a), _) => a.to_string(),
                (None, "") => "-".to_owned(),
                (None, m) => m.to_owned(),
            };
            let ports = match r.ports.is_empty() {
                true => "-".to_owned(),
                false => r.ports.join(","),
            };
            out.push_str(&format!(
                "{:<24} {:>8} {:>8} {:>10} {:>10}  {:<16} {:<24} {}\n",
                r.instance,
                pid,
                uptime(r.uptime_seconds),
                cpu,
                mem,
                net,
                ports,
                r.manifest
            ));
        }
        out
    };
    print!("{out}");
    exit::OK
}
