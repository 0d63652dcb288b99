//! Shared helpers: the examples, and a fake host that makes plans reproducible anywhere.

use std::path::{Path, PathBuf};

use launch::host::{FakeHost, PathKind};
use launch::manifest::Source;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where snapshot tests pretend the repository is, so plans do not depend on the checkout path.
pub const VIRTUAL_REPO: &str = "/src";

/// `*.toml` files in a folder of the repo, sorted by name.
pub fn manifests(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

/// A manifest from the repo as a Source placed under [`VIRTUAL_REPO`].
pub fn source(path: &Path) -> Source {
    let rel = path.strip_prefix(repo()).unwrap();
    // What it extends and its env files are read from the repo.
    Source::with_files(
        &rel.display().to_string(),
        &Path::new(VIRTUAL_REPO).join(rel),
        &std::fs::read_to_string(path).unwrap(),
        &|p: &Path| std::fs::read_to_string(repo().join(p.strip_prefix(VIRTUAL_REPO).unwrap_or(p))),
    )
}

/// The hybrid test host (like this machine) with the files the examples refer to.
pub fn host(base: FakeHost) -> FakeHost {
    let ex = Path::new(VIRTUAL_REPO).join("examples/manifests");
    base.with_path(ex.join("seed-rootfs.tar"), PathKind::File)
        .with_path(ex.join("rootfs"), PathKind::Dir)
        .with_path(ex.clone(), PathKind::Dir)
        .with_path(
            ex.join("invalid/rootfs-not_a_directory.toml"),
            PathKind::File,
        )
        .with_path(ex.join("invalid/dir.tar"), PathKind::Dir)
        .with_path("/etc/passwd", PathKind::File)
        .with_file(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        )
        .with_file("/etc/group", "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n")
        .with_file(
            ex.join("invalid/security-bad-profile.json"),
            &std::fs::read_to_string(
                repo().join("examples/manifests/invalid/security-bad-profile.json"),
            )
            .unwrap(),
        )
}

/// The hybrid test host: like this machine, but an older kernel without time namespaces.
pub fn hybrid() -> FakeHost {
    let mut h = host(FakeHost::hybrid());
    h.facts.kernel = "5.4.0-test".into();
    h.facts.time_namespace = false;
    h
}

/// A pure cgroup v2 test host.
pub fn v2() -> FakeHost {
    host(FakeHost::v2())
}

/// A new network namespace, held by an fd (a thread unshares, opens its own, and ends).
pub fn new_ns(label: &str) -> launch::sys::net::link::Netns {
    let fd: std::os::fd::OwnedFd = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        std::fs::File::open("/proc/thread-self/ns/net")
            .unwrap()
            .into()
    })
    .join()
    .unwrap();
    launch::sys::net::link::Netns::from_fd(fd, label)
}

/// Run `f` on a thread inside `ns` (sockets it opens stay in `ns`).
pub fn inside<T: Send>(ns: &launch::sys::net::link::Netns, f: impl FnOnce() -> T + Send) -> T {
    use std::os::fd::AsFd;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(ns.fd().as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}
