//! Diagnostics: every problem with a manifest, as a miette report that points into the file.
//!
//! A [`Problem`] is plain data (code, message, span, label, help) so validation can collect all of
//! them in one run and the CLI can render them as text (miette) or JSON (for CI and editors).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode,
    SpanContents,
};
use serde::Serialize;

use crate::manifest::Source;

/// One problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable code, e.g. `launch::mount::duplicate_target`. Documented in docs/diagnostics.md.
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Byte range in the manifest the label points at.
    pub span: Range<usize>,
    /// Short text under the pointed-at span.
    pub label: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Problem {
    /// A problem with a message and a span; add a label and help with the builders.
    pub fn new(code: &'static str, span: Range<usize>, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
        }
    }

    /// The text under the span.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// The fix.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A problem bound to the manifest text it points into: what miette renders.
#[derive(Debug)]
pub struct Report {
    source: Arc<CharColumns>,
    problem: Problem,
}

/// The manifest as miette reads it, but with the `file:line:column` heading's column counted in
/// characters, as the JSON output ([`line_col`]) and editors count it: miette counts bytes, so
/// on a line with `é` before the span the two disagreed.
#[derive(Debug)]
struct CharColumns(NamedSource<String>);

impl SourceCode for CharColumns {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .0
            .read_span(span, context_lines_before, context_lines_after)?;
        // Only a read without lines before the span has a column (the heading's); with context
        // lines miette starts at a line's beginning, column 0.
        if context_lines_before != 0 {
            return Ok(inner);
        }
        let (_, column) = line_col(self.0.inner(), span.offset());
        Ok(Box::new(CharColumn {
            inner,
            column: column - 1,
        }))
    }
}

/// What miette read, with the column replaced.
struct CharColumn<'a> {
    inner: Box<dyn SpanContents<'a> + 'a>,
    column: usize,
}

impl<'a> SpanContents<'a> for CharColumn<'a> {
    fn data(&self) -> &'a [u8] {
        self.inner.data()
    }
    fn span(&self) -> &miette::SourceSpan {
        self.inner.span()
    }
    fn name(&self) -> Option<&str> {
        self.inner.name()
    }
    fn line(&self) -> usize {
        self.inner.line()
    }
    fn column(&self) -> usize {
        self.column
    }
    fn line_count(&self) -> usize {
        self.inner.line_count()
    }
    fn language(&self) -> Option<&str> {
        self.inner.language()
    }
}

impl Report {
    /// Bind `problem` to the file of `source` it points into, for rendering: miette is given
    /// that file alone, with the span made relative to it.
    pub fn new(source: &Source, mut problem: Problem) -> Self {
        let file = source.file_at(problem.span.start);
        let base = file.range.start;
        problem.span = problem.span.start - base..problem.span.end.max(base) - base;
        let mut named =
            NamedSource::new(file.display_name.clone(), source.file_text(file).to_owned());
        if file.kind == crate::manifest::FileKind::Manifest {
            named = named.with_language("toml");
        }
        Report {
            source: Arc::new(CharColumns(named)),
            problem,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for Report {}

impl Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.problem.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source.as_ref())
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let p = &self.problem;
        let label = (!p.label.is_empty()).then(|| p.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new(
            label,
            p.span.start,
            p.span.len(),
        ))))
    }
}

/// Render problems as text. `color` false gives the stable form used in snapshots.
pub fn render_text(source: &Source, problems: &[Problem], color: bool, width: usize) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    for p in problems {
        let report = Report::new(source, p.clone());
        // Writing into a String cannot fail; if miette ever did, fall back to the plain message.
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("error[{}]: {}\n", p.code, p.message));
        }
    }
    let n = problems.len();
    out.push_str(&format!(
        "{}: {} problem{} in {}\n",
        if n == 0 { "ok" } else { "error" },
        n,
        if n == 1 { "" } else { "s" },
        source.display_name
    ));
    out
}

/// Line and column (1-based, columns in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// A problem as JSON for CI and editors (`launch validate --format json`).
#[derive(Debug, Serialize)]
pub struct JsonProblem<'a> {
    /// Stable code.
    pub code: &'a str,
    /// Always `error` today.
    pub severity: &'static str,
    /// The file the span points into: the manifest, a manifest it extends or an env file.
    pub file: &'a str,
    /// What is wrong.
    pub message: &'a str,
    /// Text under the span.
    pub label: &'a str,
    /// How to fix it.
    pub help: Option<&'a str>,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (characters) of the span's start.
    pub column: usize,
    /// 1-based line of the span's end.
    pub end_line: usize,
    /// 1-based column of the span's end (exclusive).
    pub end_column: usize,
    /// Byte offset of the span's start in `file`.
    pub offset: usize,
    /// Byte length of the span.
    pub length: usize,
}

/// `launch validate --format json` output.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// The manifest as named on the command line.
    pub file: &'a str,
    /// No problems.
    pub valid: bool,
    /// Every problem found.
    pub diagnostics: Vec<JsonProblem<'a>>,
}

/// Render problems as the JSON document of `validate --format json`.
pub fn render_json(source: &Source, problems: &[Problem]) -> String {
    let diagnostics = problems
        .iter()
        .map(|p| {
            let file = source.file_at(p.span.start);
            let text = source.file_text(file);
            let base = file.range.start;
            let (start, end) = (p.span.start - base, p.span.end.max(p.span.start) - base);
            let (line, column) = line_col(text, start);
            let (end_line, end_column) = line_col(text, end);
            JsonProblem {
                code: p.code,
                severity: "error",
                file: &file.display_name,
                message: &p.message,
                label: &p.label,
                help: p.help.as_deref(),
                line,
                column,
                end_line,
                end_column,
                offset: start,
                length: end - start,
            }
        })
        .collect();
    let report = JsonReport {
        file: &source.display_name,
        valid: problems.is_empty(),
        diagnostics,
    };
    // Serializing plain structs of strings and integers cannot fail.
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

/// "did you mean" for a misspelt name among `candidates`.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 9), (2, 3));
        assert_eq!(line_col(t, 999), (3, 1));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("hostnme", ["name", "hostname", "rootfs"]),
            Some("hostname")
        );
        assert_eq!(did_you_mean("zzz", ["name", "hostname"]), None);
    }
}
