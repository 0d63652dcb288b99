//! OCI runtime bundle → [`Spec`] (`launch run|plan|validate --bundle DIR`).
//!
//! config.json is parsed into a raw [`serde_json::Value`] and walked field by field, not read
//! through oci-spec's serde types: those ignore unknown fields and stop at the first wrong type,
//! and launch must report *every* problem, each at its JSON pointer and its line and column
//! ([`locate`]). Every field the walk reads is marked; whatever is left unmarked at the end is
//! reported, so nothing in a bundle is silently ignored. Fields launch cannot do yet are refused
//! by name (docs/oci.md lists them and why).

mod linux;
mod locate;
mod mounts;
mod process;
mod resources;
mod same;
mod security;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diag::{Problem, did_you_mean};
use crate::host::Host;
use crate::manifest::Source;
use crate::plan::Plan;
use crate::spec::{Root, RootSource, Spec};

pub use locate::Locator;

use super::annotations;

/// A bundle's config.json, read for diagnostics: named `DIR/config.json`, relative paths
/// resolving against the bundle directory.
pub fn read_bundle(dir: &Path) -> std::io::Result<Source> {
    let file = dir.join("config.json");
    let text = std::fs::read_to_string(&file)?;
    let abs = std::path::absolute(dir)?;
    Ok(Source::from_text(
        &file.display().to_string(),
        &crate::validate::normalize(&abs),
        &text,
    ))
}

/// A bundle's config.json (in `source`, whose `dir` is the bundle) → its Spec, or every problem.
pub fn spec(source: &Source, host: &dyn Host) -> Result<Spec, Vec<Problem>> {
    let value: Value = serde_json::from_str(&source.text).map_err(|e| {
        let offset = offset_of(&source.text, e.line(), e.column());
        vec![
            Problem::new(
                "launch::oci::json",
                offset..offset,
                format!("config.json is not valid JSON: {e}"),
            )
            .label("here")
            .help("fix the JSON syntax (a trailing comma, a missing quote or brace)"),
        ]
    })?;
    let loc = Locator::new(&source.text);
    convert(&value, &loc, &source.text, &source.dir, host)
}

/// Like [`spec`], lowered into this host's plan.
pub fn plan(source: &Source, host: &dyn Host) -> Result<Plan, Vec<Problem>> {
    let spec = spec(source, host)?;
    Ok(crate::lower::lower(
        &spec,
        host.facts(),
        &source.display_name,
    ))
}

/// An in-memory OCI config for the bundle directory `bundle` → its Spec. Problems have empty
/// spans (there is no text) but still name their pointers.
pub fn from_oci(
    oci: &oci_spec::runtime::Spec,
    bundle: &Path,
    host: &dyn Host,
) -> Result<Spec, Vec<Problem>> {
    let value = serde_json::to_value(oci).map_err(|e| {
        vec![
            Problem::new(
                "launch::oci::json",
                0..0,
                format!("cannot serialize the OCI config: {e}"),
            )
            .label("here")
            .help("this is a bug in launch: please report it"),
        ]
    })?;
    convert(&value, &Locator::empty(), "", bundle, host)
}

/// Byte offset of serde_json's 1-based line and column.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(text.len())
}

/// A value in the document and its pointer.
#[derive(Clone)]
pub(crate) struct Node<'v> {
    v: &'v Value,
    ptr: String,
}

impl<'v> Node<'v> {
    fn child(&self, key: &str, v: &'v Value) -> Node<'v> {
        Node {
            v,
            ptr: format!("{}/{}", self.ptr, locate::escape(key)),
        }
    }

    /// The pointer as users read it (`/` for the whole document).
    fn shown(&self) -> &str {
        if self.ptr.is_empty() { "/" } else { &self.ptr }
    }

    /// The last reference token: the field's name.
    fn key(&self) -> &str {
        self.ptr.rsplit('/').next().unwrap_or("")
    }
}

/// What a field is, for type errors.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether a value asks for nothing (`null`, `false`, `""`, `[]`, `{}`): such a field is
/// accepted even where launch cannot do what a real value would ask.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

/// The walk's state: problems so far, and which values were read.
pub(crate) struct Cx<'a> {
    loc: &'a Locator,
    /// config.json's text (empty for an in-memory config): a value read by a parser of its own
    /// (the seccomp profile) is parsed from it, so that its line and column are config.json's.
    text: &'a str,
    problems: Vec<Problem>,
    /// Objects and arrays walked into: their unread members are reported.
    visited: HashSet<String>,
    /// Values read (or refused) as a whole.
    handled: HashSet<String>,
    /// Field names an object may hold, for "did you mean".
    known: BTreeMap<String, &'static [&'static str]>,
    host: &'a dyn Host,
    /// The bundle directory (absolute): relative paths resolve against it.
    bundle: PathBuf,
}

