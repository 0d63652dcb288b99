//! A manifest's text and the files it brought in (`extends`, `process.env_file`).
//!
//! Every file of a manifest lives in one combined text, each at its own byte range: the manifest
//! itself first (so a manifest without `extends` has the spans it always had), then the files it
//! extends and the env files, in the order they were read. A span is then a plain byte range, the
//! same type everywhere, and still says which file it points into: [`Source::file_at`] finds it,
//! and diagnostics render the right file with the right line and column.

use std::io::Read as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::Problem;

/// The name a manifest read from standard input goes by in diagnostics and plans.
pub const STDIN_NAME: &str = "<stdin>";

/// Bigger files are not manifests or env files: refused before they are read whole.
pub const MAX_FILE: u64 = 1 << 20;

/// How many files one manifest may bring in: a chain longer than this is a mistake.
const MAX_FILES: usize = 64;

/// What a file of a [`Source`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A manifest: the one given, or one it extends.
    Manifest,
    /// A dotenv file named by `process.env_file`.
    Env,
}

/// One file of a [`Source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// As shown in diagnostics: the command line's path for the manifest, the path as written
    /// (joined to the folder of the writing file's display name) for the others.
    pub display_name: String,
    /// Absolute, normalized path; `None` for text that came from no file (stdin, tests).
    pub path: Option<PathBuf>,
    /// Absolute folder that relative paths written in this file resolve against.
    pub dir: PathBuf,
    /// Where its text is in [`Source::text`] (its trailing newline excluded).
    pub range: Range<usize>,
    /// A manifest or an env file.
    pub kind: FileKind,
    /// For a manifest: the index of the file it extends, if it extends one.
    pub extends: Option<usize>,
    /// The value that brought this file in (an `extends` or an `env_file` entry), in
    /// [`Source::text`]; `None` for the manifest itself.
    pub named_at: Option<Range<usize>>,
}

/// A manifest's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The manifest's name as given on the command line (shown in diagnostics and plans).
    pub display_name: String,
    /// Absolute folder of the manifest: relative paths in it resolve against this.
    pub dir: PathBuf,
    /// Every file's text, the manifest's first, each followed by a newline.
    pub text: String,
    /// The files, the manifest first. One entry for a manifest that brings in nothing.
    pub files: Vec<SourceFile>,
    /// Problems met while reading the files (a base that cannot be read, a cycle): reported by
    /// [`crate::manifest::parse`] with every other problem.
    pub problems: Vec<Problem>,
    /// Whether the files the manifest names were read (false for a text given alone: then
    /// `extends` and `env_file` cannot be honoured, and validation says so).
    pub read_files: bool,
    /// Env files that could not be read, with the reason: validation reports them at the value
    /// that names them.
    pub unread: Vec<(PathBuf, String)>,
}

impl Source {
    /// Read a manifest file and every file it brings in; `-` is standard input
    /// ([`Source::read_stdin`]).
    pub fn read(path: &Path) -> std::io::Result<Source> {
        if path == Path::new("-") {
            return Source::read_stdin();
        }
        let text = read_text(path)?;
        let abs = crate::validate::normalize(&std::path::absolute(path)?);
        Ok(Source::with_files(
            &path.display().to_string(),
            &abs,
            &text,
            &|p| read_text(p),
        ))
    }

