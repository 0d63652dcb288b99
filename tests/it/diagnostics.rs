//! Every invalid example gets the diagnostic its name promises, at the right place, rendered
//! stably; every documented code has an example.

use std::collections::BTreeSet;

use launch::cli::plan_for;
use launch::diag::{render_json, render_text};

use crate::common::{hybrid, manifests, repo, source};

/// `invalid/mount-duplicate_target.toml` promises `launch::mount::duplicate_target`.
fn promised_code(path: &std::path::Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    match stem {
        // Several codes at once, pinned by their own tests below.
        "many-problems" => None,
        "manifest-unknown_keys" => Some("launch::manifest::unknown_key".into()),
        _ => {
            let (area, name) = stem.split_once('-')?;
            Some(format!("launch::{area}::{name}"))
        }
    }
}

#[test]
fn every_invalid_example_is_reported_as_promised() {
    let mut seen = BTreeSet::new();
    for path in manifests("examples/manifests/invalid") {
        let src = source(&path);
        let problems = match plan_for(&src, &hybrid()) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(p) => p,
        };
        if let Some(code) = promised_code(&path) {
            assert!(
                problems.iter().any(|p| p.code == code),
                "{}: expected {code}, got {:?}",
                path.display(),
                problems.iter().map(|p| p.code).collect::<Vec<_>>()
            );
            seen.insert(code);
        }
        for p in &problems {
            assert!(
                p.help.is_some(),
                "{}: {} has no help",
                path.display(),
                p.code
            );
            assert!(
                !p.label.is_empty(),
                "{}: {} has no label",
                path.display(),
                p.code
            );
            assert!(
                p.span.end <= src.text.len(),
                "{}: span out of range",
                path.display()
            );
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(
            format!("diag-{stem}"),
            render_text(&src, &problems, false, 80)
        );
    }
    // Every code documented in docs/diagnostics.md has an example, and no example's code is
    // undocumented.
    let doc = std::fs::read_to_string(repo().join("docs/diagnostics.md")).unwrap();
    let documented: BTreeSet<String> = doc
        .split('`')
        .filter(|w| w.starts_with("launch::") && w.matches("::").count() == 2)
        .map(str::to_owned)
        .collect();
    let missing: Vec<_> = documented
        .difference(&seen)
        // Not reproducible here: an unreadable manifest, a CPU without syscall tables, an
        // archive that fails to extract into the real store before validation (tested in
        // tests/it/image_root.rs), the bridge asked for without root, and namespaces or maps
        // an unprivileged launcher cannot get, nor its helpers, nor its limits (this host is
        // root; tested in tests/it/network.rs, tests/it/rootless.rs and below), a chain of more than 64 files (src/manifest/compose.rs), and a lock's drift
        // or absence (tests/it/environments.rs).
        .filter(|c| {
            ![
                "launch::manifest::read",
                "launch::extends::depth",
                "launch::lock::drift",
                "launch::lock::missing",
                "launch::rootfs::extract",
                "launch::network::rootless",
                "launch::namespaces::privilege",
                "launch::idmap::unprivileged",
                "launch::idmap::newuidmap",
                "launch::limits::rootless",
                "launch::security::seccomp_unsupported",
                "launch::security::devices_unsupported",
            ]
            .contains(&c.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "documented codes without an invalid example: {missing:?}"
    );
    let undocumented: Vec<_> = seen.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "codes missing from docs/diagnostics.md: {undocumented:?}"
    );
}

#[test]
fn all_problems_are_reported_in_one_run() {
    let src = source(&repo().join("examples/manifests/invalid/many-problems.toml"));
    let problems = plan_for(&src, &hybrid()).unwrap_err();
    let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        [
            "launch::name::invalid",
            "launch::hostname::needs_uts",
            "launch::process::cwd",
            "launch::limits::range",
            "launch::units::cpu",
            "launch::mount::duplicate_target"
        ]
    );
}

