//! `[process]`: argv, environment, working directory, ids.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Cx, container_path};
use crate::diag::Problem;
use crate::manifest::{IdSpec, Process, Sp};
use crate::spec::{self, Namespaces, Rlimit, Root, StopPolicy, User, UserNamespace};

/// PATH when the manifest sets none: the usual one for a root shell on Debian.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The most descriptors `preserve_fds` passes on (the kernel's default `nr_open` is 1048576;
/// socket activation passes a handful).
const MAX_PRESERVE_FDS: u32 = 1 << 16;

/// A signal name (`"SIGTERM"`, `"TERM"`, any case) in its canonical form.
fn signal_name(cx: &mut Cx, v: &Sp<String>) -> String {
    let up = v.trim().to_ascii_uppercase();
    let full = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    match full.parse::<nix::sys::signal::Signal>() {
        Ok(sig) => sig.as_str().to_owned(),
        Err(_) => {
            cx.push(
                Problem::new(
                    "launch::process::signal",
                    v.span(),
                    format!("`{}` is not a signal", v.get()),
                )
                .label("expected a signal name")
                .help("write a name like \"SIGTERM\", \"SIGINT\", \"SIGQUIT\" or \"SIGUSR1\""),
            );
            "SIGTERM".into()
        }
    }
}

fn no_nul(cx: &mut Cx, v: &Sp<String>, what: &str) {
    if v.contains('\0') {
        cx.push(
            Problem::new(
                "launch::process::nul",
                v.span(),
                format!("{what} contains a NUL character"),
            )
            .label("execve cannot pass this")
            .help("remove the \\0 from the string"),
        );
    }
}

