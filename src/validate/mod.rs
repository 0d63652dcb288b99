//! Validation: [`Manifest`] + host facts → [`Spec`], or every problem at once.
//!
//! Each file checks one part of the manifest and produces a typed piece of the Spec (no spans, no
//! options left open). Checks never stop at the first problem: they record it and go on with a
//! neutral value. Host facts are read only to ask whether this host can do what the manifest
//! says (a controller, a namespace kind, a bind source), so the answer points into the manifest;
//! how it is done on this host is [`crate::lower`]'s business.

mod accounts;
mod envfile;
mod image;
mod limits;
mod mounts;
mod namespaces;
mod network;
mod process;
mod rootfs;
mod security;

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use crate::diag::Problem;
use crate::host::Host;
use crate::manifest::{Manifest, Source, Sp};
use crate::plan::Plan;
use crate::spec::{Spec, UserNamespace};

/// Parse and validate a manifest, and lower it into this host's plan.
pub fn plan(source: &Source, host: &dyn Host) -> Result<Plan, Vec<Problem>> {
    let manifest = crate::manifest::parse(source)?;
    let spec = validate(source, &manifest, host)?;
    let mut plan = crate::lower::lower(&spec, host.facts(), &source.display_name);
    // Without hashing archives: that is `launch lock`'s and a locked run's cost. Nothing else
    // here can fail.
    plan.inputs = crate::lock::inputs(source, &manifest, &spec, false).unwrap_or_default();
    Ok(plan)
}

/// Parse and validate a manifest into its Spec.
pub fn spec(source: &Source, host: &dyn Host) -> Result<Spec, Vec<Problem>> {
    let manifest = crate::manifest::parse(source)?;
    validate(source, &manifest, host)
}

/// Validate a parsed manifest against the host's facts.
pub fn validate(source: &Source, m: &Manifest, host: &dyn Host) -> Result<Spec, Vec<Problem>> {
    let mut cx = Cx {
        problems: Vec::new(),
        source: source.clone(),
        host,
    };
    let m = &*envfile::apply(&mut cx, m);
    let name = check_name(&mut cx, &m.name);
    let mut ns = namespaces::check(&mut cx, m);
    let network = network::check(&mut cx, m);
    // The namespace follows the mode; a joined one (OCI bundles) never comes from a manifest.
    ns.net = match network.mode {
        crate::spec::NetworkMode::Host => crate::spec::Namespace::Host,
        _ => crate::spec::Namespace::New,
    };
    let hostname = check_uts_name(&mut cx, m.hostname.as_ref(), "hostname", &ns);
    let domainname = check_uts_name(&mut cx, m.domainname.as_ref(), "domainname", &ns);
    let root = rootfs::check(&mut cx, &m.rootfs);
    // A persist directory is private to the launcher's user: a container root that is another
    // host user could not reach the upper directory in it.
    if let (UserNamespace::New(maps), Some(p)) = (&ns.user, &m.rootfs.get().persist) {
        let facts = cx.host.facts();
        let (uid_map, _) = maps.lines(facts.uid, facts.gid);
        if crate::sys::idmap::host_id(&uid_map, 0) != Some(facts.uid) {
            cx.push(
                Problem::new(
                    "launch::rootfs::persist",
                    p.span(),
                    "`persist` with a user namespace whose root is another host user",
                )
                .label("the persist directory is private to the launcher's user")
                .help(
                    "map the container's root to your own user (`user = true`), or remove \
                     `persist`",
                ),
            );
        }
    }
    let (limits, rlimits) = limits::check(&mut cx, m.limits.as_ref());
    let (merged, from_image) = image::process(&mut cx, m);
    let mut process = process::check(&mut cx, &merged, &ns, hostname.as_deref(), &root, rlimits);
    process.from_image = from_image;
    let mounts = mounts::check(&mut cx, &m.mounts, &ns);
    process::cwd_exists(&mut cx, &merged, &process.cwd, &root, &mounts);
    let security = security::check(&mut cx, m.security.as_ref());
    if !cx.problems.is_empty() {
        cx.problems.sort_by_key(|p| (p.span.start, p.span.end));
        return Err(cx.problems);
    }
    Ok(Spec {
        name,
        hostname,
        domainname,
        root,
        namespaces: ns,
        process,
        limits,
        mounts,
        multiple: flag(m.multiple.as_ref(), false),
        security,
        network,
    })
}