/// serde stops at the first unknown key; the manifest's walk does not.
#[test]
fn all_unknown_keys_are_reported_in_one_run() {
    let src = source(&repo().join("examples/manifests/invalid/manifest-unknown_keys.toml"));
    let problems = plan_for(&src, &hybrid()).unwrap_err();
    let got: Vec<(&str, &str, &str)> = problems
        .iter()
        .map(|p| (p.code, &src.text[p.span.clone()], p.label.as_str()))
        .collect();
    // No `missing_key` for `command`: `comand` is the cause, and its label says so.
    assert_eq!(
        got,
        [
            (
                "launch::manifest::unknown_key",
                "hostnme",
                "did you mean `hostname`?"
            ),
            (
                "launch::manifest::unknown_key",
                "comand",
                "did you mean `command`?"
            ),
            (
                "launch::manifest::unknown_key",
                "memroy",
                "did you mean `memory`?"
            ),
        ]
    );
}

#[test]
fn json_diagnostics_carry_line_and_column() {
    let src = source(&repo().join("examples/manifests/invalid/manifest-unknown_key.toml"));
    let problems = plan_for(&src, &hybrid()).unwrap_err();
    let v: serde_json::Value = serde_json::from_str(&render_json(&src, &problems)).unwrap();
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "launch::manifest::unknown_key");
    assert_eq!(d["line"], 4, "{d}");
    assert_eq!(d["column"], 1);
    assert_eq!(d["end_column"], 8);
    assert_eq!(d["label"], "did you mean `hostname`?");
    insta::assert_snapshot!("diag-json-unknown_key", render_json(&src, &problems));
}

/// Validation knows the host: a memory node it lacks and a `nofile` above its `fs.nr_open`
/// are diagnostics with the host's own numbers, not step failures at run time.
#[test]
fn host_limits_are_checked_before_running() {
    let text = "name = \"h\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n\
                [limits]\ncpuset_mems = \"0-1\"\n[limits.rlimits]\nnofile = \"unlimited\"\n";
    let src = launch::manifest::Source::from_text("h.toml", std::path::Path::new("/"), text);
    let mut host = hybrid();
    host.facts.numa_nodes = Some("0".into());
    host.facts.nr_open = Some(1_048_576);
    let problems = plan_for(&src, &host).unwrap_err();
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages.contains(&"`0-1` names a memory node this host lacks"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"`nofile` above this host's fs.nr_open (1048576)"),
        "{messages:?}"
    );
    // Within what the host has: accepted.
    host.facts.numa_nodes = Some("0-1".into());
    let ok = text.replace("\"unlimited\"", "{ soft = 1024, hard = 1048576 }");
    let src = launch::manifest::Source::from_text("h.toml", std::path::Path::new("/"), &ok);
    assert!(plan_for(&src, &host).is_ok());
    // io_weight on v1 without blkio.weight (mq-deadline, as on the development machine).
    let text = "name = \"h\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n\
                [limits]\nio_weight = 300\n";
    let src = launch::manifest::Source::from_text("h.toml", std::path::Path::new("/"), text);
    let problems = plan_for(&src, &host).unwrap_err();
    assert_eq!(problems[0].code, "launch::limits::controller_missing");
    assert_eq!(
        problems[0].message,
        "this host has no proportional I/O weights"
    );
    host.facts.cgroup.io_weight = true;
    assert!(plan_for(&src, &host).is_ok());
    // An I/O limit's device: missing, or there but not a block device, each said as it is.
    for (device, message, label) in [
        (
            "/dev/sdz9",
            "`/dev/sdz9` does not exist",
            "no such device on this host",
        ),
        (
            "/tmp",
            "`/tmp` is not a block device",
            "it exists, but is not a block device",
        ),
    ] {
        let text = format!(
            "name = \"h\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n\
             [[limits.io]]\ndevice = \"{device}\"\nread_bps = \"1MiB\"\n"
        );
        let src = launch::manifest::Source::from_text("h.toml", std::path::Path::new("/"), &text);
        let problems = plan_for(&src, &host).unwrap_err();
        assert_eq!(problems[0].message, message);
        assert_eq!(problems[0].label, label);
    }
    // A working directory the directory root lacks (and no mount provides).
    use launch::host::PathKind;
    let host = hybrid()
        .with_path("/r", PathKind::Dir)
        .with_path("/r/bin", PathKind::Dir);
    let text = "name = \"h\"\n[rootfs]\npath = \"/r\"\n[process]\ncommand = [\"/bin/true\"]\n\
                cwd = \"/srv/app\"\n";
    let src = launch::manifest::Source::from_text("h.toml", std::path::Path::new("/"), text);
    let problems = plan_for(&src, &host).unwrap_err();
    assert_eq!(problems[0].code, "launch::process::cwd");
    assert_eq!(
        problems[0].message,
        "/srv/app is not a directory in the root"
    );
    let host = host.with_path("/r/srv/app", PathKind::Dir);
    assert!(plan_for(&src, &host).is_ok());
}

