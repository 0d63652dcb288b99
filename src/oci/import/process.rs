//! `process`, `hostname` and `domainname`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{Cx, Launch, Node};
use crate::spec::{Namespaces, Process, Rlimit, RlimitResource, StopPolicy, User};

const PROCESS: &[&str] = &[
    "terminal",
    "consoleSize",
    "user",
    "args",
    "commandLine",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    "ioPriority",
    "scheduler",
    "execCPUAffinity",
];

/// The default stop policy, as for a manifest that sets none.
const STOP_SIGNAL: &str = "SIGTERM";
const STOP_TIMEOUT_MS: u64 = 10_000;

/// A signal name in its canonical form (`SIGTERM`).
pub(super) fn signal(cx: &mut Cx, n: &Node, s: &str) -> Option<String> {
    let up = s.trim().to_ascii_uppercase();
    let full = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    match full.parse::<nix::sys::signal::Signal>() {
        Ok(sig) => Some(sig.as_str().to_owned()),
        Err(_) => {
            cx.push(
                "launch::process::signal",
                n,
                format!("`{s}` is not a signal"),
                "expected a signal name",
                "write a name like \"SIGTERM\", \"SIGINT\", \"SIGQUIT\" or \"SIGUSR1\"",
            );
            None
        }
    }
}

/// An absolute path inside the container, without `..`, normalized.
pub(super) fn container_path(cx: &mut Cx, n: &Node, s: &str, what: &str) -> Option<PathBuf> {
    let p = Path::new(s);
    if !p.is_absolute() {
        cx.push(
            "launch::oci::value",
            n,
            format!("{what} `{s}` is not absolute"),
            "paths inside the container start with `/`",
            format!("write `/{}`", s.trim_start_matches("./")),
        );
        return None;
    }
    if p.components().any(|c| c == Component::ParentDir) {
        cx.push(
            "launch::oci::value",
            n,
            format!("{what} `{s}` contains `..`"),
            "`..` is not allowed here",
            "write the path without `..`",
        );
        return None;
    }
    Some(crate::validate::normalize(p))
}

fn no_nul(cx: &mut Cx, n: &Node, s: &str, what: &str) {
    if s.contains('\0') {
        cx.push(
            "launch::process::nul",
            n,
            format!("{what} contains a NUL character"),
            "execve cannot pass this",
            "remove the \\u0000 from the string",
        );
    }
}

pub(super) fn check(cx: &mut Cx, doc: &Node, launch: &Launch) -> Option<Process> {
    let n = cx.required(doc, "process", "the process to run, with `args` and `cwd`")?;
    let p = cx.object(&n, PROCESS)?;
    // `capabilities` and `noNewPrivileges` are read with the rest of the security part.
    cx.security(&p, &["apparmorProfile", "selinuxLabel"]);
    cx.unsupported(
        &p,
        &[
            (
                "consoleSize",
                "launch sizes the terminal from its own terminal",
            ),
            ("commandLine", "a Windows field: use `args`"),
            ("oomScoreAdj", "launch does not set the OOM score yet"),
            ("ioPriority", "launch does not set I/O priorities yet"),
            ("scheduler", "launch does not set scheduling policies yet"),
            (
                "execCPUAffinity",
                "launch does not set CPU affinity yet (use linux.resources.cpu.cpus)",
            ),
        ],
    );
    let terminal = match (
        cx.get(&p, "terminal").and_then(|t| cx.bool(&t)),
        launch.terminal,
    ) {
        // launch's own setting, which OCI can only approximate.
        (_, Some(t)) => t,
        // As runc: no `terminal` is no terminal.
        (t, None) => Some(t.unwrap_or(false)),
    };
    let args = cx
        .required(
            &p,
            "args",
            "the command and its arguments, e.g. [\"/bin/sh\"]",
        )
        .and_then(|a| {
            let v = cx.strs(&a)?;
            if v.is_empty() {
                cx.push(
                    "launch::oci::value",
                    &a,
                    "`args` is empty",
                    "needs the command at least",
                    "write the command and its arguments, e.g. [\"/bin/sh\", \"-c\", \"echo hi\"]",
                );
                return None;
            }
            for (i, s) in v.iter().enumerate() {
                let item = a.child(&i.to_string(), &a.v[i]);
                no_nul(cx, &item, s, "an argument");
            }
            Some(v)
        });
    let mut env = BTreeMap::new();
    if let Some(e) = cx.get(&p, "env") {
        if let Some(items) = cx.array(&e) {
            for item in items {
                let Some(s) = cx.str(&item) else { continue };
                match s.split_once('=') {
                    Some((k, v)) if !k.is_empty() => {
                        no_nul(cx, &item, &s, "an environment variable");
                        env.insert(k.to_owned(), v.to_owned());
                    }
                    _ => cx.push(
                        "launch::process::env_name",
                        &item,
                        format!("`{s}` is not NAME=value"),
                        "an environment entry is `NAME=value`",
                        "write the variable as `NAME=value`",
                    ),
                }
            }
        }
    }
    let cwd = cx
        .required(&p, "cwd", "the working directory, e.g. \"/\"")
        .and_then(|c| {
            let s = cx.str(&c)?;
            container_path(cx, &c, &s, "the working directory")
        });
    let user = user(cx, &p, launch);
    let rlimits = rlimits(cx, &p);
    Some(Process {
        args: args?,
        env,
        cwd: cwd?,
        user: user?,
        rlimits,
        terminal,
        init: launch.init,
        preserve_fds: launch.preserve_fds,
        stop: StopPolicy {
            signal: launch
                .stop_signal
                .clone()
                .unwrap_or_else(|| STOP_SIGNAL.into()),
            timeout_ms: launch.stop_timeout_ms.unwrap_or(STOP_TIMEOUT_MS),
        },
        from_image: Vec::new(),
    })
}