/// Validation context: where problems go, and what relative paths resolve against.
pub(crate) struct Cx<'h> {
    problems: Vec<Problem>,
    /// The manifest and its files: relative paths resolve against the folder of the file that
    /// wrote them, and messages name lines of the right file.
    source: Source,
    host: &'h dyn Host,
}

impl Cx<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// A path from the manifest, resolved against the folder of the file that wrote it.
    fn resolve(&self, p: &Sp<String>) -> PathBuf {
        let path = Path::new(p.get());
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            normalize(&self.dir_at(p).join(path))
        }
    }

    /// The folder relative paths in the value `p` resolve against.
    fn dir_at<T>(&self, p: &Sp<T>) -> &Path {
        self.source.dir_at(&p.span())
    }
}

/// Remove `.` and resolve `..` lexically (the manifest's folder is absolute, so this is exact for
/// paths without symlinks; symlinks are the filesystem's business at run time).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn check_name(cx: &mut Cx, name: &Sp<String>) -> String {
    if !crate::spec::valid_name(name.get()) {
        cx.push(
            Problem::new(
                "launch::name::invalid",
                name.span(),
                format!("`{}` is not a valid container name", name.get()),
            )
            .label("names the state directory and the cgroup")
            .help("use 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit"),
        );
    }
    name.get().clone()
}

fn check_uts_name(
    cx: &mut Cx,
    v: Option<&Sp<String>>,
    key: &str,
    ns: &crate::spec::Namespaces,
) -> Option<String> {
    let v = v?;
    if let Some(why) = crate::spec::uts_name_error(v.get()) {
        cx.push(
            Problem::new(
                "launch::hostname::invalid",
                v.span(),
                format!("`{}` is not a valid {key}: {why}", v.get()),
            )
            .label(crate::spec::UTS_NAME_RULE)
            .help(format!("write a {key} like `builder-1` or `db.example`")),
        );
    }
    if !ns.uts.isolated() {
        cx.push(
            Problem::new(
                "launch::hostname::needs_uts",
                v.span(),
                format!("`{key}` needs a UTS namespace"),
            )
            .label("this would rename the host")
            .help("set `uts = true` under [namespaces], or remove this key"),
        );
    }
    Some(v.get().clone())
}

/// Check a path *inside* the container: absolute, no `..`. Returns it normalized.
fn container_path(cx: &mut Cx, p: &Sp<String>, code: &'static str, what: &str) -> PathBuf {
    let path = Path::new(p.get().as_str());
    if !path.is_absolute() {
        cx.push(
            Problem::new(
                code,
                p.span(),
                format!("{what} `{}` is not absolute", p.get()),
            )
            .label("paths inside the container start with `/`")
            .help(format!("write `/{}`", p.get().trim_start_matches("./"))),
        );
    } else if path.components().any(|c| c == Component::ParentDir) {
        cx.push(
            Problem::new(
                code,
                p.span(),
                format!("{what} `{}` contains `..`", p.get()),
            )
            .label("`..` is not allowed here")
            .help("write the path without `..`"),
        );
    }
    normalize(path)
}

/// A size (`"512MiB"`, `"1G"`, `"1Gi"`, bytes), or a problem at it.
fn size(cx: &mut Cx, q: &Sp<crate::manifest::Quantity>) -> Option<u64> {
    if crate::manifest::units::is_unlimited(q.get()) {
        cx.push(
            Problem::new(
                "launch::units::size",
                q.span(),
                format!(
                    "invalid size {}: \"no limit\" is not a value this key takes",
                    q.get()
                ),
            )
            .label("expected a size like \"512MiB\" or \"1Gi\"")
            .help(
                "only `memory`, `memory_swap` and `memory_high` take \"max\" (no limit); \
                 here, write a size",
            ),
        );
        return None;
    }
    crate::manifest::units::parse_size(q.get())
        .map_err(|e| {
            cx.push(
                Problem::new(
                    "launch::units::size",
                    q.span(),
                    format!("invalid size {}: {e}", q.get()),
                )
                .label("expected a size like \"512MiB\" or \"1G\"")
                .help(
                    "write a number with a unit: B, KiB, MiB, GiB, TiB (K, M, G, T and Ki, Mi, \
                     Gi, Ti mean the same)",
                ),
            )
        })
        .ok()
}

/// The span of an optional value, or a fallback.
fn span_or<T>(v: Option<&Sp<T>>, fallback: Range<usize>) -> Range<usize> {
    v.map_or(fallback, Sp::span)
}

/// A bool key's value, or its default.
fn flag(v: Option<&Sp<bool>>, default: bool) -> bool {
    v.map_or(default, |b| *b.get())
}