pub(crate) fn check(
    cx: &mut Cx,
    p: &Sp<Process>,
    ns: &Namespaces,
    hostname: Option<&str>,
    root: &Root,
    rlimits: Vec<Rlimit>,
) -> spec::Process {
    let mut argv = Vec::new();
    // A missing `command` was reported by `super::image::process`.
    if let Some(command) = &p.command {
        if command.is_empty() {
            cx.push(
                Problem::new(
                    "launch::process::command_empty",
                    command.span(),
                    "`command` is empty",
                )
                .label("nothing to run")
                .help("name the program to run, e.g. `command = [\"/bin/sh\"]`"),
            );
        }
        if command.first().is_some_and(|c| c.is_empty()) {
            cx.push(
                Problem::new(
                    "launch::process::command_empty",
                    command.span(),
                    "the program name is empty",
                )
                .label("argv[0] is \"\"")
                .help("name the program to run, e.g. `command = [\"/bin/sh\"]`"),
            );
        }
        for a in command.iter().chain(p.args.iter()) {
            no_nul(cx, a, "an argument");
            argv.push(a.get().clone());
        }
    }
    let cwd = match &p.cwd {
        Some(c) => container_path(cx, c, "launch::process::cwd", "working directory"),
        None => PathBuf::from("/"),
    };
    let ids = super::accounts::resolve(cx, p, root);
    let (uid, gid, groups) = (ids.uid, ids.gid, ids.groups.clone());
    if let UserNamespace::New(maps) = &ns.user {
        let facts = cx.host.facts();
        let (uid_map, gid_map) = maps.lines(facts.uid, facts.gid);
        let check = |cx: &mut Cx,
                     v: Option<&Sp<IdSpec>>,
                     id: u32,
                     lines: &[crate::plan::IdMapLine],
                     what: &str| {
            if crate::sys::idmap::host_id(lines, id).is_none() {
                let span = v.map_or(p.span().start..p.span().start, Sp::span);
                cx.push(
                    Problem::new(
                        "launch::idmap::unmapped",
                        span,
                        format!("{what} {id} is not mapped in the user namespace"),
                    )
                    .label("the kernel would refuse to switch to it")
                    .help(format!(
                        "add {id} to the namespace's {}, or run as a mapped id",
                        if what == "user" { "uid_map" } else { "gid_map" }
                    )),
                );
            }
        };
        check(cx, p.user.as_ref(), uid, &uid_map, "user");
        // A group taken from the named user points at the user.
        check(
            cx,
            p.group.as_ref().or(p.user.as_ref()),
            gid,
            &gid_map,
            "group",
        );
        match &p.groups {
            Some(gs) => {
                for (g, v) in groups.iter().zip(gs.iter()) {
                    check(cx, Some(v), *g, &gid_map, "group");
                }
            }
            None => {
                for g in &groups {
                    check(cx, p.user.as_ref(), *g, &gid_map, "group");
                }
            }
        }
    }
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), DEFAULT_PATH.into());
    let home = match &ids.home {
        Some(h) => h.clone(),
        None if uid == 0 => "/root".into(),
        None => "/".into(),
    };
    env.insert("HOME".into(), home);
    if let Some(h) = hostname {
        env.insert("HOSTNAME".into(), h.to_owned());
    }
    let terminal = p.terminal.as_ref().map(|t| *t.get());
    if terminal == Some(true) {
        env.insert("TERM".into(), "xterm".into());
    }
    for (k, v) in &p.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            cx.push(
                Problem::new(
                    "launch::process::env_name",
                    k.span(),
                    format!("`{}` is not a valid variable name", k.get()),
                )
                .label("names cannot be empty or contain `=`")
                .help("rename the variable, e.g. `MY_VAR`"),
            );
        }
        no_nul(cx, v, "an environment value");
        env.insert(k.get().clone(), v.get().clone());
    }
    let init = p.init.as_ref().is_some_and(|i| *i.get());
    if let Some(i) = p.init.as_ref().filter(|i| *i.get())
        && !ns.pid.isolated()
    {
        // launch-init is the container's PID 1 only in a PID namespace of its own; in the host's
        // it would be one more process that neither reaps the container's orphans (they go to
        // the host's init) nor gets the signals meant for the container's PID 1.
        cx.push(
            Problem::new(
                "launch::process::init_needs_pid",
                i.span(),
                "`init = true` needs a PID namespace",
            )
            .label("launch-init is PID 1 only in a PID namespace of its own")
            .help("set `pid = true` under [namespaces] (the default), or remove `init = true`"),
        );
    }
    let preserve_fds = match &p.preserve_fds {
        None => 0,
        Some(n) => match u32::try_from(*n.get()) {
            Ok(v) if v <= MAX_PRESERVE_FDS => v,
            Ok(_) | Err(_) => {
                cx.push(
                    Problem::new(
                        "launch::process::preserve_fds",
                        n.span(),
                        format!("cannot pass {} descriptors", n.get()),
                    )
                    .label(format!("must be from 0 to {MAX_PRESERVE_FDS}"))
                    .help("give the number of descriptors after stderr to pass on, e.g. `preserve_fds = 1` for fd 3"),
                );
                0
            }
        },
    };
    let stop_signal = match &p.stop_signal {
        None => "SIGTERM".to_string(),
        Some(sig) => signal_name(cx, sig),
    };
    let stop_timeout_ms = match &p.stop_timeout {
        None => 10_000,
        Some(t) => crate::manifest::units::parse_duration_ms(t.get()).unwrap_or_else(|e| {
            cx.push(
                Problem::new(
                    "launch::units::duration",
                    t.span(),
                    format!("invalid duration {}: {e}", t.get()),
                )
                .label("expected a duration like \"10s\" or \"500ms\"")
                .help("write a number with ms, s, m or h, e.g. `stop_timeout = \"5s\"`"),
            );
            0
        }),
    };
    spec::Process {
        args: argv,
        env,
        cwd,
        user: User {
            uid,
            gid,
            groups,
            name: ids.user_name,
        },
        rlimits,
        terminal,
        init,
        preserve_fds,
        stop: StopPolicy {
            signal: stop_signal,
            timeout_ms: stop_timeout_ms,
        },
        from_image: Vec::new(),
    }
}

/// The working directory must exist in a directory root used in place (runc and crun fail the
/// chdir at run time; a writable or image root's overlay, or a mount there, may provide it).
pub(super) fn cwd_exists(
    cx: &mut Cx,
    p: &Process,
    cwd: &Path,
    root: &crate::spec::Root,
    mounts: &[crate::spec::Mount],
) {
    let crate::spec::RootSource::Path { path } = &root.source else {
        return;
    };
    if root.writable || cwd == Path::new("/") || mounts.iter().any(|m| cwd.starts_with(&m.target)) {
        return;
    }
    let rel = cwd.strip_prefix("/").unwrap_or(cwd);
    if cx.host.dir_in_root(path, rel) != Some(false) {
        return;
    }
    let Some(c) = &p.cwd else { return };
    cx.push(
        Problem::new(
            "launch::process::cwd",
            c.span(),
            format!("{} is not a directory in the root", cwd.display()),
        )
        .label(format!("not found in {}", path.display()))
        .help("create it in the root directory, mount something there, or choose another `cwd`"),
    );
}