fn user(cx: &mut Cx, p: &Node, launch: &Launch) -> Option<User> {
    let u = cx.required(
        p,
        "user",
        "the ids to run as, e.g. {\"uid\": 0, \"gid\": 0}",
    )?;
    let u = cx.object(&u, &["uid", "gid", "umask", "additionalGids", "username"])?;
    cx.unsupported(
        &u,
        &[
            ("umask", "launch does not set the umask yet"),
            ("username", "a Windows field: give `uid` and `gid`"),
        ],
    );
    let uid = cx
        .required(&u, "uid", "the user id, e.g. 0")
        .and_then(|n| cx.u32(&n));
    let gid = cx
        .required(&u, "gid", "the group id, e.g. 0")
        .and_then(|n| cx.u32(&n));
    let mut groups = Vec::new();
    if let Some(g) = cx.get(&u, "additionalGids") {
        if let Some(items) = cx.array(&g) {
            for i in items {
                if let Some(v) = cx.u32(&i) {
                    groups.push(v);
                }
            }
        }
    }
    Some(User {
        uid: uid?,
        gid: gid?,
        groups,
        name: launch.user_name.clone(),
    })
}

fn rlimits(cx: &mut Cx, p: &Node) -> Vec<Rlimit> {
    let mut out = Vec::new();
    let Some(r) = cx.get(p, "rlimits") else {
        return out;
    };
    let Some(items) = cx.array(&r) else {
        return out;
    };
    for item in items {
        let Some(o) = cx.object(&item, &["type", "soft", "hard"]) else {
            continue;
        };
        let resource = cx
            .required(&o, "type", "the limit, e.g. \"RLIMIT_NOFILE\"")
            .and_then(|t| {
                let s = cx.str(&t)?;
                let r = s
                    .starts_with("RLIMIT_")
                    .then(|| RlimitResource::from_name(&s))
                    .flatten();
                if r.is_none() {
                    cx.push(
                        "launch::limits::rlimit_unknown",
                        &t,
                        format!("`{s}` is not a resource limit"),
                        "expected a name like RLIMIT_NOFILE",
                        "write one of RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_CORE, RLIMIT_STACK, ...",
                    );
                }
                r
            });
        // RLIM_INFINITY is how OCI writes "unlimited".
        let value = |cx: &mut Cx, key: &str| {
            cx.required(&o, key, "a number (18446744073709551615 for unlimited)")
                .and_then(|n| cx.u64(&n))
                .map(|v| (v != u64::MAX).then_some(v))
        };
        let soft = value(cx, "soft");
        let hard = value(cx, "hard");
        let (Some(resource), Some(soft), Some(hard)) = (resource, soft, hard) else {
            continue;
        };
        if soft.unwrap_or(u64::MAX) > hard.unwrap_or(u64::MAX) {
            cx.push(
                "launch::limits::rlimit_value",
                &o,
                "the soft limit is above the hard limit",
                "soft must be at most hard",
                "lower `soft` or raise `hard`",
            );
            continue;
        }
        out.push(Rlimit {
            resource,
            soft,
            hard,
        });
    }
    out
}

/// `hostname` or `domainname`: a valid name, and a UTS namespace of the container's own.
pub(super) fn uts_name(cx: &mut Cx, doc: &Node, key: &str, ns: &Namespaces) -> Option<String> {
    let n = cx.get(doc, key)?;
    let v = cx.str(&n)?;
    if v.is_empty() {
        // As runc: an empty name leaves the namespace's own.
        return None;
    }
    if let Some(why) = crate::spec::uts_name_error(&v) {
        cx.push(
            "launch::hostname::invalid",
            &n,
            format!("`{v}` is not a valid {key}: {why}"),
            crate::spec::UTS_NAME_RULE,
            format!("write a {key} like `builder-1` or `db.example`"),
        );
    }
    if !ns.uts.isolated() {
        cx.push(
            "launch::hostname::needs_uts",
            &n,
            format!("`{key}` needs a UTS namespace"),
            "this would rename the host",
            "add {\"type\": \"uts\"} to linux.namespaces, or remove this field",
        );
    }
    Some(v)
}
