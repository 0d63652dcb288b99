//! An image root's config as the defaults of `[process]`: its Entrypoint and Cmd, Env,
//! WorkingDir, User and StopSignal fill in what the manifest leaves out. The manifest always
//! wins, key by key (and `env` name by name); each value taken from the image is recorded in
//! the Spec (`process.from_image`) so the plan says where it came from.
//!
//! The command follows Kubernetes' rule, which maps Docker's two fields onto the manifest's
//! two: `command` replaces Entrypoint *and* Cmd; `args` alone keeps the Entrypoint and
//! replaces the Cmd; neither runs Entrypoint + Cmd.
//!
//! The image's values are merged into a copy of the manifest's `[process]` table whose spans
//! point at the manifest's image value, so the checks that follow (NUL bytes, an absolute cwd,
//! a user found in the image's /etc/passwd) hold for them too and point somewhere useful.

use std::ops::Range;

use super::Cx;
use crate::diag::Problem;
use crate::image::config::ImageConfig;
use crate::manifest::{IdSpec, Manifest, Process, Sp};

/// The manifest's `[process]` with the image's defaults filled in, and the names of the
/// settings the image gave (`command`, `env PATH`, `cwd`, `user`, `stop_signal`). `command` is
/// `None` only when nothing gives one; that is reported here.
pub(crate) fn process(cx: &mut Cx, m: &Manifest) -> (Sp<Process>, Vec<String>) {
    let image = image_of(cx, m);
    let mut from = Vec::new();
    let Some((config, span)) = image else {
        let p = match &m.process {
            Some(p) => p.clone(),
            None => {
                let at = crate::manifest::first_line(&cx.source.text, 0..0);
                cx.push(missing(
                    at,
                    "process",
                    "this table needs `process`",
                    "add a `[process]` table; see docs/manifest.md",
                ));
                Sp::new(0..0, Process::default())
            }
        };
        if m.process.is_some() && p.command.is_none() {
            let at = crate::manifest::first_line(&cx.source.text, p.span());
            cx.push(missing(
                at,
                "command",
                "this table needs `command`",
                "add `command = ...`; see docs/manifest.md",
            ));
        }
        return (p, from);
    };
    let d = config.defaults();
    let (table, mut p) = match &m.process {
        Some(p) => (p.span(), p.get().clone()),
        None => (span.clone(), Process::default()),
    };
    let at = |v: String| Sp::new(span.clone(), v);
    if p.command.is_none() {
        let mut argv: Vec<String> = d.entrypoint.clone().unwrap_or_default();
        if p.args.is_empty() {
            argv.extend(d.cmd.clone().unwrap_or_default());
        }
        if argv.is_empty() && !p.args.is_empty() {
            // No Entrypoint: `args` are the whole command line, as `docker run IMAGE ARGS` is.
            let args = std::mem::take(&mut p.args);
            p.command = Some(Sp::new(args[0].span(), args));
        } else if argv.is_empty() {
            cx.push(missing(
                span.clone(),
                "command",
                "this image sets no Entrypoint or Cmd",
                "add `[process] command = [...]`",
            ));
        } else {
            from.push("command".to_owned());
            p.command = Some(Sp::new(span.clone(), argv.into_iter().map(at).collect()));
        }
    }
    for (k, v) in config.env() {
        if !p.env.keys().any(|m| *m.get() == k) {
            from.push(format!("env {k}"));
            p.env.insert(at(k), at(v));
        }
    }
    if let (None, Some(dir)) = (&p.cwd, d.working_dir.filter(|w| !w.is_empty())) {
        from.push("cwd".to_owned());
        p.cwd = Some(at(dir));
    }
    if let (None, None, Some(user)) = (&p.user, &p.group, d.user.filter(|u| !u.is_empty())) {
        from.push("user".to_owned());
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u.to_owned(), Some(g.to_owned())),
            None => (user, None),
        };
        p.user = Some(Sp::new(span.clone(), id_spec(u)));
        p.group = g.map(|g| Sp::new(span.clone(), id_spec(g)));
    }
    if let (None, Some(sig)) = (&p.stop_signal, d.stop_signal.filter(|s| !s.is_empty())) {
        from.push("stop_signal".to_owned());
        p.stop_signal = Some(at(sig));
    }
    (Sp::new(table, p), from)
}

/// The config of the image the manifest's root names, and the span of its value, when the root
/// is an image that was resolved (validation of the root reports the rest).
fn image_of(cx: &Cx, m: &Manifest) -> Option<(ImageConfig, Range<usize>)> {
    let r = m.rootfs.get();
    let (kind, v) = [
        ("image", &r.image),
        ("oci", &r.oci),
        ("docker_archive", &r.docker_archive),
    ]
    .into_iter()
    .find_map(|(k, v)| v.as_ref().map(|v| (k, v)))?;
    let key = crate::image::resolve::key(kind, v.get(), cx.dir_at(v));
    let resolved = cx.host.image(&key)?;
    Some((resolved.config.clone(), v.span()))
}

/// A number is a uid or gid; anything else a name for the image's /etc/passwd or /etc/group.
fn id_spec(s: String) -> IdSpec {
    match s.parse::<u32>() {
        Ok(n) => IdSpec::Id(i64::from(n)),
        Err(_) => IdSpec::Name(s),
    }
}

fn missing(span: Range<usize>, key: &str, label: &str, help: &str) -> Problem {
    Problem::new(
        "launch::manifest::missing_key",
        span,
        format!("missing required key `{key}`"),
    )
    .label(label.to_owned())
    .help(help.to_owned())
}
