//! Reading a manifest file and turning TOML/serde errors into [`Problem`]s.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Manifest;
use super::keys::{UnknownKey, take_unknown_keys};
use crate::diag::{Problem, did_you_mean};

/// A manifest's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as given on the command line (shown in diagnostics and plans).
    pub display_name: String,
    /// Absolute folder of the manifest: relative paths in it resolve against this.
    pub dir: PathBuf,
    /// The text.
    pub text: String,
}

/// The name a manifest read from standard input goes by in diagnostics and plans.
pub const STDIN_NAME: &str = "<stdin>";

impl Source {
    /// Read a manifest file; `-` is standard input ([`Source::read_stdin`]).
    pub fn read(path: &Path) -> std::io::Result<Source> {
        if path == Path::new("-") {
            return Source::read_stdin();
        }
        let text = std::fs::read_to_string(path)?;
        let abs = std::path::absolute(path)?;
        let dir = abs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok(Source {
            display_name: path.display().to_string(),
            dir,
            text,
        })
    }

    /// The manifest on standard input (`launch validate -`): named `<stdin>`, relative paths
    /// resolve against the current directory.
    pub fn read_stdin() -> std::io::Result<Source> {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)?;
        Ok(Source::from_text(
            STDIN_NAME,
            &std::env::current_dir()?,
            &text,
        ))
    }

    /// A manifest given as text (tests, stdin); relative paths resolve against `dir`.
    pub fn from_text(display_name: &str, dir: &Path, text: &str) -> Source {
        Source {
            display_name: display_name.to_owned(),
            dir: dir.to_path_buf(),
            text: text.to_owned(),
        }
    }
}

/// Parse the manifest's text into typed values. A syntax error stops at the first one (the parser
/// cannot go on past it). Shape errors: every unknown key at once, plus serde's first other
/// error, if any (it stops there); everything after that is checked by validation.
pub fn parse(source: &Source) -> Result<Manifest, Vec<Problem>> {
    let de = toml::de::Deserializer::parse(&source.text)
        .map_err(|e| vec![syntax_problem(source, &e)])?;
    let first = match Manifest::deserialize(de) {
        Ok(m) => return Ok(m),
        Err(e) => e,
    };
    // Only a manifest serde refused is walked again: the valid ones, every run, pay one parse.
    let Ok(mut doc) = toml::de::DeTable::parse(&source.text) else {
        return Err(vec![shape_problem(source, &first)]);
    };
    let unknown = take_unknown_keys(&mut doc);
    if unknown.is_empty() {
        return Err(vec![shape_problem(source, &first)]);
    }
    let mut problems: Vec<Problem> = unknown
        .iter()
        .map(|u| unknown_key(&u.key, u.allowed, u.span.clone()))
        .collect();
    // The document without its unknown keys: serde's first error past them, if it has one.
    if let Err(e) = Manifest::deserialize(toml::de::Deserializer::from(doc)) {
        let p = shape_problem(source, &e);
        if !problems.iter().any(|q| q.span == p.span) && !follows_from(&e, &unknown) {
            problems.push(p);
        }
    }
    problems.sort_by_key(|p| (p.span.start, p.span.end));
    Err(problems)
}

/// `comand = [...]` makes `command` missing: that is the misspelling's doing, and its "did you
/// mean `command`?" already says so.
fn follows_from(e: &toml::de::Error, unknown: &[UnknownKey]) -> bool {
    let Some(rest) = e.message().trim().strip_prefix("missing field ") else {
        return false;
    };
    let Some(field) = ticked(rest).first().copied() else {
        return false;
    };
    unknown.iter().any(|u| {
        e.span() == Some(u.table.clone())
            && did_you_mean(&u.key, u.allowed.iter().copied()) == Some(field)
    })
}

/// A key its table does not take, with the closest allowed one if there is one.
fn unknown_key(field: &str, allowed: &[&str], span: std::ops::Range<usize>) -> Problem {
    let p = Problem::new(
        "launch::manifest::unknown_key",
        span,
        format!("unknown key `{field}`"),
    );
    match did_you_mean(field, allowed.iter().copied()) {
        Some(s) => p
            .label(format!("did you mean `{s}`?"))
            .help(format!("rename `{field}` to `{s}`")),
        None => p.label("not a key here").help(if allowed.is_empty() {
            "remove this key: this table takes no keys".to_string()
        } else {
            format!("remove it; keys allowed here: {}", allowed.join(", "))
        }),
    }
}

fn syntax_problem(source: &Source, e: &toml::de::Error) -> Problem {
    let span = e.span().unwrap_or(0..0);
    let msg = e.message().trim();
    let first = msg.lines().next().unwrap_or("invalid TOML");
    Problem::new(
        "launch::toml::syntax",
        span,
        format!("invalid TOML: {first}"),
    )
    .label(label_for(source, first))
    .help("fix the TOML syntax here; the format is described at https://toml.io")
}

