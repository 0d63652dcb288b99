//! `extends`: a manifest made of a base and the changes a file makes to it.
//!
//! The rules, applied from the deepest base up to the manifest given:
//! - tables merge key by key, at every depth (`[limits]`, `[process.env]`, `[network.hosts]`);
//! - the top-level arrays of tables `[[mounts]]` and `[[ports]]` append: the base's first;
//! - every other value, arrays included (`command`, `dns`), is replaced whole;
//! - `unset = ["process.env.DEBUG", "mounts"]` removes keys the bases set, before the file's
//!   own keys are merged in (so a file can remove a table and write a new one).
//!
//! The merge works on the parsed TOML trees, whose spans are offsets into the combined text of
//! [`Source`]: every value keeps the span of the file that wrote it, so a diagnostic points into
//! that file and [`origins`] says where each value came from.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::source::{FileKind, Source, padded, type_name};
use crate::diag::Problem;

/// Top-level arrays of tables that append instead of replacing.
const APPENDED: [&str; 2] = ["mounts", "ports"];

/// The padded texts of a source's manifest files: the trees of [`compose`] borrow from them.
pub(super) fn texts(source: &Source) -> Vec<String> {
    source
        .files
        .iter()
        .map(|f| match f.kind {
            FileKind::Manifest => padded(&source.text, f),
            FileKind::Env => String::new(),
        })
        .collect()
}

/// The manifest `source` describes, as one TOML tree: its chain of `extends` merged.
pub(super) fn compose<'a>(
    source: &Source,
    texts: &'a [String],
) -> Result<Spanned<DeTable<'a>>, Vec<Problem>> {
    let mut problems = source.problems.clone();
    // The chain: the manifest, the file it extends, the file that one extends...
    let mut chain = vec![0];
    while let Some(next) = chain.last().and_then(|i| source.files[*i].extends) {
        chain.push(next);
    }
    let mut docs = Vec::with_capacity(chain.len());
    for &i in &chain {
        match DeTable::parse(&texts[i]) {
            Ok(doc) => docs.push(doc),
            Err(e) => problems.push(super::load::syntax_problem(&e)),
        }
    }
    if docs.len() != chain.len() || !problems.is_empty() {
        problems.sort_by_key(|p| (p.span.start, p.span.end));
        return Err(problems);
    }
    // From the deepest base up.
    let mut docs = docs.into_iter().rev();
    let Some(mut acc) = docs.next() else {
        return Err(problems);
    };
    strip(acc.get_mut(), &mut problems, true);
    for (n, doc) in docs.enumerate() {
        let is_manifest = n + 2 == chain.len();
        let span = doc.span();
        let mut doc = doc.into_inner();
        let unset = strip(&mut doc, &mut problems, is_manifest);
        for (path, at) in unset {
            if !remove(acc.get_mut(), &path) {
                let wanted = path.join(".");
                let mut set = Vec::new();
                paths(acc.get_ref(), &mut String::new(), &mut set);
                let p = Problem::new(
                    "launch::extends::unset",
                    at,
                    format!("nothing to unset: the files this one extends do not set `{wanted}`"),
                );
                problems.push(
                    match crate::diag::did_you_mean(&wanted, set.iter().map(String::as_str)) {
                        Some(s) => p
                            .label(format!("did you mean `{s}`?"))
                            .help(format!("write `{s}`")),
                        None => p.label("not set by any base").help(
                            "name a key a base sets, as a dotted path (`process.env.DEBUG`, \
                         `limits.memory`, `mounts`); or remove it from `unset`",
                        ),
                    },
                );
            }
        }
        merge(acc.get_mut(), doc, true);
        if is_manifest {
            acc = Spanned::new(span, acc.into_inner());
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.span.start, p.span.end));
        return Err(problems);
    }
    Ok(acc)
}

