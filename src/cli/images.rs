//! `launch images`, `rmi`, `prune` and `import`: the store from the command line.

use crate::exit;
use crate::image::layout::{ImportOptions, Imported, import_oci};
use crate::image::store::{ImageInfo, Pruned, Store};
use crate::image::{ImageError, Platform, archive::import_docker_archive};

use super::ImportSource;

/// Print an error as a miette report; its exit code.
fn fail(e: &ImageError, color: bool) -> u8 {
    eprint!("{}", e.render(color));
    e.exit_code()
}

fn open(color: bool) -> Result<Store, u8> {
    Store::open_default().map_err(|e| fail(&e, color))
}

/// `launch images`.
pub(super) fn images(color: bool) -> u8 {
    let store = match open(color) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.images() {
        Ok(list) => {
            print!("{}", render_images(&list));
            exit::OK
        }
        Err(e) => fail(&e, color),
    }
}

/// The `launch images` table.
pub fn render_images(list: &[ImageInfo]) -> String {
    if list.is_empty() {
        return "no images in the store (add one with `launch import` or `launch pull`)\n".into();
    }
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|i| {
            [
                i.reference.clone(),
                i.digest.short().to_owned(),
                size(i.size),
                i.last_used.map_or_else(|| "never".to_owned(), utc),
            ]
        })
        .collect();
    let head = ["REFERENCE", "DIGEST", "SIZE", "LAST USED"];
    let width = |c: usize| {
        rows.iter()
            .map(|r| r[c].chars().count())
            .chain([head[c].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = format!(
        "{:w0$}  {:w1$}  {:>w2$}  {}\n",
        head[0], head[1], head[2], head[3]
    );
    for r in rows {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:>w2$}  {}\n",
            r[0], r[1], r[2], r[3]
        ));
    }
    out
}

/// `launch rmi`.
pub(super) fn rmi(image: &str, color: bool) -> u8 {
    let store = match open(color) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.rmi(image) {
        Ok(p) => {
            print!("{}", render_pruned(&p));
            exit::OK
        }
        Err(e) => fail(&e, color),
    }
}

/// `launch prune`.
pub(super) fn prune(color: bool) -> u8 {
    let store = match open(color) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.prune() {
        Ok(p) => {
            print!("{}", render_pruned(&p));
            exit::OK
        }
        Err(e) => fail(&e, color),
    }
}

/// What `rmi` and `prune` print.
pub fn render_pruned(p: &Pruned) -> String {
    let mut out = String::new();
    for r in &p.refs {
        out.push_str(&format!("untagged {r}\n"));
    }
    for t in &p.tar_roots {
        out.push_str(&format!("forgot tar root {t} (the archive is gone)\n"));
    }
    for (d, n) in &p.blobs {
        out.push_str(&format!("removed blob {} ({})\n", d.short(), size(*n)));
    }
    for (d, n) in &p.layers {
        out.push_str(&format!("removed layer {} ({})\n", d.short(), size(*n)));
    }
    for d in &p.held {
        out.push_str(&format!(
            "kept layer {}: a running container uses it\n",
            d.short()
        ));
    }
    if p.leftovers > 0 {
        out.push_str(&format!(
            "removed leftovers of interrupted imports ({})\n",
            size(p.leftovers)
        ));
    }
    out.push_str(&format!("freed {}\n", size(p.freed())));
    out
}

/// `launch import oci|docker-archive`: import, then unpack every layer (reported on stderr).
/// SIGINT and SIGTERM stop it, keeping what is complete (see [`crate::image::cancel`]).
pub(super) fn import(source: ImportSource, color: bool) -> u8 {
    let signals = crate::image::cancel::Scope::install();
    let code = import_cancellable(source, color);
    drop(signals);
    // A signal that came once everything was done cancelled nothing.
    match crate::image::cancel::requested().filter(|_| code != exit::OK) {
        Some(sig) => {
            eprintln!(
                "launch: import cancelled by {}: what was half written is removed",
                crate::image::cancel::name(sig)
            );
            (128 + sig) as u8
        }
        None => code,
    }
}

fn import_cancellable(source: ImportSource, color: bool) -> u8 {
    let store = match open(color) {
        Ok(s) => s.with_cancel(crate::image::cancel::is_cancelled),
        Err(code) => return code,
    };
    let imported = match source {
        ImportSource::Oci {
            path,
            name,
            select,
            platform,
        } => {
            let platform = match platform.as_deref().map(Platform::parse).transpose() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("launch: error: --platform: {e}");
                    return exit::INVALID;
                }
            };
            let opts = ImportOptions {
                name,
                select,
                platform,
            };
            import_oci(&store, &path, &opts)
        }
        ImportSource::DockerArchive { path, name, select } => {
            let opts = ImportOptions {
                name,
                select,
                platform: None,
            };
            import_docker_archive(&store, &path, &opts)
        }
    };
    let imported: Imported = match imported {
        Ok(i) => i,
        Err(_) if crate::image::cancel::is_cancelled() => return exit::LAUNCHER,
        Err(e) => return fail(&e, color),
    };
    let layers = imported.layers();
    let mut progress = crate::image::progress::UnpackReporter::stderr();
    for (i, (blob, diff_id)) in layers.iter().enumerate() {
        let nth = (i + 1, layers.len());
        if let Err(e) = store.unpack_layer_with(blob, diff_id, nth, &mut progress) {
            return match crate::image::cancel::is_cancelled() {
                true => exit::LAUNCHER,
                false => fail(&e, color),
            };
        }
    }
    let r = &imported.record;
    println!(
        "imported {} ({}, {}, {} layer{})",
        r.reference,
        r.digest,
        r.platform,
        imported.manifest.layers.len(),
        if imported.manifest.layers.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    exit::OK
}

/// Bytes for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn size(n: u64) -> String {
    crate::image::human_size(n)
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
