//! `launch doctor`'s output: aligned text for people, JSON for programs (docs/doctor.md).

use std::fmt::Write;

use super::Report;

/// The JSON format's version: bumped when a field changes meaning or goes away.
pub const FORMAT: u32 = 1;

/// The report as text: one line per check (verdict, id, what was found), its fixes indented
/// beneath, then whether the manifest or each kind can run.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let user = match &r.user {
        Some(n) => format!("uid {} ({n})", r.uid),
        None => format!("uid {}", r.uid),
    };
    let _ = writeln!(out, "launch doctor: {user} on Linux {}", r.kernel);
    out.push('\n');
    let width = r.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in &r.checks {
        let _ = writeln!(
            out,
            "{:<4}  {:<width$}  {}: {}",
            c.verdict.marker(),
            c.id,
            c.title,
            c.detail
        );
        for f in &c.fix {
            let _ = writeln!(out, "      {:<width$}  fix: {f}", "");
        }
    }
    out.push('\n');
    let width = r.targets.iter().map(|t| t.id.len()).max().unwrap_or(0);
    for t in &r.targets {
        let mark = if t.can_run { "ok" } else { "FAIL" };
        let _ = writeln!(out, "{mark:<4}  {:<width$}  {}", t.id, t.title);
        let _ = writeln!(out, "      {:<width$}  needs: {}", "", t.needs.join(", "));
        if !t.blocked_by.is_empty() {
            let _ = writeln!(
                out,
                "      {:<width$}  blocked by: {}",
                "",
                t.blocked_by.join(", ")
            );
        }
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{}",
        match (r.can_run, r.targets.len()) {
            (true, 1) => "result: it can run here",
            (true, _) => "result: every kind can run here",
            (false, 1) => "result: it cannot run here (see the fixes above)",
            (false, _) => "result: some kinds cannot run here (see the fixes above)",
        }
    );
    out
}

/// The report as JSON: `{"format": 1, "uid", "user", "kernel", "can_run", "checks": [{"id",
/// "title", "verdict", "detail", "fix": [..]}], "targets": [{"id", "title", "needs",
/// "blocked_by", "can_run"}]}`, one document and a newline.
pub fn render_json(r: &Report) -> String {
    let v = serde_json::json!({
        "format": FORMAT,
        "uid": r.uid,
        "user": r.user,
        "kernel": r.kernel,
        "can_run": r.can_run,
        "checks": r.checks,
        "targets": r.targets,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