/// Without root, namespaces need a user namespace, and explicit maps may only map the
/// caller's own ids: diagnostics before the run, not clone3's or uid_map's EPERM.
#[test]
fn unprivileged_namespaces_and_maps_are_checked() {
    let mut user = hybrid();
    user.facts.uid = 1000;
    user.facts.gid = 1000;
    let base = "name = \"u\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n";
    let src = launch::manifest::Source::from_text("u.toml", std::path::Path::new("/"), base);
    let problems = plan_for(&src, &user).unwrap_err();
    assert_eq!(problems[0].code, "launch::namespaces::privilege");
    assert!(problems[0].help.as_deref().unwrap().contains("user = true"));
    let with_user = format!("{base}[namespaces]\nuser = true\n");
    let src = launch::manifest::Source::from_text("u.toml", std::path::Path::new("/"), &with_user);
    assert!(plan_for(&src, &user).is_ok());
    let maps = format!(
        "{base}[namespaces]\nuser = {{ uid_map = [{{ inside = 0, outside = 100000, count = 65536 }}], \
         gid_map = [{{ inside = 0, outside = 100000, count = 65536 }}] }}\n"
    );
    let src = launch::manifest::Source::from_text("u.toml", std::path::Path::new("/"), &maps);
    let problems = plan_for(&src, &user).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.code == "launch::idmap::unprivileged"),
        "{problems:?}"
    );
}

/// cgroup v2's "max" means no limit, Kubernetes's binary suffixes and millicpus mean what
/// Kubernetes says; "max" where no limit is not a value is a diagnostic with help.
#[test]
fn kubernetes_and_cgroup_units() {
    let spec = |limits: &str| {
        let text = format!(
            "name = \"u\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n\
             [limits]\n{limits}\n"
        );
        let src = launch::manifest::Source::from_text("u.toml", std::path::Path::new("/"), &text);
        launch::validate::spec(&src, &crate::common::v2())
    };
    let s = spec("memory = \"max\"\nmemory_swap = \"infinity\"\ncpu = \"300m\"").unwrap();
    assert_eq!(s.limits.memory, None);
    assert_eq!(s.limits.memory_swap, None);
    assert_eq!(s.limits.cpu.map(|c| c.quota_us), Some(30_000));
    let s = spec("memory = \"1Gi\"\nmemory_swap = \"1536Mi\"\ncpu = \"max\"").unwrap();
    assert_eq!(s.limits.memory, Some(1 << 30));
    assert_eq!(s.limits.memory_swap, Some(1536 << 20));
    assert_eq!(s.limits.cpu, None);
    // docker's `-m 300m`: 300 MiB, not Kubernetes's 0.3 bytes.
    let s = spec("memory = \"300m\"").unwrap();
    assert_eq!(s.limits.memory, Some(300 << 20));
    let problems = spec("memory_reservation = \"max\"").unwrap_err();
    assert_eq!(problems[0].code, "launch::units::size");
    assert!(
        problems[0]
            .help
            .as_deref()
            .unwrap()
            .contains("only `memory`")
    );
}

/// On a line with multi-byte characters before the problem, the text's `file:line:column` and the
/// JSON's line and column are the same (characters, not bytes).
#[test]
fn text_and_json_columns_agree_on_non_ascii_lines() {
    let text = "name = \"u\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n\
                env = { \"Grüße_ñ\" = \"é\", \"A=B\" = \"y\" }\n";
    let src = launch::manifest::Source::from_text("u.toml", std::path::Path::new("/"), text);
    let problems = plan_for(&src, &hybrid()).unwrap_err();
    let json: serde_json::Value = serde_json::from_str(&render_json(&src, &problems)).unwrap();
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "launch::process::env_name");
    let rendered = render_text(&src, &problems, false, 80);
    let at = format!("[u.toml:{}:{}]", d["line"], d["column"]);
    assert!(rendered.contains(&at), "{at} not in\n{rendered}");
    // `env = { "Grüße_ñ" = "é", ` is 25 characters (29 bytes): miette alone said column 30.
    assert_eq!(d["column"], 26);
    insta::assert_snapshot!("diag-non-ascii-column", rendered);
}