fn label_for(_source: &Source, msg: &str) -> String {
    msg.to_owned()
}

/// The names between backticks in a serde message, in order.
fn ticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

fn shape_problem(source: &Source, e: &toml::de::Error) -> Problem {
    let msg = e.message().trim();
    let span = e.span().unwrap_or(0..0);
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let names = ticked(rest);
        let (field, expected) = names
            .split_first()
            .map(|(f, e)| (*f, e.to_vec()))
            .unwrap_or(("", vec![]));
        return unknown_key(field, &expected, span);
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let names = ticked(rest);
        let (value, expected) = names
            .split_first()
            .map(|(f, e)| (*f, e.to_vec()))
            .unwrap_or(("", vec![]));
        let p = Problem::new(
            "launch::manifest::unknown_value",
            span,
            format!("unknown value `{value}`"),
        );
        return match did_you_mean(value, expected.iter().copied()) {
            Some(s) => p
                .label(format!("did you mean `{s}`?"))
                .help(format!("write \"{s}\"")),
            None => p
                .label("not one of the accepted values")
                .help(format!("use one of: {}", expected.join(", "))),
        };
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        let field = ticked(rest).first().copied().unwrap_or("");
        let span = first_line(&source.text, span);
        let help = if matches!(field, "rootfs" | "process") {
            format!("add a `[{field}]` table; see docs/manifest.md")
        } else {
            format!("add `{field} = ...`; see docs/manifest.md")
        };
        return Problem::new(
            "launch::manifest::missing_key",
            span,
            format!("missing required key `{field}`"),
        )
        .label(format!("this table needs `{field}`"))
        .help(help);
    }
    let first = msg.lines().next().unwrap_or(msg);
    if let Some(n) = integer_out_of_range(first) {
        let message = match n {
            Some(n) => format!("integer {n} is out of range"),
            None => "integer is out of range (more than 128 bits)".to_string(),
        };
        return Problem::new("launch::manifest::type", span, message)
            .label("more than a 64-bit integer holds")
            .help(format!(
                "TOML integers go from {} to {}; write a number in range (docs/manifest.md gives \
             each key's own)",
                i64::MIN,
                i64::MAX
            ));
    }
    let text = plain_types(first.strip_prefix("invalid type: ").unwrap_or(first));
    Problem::new(
        "launch::manifest::type",
        span,
        format!("wrong type: {text}"),
    )
    .label(text.to_owned())
    .help("change the value to the expected type; see docs/manifest.md")
}

/// The integer of a serde or toml message about a TOML integer that does not fit an i64: toml
/// hands such a number to serde as a u64, i128 or u128 (or gives up past u128), and each of our
/// visitors refuses it in its own words, naming the number as "integer `N`". `Some(None)`: past
/// u128, toml does not name it.
fn integer_out_of_range(msg: &str) -> Option<Option<&str>> {
    if msg.starts_with("integer number overflowed") {
        return Some(None);
    }
    let (_, rest) = msg.split_once("integer `")?;
    let (n, _) = rest.split_once('`')?;
    n.parse::<i64>().is_err().then_some(Some(n))
}

/// serde speaks Rust (`i64`, `a sequence`); a manifest's author speaks TOML.
fn plain_types(s: &str) -> String {
    let mut out = s.to_owned();
    for (rust, toml) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected an integer"),
        ("expected u32", "expected an integer"),
        ("expected f64", "expected a number"),
        ("a sequence", "an array"),
        ("expected a map", "expected a table"),
        ("expected a string", "expected a string"),
        ("a boolean", "a boolean (true or false)"),
    ] {
        out = out.replace(rust, toml);
    }
    if let Some(i) = out.find("expected struct ") {
        out.replace_range(i.., "expected a table");
    }
    out
}

