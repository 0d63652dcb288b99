//! Fields a bundle may hold when they ask for exactly what launch does anyway: no capability
//! dropped, no device restricted, launch's own minimal /dev. `launch export oci` writes them so
//! that other runtimes run the bundle as launch does; on the way back they are accepted (and
//! the /dev mounts dropped: launch makes that /dev itself when no mount targets /dev). Anything
//! else in these fields is refused, as the security fields are.

use serde_json::Value;

use crate::lower::DEV_NODES;

use super::super::all_caps;

fn set(v: Option<&Value>) -> Option<Vec<&str>> {
    match v {
        None | Some(Value::Null) => Some(vec![]),
        Some(Value::Array(a)) => a.iter().map(Value::as_str).collect(),
        Some(_) => None,
    }
}

fn all(s: &[&str]) -> bool {
    all_caps().iter().all(|c| s.contains(c))
}

/// `process.capabilities` asking for what launch gives: every capability in the bounding set,
/// all of them held by root and none by another user (setuid(2) clears them), nothing
/// inheritable or ambient.
pub(super) fn capabilities_are_launchs(caps: &Value, uid: Option<u32>) -> bool {
    let Value::Object(m) = caps else {
        return false;
    };
    if m.keys().any(|k| {
        ![
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ]
        .contains(&k.as_str())
    }) {
        return false;
    }
    let (Some(b), Some(e), Some(p), Some(i), Some(a)) = (
        set(m.get("bounding")),
        set(m.get("effective")),
        set(m.get("permitted")),
        set(m.get("inheritable")),
        set(m.get("ambient")),
    ) else {
        return false;
    };
    let held_ok = |s: &[&str]| match uid {
        Some(0) => all(s),
        Some(_) => s.is_empty(),
        None => false,
    };
    all(&b) && held_ok(&e) && held_ok(&p) && i.is_empty() && a.is_empty()
}

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

/// `linux.resources.devices` allowing every device: launch restricts none.
pub(super) fn device_rules_are_launchs(rules: &Value) -> bool {
    let Value::Array(list) = rules else {
        return false;
    };
    let allow_all = serde_json::json!({"allow": true, "access": "rwm"});
    !list.is_empty() && list.iter().all(|r| *r == allow_all)
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
