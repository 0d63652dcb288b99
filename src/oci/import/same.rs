//! Fields a bundle may hold when they ask for exactly what launch does anyway: launch's own
//! minimal /dev, as mounts and device nodes. `launch export oci` writes them so that other
//! runtimes run the bundle as launch does; on the way back they are accepted (and the /dev mounts
//! dropped: launch makes that /dev itself when no mount targets /dev). Other `linux.devices`
//! are refused, as the security fields launch does not apply are.

use serde_json::Value;

use crate::lower::DEV_NODES;

/// `linux.devices` listing exactly the nodes of launch's minimal /dev (the runtime-spec's
/// default devices), each a 0666 character device owned by root.
pub(super) fn devices_are_launchs(devices: &Value) -> bool {
    let Value::Array(list) = devices else {
        return false;
    };
    list.len() == DEV_NODES.len()
        && DEV_NODES
            .iter()
            .zip(list)
            .all(|(&(name, major, minor), d)| {
                let want = serde_json::json!({
                    "path": format!("/dev/{name}"),
                    "type": "c",
                    "major": major,
                    "minor": minor,
                    "fileMode": 0o666,
                    "uid": 0,
                    "gid": 0,
                });
                *d == want
            })
}

/// The mounts of launch's minimal /dev, as `launch export oci` writes them (lower/fs.rs).
pub(super) fn minimal_dev_mounts() -> [Value; 3] {
    [
        serde_json::json!({
            "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "noexec", "mode=0755", "size=65536k"]
        }),
        serde_json::json!({
            "destination": "/dev/pts", "type": "devpts", "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
        }),
        serde_json::json!({
            "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "nodev", "noexec", "mode=1777"]
        }),
    ]
}

/// A tmpfs on /dev with the options of launch's minimal /dev (any order, `mode=755` or
/// `mode=0755`), as `runc spec` writes it less `strictatime`: launch makes that /dev itself, with
/// the runtime-spec's default device nodes, which a bundle's own /dev mount would go without.
pub(super) fn is_launchs_dev_tmpfs(m: &Value) -> bool {
    if m.get("destination").and_then(Value::as_str) != Some("/dev")
        || m.get("type").and_then(Value::as_str) != Some("tmpfs")
    {
        return false;
    }
    let known = ["destination", "type", "source", "options"];
    if m.as_object()
        .is_some_and(|o| o.keys().any(|k| !known.contains(&k.as_str())))
    {
        return false;
    }
    let Some(Value::Array(opts)) = m.get("options") else {
        return false;
    };
    let mut opts: Vec<&str> = opts
        .iter()
        .filter_map(Value::as_str)
        .map(|o| if o == "mode=755" { "mode=0755" } else { o })
        .collect();
    opts.sort_unstable();
    opts == ["mode=0755", "noexec", "nosuid", "size=65536k"]
}