/// Narrow a span that covers a whole table to its first line (the header), which is what a
/// reader needs to find; an empty span at the start of the file when the table is the document.
pub(crate) fn first_line(text: &str, span: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let mut start = span.start.min(text.len());
    // The document itself: point at its first line of TOML, not at a leading comment.
    if start == 0 {
        let mut off = 0;
        for line in text.split_inclusive('\n') {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                start = off;
                break;
            }
            off += line.len();
        }
        let rest = &text[start..];
        return start..start + rest.find('\n').unwrap_or(rest.len());
    }
    let rest = &text[start..];
    let len = rest.find('\n').unwrap_or(rest.len()).min(span.len());
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(t: &str) -> Source {
        Source::from_text("t.toml", Path::new("/tmp"), t)
    }

    fn problems(t: &str) -> Vec<(&'static str, String, String)> {
        parse(&src(t))
            .unwrap_err()
            .into_iter()
            .map(|p| (p.code, t[p.span.clone()].to_owned(), p.label))
            .collect()
    }

    #[test]
    fn unknown_key_suggests() {
        assert_eq!(
            problems(&format!("hostnme = \"x\"\n{BASE}[process]\ncommand = []\n")),
            [(
                "launch::manifest::unknown_key",
                "hostnme".into(),
                "did you mean `hostname`?".into()
            )]
        );
    }

    const BASE: &str = "name = \"a\"\n[rootfs]\nhost = true\n";

    #[test]
    fn every_unknown_key_in_one_run() {
        let t = format!(
            "hostnme = \"x\"\n{BASE}[process]\ncomand = [\"/bin/true\"]\n[limits]\nmemroy = \"1G\"\n"
        );
        let got = problems(&t);
        let keys: Vec<&str> = got.iter().map(|p| p.1.as_str()).collect();
        // `command` is missing only because of `comand`: not a problem of its own.
        assert_eq!(keys, ["hostnme", "comand", "memroy"]);
        assert!(got.iter().all(|p| p.0 == "launch::manifest::unknown_key"));
        assert_eq!(got[1].2, "did you mean `command`?");
        assert_eq!(got[2].2, "did you mean `memory`?");
        // The same at the top level: `nme` explains the missing `name`.
        let got = problems("nme = \"a\"\n[rootfs]\nhost = true\n[process]\ncommand = []\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].2, "did you mean `name`?");
        // And in an inline table inside an array.
        let got = problems(&format!(
            "{BASE}[process]\ncommand = []\n[namespaces.user]\nuid_map = [{{ inside = 0, outside = 1, cont = 1 }}]\n"
        ));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].2, "did you mean `count`?");
    }

    #[test]
    fn unknown_keys_and_another_shape_error() {
        // serde meets the wrong type in [limits] before [process]: both are reported.
        let t = format!(
            "{BASE}[process]\ncommand = [\"/bin/true\"]\nstop_sginal = \"SIGINT\"\n[limits]\npids = \"many\"\n"
        );
        let got = problems(&t);
        let codes: Vec<(&str, &str)> = got.iter().map(|p| (p.0, p.1.as_str())).collect();
        assert_eq!(
            codes,
            [
                ("launch::manifest::unknown_key", "stop_sginal"),
                ("launch::manifest::type", "\"many\""),
            ]
        );
        // A missing key that no misspelling explains is still reported.
        let got = problems("name = \"a\"\nnmae = 1\n[process]\ncommand = [\"/bin/true\"]\n");
        let codes: Vec<&str> = got.iter().map(|p| p.0).collect();
        assert_eq!(
            codes,
            [
                "launch::manifest::missing_key",
                "launch::manifest::unknown_key"
            ]
        );
    }

    #[test]
    fn shape_errors_alone_are_as_before() {
        let got = problems(&format!("{BASE}[process]\ncommand = \"/bin/true\"\n"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "launch::manifest::type");
        let got = problems("name = \"a\"\n[process]\ncommand = [\"/bin/true\"]\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "launch::manifest::missing_key");
    }

    #[test]
    fn integers_beyond_64_bits() {
        for (value, shown) in [
            (
                "pids = 18446744073709551615",
                "integer 18446744073709551615",
            ),
            (
                "pids = -99999999999999999999",
                "integer -99999999999999999999",
            ),
            ("cpu = 18446744073709551615", "integer 18446744073709551615"),
            (
                "memory = 99999999999999999999",
                "integer 99999999999999999999",
            ),
            (
                "pids = 999999999999999999999999999999999999999999",
                "(more than 128 bits)",
            ),
            (
                "rlimits.nofile = 18446744073709551615",
                "integer 18446744073709551615",
            ),
        ] {
            let t = format!("{BASE}[process]\ncommand = []\n[limits]\n{value}\n");
            let p = parse(&src(&t)).unwrap_err();
            assert_eq!(p.len(), 1, "{value}: {p:?}");
            assert_eq!(p[0].code, "launch::manifest::type", "{value}");
            assert!(p[0].message.contains(shown), "{value}: {}", p[0].message);
            assert!(p[0].message.contains("is out of range"), "{}", p[0].message);
        }
        // A user id past i64 is reported as written, not saturated to 9223372036854775807.
        let t = format!("{BASE}[process]\ncommand = []\nuser = 18446744073709551615\n");
        let p = parse(&src(&t)).unwrap_err();
        assert_eq!(p[0].message, "integer 18446744073709551615 is out of range");
        // Small integers of the wrong type are still type errors.
        let t = format!("{BASE}[process]\ncommand = []\ncwd = 5\n");
        let p = parse(&src(&t)).unwrap_err();
        assert!(p[0].message.starts_with("wrong type"), "{}", p[0].message);
    }

    #[test]
    fn syntax_error_has_span() {
        let p = parse(&src("name = \n")).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].code, "launch::toml::syntax");
    }
}
