//! `[rootfs]`: where the root filesystem comes from.

use super::{Cx, flag};
use crate::diag::Problem;
use crate::host::PathKind;
use crate::manifest::{Rootfs, Sp};
use crate::spec::{Root, RootSource};
use crate::sys::tar::Compression;

pub(crate) fn check(cx: &mut Cx, r: &Sp<Rootfs>) -> Root {
    let root = check_source(cx, r);
    let writable = r.writable.as_ref().filter(|w| *w.get());
    if let Some(w) = writable {
        let problem = match &root.source {
            RootSource::Image { .. } | RootSource::Tar { .. } => Some((
                "`writable` puts an overlay over a `path` or `host` root",
                "this root is an overlay already",
                "image and `tar` roots keep their writes for the run only: remove `writable` \
                 (`persist = \"DIR\"` keeps them)",
            )),
            RootSource::Path { .. } | RootSource::Host if root.readonly => Some((
                "a root cannot be both writable and read-only",
                "`readonly = true` as well",
                "keep one: `writable = true` (writes allowed, dropped at exit) or \
                 `readonly = true`",
            )),
            RootSource::Path { .. } | RootSource::Host => None,
        };
        if let Some((message, label, help)) = problem {
            cx.push(
                Problem::new("launch::rootfs::writable", w.span(), message)
                    .label(label)
                    .help(help),
            );
        }
    }
    if let (Some(p), false) = (&r.persist, root.is_overlay()) {
        let why = match &root.source {
            RootSource::Tar { .. } => {
                "with a user namespace (or a launcher that is not root) a `tar` root is \
                 extracted for each run, not an overlay"
            }
            RootSource::Path { .. } | RootSource::Host | RootSource::Image { .. } => {
                "this root is used in place, not as an overlay"
            }
        };
        cx.push(
            Problem::new(
                "launch::rootfs::persist",
                p.span(),
                "`persist` keeps an overlay root's writes",
            )
            .label(why)
            .help(
                "add `writable = true` to a `path` or `host` root, use an image or a `tar` root \
                 without a user namespace, or remove `persist`",
            ),
        );
    }
    root
}

