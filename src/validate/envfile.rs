//! `extends` and `process.env_file` as validation sees them: the files were read with the
//! manifest ([`crate::manifest::Source`]); here env files become variables of `process.env`.

use std::borrow::Cow;

use super::Cx;
use crate::diag::Problem;
use crate::manifest::{Manifest, Sp, dotenv};

/// The manifest with its env files' variables added to `process.env` (later files win over
/// earlier ones, and `process.env` over them all). Each variable keeps its span in the env file,
/// so a problem with it points there.
pub(crate) fn apply<'m>(cx: &mut Cx, m: &'m Manifest) -> Cow<'m, Manifest> {
    if let Some(e) = &m.extends
        && !cx.source.read_files
    {
        cx.push(
            Problem::new(
                "launch::extends::read",
                e.span(),
                "`extends` in a manifest given as text alone",
            )
            .label("the file it names was not read")
            .help("run launch on the manifest's file (or on standard input with `-`)"),
        );
    }
    let Some(files) = m.process.as_ref().and_then(|p| p.get().env_file.as_ref()) else {
        return Cow::Borrowed(m);
    };
    let mut vars: Vec<dotenv::Var> = Vec::new();
    for f in files.get() {
        let path = cx.resolve(f);
        let Some(file) = cx.source.env_file(&path).cloned() else {
            let why = cx
                .source
                .unread
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, why)| why.clone())
                .unwrap_or_else(|| "it was not read with the manifest".to_owned());
            cx.push(
                Problem::new(
                    "launch::env_file::read",
                    f.span(),
                    format!("cannot read {}: {why}", path.display()),
                )
                .label("this env file")
                .help("fix the path: it is relative to the manifest that names it"),
            );
            continue;
        };
        let (found, problems) = dotenv::parse(cx.source.file_text(&file), file.range.start);
        for p in problems {
            cx.push(p);
        }
        vars.extend(found);
    }
    let mut m = m.clone();
    let Some(process) = m.process.as_mut() else {
        return Cow::Owned(m);
    };
    let span = process.span();
    let mut p = process.get().clone();
    let written: Vec<String> = p.env.keys().map(|k| k.get().clone()).collect();
    // Later files win: walk from the last, keep a name's first sighting.
    for v in vars.into_iter().rev() {
        if written.contains(v.name.get()) || p.env.keys().any(|k| k.get() == v.name.get()) {
            continue;
        }
        p.env.insert(v.name, v.value);
    }
    *process = Sp::new(span, p);
    Cow::Owned(m)
}
