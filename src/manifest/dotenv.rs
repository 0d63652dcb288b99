//! Env files (`process.env_file`): the dotenv format, read with spans for diagnostics.
//!
//! One variable per line, `NAME=value`:
//! - blank lines and lines whose first non-blank character is `#` are comments;
//! - `export NAME=value` is accepted (a shell can source the same file);
//! - a bare value ends at the line's end, its surrounding blanks trimmed; ` #` starts a comment;
//! - `'single quotes'` keep everything as written; `"double quotes"` understand `\n`, `\t`,
//!   `\\`, `\"` and `\$`, and may span lines.
//!
//! Values are literal: `$VAR` and `${VAR}` are not expanded. The environment a container gets
//! depends on the files in the repository, never on the shell that ran `launch`.

use std::ops::Range;

use super::Sp;
use crate::diag::Problem;

/// A variable of an env file, with the spans of its name and value in the combined text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// The name.
    pub name: Sp<String>,
    /// The value, unquoted and unescaped.
    pub value: Sp<String>,
}

/// Parse `text`, which starts at byte `base` of the combined source text: every variable, and
/// every problem (a broken line does not hide the ones after it).
pub fn parse(text: &str, base: usize) -> (Vec<Var>, Vec<Problem>) {
    let mut vars = Vec::new();
    let mut problems = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let line_end = text[i..].find('\n').map_or(text.len(), |n| i + n);
        let line = &text[i..line_end];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            i = line_end + 1;
            continue;
        }
        let mut at = i + indent;
        if let Some(rest) = trimmed.strip_prefix("export")
            && rest.starts_with([' ', '\t'])
        {
            at += "export".len() + (rest.len() - rest.trim_start().len());
        }
        let name_len = text[at..line_end]
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(line_end - at);
        let name = &text[at..at + name_len];
        let after_name = at + name_len;
        let eq = text[after_name..line_end]
            .find(|c: char| !c.is_whitespace())
            .map(|n| after_name + n);
        let Some(eq) = eq.filter(|&e| bytes[e] == b'=') else {
            problems.push(
                Problem::new(
                    "launch::env_file::syntax",
                    span(base, at..line_end.max(at + 1).min(text.len())),
                    format!("`{}` is not `NAME=value`", line.trim()),
                )
                .label("expected `=` after the name")
                .help("write `NAME=value`, or start the line with `#` to make it a comment"),
            );
            i = line_end + 1;
            continue;
        };
        let good_name = valid_name(name);
        if !good_name {
            problems.push(
                Problem::new(
                    "launch::env_file::name",
                    span(base, at..at + name_len.max(1)),
                    format!("`{name}` is not a variable name"),
                )
                .label("letters, digits and `_`, not starting with a digit")
                .help("rename the variable, e.g. `MY_VAR`"),
            );
        }
        let mut v = eq + 1;
        while v < line_end && matches!(bytes[v], b' ' | b'\t') {
            v += 1;
        }
        let (value, value_span, next) = match bytes.get(v) {
            Some(b'\'') => match text[v + 1..line_end].find('\'') {
                Some(n) => {
                    let close = v + 1 + n;
                    (text[v + 1..close].to_owned(), v..close + 1, close + 1)
                }
                None => {
                    problems.push(unterminated(base, v, line_end, '\''));
                    i = line_end + 1;
                    continue;
                }
            },
            Some(b'"') => match double_quoted(text, v + 1) {
                Some((value, close)) => (value, v..close + 1, close + 1),
                None => {
                    problems.push(unterminated(base, v, line_end, '"'));
                    // Nothing after an unclosed quote can be read as intended.
                    break;
                }
            },
            _ => {
                let raw = &text[v..line_end];
                let raw = match raw.find(" #").or_else(|| raw.find("\t#")) {
                    Some(n) => &raw[..n],
                    None => raw,
                };
                let raw = raw.trim_end();
                (raw.to_owned(), v..v + raw.len(), line_end)
            }
        };
        // After a closing quote: only blanks or a comment.
        let end = text[next..].find('\n').map_or(text.len(), |n| next + n);
        let rest = text[next..end].trim();
        if !rest.is_empty() && !rest.starts_with('#') {
            problems.push(
                Problem::new(
                    "launch::env_file::syntax",
                    span(base, next..end),
                    "text after the closing quote",
                )
                .label("only a `# comment` may follow a quoted value")
                .help("put the whole value inside the quotes"),
            );
        }
        if value.contains('\0') {
            problems.push(
                Problem::new(
                    "launch::env_file::syntax",
                    span(base, value_span.clone()),
                    "a value with a NUL byte",
                )
                .label("an environment value cannot hold NUL")
                .help("remove the NUL byte"),
            );
        }
        if good_name {
            vars.push(Var {
                name: Sp::new(span(base, at..at + name_len), name.to_owned()),
                value: Sp::new(span(base, value_span), value),
            });
        }
        i = end + 1;
    }
    (vars, problems)
}