impl<'a> Cx<'a> {
    /// A problem at `n`'s value.
    fn push(
        &mut self,
        code: &'static str,
        n: &Node,
        message: impl std::fmt::Display,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let span = self.loc.value(&n.ptr);
        self.push_at(code, span, n.shown(), message, label, help);
    }

    fn push_at(
        &mut self,
        code: &'static str,
        span: std::ops::Range<usize>,
        ptr: &str,
        message: impl std::fmt::Display,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.problems.push(
            Problem::new(code, span, format!("{ptr}: {message}"))
                .label(label)
                .help(help),
        );
    }

    /// Mark `n` as read, whole.
    fn take(&mut self, n: &Node) {
        self.handled.insert(n.ptr.clone());
    }

    fn type_error(&mut self, n: &Node, expected: &str) {
        self.take(n);
        self.push(
            "launch::oci::type",
            n,
            format!("expected {expected}, found {}", kind(n.v)),
            format!("should be {expected}"),
            format!(
                "write `{}` as {expected}, as the OCI runtime spec says",
                n.key()
            ),
        );
    }

    /// The member `key` of object `n`, if present and not null (a null member is read here).
    fn get<'v>(&mut self, n: &Node<'v>, key: &str) -> Option<Node<'v>> {
        let v = n.v.get(key)?;
        let c = n.child(key, v);
        if v.is_null() {
            self.take(&c);
            return None;
        }
        Some(c)
    }

    /// A member that must be there.
    fn required<'v>(&mut self, n: &Node<'v>, key: &str, what: &str) -> Option<Node<'v>> {
        let c = self.get(n, key);
        if c.is_none() {
            self.push(
                "launch::oci::missing",
                n,
                format!("`{key}` is missing"),
                format!("needs `{key}`"),
                format!("add `\"{key}\"`: {what}"),
            );
        }
        c
    }

    /// Walk into an object whose fields are `fields` (the OCI spec's, for suggestions).
    fn object<'v>(&mut self, n: &Node<'v>, fields: &'static [&'static str]) -> Option<Node<'v>> {
        if !n.v.is_object() {
            self.type_error(n, "an object");
            return None;
        }
        self.visited.insert(n.ptr.clone());
        self.known.insert(n.ptr.clone(), fields);
        Some(n.clone())
    }

    /// Walk into an array: its items.
    fn array<'v>(&mut self, n: &Node<'v>) -> Option<Vec<Node<'v>>> {
        let Value::Array(items) = n.v else {
            self.type_error(n, "an array");
            return None;
        };
        self.visited.insert(n.ptr.clone());
        Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| Node {
                    v,
                    ptr: format!("{}/{i}", n.ptr),
                })
                .collect(),
        )
    }

    fn str(&mut self, n: &Node) -> Option<String> {
        match n.v {
            Value::String(s) => {
                self.take(n);
                Some(s.clone())
            }
            _ => {
                self.type_error(n, "a string");
                None
            }
        }
    }

    fn bool(&mut self, n: &Node) -> Option<bool> {
        match n.v {
            Value::Bool(b) => {
                self.take(n);
                Some(*b)
            }
            _ => {
                self.type_error(n, "a boolean");
                None
            }
        }
    }

    fn i64(&mut self, n: &Node) -> Option<i64> {
        match n.v.as_i64() {
            Some(i) => {
                self.take(n);
                Some(i)
            }
            None => {
                self.type_error(n, "an integer");
                None
            }
        }
    }

    fn u64(&mut self, n: &Node) -> Option<u64> {
        match n.v.as_u64() {
            Some(i) => {
                self.take(n);
                Some(i)
            }
            None => {
                self.type_error(n, "a non-negative integer");
                None
            }
        }
    }

    fn u32(&mut self, n: &Node) -> Option<u32> {
        match n.v.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(i) => {
                self.take(n);
                Some(i)
            }
            None => {
                self.type_error(n, "an integer from 0 to 4294967295");
                None
            }
        }
    }

    /// An array of strings.
    fn strs(&mut self, n: &Node) -> Option<Vec<String>> {
        let items = self.array(n)?;
        let mut out = Vec::new();
        let mut ok = true;
        for i in &items {
            match self.str(i) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Refuse the fields of `n` launch does not do yet, each with why.
    fn unsupported(&mut self, n: &Node, fields: &[(&str, &str)]) {
        for (key, why) in fields {
            let Some(c) = n.v.get(*key).map(|v| n.child(key, v)) else {
                continue;
            };
            self.take(&c);
            if is_unset(c.v) {
                continue;
            }
            self.push(
                "launch::oci::unsupported",
                &c,
                format!("`{key}` is not supported by launch yet"),
                (*why).to_string(),
                format!("remove `{key}` from config.json (docs/oci.md lists what launch runs)"),
            );
        }
    }

    /// Refuse the security fields of `n`: their machinery comes in a later release, and running
    /// without what they ask would be less confined than the bundle's author meant.
    fn security(&mut self, n: &Node, fields: &[&str]) {
        for key in fields {
            let Some(c) = n.v.get(*key).map(|v| n.child(key, v)) else {
                continue;
            };
            // Already accepted as what launch does anyway (see `same`).
            if self.handled.contains(&c.ptr) || is_unset(c.v) {
                self.take(&c);
                continue;
            }
            self.take(&c);
            self.push(
                "launch::oci::security",
                &c,
                format!("`{key}` is a security setting launch does not apply yet"),
                "launch would run the container without it",
                format!(
                    "remove `{key}` to run without it (a later launch release honours it; \
                     docs/oci.md lists what launch applies)"
                ),
            );
        }
    }

    /// Report every value no step read: unknown fields, and known ones nobody handled.
    fn unread(&mut self, n: &Node) {
        if self.handled.contains(&n.ptr) {
            return;
        }
        if self.visited.contains(&n.ptr) {
            match n.v {
                Value::Object(m) => {
                    for (k, v) in m {
                        let c = n.child(k, v);
                        self.unread(&c);
                    }
                }
                Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        let c = Node {
                            v,
                            ptr: format!("{}/{i}", n.ptr),
                        };
                        self.unread(&c);
                    }
                }
                Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
            }
            return;
        }
        let parent = n.ptr.rsplit_once('/').map_or("", |(p, _)| p);
        let key = n.key().to_owned();
        let known = self.known.get(parent).copied().unwrap_or(&[]);
        let help = match did_you_mean(&key, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? Otherwise remove it"),
            None => "remove it: launch refuses what it would not do (docs/oci.md)".into(),
        };
        let span = self.loc.key(&n.ptr);
        let shown = n.shown().to_owned();
        self.push_at(
            "launch::oci::unknown",
            span,
            &shown,
            format!("unknown field `{key}`"),
            "not a field launch knows here",
            help,
        );
    }
}