    /// The manifest on standard input (`launch validate -`): named [`STDIN_NAME`]; relative
    /// paths (and `extends`) resolve against the current directory.
    pub fn read_stdin() -> std::io::Result<Source> {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_FILE + 1)
            .read_to_string(&mut text)?;
        if text.len() as u64 > MAX_FILE {
            return Err(std::io::Error::other(format!(
                "larger than {MAX_FILE} bytes: not a manifest"
            )));
        }
        let dir = std::env::current_dir()?;
        let mut s = Source::from_text(STDIN_NAME, &dir, &text);
        s.bring_in(&|p| read_text(p));
        Ok(s)
    }

    /// One text alone (tests, OCI bundles): nothing is brought in; relative paths resolve against
    /// `dir`.
    pub fn from_text(display_name: &str, dir: &Path, text: &str) -> Source {
        let mut combined = String::with_capacity(text.len() + 1);
        combined.push_str(text);
        combined.push('\n');
        Source {
            display_name: display_name.to_owned(),
            dir: dir.to_path_buf(),
            files: vec![SourceFile {
                display_name: display_name.to_owned(),
                path: None,
                dir: dir.to_path_buf(),
                range: 0..text.len(),
                kind: FileKind::Manifest,
                extends: None,
                named_at: None,
            }],
            text: combined,
            problems: Vec::new(),
            read_files: false,
            unread: Vec::new(),
        }
    }

    /// A manifest at the absolute `path` whose text is `text` and whose `extends` and env files
    /// are read through `read` (tests give an in-memory file system).
    pub fn with_files(
        display_name: &str,
        path: &Path,
        text: &str,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Source {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let mut s = Source::from_text(display_name, dir, text);
        s.files[0].path = Some(path.to_path_buf());
        s.bring_in(read);
        s
    }

    /// The file a byte offset of [`Source::text`] falls in (the manifest for an offset past
    /// every file).
    pub fn file_at(&self, offset: usize) -> &SourceFile {
        self.files
            .iter()
            .find(|f| f.range.start <= offset && offset <= f.range.end)
            .unwrap_or(&self.files[0])
    }

    /// The folder relative paths resolve against for a value at `span`: the folder of the file
    /// that wrote it.
    pub fn dir_at(&self, span: &Range<usize>) -> &Path {
        &self.file_at(span.start).dir
    }

    /// A file's text.
    pub fn file_text(&self, f: &SourceFile) -> &str {
        self.text.get(f.range.clone()).unwrap_or("")
    }

    /// The env file at this absolute path, if it was read.
    pub fn env_file(&self, path: &Path) -> Option<&SourceFile> {
        self.files
            .iter()
            .find(|f| f.kind == FileKind::Env && f.path.as_deref() == Some(path))
    }

    /// "FILE:LINE" for an offset: how one place names another in a message.
    pub fn place(&self, offset: usize) -> String {
        let f = self.file_at(offset);
        let local = offset.saturating_sub(f.range.start);
        let (line, _) = crate::diag::line_col(self.file_text(f), local);
        format!("{}:{line}", f.display_name)
    }

    /// How a message at `from` names the place `offset`: "line N" in the same file, "FILE:LINE"
    /// in another.
    pub fn place_from(&self, offset: usize, from: usize) -> String {
        let (a, b) = (self.file_at(offset), self.file_at(from));
        if a.range == b.range {
            let (line, _) = crate::diag::line_col(self.file_text(a), offset - a.range.start);
            format!("line {line}")
        } else {
            self.place(offset)
        }
    }

    /// Whether this source is more than one file.
    pub fn is_composed(&self) -> bool {
        self.files.len() > 1
    }

    /// Read what the manifest brings in, breadth first: each manifest's `extends` and
    /// `process.env_file`. Problems (unreadable base, cycle, wrong type) are kept for `parse`;
    /// an env file that cannot be read is validation's to report, at the value naming it.
    fn bring_in(&mut self, read: &dyn Fn(&Path) -> std::io::Result<String>) {
        self.read_files = true;
        let mut next = 0;
        while next < self.files.len() {
            let i = next;
            next += 1;
            if self.files[i].kind != FileKind::Manifest {
                continue;
            }
            let text = self.file_text(&self.files[i]).to_owned();
            // Most manifests name neither: no second parse for them.
            if !text.contains("extends") && !text.contains("env_file") {
                continue;
            }
            let Some(refs) = references(&self.text, &self.files[i]) else {
                continue;
            };
            for (span, value) in refs.env_files {
                self.add_env_file(i, span, &value, read);
            }
            if let Some((span, value)) = refs.extends {
                self.add_base(i, span, value, read);
            }
        }
    }

    fn add_base(
        &mut self,
        from: usize,
        span: Range<usize>,
        value: Result<String, &'static str>,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) {
        let written = match value {
            Ok(v) => v,
            Err(kind) => {
                self.problems.push(
                    Problem::new(
                        "launch::extends::type",
                        span,
                        format!("`extends` must be a string, not {kind}"),
                    )
                    .label("expected the path of one manifest")
                    .help("write `extends = \"../base.toml\"` (one file; that file may extend another)"),
                );
                return;
            }
        };
        let (path, display) = self.locate(from, &written);
        // A chain that comes back to a file already in it.
        let mut chain = Vec::new();
        let mut at = Some(from);
        while let Some(j) = at {
            chain.push(j);
            at = self.files.iter().position(|f| f.extends == Some(j));
        }
        if let Some(j) = self
            .files
            .iter()
            .position(|f| f.kind == FileKind::Manifest && f.path.as_deref() == Some(&path))
        {
            let names: Vec<&str> = chain
                .iter()
                .rev()
                .map(|k| self.files[*k].display_name.as_str())
                .chain([self.files[j].display_name.as_str()])
                .collect();
            self.problems.push(
                Problem::new(
                    "launch::extends::cycle",
                    span,
                    format!("`extends` goes round in a circle: {}", names.join(" → ")),
                )
                .label(format!("{} is already in this chain", self.files[j].display_name))
                .help("remove `extends` from one of these files: a base cannot extend what extends it"),
            );
            return;
        }
        if self.files.len() >= MAX_FILES {
            self.problems.push(
                Problem::new(
                    "launch::extends::depth",
                    span,
                    format!("more than {MAX_FILES} files brought in by one manifest"),
                )
                .label("the chain stops here")
                .help("shorten the chain of `extends`"),
            );
            return;
        }
        match read(&path) {
            Ok(text) => {
                let idx = self.push_file(display, Some(path), text, FileKind::Manifest, span);
                self.files[from].extends = Some(idx);
            }
            Err(e) => self.problems.push(
                Problem::new(
                    "launch::extends::read",
                    span,
                    format!("cannot read {}: {e}", path.display()),
                )
                .label("the manifest this one extends")
                .help("fix the path: it is relative to the file that writes it"),
            ),
        }
    }

    fn add_env_file(
        &mut self,
        from: usize,
        span: Range<usize>,
        written: &str,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) {
        let (path, display) = self.locate(from, written);
        if self.env_file(&path).is_some() || self.files.len() >= MAX_FILES {
            return;
        }
        match read(&path) {
            Ok(text) => {
                self.push_file(display, Some(path), text, FileKind::Env, span);
            }
            Err(e) => self.unread.push((path, e.to_string())),
        }
    }

    /// Where a path written in file `from` points, and how to show it.
    fn locate(&self, from: usize, written: &str) -> (PathBuf, String) {
        let f = &self.files[from];
        let path = crate::validate::normalize(&f.dir.join(written));
        let display = if Path::new(written).is_absolute() {
            written.to_owned()
        } else {
            let shown_dir = Path::new(&f.display_name).parent().unwrap_or(Path::new(""));
            shown(&shown_dir.join(written))
        };
        (path, display)
    }

    fn push_file(
        &mut self,
        display_name: String,
        path: Option<PathBuf>,
        text: String,
        kind: FileKind,
        named_at: Range<usize>,
    ) -> usize {
        let start = self.text.len();
        self.text.push_str(&text);
        let end = self.text.len();
        self.text.push('\n');
        let dir = path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.clone());
        self.files.push(SourceFile {
            display_name,
            path,
            dir,
            range: start..end,
            kind,
            extends: None,
            named_at: Some(named_at),
        });
        self.files.len() - 1
    }
}