fn span(base: usize, r: Range<usize>) -> Range<usize> {
    base + r.start..base + r.end
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A double-quoted value from just after its opening quote: the value and the closing quote's
/// offset.
fn double_quoted(text: &str, from: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = text[from..].char_indices();
    while let Some((n, c)) = chars.next() {
        match c {
            '"' => return Some((out, from + n)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, e @ ('\\' | '"' | '$'))) => out.push(e),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            c => out.push(c),
        }
    }
    None
}

fn unterminated(base: usize, at: usize, line_end: usize, quote: char) -> Problem {
    Problem::new(
        "launch::env_file::syntax",
        span(base, at..line_end.max(at + 1)),
        format!("the quote `{quote}` is never closed"),
    )
    .label("this value's quote")
    .help(format!("end the value with `{quote}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(t: &str) -> Vec<(String, String)> {
        let (v, p) = parse(t, 0);
        assert!(p.is_empty(), "{p:?}");
        v.into_iter()
            .map(|v| (v.name.get().clone(), v.value.get().clone()))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_format() {
        let t = "# comment\n\nA=1\nexport B = two words  \nC='it is # not a comment'\nD=\"x\\ny \\$HOME\"\nE=bare # note\nF=\nG=\"multi\nline\"\n  # indented comment\n";
        assert_eq!(
            vars(t),
            pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "it is # not a comment"),
                ("D", "x\ny $HOME"),
                ("E", "bare"),
                ("F", ""),
                ("G", "multi\nline"),
            ])
        );
    }

    #[test]
    fn values_are_literal() {
        assert_eq!(
            vars("A=$HOME\nB='${X}'\n"),
            pairs(&[("A", "$HOME"), ("B", "${X}")])
        );
    }

    #[test]
    fn spans_are_in_the_combined_text() {
        let (v, _) = parse("X=abc\n", 100);
        assert_eq!(v[0].name.span(), 100..101);
        assert_eq!(v[0].value.span(), 102..105);
    }

    #[test]
    fn every_broken_line_is_reported() {
        let t = "GOOD=1\nno equals here\n1BAD=2\nQ='open\nLAST=3\nT=\"a\" b\n";
        let (v, p) = parse(t, 0);
        let codes: Vec<(&str, &str)> = p.iter().map(|p| (p.code, &t[p.span.clone()])).collect();
        assert_eq!(
            codes,
            [
                ("launch::env_file::syntax", "no equals here"),
                ("launch::env_file::name", "1BAD"),
                ("launch::env_file::syntax", "'open"),
                ("launch::env_file::syntax", " b"),
            ]
        );
        let names: Vec<&str> = v.iter().map(|v| v.name.get().as_str()).collect();
        assert_eq!(names, ["GOOD", "LAST", "T"]);
    }

    #[test]
    fn an_unclosed_double_quote_stops_the_file() {
        let (v, p) = parse("A=\"open\nB=1\n", 0);
        assert!(v.is_empty());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].message, "the quote `\"` is never closed");
    }
}
