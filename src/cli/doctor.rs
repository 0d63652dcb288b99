//! `launch doctor [MANIFEST]`: the host's checks, and whether the manifest (or each kind of
//! container) can run here. The checks themselves are in [`crate::doctor`].

use std::path::Path;

use super::{Format, print, read_source, report_problems, resolve_root};
use crate::doctor::{ManifestFindings, Needs, Report};
use crate::exit;
use crate::host::{Host, HostFacts, PathKind, RealHost, RootRef};
use crate::manifest::Source;

/// Run `launch doctor`; returns the exit code (docs/exit-codes.md).
pub(super) fn doctor(manifest: Option<&Path>, format: Format, color: bool) -> u8 {
    let mut host = RealHost::probe();
    let findings = match manifest {
        None => None,
        Some(path) => match examine(host, path, format, color) {
            Ok((h, f)) => {
                host = h;
                Some(f)
            }
            Err(code) => return code,
        },
    };
    let facts = crate::doctor::probe::probe(host.facts().clone());
    let report = Report::new(&facts, findings);
    let out = match format {
        Format::Text => crate::doctor::render_text(&report),
        Format::Json => crate::doctor::render_json(&report),
    };
    match print(&out) {
        exit::OK => crate::doctor::exit_code(&report),
        code => code,
    }
}

/// Read and validate the manifest twice: as root on a host with every capability, for the Spec
/// it describes (a problem there is the manifest's own: exit 2), and against this host and
/// user, whose problems become the `manifest` check.
fn examine(
    host: RealHost,
    path: &Path,
    format: Format,
    color: bool,
) -> Result<(RealHost, ManifestFindings), u8> {
    let source = read_source(Source::read(path), path, format)?;
    let host = resolve_root(host, &source, path, color, format, false)?;
    // As root first; a manifest only a non-root user can run (pasta, slirp) as one.
    let real = host.facts().uid;
    let as_user = if real == 0 { NOBODY } else { real };
    let capable = |uid| Capable {
        facts: crate::doctor::permissive(host.facts(), uid),
        inner: &host,
    };
    let spec = match crate::validate::spec(&source, &capable(0)) {
        Ok(spec) => spec,
        Err(problems) => crate::validate::spec(&source, &capable(as_user)).map_err(|_| {
            report_problems(&source, problems, color, format);
            exit::INVALID
        })?,
    };
    let problems = match crate::validate::spec(&source, &host) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .into_iter()
            .map(|p| (p.code.to_string(), p.message.clone(), p.help.clone()))
            .collect(),
    };
    let findings = ManifestFindings {
        name: source.display_name.clone(),
        needs: Needs::of(&spec, host.facts()),
        problems,
    };
    Ok((host, findings))
}

/// `nobody`: the non-root user a manifest is validated as when only such a user can run it.
const NOBODY: u32 = 65534;

/// The real host's files and images with facts that grant everything
/// ([`crate::doctor::permissive`]).
struct Capable<'h> {
    facts: HostFacts,
    inner: &'h RealHost,
}

impl Host for Capable<'_> {
    fn facts(&self) -> &HostFacts {
        &self.facts
    }
    fn path_kind(&self, path: &Path) -> Option<PathKind> {
        self.inner.path_kind(path)
    }
    fn read_text(&self, path: &Path, max: u64) -> Result<String, String> {
        self.inner.read_text(path, max)
    }
    fn dir_in_root(&self, root: &Path, rel: &Path) -> Option<bool> {
        self.inner.dir_in_root(root, rel)
    }
    fn image(&self, key: &str) -> Option<&crate::image::resolve::Resolved> {
        self.inner.image(key)
    }
    fn root_files(&self, root: RootRef, names: &[&str]) -> Result<Vec<Option<Vec<u8>>>, String> {
        self.inner.root_files(root, names)
    }
}