/// Fields of the top level.
const TOP: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "hooks",
    "annotations",
    "linux",
    "solaris",
    "windows",
    "vm",
    "zos",
];

/// The launch-only settings from `org.launch.*` annotations.
#[derive(Default)]
pub(crate) struct Launch {
    name: Option<String>,
    init: bool,
    stop_signal: Option<String>,
    stop_timeout_ms: Option<u64>,
    multiple: bool,
    pivot_root: bool,
    user_name: Option<String>,
    /// `Some(None)`: decided at run time.
    terminal: Option<Option<bool>>,
    map_root: Option<bool>,
    cgroup_parent: Option<PathBuf>,
    preserve_fds: u32,
    /// The capability choice launch exported: `Some(None)` is unconfined.
    capabilities: Option<Option<crate::spec::CapChoice>>,
    /// A custom seccomp profile's name.
    seccomp_profile: Option<String>,
}

fn convert(
    v: &Value,
    loc: &Locator,
    text: &str,
    bundle: &Path,
    host: &dyn Host,
) -> Result<Spec, Vec<Problem>> {
    let mut cx = Cx {
        loc,
        text,
        problems: Vec::new(),
        visited: HashSet::new(),
        handled: HashSet::new(),
        known: BTreeMap::new(),
        host,
        bundle: bundle.to_path_buf(),
    };
    let doc = Node {
        v,
        ptr: String::new(),
    };
    let spec = top(&mut cx, &doc);
    cx.unread(&doc);
    if !cx.problems.is_empty() || spec.is_none() {
        let mut p = cx.problems;
        p.sort_by_key(|p| (p.span.start, p.span.end));
        return Err(p);
    }
    spec.ok_or_else(Vec::new)
}

