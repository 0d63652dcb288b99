//! The binary itself: exit codes, output streams, help text.

use std::process::Command;

use crate::common::repo;

fn launch(args: &[&str]) -> std::process::Output {
    Command::new(crate::fixtures::launch_bin())
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn plan_of_hello_on_this_host() {
    let out = launch(&["plan", "examples/manifests/hello.toml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("plan for `hello` from examples/manifests/hello.toml"));
    assert!(text.contains("execve(\"/bin/sh\""));
    let out = launch(&["plan", "--format", "json", "examples/manifests/hello.toml"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], launch::plan::PLAN_FORMAT);
    assert_eq!(v["name"], "hello");
}

#[test]
fn validate_exit_codes() {
    let ok = launch(&["validate", "examples/manifests/hello.toml"]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .starts_with("ok: examples/manifests/hello.toml is valid")
    );
    let bad = launch(&["validate", "examples/manifests/invalid/many-problems.toml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("launch::name::invalid")
            && err
                .ends_with("error: 6 problems in examples/manifests/invalid/many-problems.toml\n"),
        "{err}"
    );
    let json = launch(&[
        "validate",
        "--format",
        "json",
        "examples/manifests/invalid/many-problems.toml",
    ]);
    assert_eq!(json.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 6);
    let missing = launch(&["validate", "no/such/manifest.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("launch::manifest::read"));
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = launch(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(repo().join("schema/launch.schema.json")).unwrap()
    );
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = launch(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("validate"),
            "{shell}"
        );
    }
    // NAME of stop and exec: the running containers, from `launch ps --names` (bash is run for
    // real in supervise::ps_exec_and_stop_a_running_container).
    for (shell, needle) in [
        ("bash", "if _launch_running \"$1\"; then"),
        ("zsh", "or one instance (`NAME-<id>`):_launch_running'"),
        ("zsh", "name or instance:_launch_running'"),
        (
            "fish",
            "-n \"__fish_launch_wants_name\" -f -a \"(launch ps --names 2>/dev/null)\"",
        ),
    ] {
        let out = launch(&["completions", shell]);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(needle), "{shell}: no {needle}");
    }
    let names = launch(&["ps", "--names"]);
    assert_eq!(names.status.code(), Some(0));
    let man = launch(&["man"]);
    assert!(String::from_utf8_lossy(&man.stdout).starts_with(".ie \\n(.g .ds Aq"));
}

#[test]
fn help_and_usage_errors() {
    let help = launch(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    insta::assert_snapshot!("cli-help", String::from_utf8(help.stdout).unwrap());
    let plan_help = launch(&["plan", "--help"]);
    insta::assert_snapshot!(
        "cli-plan-help",
        String::from_utf8(plan_help.stdout).unwrap()
    );
    let bad = launch(&["plan", "--format", "yaml", "x.toml"]);
    assert_eq!(bad.status.code(), Some(2));
    // A misspelt subcommand is a usage error with a suggestion, not a missing manifest.
    let typo = launch(&["rnu", "examples/manifests/hello.toml"]);
    assert_eq!(typo.status.code(), Some(2));
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(
        err.contains("unrecognized subcommand 'rnu'") && err.contains("'run'"),
        "{err}"
    );
}

/// `-` is the manifest on standard input: named `<stdin>`, relative paths against the current
/// directory.
#[test]
fn validate_and_plan_read_standard_input() {
    use std::io::Write;
    let with_stdin = |args: &[&str], text: &str| {
        let mut child = Command::new(crate::fixtures::launch_bin())
            .args(args)
            .current_dir(repo().join("examples/manifests"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let hello = std::fs::read_to_string(repo().join("examples/manifests/hello.toml")).unwrap();
    let ok = with_stdin(&["validate", "-"], &hello);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: <stdin> is valid"));
    let plan = with_stdin(&["plan", "-"], &hello);
    assert_eq!(plan.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&plan.stdout).starts_with("plan for `hello` from <stdin>"));
    // A relative path resolves against the current directory (examples/manifests here).
    let bad = with_stdin(
        &["validate", "--format", "json", "-"],
        "name = \"s\"\n[rootfs]\npath = \"no-such-rootfs\"\n[process]\ncommand = [\"/bin/true\"]\n",
    );
    assert_eq!(bad.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["file"], "<stdin>");
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "launch::rootfs::not_found");
    assert_eq!(
        d["message"],
        format!(
            "{} does not exist",
            repo().join("examples/manifests/no-such-rootfs").display()
        )
    );
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(8))
    );
}