/// Take `unset` out of a file's tree (and `extends`, except from the manifest given, whose
/// `extends` stays for the record): the dotted paths to remove, each with its span.
fn strip(
    doc: &mut DeTable<'_>,
    problems: &mut Vec<Problem>,
    keep_extends: bool,
) -> Vec<(Vec<String>, Range<usize>)> {
    if !keep_extends {
        doc.remove("extends");
    }
    let Some(v) = doc.remove("unset") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let span = v.span();
    match v.into_inner() {
        DeValue::Array(a) => {
            for item in a.iter() {
                match item.get_ref() {
                    DeValue::String(s) if valid_path(s) => {
                        out.push((s.split('.').map(str::to_owned).collect(), item.span()))
                    }
                    DeValue::String(s) => problems.push(
                        Problem::new(
                            "launch::extends::unset",
                            item.span(),
                            format!("`{s}` is not a dotted key path"),
                        )
                        .label("expected keys joined by `.`")
                        .help("write the path of the key to remove, e.g. `process.env.DEBUG` or `mounts`"),
                    ),
                    other => problems.push(
                        Problem::new(
                            "launch::extends::unset",
                            item.span(),
                            format!("`unset` lists key paths, not {}", type_name(other)),
                        )
                        .label("expected a string")
                        .help("write the path of the key to remove as a string: `\"limits.memory\"`"),
                    ),
                }
            }
        }
        other => problems.push(
            Problem::new(
                "launch::extends::unset",
                span,
                format!(
                    "`unset` must be an array of key paths, not {}",
                    type_name(&other)
                ),
            )
            .label("expected an array of strings")
            .help("write `unset = [\"process.env.DEBUG\"]`"),
        ),
    }
    out
}

fn valid_path(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|k| !k.is_empty())
}

/// Every dotted key path of a tree, tables included.
fn paths(t: &DeTable<'_>, prefix: &mut String, out: &mut Vec<String>) {
    for (k, v) in t.iter() {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(k.get_ref());
        out.push(prefix.clone());
        if let DeValue::Table(t) = v.get_ref() {
            paths(t, prefix, out);
        }
        prefix.truncate(len);
    }
}

/// Remove the key at `path`; false when nothing is there.
fn remove(doc: &mut DeTable<'_>, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut table = doc;
    for key in parents {
        match table.get_mut(key.as_str()).map(Spanned::get_mut) {
            Some(DeValue::Table(t)) => table = t,
            _ => return false,
        }
    }
    table.remove(last.as_str()).is_some()
}

/// Merge `over` into `base` by the rules of this module.
fn merge<'a>(base: &mut DeTable<'a>, over: DeTable<'a>, top: bool) {
    for (k, v) in over {
        let name: &str = k.get_ref();
        let appended = top && APPENDED.contains(&name);
        match base.get_mut(name).map(Spanned::get_mut) {
            Some(DeValue::Table(b)) if matches!(v.get_ref(), DeValue::Table(_)) => {
                if let DeValue::Table(o) = v.into_inner() {
                    merge(b, o, false);
                }
                continue;
            }
            Some(DeValue::Array(b)) if appended && matches!(v.get_ref(), DeValue::Array(_)) => {
                if let DeValue::Array(o) = v.into_inner() {
                    for item in o.iter().cloned() {
                        b.push(item);
                    }
                }
                continue;
            }
            _ => {}
        }
        // Removed first: a map keeps the key it had, and the key's span must be this file's.
        base.remove(name);
        base.insert(k, v);
    }
}

/// Where one value of the composed manifest was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// Its dotted key path (`process.env.PATH`, `mounts[1]`).
    pub key: String,
    /// `FILE:LINE`.
    pub place: String,
}

/// Every value of the manifest `source` describes, with the file and line that wrote it, in key
/// order (arrays of tables element by element). Empty when the manifest does not parse.
pub fn origins(source: &Source) -> Vec<Origin> {
    let texts = texts(source);
    let Ok(doc) = compose(source, &texts) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(source, doc.get_ref(), &mut String::new(), &mut out);
    // Env files' variables, where `process.env` does not set the name; the last file wins.
    let mut from_files: Vec<Origin> = Vec::new();
    for f in source.files.iter().filter(|f| f.kind == FileKind::Env) {
        for v in super::dotenv::parse(source.file_text(f), f.range.start).0 {
            let key = format!("process.env.{}", v.name.get());
            if out.iter().any(|o| o.key == key) {
                continue;
            }
            from_files.retain(|o| o.key != key);
            from_files.push(Origin {
                key,
                place: source.place(v.name.span().start),
            });
        }
    }
    out.extend(from_files);
    out
}

fn walk(source: &Source, t: &DeTable<'_>, prefix: &mut String, out: &mut Vec<Origin>) {
    for (k, v) in t.iter() {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(k.get_ref());
        leaf_or_table(source, v, prefix, out);
        prefix.truncate(len);
    }
}