fn top(cx: &mut Cx, doc: &Node) -> Option<Spec> {
    let doc = cx.object(doc, TOP)?;
    if let Some(n) = cx.required(
        &doc,
        "ociVersion",
        "the runtime-spec version, e.g. \"1.2.0\"",
    ) {
        if let Some(s) = cx.str(&n) {
            if !s.starts_with("1.") {
                cx.push(
                    "launch::oci::value",
                    &n,
                    format!("runtime-spec version {s} is not supported"),
                    "launch reads runtime-spec 1.x",
                    "write a 1.x version, e.g. \"1.2.0\"",
                );
            }
        }
    }
    cx.unsupported(
        &doc,
        &[
            (
                "hooks",
                "hooks run host programs; launch runs none (no helpers, nothing outside the plan)",
            ),
            ("solaris", "launch runs Linux containers only"),
            ("windows", "launch runs Linux containers only"),
            ("vm", "launch runs containers, not virtual machines"),
            ("zos", "launch runs Linux containers only"),
        ],
    );
    let launch = annotations(cx, &doc);
    let name = launch
        .name
        .clone()
        .unwrap_or_else(|| bundle_name(&cx.bundle));
    let root = root(cx, &doc, &launch);
    let linux = doc.v.get("linux").map(|v| doc.child("linux", v));
    let l = linux::check(cx, linux.as_ref(), &launch);
    let hostname = process::uts_name(cx, &doc, "hostname", &l.namespaces);
    let domainname = process::uts_name(cx, &doc, "domainname", &l.namespaces);
    let proc = process::check(cx, &doc, &launch);
    let uid = proc.as_ref().map(|p| p.user.uid);
    let security = security::check(cx, &doc, &launch, uid);
    let mounts = mounts::check(cx, &doc);
    // A bundle's network is its namespace: none of its own is the host's; a new or joined one
    // has loopback only (runc connects nothing; hooks or CNI would, and launch runs no hooks).
    let network = crate::spec::Network {
        mode: match l.namespaces.net {
            crate::spec::Namespace::Host => crate::spec::NetworkMode::Host,
            crate::spec::Namespace::New | crate::spec::Namespace::Join(_) => {
                crate::spec::NetworkMode::None
            }
        },
        ..Default::default()
    };
    Some(Spec {
        name,
        hostname,
        domainname,
        root: root?,
        namespaces: l.namespaces,
        process: proc?,
        limits: l.limits,
        mounts,
        multiple: launch.multiple,
        security,
        network,
    })
}

/// The instance name from the bundle directory's name: characters a name may not hold become
/// `-`, and it starts with a letter or digit.
pub fn bundle_name(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s: String = s
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(64)
        .collect();
    if s.is_empty() { "bundle".into() } else { s }
}