fn check_source(cx: &mut Cx, r: &Sp<Rootfs>) -> Root {
    let host_on = r.host.as_ref().filter(|h| *h.get());
    let given: Vec<(&str, std::ops::Range<usize>)> = [
        r.path.as_ref().map(|p| ("path", p.span())),
        r.tar.as_ref().map(|p| ("tar", p.span())),
        host_on.map(|p| ("host", p.span())),
        r.image.as_ref().map(|p| ("image", p.span())),
        r.oci.as_ref().map(|p| ("oci", p.span())),
        r.docker_archive
            .as_ref()
            .map(|p| ("docker_archive", p.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let readonly = flag(r.readonly.as_ref(), false);
    if let (Some(m), None) = (&r.max_size, &r.tar) {
        cx.push(
            Problem::new(
                "launch::rootfs::max_size",
                m.span(),
                "`max_size` bounds an archive's extraction",
            )
            .label("this root is not extracted")
            .help("remove `max_size`, or use it with `tar = ...`"),
        );
    }
    let image_source = r.image.is_some() || r.oci.is_some() || r.docker_archive.is_some();
    for (key, v) in [("pull", &r.pull), ("platform", &r.platform)] {
        if let (Some(v), false) = (v, image_source) {
            cx.push(
                Problem::new(
                    "launch::rootfs::image_key",
                    v.span(),
                    format!("`{key}` is for an image root"),
                )
                .label("this root is not an image")
                .help(format!(
                    "remove `{key}`, or name an image: `image = \"...\"`, `oci = \"...\"` or \
                     `docker_archive = \"...\"`"
                )),
            );
        }
    }
    let pivot_root = flag(r.pivot_root.as_ref(), true);
    let empty = Root {
        source: RootSource::Host,
        readonly,
        pivot_root,
        writable: flag(r.writable.as_ref(), false),
        persist: r.persist.as_ref().map(|p| cx.resolve(p)),
    };
    if given.len() != 1 {
        let (span, label) = match given.get(1) {
            Some((k, s)) => (
                s.clone(),
                format!("`{k}` given as well as `{}`", given[0].0),
            ),
            None => (
                r.span().start..r.span().start,
                "no source given".to_string(),
            ),
        };
        cx.push(
            Problem::new(
                "launch::rootfs::source",
                span,
                "[rootfs] needs exactly one of `path`, `tar`, `host = true`, `image`, `oci` or \
                 `docker_archive`",
            )
            .label(label)
            .help(
                "keep one: `path = \"./rootfs\"`, `tar = \"image.tar\"`, `host = true`, \
                 `image = \"debian:bookworm\"`, `oci = \"./app-oci\"` or \
                 `docker_archive = \"app.tar\"`",
            ),
        );
        return empty;
    }
    if let Some(p) = &r.path {
        let path = cx.resolve(p);
        match cx.host.path_kind(&path) {
            Some(PathKind::Dir) => {}
            Some(_) => cx.push(
                Problem::new(
                    "launch::rootfs::not_a_directory",
                    p.span(),
                    format!("{} is not a directory", path.display()),
                )
                .label("`path` must name a directory")
                .help("for an archive, write `tar = ...` instead of `path = ...`"),
            ),
            None => cx.push(not_found(
                p,
                &path,
                "create the directory, or fix the path (relative to the manifest)",
            )),
        }
        return Root {
            source: RootSource::Path { path },
            ..empty
        };
    }
    if let Some(t) = &r.tar {
        let path = cx.resolve(t);
        let Some(compression) = Compression::from_path(&path) else {
            cx.push(
                Problem::new(
                    "launch::rootfs::archive_format",
                    t.span(),
                    format!("cannot tell the format of `{}`", t.get()),
                )
                .label("not .tar, .tar.gz, .tgz, .tar.zst or .tzst")
                .help("name the archive by its format, e.g. `rootfs.tar` or `rootfs.tar.gz`"),
            );
            return empty;
        };
        match cx.host.path_kind(&path) {
            Some(PathKind::File) => {}
            Some(_) => cx.push(
                Problem::new("launch::rootfs::not_a_file", t.span(), format!("{} is not a file", path.display()))
                    .label("`tar` must name an archive file")
                    .help("for a directory, write `path = ...` instead of `tar = ...`"),
            ),
            None => cx.push(not_found(
                t,
                &path,
                "make it first, e.g. `docker export $(docker create debian) > rootfs.tar`; the README shows how to \
                 build one without docker",
            )),
        }
        let max_size = r.max_size.as_ref().and_then(|q| super::size(cx, q));
        // Extracted into the store before validation, unless a user namespace needs the
        // per-run extraction (crate::image::resolve::wanted_tar).
        let stored = cx
            .host
            .image(&crate::image::resolve::key("tar", t.get(), cx.dir_at(t)))
            .and_then(|img| {
                Some(crate::spec::StoredTar {
                    store: img.store.clone(),
                    digest: img.manifest.to_string(),
                    layer: img.layers.first()?.to_string(),
                })
            });
        return Root {
            source: RootSource::Tar {
                archive: path,
                compression,
                max_size,
                stored,
            },
            ..empty
        };
    }
    for (kind, v) in [
        ("image", &r.image),
        ("oci", &r.oci),
        ("docker_archive", &r.docker_archive),
    ] {
        let Some(v) = v else { continue };
        if !image_options(cx, r, kind) {
            return empty;
        }
        let key = crate::image::resolve::key(kind, v.get(), cx.dir_at(v));
        let Some(img) = cx.host.image(&key) else {
            cx.push(
                Problem::new(
                    "launch::rootfs::image",
                    v.span(),
                    "this image was not brought into the store",
                )
                .label("not resolved before validation")
                .help(
                    "`launch run`, `plan`, `validate` and `export` pull or import it first; \
                     check the store (`launch images`)",
                ),
            );
            return empty;
        };
        return Root {
            source: RootSource::Image {
                name: v.get().clone(),
                store: img.store.clone(),
                manifest: img.manifest.to_string(),
                layers: img.layers.iter().map(|d| d.to_string()).collect(),
                exposed_ports: img.config.exposed_ports(),
            },
            ..empty
        };
    }
    Root {
        source: RootSource::Host,
        ..empty
    }
}

/// `pull` and `platform` of an image root of kind `kind`: whether both are good (each problem
/// reported).
fn image_options(cx: &mut Cx, r: &Rootfs, kind: &str) -> bool {
    let mut good = true;
    if let Some(p) = &r.platform {
        if let Err(why) = crate::image::Platform::parse(p.get()) {
            cx.push(
                Problem::new("launch::rootfs::platform", p.span(), why)
                    .label("not os/arch[/variant]")
                    .help("write e.g. `platform = \"linux/amd64\"` or `\"linux/arm64/v8\"`"),
            );
            good = false;
        }
    }
    if let Some(p) = &r.pull {
        let problem = match (kind, crate::image::resolve::Pull::parse(p.get())) {
            ("image", Some(_)) => None,
            ("image", None) => Some(
                Problem::new(
                    "launch::rootfs::pull",
                    p.span(),
                    format!("`{}` is not a pull policy", p.get()),
                )
                .label("not missing, always or never")
                .help("write `pull = \"missing\"` (the default), `\"always\"` or `\"never\"`"),
            ),
            (_, _) => Some(
                Problem::new(
                    "launch::rootfs::pull",
                    p.span(),
                    "`pull` is for registry images",
                )
                .label(format!("this root is `{kind}`, a local source"))
                .help("remove `pull`: a local source is imported again whenever it changed"),
            ),
        };
        if let Some(problem) = problem {
            cx.push(problem);
            good = false;
        }
    }
    good
}

fn not_found(v: &Sp<String>, path: &std::path::Path, help: &str) -> Problem {
    Problem::new(
        "launch::rootfs::not_found",
        v.span(),
        format!("{} does not exist", path.display()),
    )
    .label("no such file or directory")
    .help(help.to_owned())
}
