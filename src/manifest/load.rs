//! Reading a manifest file and turning TOML/serde errors into [`Problem`]s.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Manifest;
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

impl Source {
    /// Read a manifest file.
    pub fn read(path: &Path) -> std::io::Result<Source> {
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

    /// A manifest given as text (tests, stdin); relative paths resolve against `dir`.
    pub fn from_text(display_name: &str, dir: &Path, text: &str) -> Source {
        Source {
            display_name: display_name.to_owned(),
            dir: dir.to_path_buf(),
            text: text.to_owned(),
        }
    }
}

/// Parse the manifest's text into typed values. Syntax and shape errors stop at the first one
/// (the parser cannot go on past them); everything after that is checked by validation.
pub fn parse(source: &Source) -> Result<Manifest, Problem> {
    let de = toml::de::Deserializer::parse(&source.text).map_err(|e| syntax_problem(source, &e))?;
    Manifest::deserialize(de).map_err(|e| shape_problem(source, &e))
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
        let mut p = Problem::new(
            "launch::manifest::unknown_key",
            span,
            format!("unknown key `{field}`"),
        );
        p = match did_you_mean(field, expected.iter().copied()) {
            Some(s) => p
                .label(format!("did you mean `{s}`?"))
                .help(format!("rename `{field}` to `{s}`")),
            None => p.label("not a key here").help(if expected.is_empty() {
                "remove this key: this table takes no keys".to_string()
            } else {
                format!("remove it; keys allowed here: {}", expected.join(", "))
            }),
        };
        return p;
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
    let text = plain_types(first.strip_prefix("invalid type: ").unwrap_or(first));
    Problem::new(
        "launch::manifest::type",
        span,
        format!("wrong type: {text}"),
    )
    .label(text.to_owned())
    .help("change the value to the expected type; see docs/manifest.md")
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
fn first_line(text: &str, span: std::ops::Range<usize>) -> std::ops::Range<usize> {
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

    #[test]
    fn unknown_key_suggests() {
        let p = parse(&src("name = \"a\"\nhostnme = \"x\"\n")).unwrap_err();
        assert_eq!(p.code, "launch::manifest::unknown_key");
        assert_eq!(p.label, "did you mean `hostname`?");
        assert_eq!(
            &"name = \"a\"\nhostnme = \"x\"\n"[p.span.clone()],
            "hostnme"
        );
    }

    #[test]
    fn syntax_error_has_span() {
        let p = parse(&src("name = \n")).unwrap_err();
        assert_eq!(p.code, "launch::toml::syntax");
    }
}
