//! The image store (`launch::image`): OCI layouts and docker archives imported, layers unpacked
//! into overlay form and checked by mounting them with overlayfs, digests checked while
//! streaming, hostile layers contained, concurrent and killed unpacks, holds against prune, and
//! the `tar` root cache. Every store is a fresh directory under TMPDIR (`LAUNCH_STORE`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use launch::image::layout::{ImportOptions, import_oci};
use launch::image::store::{Store, TarRootHit};
use launch::image::{Digest, ImageError, Platform};
use tar::EntryType;

use crate::fixtures::{Ar, gzip, launch_bin, need_root, unique};

/// A scratch directory with a store in `store/`; removed at the end.
pub(crate) struct Scratch {
    pub(crate) dir: PathBuf,
}

impl Scratch {
    pub(crate) fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique(&format!("store-{tag}")));
        fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    pub(crate) fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }

    fn store(&self) -> Store {
        Store::open(&self.store_dir()).unwrap()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(launch_bin());
        c.args(args)
            .current_dir(&self.dir)
            .env("LAUNCH_STORE", self.store_dir())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// `launch ARGS` with this store, to completion.
    fn launch(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Names in a store directory (`tmp`, `ingest`, `layers/sha256`, ...).
    pub(crate) fn names(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.store_dir().join(sub))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("rm").arg("-rf").arg(&self.dir).status();
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A layer blob: its bytes as stored, and the digest of its uncompressed tar.
pub(crate) struct Blob {
    pub(crate) bytes: Vec<u8>,
    pub(crate) diff_id: String,
    media_type: &'static str,
}

pub(crate) fn plain(tar: Vec<u8>) -> Blob {
    Blob {
        diff_id: Digest::of(&tar).to_string(),
        bytes: tar,
        media_type: "application/vnd.oci.image.layer.v1.tar",
    }
}

fn gz(tar: Vec<u8>) -> Blob {
    Blob {
        diff_id: Digest::of(&tar).to_string(),
        bytes: gzip(&tar),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    }
}

/// zstd through the `zstd` program, as image tools make them (with content checksums).
fn zst(tar: Vec<u8>) -> Blob {
    use std::io::Write;
    let mut child = Command::new("zstd")
        .args(["-q", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the zstd program (apt-get install zstd; .ci/run installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let input = tar.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    Blob {
        diff_id: Digest::of(&tar).to_string(),
        bytes: out.stdout,
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Write an OCI image layout of `layers` (bottom first) at `dir`, named `latest`; `diff_ids`
/// overrides the config's diff_ids. Returns the manifest digest.
pub(crate) fn write_layout(dir: &Path, layers: &[Blob], diff_ids: Option<Vec<String>>) -> String {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        fs::write(blobs.join(d.hex()), bytes).unwrap();
        serde_json::json!({"digest": d.to_string(), "size": bytes.len()})
    };
    let diff_ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| l.diff_id.clone()).collect());
    let config = serde_json::json!({
        "architecture": Platform::host().architecture, "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let mut cdesc = put(&serde_json::to_vec(&config).unwrap());
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let ldescs: Vec<_> = layers
        .iter()
        .map(|l| {
            let mut d = put(&l.bytes);
            d["mediaType"] = l.media_type.into();
            d
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cdesc, "layers": ldescs,
    });
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let mut mdesc = put(&mbytes);
    mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    mdesc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [mdesc]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Digest::of(&mbytes).to_string()
}

/// Run `script` in a private mount namespace with `lowers` (top first) mounted read-only as
/// an overlayfs at `$M`; its output.
fn in_overlay(scratch: &Scratch, lowers: &[PathBuf], script: &str) -> String {
    let mnt = scratch.dir.join(unique("merged"));
    fs::create_dir_all(&mnt).unwrap();
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let full = format!(
        "set -e; mount -t overlay overlay -o lowerdir={} \"$M\"; cd \"$M\"; {script}",
        lower.join(":")
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &full])
        .env("M", &mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "overlay mount: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The layer directories of an imported image, top first (as lowerdir= wants them).
fn lowers(store: &Store, manifest: &str) -> Vec<PathBuf> {
    let layers = store
        .unpack_image(&Digest::parse(manifest).unwrap())
        .unwrap();
    layers.into_iter().rev().map(|l| l.root).collect()
}

/// Two layers whose merge tests whiteouts and opaque directories: (bottom, upper).
fn whiteout_layers() -> (Vec<u8>, Vec<u8>) {
    let bottom = Ar::new()
        .dir("a")
        .file("a/x", b"x")
        .file("a/y", b"y")
        .dir("b")
        .file("b/keep", b"keep")
        .file("b/gone", b"gone")
        .file("top", b"top")
        .dir("d")
        .file("d/old", b"old")
        .dir("e")
        .dir("e/deep")
        .file("e/deep/f", b"f")
        .finish();
    let upper = Ar::new()
        // The opaque marker after the directory's own entries, and before them.
        .file("a/new", b"new")
        .file("a/.wh..wh..opq", b"")
        .file("d/.wh..wh..opq", b"")
        .file("d/fresh", b"fresh")
        .file("b/.wh.gone", b"")
        .file(".wh.top", b"")
        .file(".wh.e", b"")
        // A whiteout hides lower layers only: this layer's own `c` stays.
        .file("c", b"c")
        .file(".wh.c", b"")
        .file(".wh..wh.plnk", b"")
        .finish();
    (bottom, upper)
}

/// What the merge of [`whiteout_layers`] shows, by `MERGED_SCRIPT`.
const MERGED: &str = ".\n./a\n./a/new\n./b\n./b/keep\n./c\n./d\n./d/fresh\n---\nnewfreshkeepc";
const MERGED_SCRIPT: &str = "find . | sort; echo ---; cat a/new d/fresh b/keep c";

#[test]
fn whiteouts_and_opaque_directories_merge_as_overlayfs_would() {
    need_root();
    let s = Scratch::new("wh");
    let (bottom, upper) = whiteout_layers();
    let layout = s.dir.join("layout");
    let manifest = write_layout(&layout, &[plain(bottom), gz(upper)], None);
    let out = ok(&s.launch(&[
        "import",
        "oci",
        layout.to_str().unwrap(),
        "--name",
        "t/wh:1",
    ]));
    assert!(out.contains("imported t/wh:1 (sha256:"), "{out}");
    let store = s.store();
    let lowers = lowers(&store, &manifest);
    // The upper layer in overlay form.
    let top = &lowers[0];
    let wh = fs::symlink_metadata(top.join("b/gone")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()) && wh.rdev() == 0,
        "b/gone is not a 0:0 whiteout device"
    );
    assert!(!top.join("b/.wh.gone").exists());
    assert!(!top.join("a/.wh..wh..opq").exists());
    assert_eq!(in_overlay(&s, &lowers, MERGED_SCRIPT), MERGED);
}

/// An unprivileged user's store: the same layers unpacked by uid 65534 (whiteouts as 0:0
/// devices, which any user may create; opaque directories marked `user.overlay.opaque`), and
/// merged by that user's own `userxattr` overlay mount in a user namespace.
#[test]
fn a_rootless_store_unpacks_layers_for_a_userxattr_overlay() {
    need_root();
    let s = Scratch::new("rootless");
    let (bottom, upper) = whiteout_layers();
    let (b, u) = (plain(bottom), gz(upper));
    let lowers: Vec<PathBuf> = [&u.diff_id, &b.diff_id]
        .iter()
        .map(|d| {
            let hex = d.strip_prefix("sha256:").unwrap();
            s.store_dir().join("layers/sha256").join(hex).join("root")
        })
        .collect();
    write_layout(&s.dir.join("layout"), &[b, u], None);
    fs::create_dir_all(s.store_dir()).unwrap();
    std::os::unix::fs::chown(s.store_dir(), Some(65534), Some(65534)).unwrap();
    let as_nobody = |argv: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args(argv)
            .current_dir(&s.dir)
            .env("LAUNCH_STORE", s.store_dir())
            .env("HOME", &s.dir);
        c.output().unwrap()
    };
    let bin = launch_bin();
    ok(&as_nobody(&[&bin, "import", "oci", "layout"]));
    let top = &lowers[0];
    assert_eq!(fs::metadata(top.join("a/new")).unwrap().uid(), 65534);
    let mnt = s.dir.join("merged");
    fs::create_dir_all(&mnt).unwrap();
    std::os::unix::fs::chown(&mnt, Some(65534), Some(65534)).unwrap();
    let script = format!(
        "set -e; mount -t overlay overlay -o userxattr,lowerdir={}:{} {}; cd {}; {MERGED_SCRIPT}",
        lowers[0].display(),
        lowers[1].display(),
        mnt.display(),
        mnt.display()
    );
    let out = as_nobody(&["unshare", "-Urm", "sh", "-c", &script]);
    assert_eq!(ok(&out), MERGED);
}

#[test]
fn hardlinks_stay_links_in_a_zstd_layer() {
    need_root();
    let s = Scratch::new("hl");
    let tar = Ar::new()
        .dir("h")
        .file("h/orig", b"shared content")
        .entry(EntryType::Link, "h/link", "h/orig", b"")
        .finish();
    let blob = zst(tar);
    let layout = s.dir.join("layout");
    let manifest = write_layout(&layout, &[blob], None);
    let store = s.store();
    let imported = import_oci(&store, &layout, &ImportOptions::default()).unwrap();
    assert_eq!(imported.record.reference, "localhost/layout:latest");
    assert_eq!(imported.record.digest.as_str(), manifest);
    let root = &lowers(&store, &manifest)[0];
    let (a, b) = (
        fs::metadata(root.join("h/orig")).unwrap(),
        fs::metadata(root.join("h/link")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    assert_eq!(fs::read(root.join("h/link")).unwrap(), b"shared content");
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_kept() {
    need_root();
    let s = Scratch::new("tamper");
    let layout = s.dir.join("layout");
    let tar = Ar::new().file("f", b"original").finish();
    let blob = gz(tar);
    write_layout(&layout, &[blob], None);
    // Change the layer blob behind its name.
    let layer_name = Digest::of(&gzip(&Ar::new().file("f", b"original").finish()));
    let path = layout.join("blobs/sha256").join(layer_name.hex());
    fs::write(&path, gzip(&Ar::new().file("f", b"tampered").finish())).unwrap();
    let o = s.launch(&["import", "oci", "layout"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("launch::image::digest_mismatch") && err.contains("nothing of it was kept"),
        "{err}"
    );
    assert!(
        !s.store_dir()
            .join("blobs/sha256")
            .join(layer_name.hex())
            .exists()
    );
    assert_eq!(s.names("ingest"), Vec::<String>::new());
    assert_eq!(s.names("refs"), Vec::<String>::new());
}

#[test]
fn a_layer_whose_diff_id_does_not_match_is_refused_and_removed() {
    need_root();
    let s = Scratch::new("diffid");
    let layout = s.dir.join("layout");
    let wrong = Digest::of(b"something else").to_string();
    write_layout(
        &layout,
        &[gz(Ar::new().file("f", b"data").finish())],
        Some(vec![wrong.clone()]),
    );
    let o = s.launch(&["import", "oci", "layout"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("diff_id") && err.contains(&wrong), "{err}");
    assert_eq!(s.names("layers/sha256"), Vec::<String>::new());
    assert_eq!(s.names("tmp"), Vec::<String>::new());
}

#[test]
fn hostile_layers_are_refused_or_contained() {
    need_root();
    let s = Scratch::new("hostile");
    let outside = s.dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("victim"), b"safe").unwrap();
    let out = outside.display().to_string();
    let store = s.store();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dot-dot", Ar::new().file("../escape", b"x").finish()),
        (
            "write through a symlink",
            Ar::new()
                .symlink("evil", &out)
                .file("evil/pwned", b"x")
                .finish(),
        ),
        (
            "whiteout through a symlink",
            Ar::new()
                .symlink("evil", &out)
                .file("evil/.wh.victim", b"")
                .finish(),
        ),
        (
            "opaque marker through a symlink",
            Ar::new()
                .symlink("evil", &out)
                .file("evil/.wh..wh..opq", b"")
                .finish(),
        ),
        (
            "hard link out",
            Ar::new()
                .entry(EntryType::Link, "l", &format!("{out}/victim"), b"")
                .finish(),
        ),
    ];
    for (what, tar) in cases {
        let blob = store.put_bytes(&tar, what).unwrap();
        let diff_id = Digest::of(&tar);
        let err = store.unpack_layer(&blob, &diff_id).unwrap_err();
        assert!(matches!(err, ImageError::Sys(_)), "{what}: {err}");
        assert_eq!(s.names("layers/sha256"), Vec::<String>::new(), "{what}");
        assert_eq!(s.names("tmp"), Vec::<String>::new(), "{what}");
    }
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"safe");
    assert!(!outside.join("pwned").exists() && !s.dir.join("escape").exists());
    assert!(fs::metadata(outside.join("victim")).unwrap().is_file());
    // An absolute symlink is kept as a symlink: it resolves inside the container's root.
    let tar = Ar::new().symlink("abs", "/etc/passwd").finish();
    let blob = store.put_bytes(&tar, "abs").unwrap();
    let layer = store.unpack_layer(&blob, &Digest::of(&tar)).unwrap();
    assert_eq!(
        fs::read_link(layer.root.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
}

/// Names with a leading `/` (`umoci insert` writes `/` and `/bin/sh`) are read as containerd and
/// Docker read them: relative to the layer's root, and written beneath it like any other.
#[test]
fn a_layer_with_absolute_names_unpacks_beneath_its_root() {
    need_root();
    let s = Scratch::new("absnames");
    let script = "import io, sys, tarfile\n\
                  b = io.BytesIO()\n\
                  with tarfile.open(fileobj=b, mode='w', format=tarfile.PAX_FORMAT) as t:\n\
                  \x20   for name in ['/', '/abs']:\n\
                  \x20       i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755\n\
                  \x20       t.addfile(i)\n\
                  \x20   i = tarfile.TarInfo('/abs/file'); i.size = 2; t.addfile(i, io.BytesIO(b'in'))\n\
                  \x20   i = tarfile.TarInfo('/abs/link'); i.type = tarfile.LNKTYPE; i.linkname = '/abs/file'\n\
                  \x20   t.addfile(i)\n\
                  sys.stdout.buffer.write(b.getvalue())\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let tar = out.stdout;
    let store = s.store();
    let blob = store.put_bytes(&tar, "absolute names").unwrap();
    let layer = store.unpack_layer(&blob, &Digest::of(&tar)).unwrap();
    assert_eq!(fs::read(layer.root.join("abs/file")).unwrap(), b"in");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(layer.root.join("abs/link")).unwrap().ino(),
        fs::metadata(layer.root.join("abs/file")).unwrap().ino()
    );
    assert!(!Path::new("/abs/file").exists());
}

/// A layer of `files` files of 1 MiB each under `big/`.
fn big_layer(files: usize) -> Vec<u8> {
    let mut ar = Ar::new();
    ar.dir("big");
    let mut data = vec![0u8; 1 << 20];
    for i in 0..files {
        for (j, b) in data.iter_mut().enumerate() {
            *b = (i * 31 + j * 7) as u8;
        }
        ar.file(&format!("big/f{i:03}"), &data);
    }
    ar.finish()
}

#[test]
fn two_processes_unpacking_one_layer_end_with_one_copy() {
    need_root();
    let s = Scratch::new("concurrent");
    let layout = s.dir.join("layout");
    write_layout(&layout, &[plain(big_layer(8))], None);
    let a = s.cmd(&["import", "oci", "layout"]).spawn().unwrap();
    let b = s.cmd(&["import", "oci", "layout"]).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    ok(&a);
    ok(&b);
    let layers = s.names("layers/sha256");
    assert_eq!(layers.len(), 1, "{layers:?}");
    assert_eq!(s.names("tmp"), Vec::<String>::new());
    let root = s
        .store_dir()
        .join("layers/sha256")
        .join(&layers[0])
        .join("root");
    assert_eq!(fs::read_dir(root.join("big")).unwrap().count(), 8);
    assert_eq!(fs::metadata(root.join("big/f007")).unwrap().len(), 1 << 20);
}

#[test]
fn an_unpack_killed_halfway_leaves_nothing_trusted_and_a_rerun_completes() {
    need_root();
    let s = Scratch::new("crash");
    let layout = s.dir.join("layout");
    let tar = big_layer(16);
    let diff_id = Digest::of(&tar);
    write_layout(&layout, &[plain(tar)], None);
    let mut child = s.cmd(&["import", "oci", "layout"]).spawn().unwrap();
    // Wait until the unpack is under way in tmp/, then SIGKILL it.
    let start = Instant::now();
    let killed_mid_unpack = loop {
        let partial = s.names("tmp").first().map(|t| {
            fs::read_dir(s.store_dir().join("tmp").join(t).join("root/big"))
                .map_or(0, |rd| rd.count())
        });
        if partial.is_some_and(|n| n >= 2) {
            child.kill().unwrap();
            break true;
        }
        // Generous: the cgroup v2 guest runs this under TCG, where the import is slow.
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(600) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let status = child.wait().unwrap();
    assert!(
        killed_mid_unpack,
        "the import ended ({status:?}) before it could be killed mid-unpack"
    );
    // The partial unpack is in tmp/ only; no layer is trusted.
    assert_eq!(s.names("tmp").len(), 1);
    let store = s.store();
    // Opening the store with no writer running removed the leftover.
    assert_eq!(s.names("tmp"), Vec::<String>::new());
    assert!(store.layer(&diff_id).unwrap().is_none());
    ok(&s.launch(&["import", "oci", "layout"]));
    let layer = store
        .layer(&diff_id)
        .unwrap()
        .expect("the rerun unpacked it");
    assert_eq!(fs::read_dir(layer.root.join("big")).unwrap().count(), 16);
    assert_eq!(layer.info.bytes, 16 << 20);
}

#[test]
fn prune_and_rmi_never_remove_a_held_layer() {
    need_root();
    let s = Scratch::new("hold");
    let layout = s.dir.join("layout");
    let tar = Ar::new().file("bin/tool", b"#!/bin/sh\n").finish();
    let diff_id = Digest::of(&tar);
    write_layout(&layout, &[gz(tar)], None);
    ok(&s.launch(&["import", "oci", "layout", "--name", "app:1"]));
    let store = s.store();
    let images = ok(&s.launch(&["images"]));
    assert!(
        images.contains("app:1") && images.contains("never"),
        "{images}"
    );
    let hold = store
        .hold(std::slice::from_ref(&diff_id), "app-1234")
        .unwrap();
    let images = ok(&s.launch(&["images"]));
    assert!(images.contains(" UTC"), "last use not recorded:\n{images}");
    // rmi from another process: the name and the blobs go, the held layer stays.
    let out = ok(&s.launch(&["rmi", "app:1"]));
    assert!(out.contains("untagged app:1"), "{out}");
    assert!(
        out.contains(&format!(
            "kept layer {}: a running container uses it",
            diff_id.short()
        )),
        "{out}"
    );
    assert_eq!(s.names("blobs/sha256"), Vec::<String>::new());
    assert!(store.layer(&diff_id).unwrap().is_some());
    let out = ok(&s.launch(&["prune"]));
    assert!(out.contains("kept layer"), "{out}");
    assert!(store.layer(&diff_id).unwrap().is_some());
    drop(hold);
    let out = ok(&s.launch(&["prune"]));
    assert!(
        out.contains(&format!("removed layer {}", diff_id.short())),
        "{out}"
    );
    assert_eq!(s.names("layers/sha256"), Vec::<String>::new());
    // rmi of what is not there.
    let o = s.launch(&["rmi", "app:1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// An inotify watch for opens and reads of one file: proof that a cached start does not read
/// the archive, without changing anything about the file (a watch moves no timestamp).
struct Watch(std::os::fd::OwnedFd);

impl Watch {
    fn new(path: &Path) -> Watch {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls on a new fd and a NUL-terminated path.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0);
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_OPEN | libc::IN_ACCESS;
        // SAFETY: as above.
        let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), mask) };
        assert!(wd >= 0);
        // SAFETY: fd is ours.
        Watch(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }

    /// Whether any open or read happened since the last call.
    fn touched(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        let mut any = false;
        loop {
            // SAFETY: reading into a buffer we own.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return any;
            }
            any = true;
        }
    }
}

#[test]
fn a_tar_root_is_extracted_once_and_reused_while_unchanged() {
    need_root();
    let s = Scratch::new("tarroot");
    let archive = s.dir.join("root.tar");
    fs::write(&archive, Ar::new().file("etc/hostname", b"one").finish()).unwrap();
    let store = s.store();
    let first = store.cached_tar_root(&archive, None).unwrap();
    assert_eq!(first.hit, TarRootHit::Extracted);
    assert_eq!(
        fs::read(first.layer.root.join("etc/hostname")).unwrap(),
        b"one"
    );
    // Unchanged: the layer, without opening the archive.
    let watch = Watch::new(&archive);
    let again = store.cached_tar_root(&archive, None).unwrap();
    assert_eq!(
        (again.hit, &again.diff_id),
        (TarRootHit::Cached, &first.diff_id)
    );
    assert!(!watch.touched(), "a cached hit opened the archive");
    // The same bytes written again (mtime and ctime move): hashed, not extracted.
    let bytes = fs::read(&archive).unwrap();
    watch.touched();
    std::thread::sleep(Duration::from_millis(20));
    fs::write(&archive, &bytes).unwrap();
    let rehashed = store.cached_tar_root(&archive, None).unwrap();
    assert_eq!(
        (rehashed.hit, &rehashed.diff_id),
        (TarRootHit::Rehashed, &first.diff_id)
    );
    assert!(watch.touched());
    assert_eq!(
        store.cached_tar_root(&archive, None).unwrap().hit,
        TarRootHit::Cached
    );
    // Same size, other content, mtime put back: ctime still moved, so it is hashed and, being
    // different, extracted again.
    let mtime = fs::metadata(&archive).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    fs::write(&archive, Ar::new().file("etc/hostname", b"two").finish()).unwrap();
    fs::File::options()
        .write(true)
        .open(&archive)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(fs::metadata(&archive).unwrap().len(), bytes.len() as u64);
    let changed = store.cached_tar_root(&archive, None).unwrap();
    assert_eq!(changed.hit, TarRootHit::Extracted);
    assert_ne!(changed.diff_id, first.diff_id);
    assert_eq!(
        fs::read(changed.layer.root.join("etc/hostname")).unwrap(),
        b"two"
    );
    // Replaced by another file (a new inode), same content: hashed only.
    let other = s.dir.join("other.tar");
    fs::copy(&archive, &other).unwrap();
    fs::rename(&other, &archive).unwrap();
    assert_eq!(
        store.cached_tar_root(&archive, None).unwrap().hit,
        TarRootHit::Rehashed
    );
    // Prune keeps the layer of an existing archive, and drops the record of a removed one.
    let out = ok(&s.launch(&["prune"]));
    assert!(
        out.contains(&format!("removed layer {}", first.diff_id.short())),
        "{out}"
    );
    assert!(store.layer(&changed.diff_id).unwrap().is_some());
    fs::remove_file(&archive).unwrap();
    let out = ok(&s.launch(&["prune"]));
    assert!(out.contains("forgot tar root"), "{out}");
    assert_eq!(s.names("layers/sha256"), Vec::<String>::new());
}

/// Build a busybox image with umoci (two layers: the second deletes /etc/motd and adds a
/// directory, so umoci writes a whiteout), and a docker-archive of it with skopeo.
pub(crate) fn busybox_images(s: &Scratch) -> (PathBuf, PathBuf) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox (apt-get install busybox-static; .ci/run installs it)");
    let script = format!(
        "set -e; cd \"$D\"
        umoci init --layout img; umoci new --image img:latest
        umoci unpack --image img:latest b >/dev/null
        mkdir -p b/rootfs/bin b/rootfs/etc; cp {busybox} b/rootfs/bin/busybox
        ln -s busybox b/rootfs/bin/sh; echo hello > b/rootfs/etc/motd
        umoci repack --image img:latest b; rm -rf b
        umoci config --image img:latest --config.cmd /bin/sh --config.env GREETING=hi
        umoci unpack --image img:latest b >/dev/null
        rm b/rootfs/etc/motd; mkdir b/rootfs/etc/added
        umoci repack --image img:latest b; rm -rf b
        skopeo copy -q oci:img:latest docker-archive:bb.tar:example.org/busybox:1"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .env("D", &s.dir)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "building the busybox images (umoci, skopeo: .ci/run installs them): {}",
        text(&out)
    );
    (s.dir.join("img"), s.dir.join("bb.tar"))
}

#[test]
fn busybox_images_from_umoci_and_skopeo_import_and_run_from_their_layers() {
    need_root();
    let s = Scratch::new("busybox");
    let (oci, archive) = busybox_images(&s);
    let out = ok(&s.launch(&["import", "oci", oci.to_str().unwrap()]));
    assert!(out.contains("imported localhost/img:latest"), "{out}");
    let out = ok(&s.launch(&["import", "docker-archive", archive.to_str().unwrap()]));
    assert!(out.contains("imported example.org/busybox:1"), "{out}");
    // An OCI layout as a tar, too.
    let tar = s.dir.join("img.tar");
    let st = Command::new("tar")
        .args([
            "-C",
            oci.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let out = ok(&s.launch(&["import", "oci", tar.to_str().unwrap(), "--name", "x/y:z"]));
    assert!(out.contains("imported x/y:z"), "{out}");
    let images = ok(&s.launch(&["images"]));
    for name in ["example.org/busybox:1", "localhost/img:latest", "x/y:z"] {
        assert!(images.contains(name), "{images}");
    }
    let store = s.store();
    for reference in ["example.org/busybox:1", "x/y:z"] {
        let r = store.read_ref(reference).unwrap().unwrap();
        let (_, config) = store.image(&r.digest).unwrap();
        assert_eq!(config.command(), ["/bin/sh"]);
        assert!(config.env().contains(&("GREETING".into(), "hi".into())));
        let merged = in_overlay(
            &s,
            &lowers(&store, r.digest.as_str()),
            "test ! -e etc/motd; test -d etc/added; chroot . /bin/sh -c 'echo ran in $0'",
        );
        assert_eq!(merged, "ran in /bin/sh\n", "{reference}");
    }
}

#[test]
fn store_text_is_stable() {
    need_root();
    let s = Scratch::new("text");
    let layout = s.dir.join("layout");
    write_layout(
        &layout,
        &[plain(Ar::new().file("f", b"fixed").finish())],
        None,
    );
    ok(&s.launch(&["import", "oci", "layout", "--name", "example.org/app:1"]));
    // The snapshot must not depend on the host's architecture (it is in the config digest).
    let images = ok(&s.launch(&["images"]));
    let arch = Platform::host().architecture;
    let images = match arch.as_str() {
        "amd64" => images,
        _ => return, // digests differ by architecture; the snapshot is amd64's
    };
    insta::assert_snapshot!("store-images", images);
    let o = s.launch(&["rmi", "nothing:here"]);
    assert_eq!(o.status.code(), Some(2));
    insta::assert_snapshot!("store-rmi-unknown", String::from_utf8_lossy(&o.stderr));
    let o = s.launch(&["import", "oci", "missing-layout"]);
    assert_eq!(o.status.code(), Some(2));
    insta::assert_snapshot!("store-import-missing", String::from_utf8_lossy(&o.stderr));
    fs::write(s.dir.join("not-a-layout.tar"), b"hello").unwrap();
    let o = s.launch(&["import", "docker-archive", "not-a-layout.tar"]);
    assert_eq!(o.status.code(), Some(2));
    insta::assert_snapshot!("store-import-not-tar", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_store_root_of_another_user_is_refused() {
    need_root();
    let s = Scratch::new("owner");
    let root = s.dir.join("theirs");
    fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
    let err = Store::open(&root).unwrap_err().to_string();
    assert!(
        err.contains("owned by uid 65534") && err.contains("LAUNCH_STORE"),
        "{err}"
    );
    let open = s.dir.join("open");
    fs::create_dir_all(&open).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let err = Store::open(&open).unwrap_err().to_string();
    assert!(err.contains("writable by others"), "{err}");
}

/// PAX records for the next entry.
fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
        let mut len = body.len() + 1;
        while format!("{len}").len() + body.len() != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len}").as_bytes());
        data.extend_from_slice(&body);
    }
    data
}

/// An xattr of a file, if set.
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer we own.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 256) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn a_layer_keeps_its_xattrs_but_cannot_set_overlay_ones() {
    need_root();
    let s = Scratch::new("xattr");
    let records = pax(&[
        ("SCHILY.xattr.user.kept", b"yes"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.user.overlay.opaque", b"y"),
    ]);
    let tar = Ar::new()
        .entry(EntryType::XHeader, "PaxHeader", "", &records)
        .dir("d")
        .entry(EntryType::XHeader, "PaxHeader", "", &records)
        .file("d/f", b"f")
        .finish();
    let store = s.store();
    let blob = store.put_bytes(&tar, "xattrs").unwrap();
    let layer = store.unpack_layer(&blob, &Digest::of(&tar)).unwrap();
    for p in [layer.root.join("d"), layer.root.join("d/f")] {
        assert_eq!(xattr(&p, "user.kept").as_deref(), Some(&b"yes"[..]));
        assert_eq!(xattr(&p, "trusted.overlay.redirect"), None);
        assert_eq!(xattr(&p, "user.overlay.opaque"), None);
    }
    // The one overlay xattr that appears is the store's own, for `.wh..wh..opq`.
    let tar = Ar::new().file("o/.wh..wh..opq", b"").finish();
    let blob = store.put_bytes(&tar, "opaque").unwrap();
    let layer = store.unpack_layer(&blob, &Digest::of(&tar)).unwrap();
    let o = layer.root.join("o");
    assert_eq!(
        xattr(&o, "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(xattr(&o, "user.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read_dir(&o).unwrap().count(), 0);
}

/// Store `value` as a blob of the layout at `dir`; its descriptor.
fn put_json(dir: &Path, media_type: &str, value: &serde_json::Value) -> serde_json::Value {
    let bytes = serde_json::to_vec(value).unwrap();
    let d = Digest::of(&bytes);
    fs::write(dir.join("blobs/sha256").join(d.hex()), &bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": d.to_string(), "size": bytes.len()})
}

/// A single-layer image for `arch` (its one file says which) in the layout at `dir`; its
/// manifest descriptor.
fn arch_image(dir: &Path, arch: &str, variant: Option<&str>) -> serde_json::Value {
    let tar = Ar::new().file("arch", arch.as_bytes()).finish();
    let layer = Digest::of(&tar);
    fs::write(dir.join("blobs/sha256").join(layer.hex()), &tar).unwrap();
    let config = put_json(
        dir,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::json!({"architecture": arch, "os": "linux", "variant": variant,
            "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]}}),
    );
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config,
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer.to_string(), "size": tar.len()}]});
    let mut desc = put_json(dir, "application/vnd.oci.image.manifest.v1+json", &manifest);
    desc["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
    if let Some(v) = variant {
        desc["platform"]["variant"] = v.into();
    }
    desc
}

#[test]
fn an_index_resolves_to_the_platform_asked_for_and_images_are_chosen_by_ref_name() {
    need_root();
    let s = Scratch::new("platform");
    let dir = s.dir.join("multi");
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let host = Platform::host();
    let other = match host.architecture.as_str() {
        "arm64" => "amd64",
        _ => "arm64",
    };
    let manifests = vec![
        arch_image(&dir, &host.architecture, host.variant.as_deref()),
        arch_image(&dir, other, (other == "arm64").then_some("v8")),
    ];
    // Two names for the one multi-platform index, as `skopeo copy` into a layout with tags does.
    let index = put_json(
        &dir,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}),
    );
    let mut v1 = index.clone();
    v1["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "v1"});
    let mut stable = index.clone();
    stable["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "stable"});
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [v1, stable]}))
            .unwrap(),
    )
    .unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

    // Two images and no choice: the error names them.
    let o = s.launch(&["import", "oci", "multi"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("v1, stable"), "{err}");

    let store = s.store();
    let arch_of = |reference: &str| {
        let r = store.read_ref(reference).unwrap().unwrap();
        let layers = store.unpack_image(&r.digest).unwrap();
        (fs::read_to_string(layers[0].root.join("arch")).unwrap(), r)
    };
    ok(&s.launch(&["import", "oci", "multi", "--select", "v1"]));
    let (arch, r) = arch_of("localhost/multi:v1");
    assert_eq!(arch, host.architecture);
    assert_eq!(r.platform, host.to_string());
    assert_eq!(
        r.index_digest.as_ref().map(|d| d.to_string()),
        Some(index["digest"].as_str().unwrap().to_owned())
    );
    let platform = format!("linux/{other}");
    ok(&s.launch(&[
        "import",
        "oci",
        "multi",
        "--select",
        "stable",
        "--platform",
        &platform,
        "--name",
        "o:1",
    ]));
    assert_eq!(arch_of("o:1").0, other);
    let o = s.launch(&[
        "import",
        "oci",
        "multi",
        "--select",
        "v1",
        "--platform",
        "linux/s390x",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no manifest for linux/s390x"), "{err}");
    let o = s.launch(&["import", "oci", "multi", "--select", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no image named `nope`"));
}

#[test]
fn an_unchanged_archive_source_is_not_read_again() {
    need_root();
    use launch::image::layout::{SourceKind, import_cached};
    let s = Scratch::new("cached-src");
    let layout = s.dir.join("layout");
    write_layout(&layout, &[gz(Ar::new().file("f", b"x").finish())], None);
    let tar = s.dir.join("layout.tar");
    let st = Command::new("tar")
        .args([
            "-C",
            layout.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let store = s.store();
    let opts = ImportOptions::default();
    let (first, read) = import_cached(&store, SourceKind::Oci, &tar, &opts).unwrap();
    assert!(read);
    let watch = Watch::new(&tar);
    let (again, read) = import_cached(&store, SourceKind::Oci, &tar, &opts).unwrap();
    assert!(!read && !watch.touched(), "an unchanged archive was read");
    assert_eq!(again.record, first.record);
    assert_eq!(again.layers(), first.layers());
    // Other options are another import.
    let named = ImportOptions {
        name: Some("other:1".into()),
        ..ImportOptions::default()
    };
    assert!(
        import_cached(&store, SourceKind::Oci, &tar, &named)
            .unwrap()
            .1
    );
    // Touched: read again. Its name removed: read again.
    std::thread::sleep(Duration::from_millis(20));
    fs::File::options()
        .append(true)
        .open(&tar)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    assert!(
        import_cached(&store, SourceKind::Oci, &tar, &opts)
            .unwrap()
            .1
    );
    assert!(
        !import_cached(&store, SourceKind::Oci, &tar, &opts)
            .unwrap()
            .1
    );
    ok(&s.launch(&["rmi", &first.record.reference]));
    assert!(
        import_cached(&store, SourceKind::Oci, &tar, &opts)
            .unwrap()
            .1
    );
}
