//! `launch::sys::tar::extract` against archives built here: faithful round trips, and hostile
//! archives that must be refused without writing anything outside the destination.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use launch::plan::{IdMapLine, OwnerShift};

use crate::fixtures::need_root;
use launch::sys::tar::{Compression, ExtractOptions, extract};
use tar::{EntryType, Header};

const PRIV: ExtractOptions = ExtractOptions {
    privileged: true,
    owners: None,
    cancelled: None,
    max_bytes: None,
};
const UNPRIV: ExtractOptions = ExtractOptions {
    privileged: false,
    owners: None,
    cancelled: None,
    max_bytes: None,
};

/// A directory under the system temp dir: `base/dest` is the extraction root, and siblings of
/// `dest` are where an escaping entry would land.
struct Scratch {
    base: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("lt-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("dest")).unwrap();
        Scratch { base }
    }

    fn dest(&self) -> PathBuf {
        self.base.join("dest")
    }

    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.base.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn extract(
        &self,
        tar: &[u8],
        opts: ExtractOptions,
    ) -> Result<launch::sys::tar::ExtractStats, String> {
        let archive = self.archive("a.tar", tar);
        extract(&archive, Compression::None, &self.dest(), &opts).map_err(|e| e.to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Raw headers, so hostile names (`..`, absolute) get in verbatim (`append_data` refuses them).
struct Ar(tar::Builder<Vec<u8>>);

impl Ar {
    fn new() -> Ar {
        Ar(tar::Builder::new(Vec::new()))
    }

    fn entry(
        &mut self,
        kind: EntryType,
        name: &str,
        link: &str,
        data: &[u8],
        edit: impl FnOnce(&mut Header),
    ) -> &mut Ar {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_000_000_000);
        h.set_uid(0);
        h.set_gid(0);
        edit(&mut h);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Ar {
        self.entry(EntryType::Regular, name, "", data, |_| {})
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Ar {
        self.entry(EntryType::Directory, name, "", b"", |h| h.set_mode(mode))
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Ar {
        self.entry(EntryType::Symlink, name, target, b"", |_| {})
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Ar {
        self.entry(EntryType::Link, name, target, b"", |_| {})
    }

    /// A PAX header describing the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Ar {
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
        self.entry(EntryType::XHeader, "PaxHeader", "", &data, |_| {})
    }

    fn finish(&mut self) -> Vec<u8> {
        self.0.finish().unwrap();
        self.0.get_ref().clone()
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let (path, name) = (
        CString::new(path.as_os_str().as_encoded_bytes()).ok()?,
        CString::new(name).ok()?,
    );
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for `buf.len()` bytes.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    buf.truncate(usize::try_from(n).ok()?);
    Some(buf)
}

fn tree() -> Vec<u8> {
    let mut ar = Ar::new();
    ar.dir("./", 0o755)
        .entry(EntryType::Directory, "./etc/", "", b"", |h| {
            h.set_mtime(1_500_000_000)
        })
        .entry(
            EntryType::Regular,
            "./etc/passwd",
            "",
            b"root:x:0:0::/root:/bin/sh\n",
            |h| {
                h.set_mtime(1_600_000_000);
                h.set_mode(0o640);
                h.set_gid(42);
            },
        )
        .pax(&[
            ("SCHILY.xattr.user.launch", b"yes"),
            ("mtime", b"1600000000.25"),
        ])
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .symlink("etc/abs", "/etc/passwd")
        .dir("usr/", 0o755)
        .entry(EntryType::Directory, "usr/bin/", "", b"", |h| {
            h.set_mtime(1_400_000_000)
        })
        .entry(EntryType::Regular, "usr/bin/su", "", b"#!/bin/su\n", |h| {
            h.set_mode(0o4755);
            h.set_uid(1234);
            h.set_gid(5678);
        })
        .hardlink("usr/bin/su2", "usr/bin/su")
        .entry(EntryType::Symlink, "bin", "usr/bin", b"", |h| {
            h.set_mtime(1_300_000_000)
        })
        .entry(EntryType::Fifo, "run/initctl", "", b"", |h| {
            h.set_mode(0o600)
        })
        .file("var/lib/deep/file", b"implicit parents\n");
    ar.finish()
}

fn check_tree(dest: &Path, privileged: bool) {
    assert_eq!(
        fs::read(dest.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    let passwd = fs::metadata(dest.join("etc/passwd")).unwrap();
    assert_eq!(
        (passwd.mode() & 0o7777, passwd.mtime()),
        (0o640, 1_600_000_000)
    );
    let hosts = fs::metadata(dest.join("etc/hosts")).unwrap();
    assert_eq!(
        (hosts.mtime(), hosts.mtime_nsec()),
        (1_600_000_000, 250_000_000)
    );
    assert_eq!(
        xattr(&dest.join("etc/hosts"), "user.launch").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(
        fs::read_link(dest.join("etc/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    let su = fs::metadata(dest.join("usr/bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid must survive chown");
    let su2 = fs::metadata(dest.join("usr/bin/su2")).unwrap();
    assert_eq!((su2.ino(), su2.nlink()), (su.ino(), 2));
    assert_eq!(
        fs::read_link(dest.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        fs::symlink_metadata(dest.join("bin")).unwrap().mtime(),
        1_300_000_000
    );
    assert_eq!(fs::read(dest.join("bin/su")).unwrap(), b"#!/bin/su\n");
    // Directory times are restored after their children were written.
    assert_eq!(
        fs::metadata(dest.join("usr/bin")).unwrap().mtime(),
        1_400_000_000
    );
    assert_eq!(
        fs::metadata(dest.join("etc")).unwrap().mtime(),
        1_500_000_000
    );
    assert_eq!(fs::metadata(dest).unwrap().mode() & 0o7777, 0o755);
    assert!(
        fs::metadata(dest.join("run/initctl"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        fs::read(dest.join("var/lib/deep/file")).unwrap(),
        b"implicit parents\n"
    );
    let me = nix::unistd::geteuid().as_raw();
    let owners = if privileged {
        (1234, 5678, 42)
    } else {
        (
            me,
            nix::unistd::getegid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    };
    assert_eq!((su.uid(), su.gid(), passwd.gid()), owners);
}

#[test]
fn tree_round_trips_with_owners_modes_times_links_and_xattrs() {
    let s = Scratch::new("tree");
    let stats = s.extract(&tree(), PRIV).unwrap();
    check_tree(&s.dest(), true);
    assert_eq!((stats.entries, stats.skipped_devices), (12, 0));
    assert_eq!(stats.bytes, 26 + 20 + 10 + 17);
}

#[test]
fn unprivileged_keeps_caller_as_owner_and_skips_devices() {
    let s = Scratch::new("unpriv");
    let mut ar = Ar::new();
    ar.entry(EntryType::Char, "dev/null", "", b"", |h| {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    });
    let mut tar = tree();
    tar.truncate(tar.len() - 1024); // drop the end-of-archive blocks and append
    tar.extend(ar.finish());
    let stats = s.extract(&tar, UNPRIV).unwrap();
    check_tree(&s.dest(), false);
    assert_eq!((stats.entries, stats.skipped_devices), (12, 1));
    assert!(fs::symlink_metadata(s.dest().join("dev/null")).is_err());
}

/// With a user namespace's maps, each owner is written as the host id the maps give it; an id
/// they leave out becomes 65534, and no entry keeps its archive owner.
#[test]
fn owners_are_shifted_through_the_maps() {
    let s = Scratch::new("shift");
    let line = |inside, outside, count| IdMapLine {
        inside,
        outside,
        count,
    };
    let opts = ExtractOptions {
        privileged: true,
        owners: Some(OwnerShift {
            uid: vec![line(0, 100_000, 1000), line(1000, 300_000, 10)],
            gid: vec![line(0, 200_000, 65536)],
        }),
        cancelled: None,
        max_bytes: None,
    };
    let mut ar = Ar::new();
    ar.dir("./", 0o755)
        .dir("root/", 0o700)
        .entry(EntryType::Regular, "etc-shadow", "", b"x\n", |h| {
            h.set_gid(42)
        })
        .entry(EntryType::Regular, "user-file", "", b"x\n", |h| {
            h.set_uid(1005);
            h.set_gid(1005);
        })
        .entry(EntryType::Regular, "unmapped", "", b"x\n", |h| {
            h.set_uid(70_000);
            h.set_gid(70_000);
        })
        .entry(EntryType::Symlink, "link", "etc-shadow", b"", |h| {
            h.set_uid(7);
            h.set_gid(8);
        })
        .pax(&[
            ("SCHILY.xattr.security.capability", &cap_v2()),
            (
                "SCHILY.xattr.system.posix_acl_access",
                &acl(&[(0x02, 5), (0x08, 42)]),
            ),
        ])
        .file("ping", b"x\n")
        .entry(EntryType::Regular, "su", "", b"x\n", |h| h.set_mode(0o6755))
        .entry(EntryType::Regular, "su-unmapped", "", b"x\n", |h| {
            h.set_mode(0o6755);
            h.set_uid(70_000);
            h.set_gid(42);
        });
    s.extract(&ar.finish(), opts).unwrap();
    let owner = |p: &str| {
        let m = fs::symlink_metadata(s.dest().join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("."), (100_000, 200_000));
    assert_eq!(owner("root"), (100_000, 200_000));
    assert_eq!(owner("etc-shadow"), (100_000, 200_042));
    assert_eq!(owner("user-file"), (300_005, 201_005));
    assert_eq!(owner("unmapped"), (65534, 65534));
    assert_eq!(owner("link"), (100_007, 200_008));
    // setuid stays with a mapped owner; an unmapped owner loses it (setgid stays: 42 is mapped).
    let mode = |p: &str| fs::metadata(s.dest().join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("su"), 0o6755);
    assert_eq!(owner("su-unmapped"), (65534, 200_042));
    assert_eq!(mode("su-unmapped"), 0o2755);
    // File capabilities become v3, owned by root inside (host 100000); named ACL entries shift.
    let mut v3 = cap_v2();
    v3[3] = 0x03;
    v3.extend_from_slice(&100_000u32.to_le_bytes());
    let ping = s.dest().join("ping");
    assert_eq!(xattr(&ping, "security.capability"), Some(v3));
    assert_eq!(
        xattr(&ping, "system.posix_acl_access"),
        Some(acl(&[(0x02, 100_005), (0x08, 200_042)]))
    );
}

/// A v2 `security.capability` value: effective, cap_net_raw permitted.
fn cap_v2() -> Vec<u8> {
    let words: [u32; 5] = [0x0200_0001, 1 << 13, 0, 0, 0];
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A `system.posix_acl_access` value: owner, group and other, the named (tag, id) entries, and
/// the mask they need.
fn acl(named: &[(u16, u32)]) -> Vec<u8> {
    let mut entries: Vec<(u16, u16, u32)> = vec![(0x01, 6, u32::MAX), (0x04, 4, u32::MAX)];
    entries.extend(named.iter().map(|&(tag, id)| (tag, 4, id)));
    entries.extend([(0x10, 4, u32::MAX), (0x20, 4, u32::MAX)]);
    entries.sort_by_key(|e| (e.0, e.2));
    let mut out = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

#[test]
fn privileged_creates_device_nodes() {
    let s = Scratch::new("dev");
    let tar = Ar::new()
        .entry(EntryType::Char, "dev/null", "", b"", |h| {
            h.set_mode(0o666);
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        })
        .entry(EntryType::Block, "dev/loop9", "", b"", |h| {
            h.set_mode(0o660);
            h.set_device_major(7).unwrap();
            h.set_device_minor(9).unwrap();
        })
        .finish();
    let stats = s.extract(&tar, PRIV).unwrap();
    assert_eq!((stats.entries, stats.skipped_devices), (2, 0));
    let null = fs::symlink_metadata(s.dest().join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (libc::makedev(1, 3), 0o666)
    );
    let lp = fs::symlink_metadata(s.dest().join("dev/loop9")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(
        (lp.rdev(), lp.mode() & 0o7777),
        (libc::makedev(7, 9), 0o660)
    );
}

#[test]
fn dotdot_entries_are_refused_and_nothing_lands_outside() {
    for name in [
        "../sentinel",
        "./../sentinel",
        "a/../../sentinel",
        "a/b/../../../sentinel",
    ] {
        let s = Scratch::new("dotdot");
        let err = s
            .extract(
                &Ar::new().file("ok", b"1").file(name, b"pwned").finish(),
                PRIV,
            )
            .unwrap_err();
        assert!(
            err.contains("leaves the root (contains `..`)") && err.contains(name),
            "{err}"
        );
        assert!(err.contains("entry #1"), "{err}");
        assert!(!s.base.join("sentinel").exists());
    }
}

#[test]
fn absolute_entries_are_refused() {
    let s = Scratch::new("abs");
    let target = s.base.join("abs-sentinel");
    let tar = Ar::new().file(target.to_str().unwrap(), b"pwned").finish();
    let err = s.extract(&tar, PRIV).unwrap_err();
    assert!(err.contains("absolute path"), "{err}");
    assert!(!target.exists());
}

#[test]
fn entries_are_never_written_through_symlinks() {
    let cases: &[(&str, &[&str])] = &[
        ("ABS", &["link/file"]),
        ("ABS", &["link/sub/file"]),
        ("../outside", &["link/file"]),
        ("ABS", &["link/d/", "link/d/x"]), // a directory entry beneath the symlink
    ];
    for (target, paths) in cases {
        let s = Scratch::new("escape");
        let outside = s.base.join("outside");
        fs::create_dir(&outside).unwrap();
        let target = if *target == "ABS" {
            outside.to_str().unwrap().to_string()
        } else {
            target.to_string()
        };
        let mut ar = Ar::new();
        ar.symlink("link", &target);
        for p in *paths {
            if p.ends_with('/') {
                ar.dir(p, 0o755)
            } else {
                ar.file(p, b"pwned")
            };
        }
        let err = s.extract(&ar.finish(), PRIV).unwrap_err();
        assert!(
            err.contains("symbolic link") && err.contains("openat2"),
            "{err}"
        );
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "wrote outside via {target}"
        );
    }
}

#[test]
fn later_entries_replace_symlinks_instead_of_following_them() {
    let s = Scratch::new("replace-link");
    let victim = s.base.join("victim");
    fs::create_dir(s.base.join("outside")).unwrap();
    let tar = Ar::new()
        .symlink("x", victim.to_str().unwrap())
        .file("x", b"data")
        .symlink("y", s.base.join("outside").to_str().unwrap())
        .dir("y/", 0o755)
        .file("y/f", b"inside")
        .finish();
    s.extract(&tar, PRIV).unwrap();
    assert!(!victim.exists());
    assert_eq!(fs::read_dir(s.base.join("outside")).unwrap().count(), 0);
    assert_eq!(fs::read(s.dest().join("y/f")).unwrap(), b"inside");
    assert!(fs::symlink_metadata(s.dest().join("x")).unwrap().is_file());
    assert_eq!(fs::read(s.dest().join("x")).unwrap(), b"data");
}

#[test]
fn hard_links_must_stay_beneath_the_root() {
    let cases = [
        ("../../etc/passwd", "contains `..`"),
        ("/etc/passwd", "absolute path"),
        ("etcl/passwd", "symbolic link"),
    ];
    for (target, why) in cases {
        let s = Scratch::new("hardlink");
        let tar = Ar::new()
            .symlink("etcl", "/etc")
            .hardlink("p", target)
            .finish();
        let err = s.extract(&tar, PRIV).unwrap_err();
        assert!(
            err.contains(why) && err.contains("entry #1"),
            "{target}: {err}"
        );
        assert!(fs::symlink_metadata(s.dest().join("p")).is_err());
    }
    let s = Scratch::new("hardlink-missing");
    let err = s
        .extract(&Ar::new().hardlink("p", "nope").finish(), PRIV)
        .unwrap_err();
    assert!(
        err.contains("linkat") && err.contains("not an earlier entry"),
        "{err}"
    );
}

#[test]
fn later_entries_replace_files_but_not_populated_directories() {
    let s = Scratch::new("replace");
    let tar = Ar::new()
        .file("a", b"one")
        .file("a", b"two")
        .dir("d/", 0o700)
        .dir("d/", 0o751)
        .file("d/x", b"x")
        .finish();
    s.extract(&tar, PRIV).unwrap();
    assert_eq!(fs::read(s.dest().join("a")).unwrap(), b"two");
    assert_eq!(
        fs::metadata(s.dest().join("d")).unwrap().mode() & 0o7777,
        0o751
    );

    let s = Scratch::new("replace-dir");
    let err = s
        .extract(
            &Ar::new().file("d/x", b"x").file("d", b"file").finish(),
            PRIV,
        )
        .unwrap_err();
    assert!(
        err.contains("non-empty directory") && err.contains("entry #1 `d`"),
        "{err}"
    );
    assert_eq!(fs::read(s.dest().join("d/x")).unwrap(), b"x");
}

#[test]
fn unknown_entry_types_and_bad_headers_are_refused() {
    let s = Scratch::new("unknown");
    let err = s
        .extract(
            &Ar::new()
                .entry(EntryType::new(b'V'), "label", "", b"", |_| {})
                .finish(),
            PRIV,
        )
        .unwrap_err();
    assert!(err.contains("unsupported entry type `V`"), "{err}");

    let s = Scratch::new("cksum");
    let mut tar = Ar::new().file("a", b"1").file("b", b"2").finish();
    tar[1024 + 10] ^= 1; // second header's name
    let err = s.extract(&tar, PRIV).unwrap_err();
    assert!(
        err.contains("checksum") && err.contains("entry #1, after `a`"),
        "{err}"
    );
}

fn big_tar() -> (Vec<u8>, Vec<u8>) {
    let data = crate::fixtures::noise(1 << 20, 0x9E37_79B9_7F4A_7C15);
    let tar = Ar::new()
        .dir("d/", 0o755)
        .file("d/big", &data)
        .file("d/small", b"tail")
        .finish();
    (tar, data)
}

fn gzip(tar: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).unwrap();
    gz.finish().unwrap()
}

/// One zstd frame with its content checksum, as zstd(1) writes it (libzstd's API leaves the
/// checksum out unless asked).
fn zstd(tar: &[u8]) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(1).unwrap();
    c.include_checksum(true).unwrap();
    c.compress(tar).unwrap()
}

#[test]
fn gzip_and_zstd_round_trip() {
    let (tar, data) = big_tar();
    let (gz, zst) = (gzip(&tar), zstd(&tar));
    // Two gzip members / two zstd frames, split mid-entry, as pigz/pzstd or `cat` produce.
    let cut = 100_000;
    let gz2 = [gzip(&tar[..cut]), gzip(&tar[cut..])].concat();
    let zst2 = [zstd(&tar[..cut]), zstd(&tar[cut..])].concat();
    for (name, bytes, compression) in [
        ("a.tar.gz", gz, Compression::Gzip),
        ("b.tar.gz", gz2, Compression::Gzip),
        ("a.tar.zst", zst, Compression::Zstd),
        ("b.tar.zst", zst2, Compression::Zstd),
        // Zero padding after the last member, as tape-style blocking leaves it.
        (
            "c.tar.gz",
            [gzip(&tar), vec![0; 4096]].concat(),
            Compression::Gzip,
        ),
        (
            "c.tar.zst",
            [zstd(&tar), vec![0; 4096]].concat(),
            Compression::Zstd,
        ),
    ] {
        let s = Scratch::new("compressed");
        let archive = s.archive(name, &bytes);
        assert_eq!(Compression::from_path(&archive), Some(compression));
        let stats = extract(&archive, compression, &s.dest(), &UNPRIV).unwrap();
        assert_eq!(
            (stats.entries, stats.bytes),
            (3, data.len() as u64 + 4),
            "{name}"
        );
        assert!(fs::read(s.dest().join("d/big")).unwrap() == data, "{name}");
        assert_eq!(fs::read(s.dest().join("d/small")).unwrap(), b"tail");
    }
}

#[test]
fn truncated_or_corrupt_compressed_archives_are_errors() {
    let (tar, _) = big_tar();
    let (gz, zst) = (gzip(&tar), zstd(&tar));
    let garbage = [&gz[..], &[0; 100], b"garbage"].concat();
    let mut flipped = zst.clone();
    let mid = flipped.len() / 2;
    flipped[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0x5a);
    for (name, bytes, compression) in [
        ("t.tar.gz", &gz[..gz.len() / 2], Compression::Gzip),
        ("t.tar.gz", &gz[..gz.len() - 4], Compression::Gzip), // only the trailer's size missing
        ("t.tar.zst", &zst[..zst.len() / 2], Compression::Zstd),
        ("t.tar.zst", &zst[..3], Compression::Zstd),
        ("c.tar.zst", &flipped[..], Compression::Zstd), // raw blocks: only the checksum tells
        ("g.tar.gz", &garbage[..], Compression::Gzip),
        ("e.tar.gz", &gz[..3], Compression::Gzip),
        ("t.tar", &tar[..tar.len() / 2], Compression::None),
    ] {
        let s = Scratch::new("truncated");
        let archive = s.archive(name, bytes);
        let err = extract(&archive, compression, &s.dest(), &UNPRIV)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&archive.display().to_string()),
            "{name}: {err}"
        );
        assert!(err.contains("read"), "{name}: {err}");
        if name == "c.tar.zst" {
            assert!(err.contains("zstd") && err.contains("checksum"), "{err}");
        }
    }
}

/// Read-only directories must not block their children; only observable without root, so the
/// extraction runs in a child process (this test binary) that drops to `nobody`.
#[test]
fn read_only_directories_are_filled_then_locked() {
    let s = Scratch::new("ro");
    let tar = Ar::new()
        .dir("ro/", 0o555)
        .dir("ro/sub/", 0o500)
        .file("ro/sub/f", b"f")
        .file("ro/g", b"g")
        .entry(EntryType::Regular, "ro/sub/suid", "", b"s", |h| {
            h.set_mode(0o4755)
        })
        .finish();
    let archive = s.archive("ro.tar", &tar);
    if nix::unistd::geteuid().is_root() {
        fs::set_permissions(&s.base, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        nix::unistd::chown(&s.dest(), Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tar_extract::as_nobody_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                "LAUNCH_TAR_CHILD",
                format!("{}\n{}", archive.display(), s.dest().display()),
            )
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && log.contains("1 passed"), "{log}");
        assert_eq!(fs::metadata(s.dest().join("ro/g")).unwrap().uid(), NOBODY);
    } else {
        extract(&archive, Compression::None, &s.dest(), &UNPRIV).unwrap();
    }
    assert_eq!(fs::read(s.dest().join("ro/sub/f")).unwrap(), b"f");
    assert_eq!(fs::read(s.dest().join("ro/g")).unwrap(), b"g");
    assert_eq!(
        fs::metadata(s.dest().join("ro")).unwrap().mode() & 0o7777,
        0o555
    );
    assert_eq!(
        fs::metadata(s.dest().join("ro/sub")).unwrap().mode() & 0o7777,
        0o500
    );
    assert_eq!(
        fs::metadata(s.dest().join("ro/sub/suid")).unwrap().mode() & 0o7777,
        0o4755
    );
}

const NOBODY: u32 = 65534;

/// The unprivileged half of `read_only_directories_are_filled_then_locked`; a no-op otherwise.
#[test]
fn as_nobody_child() {
    let Ok(spec) = std::env::var("LAUNCH_TAR_CHILD") else {
        return;
    };
    let (archive, dest) = spec.split_once('\n').unwrap();
    nix::unistd::setgroups(&[]).unwrap();
    nix::unistd::setresgid(NOBODY.into(), NOBODY.into(), NOBODY.into()).unwrap();
    nix::unistd::setresuid(NOBODY.into(), NOBODY.into(), NOBODY.into()).unwrap();
    extract(
        Path::new(archive),
        Compression::None,
        Path::new(dest),
        &UNPRIV,
    )
    .unwrap();
}

/// `max_bytes` stops an archive that expands past it, naming the bound; under it, extraction
/// is whole.
#[test]
fn extraction_stops_at_max_bytes() {
    let s = Scratch::new("max");
    let tar = Ar::new()
        .file("a", &[b'a'; 3000])
        .file("b", &[b'b'; 3000])
        .finish();
    let opts = |max| ExtractOptions {
        max_bytes: Some(max),
        ..UNPRIV
    };
    let err = s.extract(&tar, opts(5000)).unwrap_err();
    assert!(
        err.contains("expands past `[rootfs] max_size` (5000 bytes)"),
        "{err}"
    );
    assert!(err.contains("entry #"), "{err}");
    let s = Scratch::new("max-ok");
    let stats = s.extract(&tar, opts(6000)).unwrap();
    assert_eq!(stats.bytes, 6000);
}

/// A full disk is named as such, with how much was written and the way out.
#[test]
fn a_full_disk_is_a_clear_error() {
    need_root();
    let s = Scratch::new("enospc");
    let dest = s.dest();
    let size = format!("size={}", 256 * 1024);
    nix::mount::mount(
        Some("tmpfs"),
        &dest,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(size.as_str()),
    )
    .unwrap();
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _guard = Unmount(dest.clone());
    let tar = Ar::new().file("big", &vec![b'x'; 1024 * 1024]).finish();
    let err = s.extract(&tar, UNPRIV).unwrap_err();
    assert!(
        err.contains("ENOSPC") || err.contains("No space left"),
        "{err}"
    );
    assert!(err.contains("is full after"), "{err}");
    assert!(err.contains("max_size"), "{err}");
}