fn annotations(cx: &mut Cx, doc: &Node) -> Launch {
    let mut out = Launch {
        pivot_root: true,
        ..Launch::default()
    };
    let Some(a) = cx.get(doc, "annotations") else {
        return out;
    };
    let Some(a) = cx.object(&a, annotations::ALL) else {
        return out;
    };
    let Value::Object(map) = a.v else {
        return out;
    };
    for (k, v) in map {
        let n = a.child(k, v);
        let Some(s) = cx.str(&n) else { continue };
        if !k.starts_with("org.launch.") {
            // Other annotations are the bundle author's metadata: the runtime spec lets a
            // runtime ignore them, as runc does.
            continue;
        }
        let flag = |cx: &mut Cx, default: bool| match s.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                cx.push(
                    "launch::oci::value",
                    &n,
                    format!("`{s}` is not \"true\" or \"false\""),
                    "a boolean annotation",
                    "write \"true\" or \"false\"",
                );
                default
            }
        };
        match k.as_str() {
            annotations::NAME => {
                if !crate::spec::valid_name(&s) {
                    cx.push(
                        "launch::name::invalid",
                        &n,
                        format!("`{s}` is not a valid container name"),
                        "names the state directory and the cgroup",
                        "use 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit",
                    );
                }
                out.name = Some(s);
            }
            annotations::INIT => out.init = flag(cx, false),
            annotations::MULTIPLE => out.multiple = flag(cx, false),
            annotations::PIVOT_ROOT => out.pivot_root = flag(cx, true),
            annotations::STOP_SIGNAL => out.stop_signal = process::signal(cx, &n, &s),
            annotations::STOP_TIMEOUT_MS => match s.parse::<u64>() {
                Ok(ms) => out.stop_timeout_ms = Some(ms),
                Err(_) => cx.push(
                    "launch::oci::value",
                    &n,
                    format!("`{s}` is not a number of milliseconds"),
                    "milliseconds before SIGKILL",
                    "write a whole number of milliseconds, e.g. \"10000\"",
                ),
            },
            annotations::USER_NAME => out.user_name = Some(s),
            annotations::TERMINAL => {
                out.terminal = match s.as_str() {
                    "auto" => Some(None),
                    "true" => Some(Some(true)),
                    "false" => Some(Some(false)),
                    _ => {
                        cx.push(
                            "launch::oci::value",
                            &n,
                            format!("`{s}` is not \"true\", \"false\" or \"auto\""),
                            "a terminal, none, or as standard input is",
                            "write \"true\", \"false\" or \"auto\"",
                        );
                        None
                    }
                }
            }
            annotations::MAP_ROOT => out.map_root = Some(flag(cx, false)),
            annotations::CGROUP_PARENT => out.cgroup_parent = linux::parent(cx, &n, &s),
            annotations::CAPABILITIES => match crate::oci::security::parse_choice(&s) {
                Some(c) => out.capabilities = Some(c),
                None => cx.push(
                    "launch::oci::value",
                    &n,
                    format!("`{s}` is not a capability choice"),
                    "how the capability sets were chosen",
                    "write \"default\", \"unconfined\", \"list:CAP_X,CAP_Y\" or \
                     \"add:CAP_X;drop:CAP_Y\" (or remove it: the sets are read from \
                     process.capabilities)",
                ),
            },
            annotations::SECCOMP_PROFILE => out.seccomp_profile = Some(s),
            annotations::PRESERVE_FDS => match s.parse::<u32>() {
                Ok(v) if v <= 1 << 16 => out.preserve_fds = v,
                Ok(_) | Err(_) => cx.push(
                    "launch::oci::value",
                    &n,
                    format!("`{s}` is not a number of descriptors from 0 to 65536"),
                    "descriptors after stderr passed on to the command",
                    "write a whole number, e.g. \"1\" for fd 3",
                ),
            },
            _ => {
                let help = match did_you_mean(k, annotations::ALL.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("launch reads {}", annotations::ALL.join(", ")),
                };
                cx.push(
                    "launch::oci::unknown",
                    &n,
                    format!("unknown launch annotation `{k}`"),
                    "not an annotation launch knows",
                    help,
                );
            }
        }
    }
    out
}

fn root(cx: &mut Cx, doc: &Node, launch: &Launch) -> Option<Root> {
    let n = cx.required(
        doc,
        "root",
        "the root filesystem, e.g. {\"path\": \"rootfs\"}",
    )?;
    let n = cx.object(&n, &["path", "readonly"])?;
    let readonly = cx
        .get(&n, "readonly")
        .and_then(|r| cx.bool(&r))
        .unwrap_or(false);
    let p = cx.required(
        &n,
        "path",
        "the root filesystem's directory, relative to the bundle",
    )?;
    let s = cx.str(&p)?;
    let path = crate::validate::normalize(&cx.bundle.join(&s));
    match cx.host.path_kind(&path) {
        Some(crate::host::PathKind::Dir | crate::host::PathKind::Symlink(_)) => {}
        Some(_) => cx.push(
            "launch::rootfs::not_a_directory",
            &p,
            format!("{} is not a directory", path.display()),
            "the root filesystem must be a directory",
            "point `root.path` at the bundle's rootfs directory",
        ),
        None => cx.push(
            "launch::rootfs::not_found",
            &p,
            format!("{} does not exist", path.display()),
            "no such directory",
            "create it (e.g. untar an image into it), or fix `root.path` (relative to the bundle)",
        ),
    }
    Some(Root {
        source: RootSource::Path { path },
        readonly,
        pivot_root: launch.pivot_root,
        writable: false,
        persist: None,
    })
}