/// A relative path with `.` removed and `dir/..` folded, kept relative (`../base.toml`).
fn shown(p: &Path) -> String {
    use std::path::Component;
    let mut parts: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let out: PathBuf = parts.iter().collect();
    out.display().to_string()
}

/// Read a file of at most [`MAX_FILE`] bytes as UTF-8.
fn read_text(path: &Path) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    f.take(MAX_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE} bytes: not a manifest"
        )));
    }
    Ok(text)
}

/// What a manifest file refers to.
struct References {
    /// `extends`: its span, and the path or the kind of the value that is not one.
    extends: Option<(Range<usize>, Result<String, &'static str>)>,
    /// `process.env_file`: each path with its span.
    env_files: Vec<(Range<usize>, String)>,
}

/// The `extends` and `process.env_file` of one file, if it parses (a syntax error is `parse`'s
/// to report).
fn references(combined: &str, f: &SourceFile) -> Option<References> {
    let padded = padded(combined, f);
    let doc = DeTable::parse(&padded).ok()?;
    let doc = doc.get_ref();
    let extends = doc.get("extends").map(|v| {
        let value = match v.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            other => Err(type_name(other)),
        };
        (v.span(), value)
    });
    let mut env_files = Vec::new();
    if let Some(DeValue::Table(p)) = doc.get("process").map(Spanned::get_ref)
        && let Some(DeValue::Array(a)) = p.get("env_file").map(Spanned::get_ref)
    {
        for v in a.iter() {
            if let DeValue::String(s) = v.get_ref() {
                env_files.push((v.span(), s.to_string()));
            }
        }
    }
    Some(References { extends, env_files })
}

/// One file of the combined text, preceded by blanks up to its start: parsed, its spans are
/// offsets into the combined text (TOML ignores leading whitespace). That costs a few kilobytes
/// for a chain and keeps every span exact without rewriting the parsed tree.
pub(super) fn padded(combined: &str, f: &SourceFile) -> String {
    let text = combined.get(f.range.clone()).unwrap_or("");
    let mut s = String::with_capacity(f.range.end);
    s.extend(std::iter::repeat_n(' ', f.range.start));
    s.push_str(text);
    s
}

/// The kind of a TOML value, for messages.
pub(super) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