fn leaf_or_table(
    source: &Source,
    v: &Spanned<DeValue<'_>>,
    prefix: &mut String,
    out: &mut Vec<Origin>,
) {
    match v.get_ref() {
        DeValue::Table(t) => walk(source, t, prefix, out),
        DeValue::Array(a) if is_tables(a) => {
            for (i, item) in a.iter().enumerate() {
                out.push(Origin {
                    key: format!("{prefix}[{i}]"),
                    place: source.place(item.span().start),
                });
            }
        }
        _ => out.push(Origin {
            key: prefix.clone(),
            place: source.place(v.span().start),
        }),
    }
}

fn is_tables(a: &DeArray<'_>) -> bool {
    !a.is_empty() && a.iter().all(|v| matches!(v.get_ref(), DeValue::Table(_)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::manifest::{Manifest, parse};

    /// A manifest at /repo/app/app.toml over an in-memory file system.
    fn source(app: &str, files: &[(&str, &str)]) -> Source {
        let fs: BTreeMap<String, String> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        Source::with_files(
            "app/app.toml",
            Path::new("/repo/app/app.toml"),
            app,
            &|p: &Path| {
                fs.get(p.to_str().unwrap_or(""))
                    .cloned()
                    .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
            },
        )
    }

    const BASE: &str = r#"name = "base"
hostname = "base"
[rootfs]
path = "root"
[process]
command = ["/bin/sh"]
args = ["-c", "true"]
env = { A = "1", B = "2" }
[limits]
memory = "1G"
pids = 10
[[mounts]]
type = "tmpfs"
target = "/tmp"
[[ports]]
host = 8080
container = 80
"#;

    fn manifest(app: &str, files: &[(&str, &str)]) -> Manifest {
        match parse(&source(app, files)) {
            Ok(m) => m,
            Err(p) => panic!("{p:?}"),
        }
    }

    #[test]
    fn tables_merge_and_tables_of_arrays_append() {
        let m = manifest(
            r#"extends = "../base.toml"
name = "app"
[process]
args = ["-c", "echo"]
env = { B = "two", C = "3" }
[limits]
memory = "2G"
[[mounts]]
type = "tmpfs"
target = "/run"
"#,
            &[("/repo/base.toml", BASE)],
        );
        assert_eq!(m.name.get(), "app");
        assert_eq!(m.hostname.as_ref().unwrap().get(), "base");
        let p = m.process.as_ref().unwrap().get();
        // Arrays other than [[mounts]] and [[ports]] are replaced whole.
        let args: Vec<&str> = p.args.iter().map(|a| a.get().as_str()).collect();
        assert_eq!(args, ["-c", "echo"]);
        assert_eq!(p.command.as_ref().unwrap().get().len(), 1);
        let env: Vec<(String, String)> = p
            .env
            .iter()
            .map(|(k, v)| (k.get().clone(), v.get().clone()))
            .collect();
        assert_eq!(
            env,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two".into()),
                ("C".into(), "3".into())
            ]
        );
        let l = m.limits.as_ref().unwrap().get();
        assert!(l.pids.is_some());
        let targets: Vec<&str> = m
            .mounts
            .iter()
            .map(|m| m.get().target.get().as_str())
            .collect();
        assert_eq!(targets, ["/tmp", "/run"]);
        assert_eq!(m.ports.len(), 1);
    }

    #[test]
    fn unset_removes_what_a_base_set() {
        let m = manifest(
            r#"extends = "../base.toml"
unset = ["process.env.A", "limits.pids", "mounts", "hostname"]
[[mounts]]
type = "tmpfs"
target = "/run"
"#,
            &[("/repo/base.toml", BASE)],
        );
        assert!(m.hostname.is_none());
        let p = m.process.as_ref().unwrap().get();
        assert_eq!(p.env.len(), 1);
        assert!(m.limits.as_ref().unwrap().get().pids.is_none());
        let targets: Vec<&str> = m
            .mounts
            .iter()
            .map(|m| m.get().target.get().as_str())
            .collect();
        assert_eq!(targets, ["/run"]);
    }

    #[test]
    fn chains_resolve_paths_against_the_file_that_wrote_them() {
        let s = source(
            "extends = \"../mid/mid.toml\"\n",
            &[
                (
                    "/repo/mid/mid.toml",
                    "extends = \"../base.toml\"\nname = \"mid\"\n",
                ),
                ("/repo/base.toml", BASE),
            ],
        );
        assert_eq!(s.files.len(), 3);
        assert_eq!(s.files[1].display_name, "mid/mid.toml");
        assert_eq!(s.files[2].display_name, "base.toml");
        let m = parse(&s).unwrap();
        assert_eq!(m.name.get(), "mid");
        // `path = "root"` was written in /repo/base.toml: it means /repo/root.
        let root = m.rootfs.get().path.as_ref().unwrap();
        assert_eq!(s.dir_at(&root.span()), Path::new("/repo"));
        assert_eq!(s.place(root.span().start), "base.toml:4");
    }

    #[test]
    fn problems_point_into_the_file_that_has_them() {
        let s = source(
            "extends = \"../base.toml\"\nname = \"app\"\n",
            &[(
                "/repo/base.toml",
                "name = \"b\"\nhostnme = \"x\"\n[rootfs]\nhost = true\n[process]\ncommand = []\n",
            )],
        );
        let p = parse(&s).unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, "launch::manifest::unknown_key");
        assert_eq!(s.place(p[0].span.start), "base.toml:2");
        assert_eq!(&s.text[p[0].span.clone()], "hostnme");
    }

    fn codes(app: &str, files: &[(&str, &str)]) -> Vec<(&'static str, String)> {
        let s = source(app, files);
        parse(&s)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.code, s.place(p.span.start)))
            .collect()
    }

    #[test]
    fn cycles_missing_files_and_bad_values() {
        assert_eq!(
            codes(
                "extends = \"../a.toml\"\n",
                &[
                    ("/repo/a.toml", "extends = \"b.toml\"\n"),
                    ("/repo/b.toml", "extends = \"app/app.toml\"\n"),
                    ("/repo/app/app.toml", ""),
                ]
            ),
            [("launch::extends::cycle", "b.toml:1".to_string())]
        );
        assert_eq!(
            codes("extends = \"nope.toml\"\nname = \"x\"\n", &[]),
            [("launch::extends::read", "app/app.toml:1".to_string())]
        );
        assert_eq!(
            codes("extends = [\"a.toml\"]\n", &[]),
            [("launch::extends::type", "app/app.toml:1".to_string())]
        );
        assert_eq!(
            codes(
                "extends = \"../base.toml\"\nunset = [\"limits.cpu\", \"a..b\", 3]\n",
                &[("/repo/base.toml", BASE)]
            ),
            [
                ("launch::extends::unset", "app/app.toml:2".to_string()),
                ("launch::extends::unset", "app/app.toml:2".to_string()),
                ("launch::extends::unset", "app/app.toml:2".to_string()),
            ]
        );
        // A syntax error in a base is reported in the base.
        assert_eq!(
            codes(
                "extends = \"../b.toml\"\n",
                &[("/repo/b.toml", "name = \n")]
            ),
            [("launch::toml::syntax", "b.toml:1".to_string())]
        );
    }

    #[test]
    fn origins_name_file_and_line() {
        let s = source(
            "extends = \"../base.toml\"\nname = \"app\"\n[process]\nenv_file = [\"app.env\"]\n",
            &[
                ("/repo/base.toml", BASE),
                ("/repo/app/app.env", "# vars\nA=from-file\nD=4\n"),
            ],
        );
        let o: BTreeMap<String, String> =
            origins(&s).into_iter().map(|o| (o.key, o.place)).collect();
        assert_eq!(o["name"], "app/app.toml:2");
        assert_eq!(o["hostname"], "base.toml:2");
        assert_eq!(o["mounts[0]"], "base.toml:12");
        // process.env.A is the manifest's (it wins); D comes from the env file.
        assert_eq!(o["process.env.A"], "base.toml:8");
        assert_eq!(o["process.env.D"], "app/app.env:3");
    }

    #[test]
    fn a_chain_has_an_end() {
        let files: Vec<(String, String)> = (0..70)
            .map(|i| {
                (
                    format!("/repo/b{i}.toml"),
                    format!("extends = \"b{}.toml\"\n", i + 1),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let got = codes("extends = \"../b0.toml\"\n", &refs);
        assert_eq!(got, [("launch::extends::depth", "b62.toml:1".to_string())]);
    }

    #[test]
    fn a_manifest_alone_is_one_file() {
        let s = source("name = \"a\"\n", &[]);
        assert!(!s.is_composed());
        assert_eq!(s.text, "name = \"a\"\n\n");
    }
}
