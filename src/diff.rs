//! `launch diff`: what changes between two versions of a container, in two parts.
//!
//! - The Spec (what the container is): every value that differs, by its path in the Spec
//!   (`limits.memory`, `mounts[1].target`), compared as the Spec's JSON form so the paths are the
//!   ones `launch plan --format json` shows.
//! - The plan (what will be done to this host): the steps, matched by a longest common
//!   subsequence of their text (summary, effect, undo) so an inserted step shows as one `+`, not
//!   as every later step renumbered; the header's host facts and inputs too.
//!
//! Pure: both sides are plans already made (from manifests, saved plans or git revisions).

use serde::Serialize;
use serde_json::Value;

use crate::plan::{Plan, Side};

/// One difference in the Spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecChange {
    /// Where: a dotted path with `[i]` for array elements.
    pub path: String,
    /// `changed`, `added` (only in B) or `removed` (only in A).
    pub op: &'static str,
    /// A's value (JSON), when A has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// B's value (JSON), when B has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// One line of the plan diff: a step (or header line) only in A (`-`), only in B (`+`), or in
/// both (` `, kept for context).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanLine {
    /// `-`, `+` or ` `.
    pub op: &'static str,
    /// The step's number in A (for `-` and ` `).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<usize>,
    /// The step's number in B (for `+` and ` `).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<usize>,
    /// The step as the text plan shows it (side, summary, effect, undo), one line each.
    pub text: Vec<String>,
}

/// The whole difference between two plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// How side A was named.
    pub a: String,
    /// How side B was named.
    pub b: String,
    /// Differences in what the container is.
    pub spec: Vec<SpecChange>,
    /// Differences in the host facts and inputs the plans were made with (`-`/`+` lines).
    pub header: Vec<PlanLine>,
    /// The steps, with context lines removed except around changes.
    pub steps: Vec<PlanLine>,
}

impl Diff {
    /// No difference at all.
    pub fn is_empty(&self) -> bool {
        self.spec.is_empty() && self.header.is_empty() && self.steps.iter().all(|l| l.op == " ")
    }
}

/// Compare two plans.
pub fn diff(a_name: &str, a: &Plan, b_name: &str, b: &Plan) -> Diff {
    let mut spec = Vec::new();
    let va = serde_json::to_value(&a.spec).unwrap_or(Value::Null);
    let vb = serde_json::to_value(&b.spec).unwrap_or(Value::Null);
    values(&mut String::new(), &va, &vb, &mut spec);
    let header = lines_diff(&header_lines(a), &header_lines(b))
        .into_iter()
        .filter(|l| l.op != " ")
        .collect();
    let sa: Vec<Vec<String>> = a.steps.iter().map(step_text).collect();
    let sb: Vec<Vec<String>> = b.steps.iter().map(step_text).collect();
    let steps = with_context(units_diff(&sa, &sb), 1);
    Diff {
        a: a_name.to_owned(),
        b: b_name.to_owned(),
        spec,
        header,
        steps,
    }
}

fn values(path: &mut String, a: &Value, b: &Value, out: &mut Vec<SpecChange>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match (ma.get(k), mb.get(k)) {
                    (Some(x), Some(y)) => values(path, x, y, out),
                    (Some(x), None) if !x.is_null() => {
                        out.push(change(path, "removed", Some(x), None))
                    }
                    (None, Some(y)) if !y.is_null() => {
                        out.push(change(path, "added", None, Some(y)))
                    }
                    _ => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(xa), Value::Array(xb)) => {
            for i in 0..xa.len().max(xb.len()) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                match (xa.get(i), xb.get(i)) {
                    (Some(x), Some(y)) => values(path, x, y, out),
                    (Some(x), None) => out.push(change(path, "removed", Some(x), None)),
                    (None, Some(y)) => out.push(change(path, "added", None, Some(y))),
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        (Value::Null, y) => out.push(change(path, "added", None, Some(y))),
        (x, Value::Null) => out.push(change(path, "removed", Some(x), None)),
        (x, y) => out.push(change(path, "changed", Some(x), Some(y))),
    }
}

fn change(path: &str, op: &'static str, old: Option<&Value>, new: Option<&Value>) -> SpecChange {
    SpecChange {
        path: if path.is_empty() {
            "(spec)".into()
        } else {
            path.to_owned()
        },
        op,
        old: old.cloned(),
        new: new.cloned(),
    }
}

/// The header facts a plan was made with, one line each (what `launch plan` prints above the
/// steps, without the manifest's name).
fn header_lines(p: &Plan) -> Vec<Vec<String>> {
    let h = &p.host;
    let mut out = vec![
        format!(
            "host: kernel {}, {} CPUs, uid {} gid {}",
            h.kernel, h.cpus, h.uid, h.gid
        ),
        format!("cgroups: {:?}", h.cgroup.layout).to_lowercase(),
        format!("state root: {}", h.state_root.display()),
    ];
    for i in &p.inputs {
        out.push(format!(
            "input: {} {} {}",
            i.kind,
            i.name,
            i.digest.as_deref().unwrap_or("(not hashed)")
        ));
    }
    out.into_iter().map(|l| vec![l]).collect()
}

/// A step as the text plan shows it, without its number.
fn step_text(s: &crate::plan::Step) -> Vec<String> {
    let side = match s.side() {
        Side::Host => "host",
        Side::Container => "container",
    };
    let mut v = vec![
        format!("{side:<9}  {}", s.summary),
        format!("           {}", s.effect()),
    ];
    if let Some(u) = s.undo() {
        v.push(format!("           undo: {u}"));
    }
    v
}

fn lines_diff(a: &[Vec<String>], b: &[Vec<String>]) -> Vec<PlanLine> {
    units_diff(a, b)
}

/// A longest common subsequence of units, as `-`, `+` and ` ` lines (numbers 1-based).
fn units_diff(a: &[Vec<String>], b: &[Vec<String>]) -> Vec<PlanLine> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: the LCS length of a[i..] and b[j..]. Plans have at most a few hundred steps.
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(PlanLine {
                op: " ",
                a: Some(i + 1),
                b: Some(j + 1),
                text: a[i].clone(),
            });
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(PlanLine {
                op: "+",
                a: None,
                b: Some(j + 1),
                text: b[j].clone(),
            });
            j += 1;
        } else {
            out.push(PlanLine {
                op: "-",
                a: Some(i + 1),
                b: None,
                text: a[i].clone(),
            });
            i += 1;
        }
    }
    // Within a run of changes, removals first: a replaced step reads `-` old then `+` new.
    let mut k = 0;
    while k < out.len() {
        if out[k].op == " " {
            k += 1;
            continue;
        }
        let start = k;
        while k < out.len() && out[k].op != " " {
            k += 1;
        }
        out[start..k].sort_by_key(|l| l.op != "-");
    }
    out
}

/// Keep `context` unchanged steps around each change; elide the rest.
fn with_context(lines: Vec<PlanLine>, context: usize) -> Vec<PlanLine> {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.op != " ")
        .map(|(i, _)| i)
        .collect();
    lines
        .into_iter()
        .enumerate()
        .filter(|(i, l)| l.op != " " || changed.iter().any(|c| c.abs_diff(*i) <= context))
        .map(|(_, l)| l)
        .collect()
}

/// The text form.
pub fn render_text(d: &Diff) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "--- a: {}\n+++ b: {}", d.a, d.b);
    if d.is_empty() {
        out.push_str("\nno differences: the same container and the same plan\n");
        return out;
    }
    let _ = writeln!(out, "\nspec (what the container is):");
    if d.spec.is_empty() {
        out.push_str("  the same\n");
    }
    let show = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    for c in &d.spec {
        let _ = match c.op {
            "changed" => writeln!(out, "  ~ {}: {} → {}", c.path, show(&c.old), show(&c.new)),
            "added" => writeln!(out, "  + {}: {}", c.path, show(&c.new)),
            _ => writeln!(out, "  - {}: {}", c.path, show(&c.old)),
        };
    }
    if !d.header.is_empty() {
        let _ = writeln!(out, "\nhost facts and inputs:");
        for l in &d.header {
            let _ = writeln!(out, "  {} {}", l.op, l.text.join(" "));
        }
    }
    let _ = writeln!(out, "\nplan (what will be done to this host):");
    if d.steps.iter().all(|l| l.op == " ") {
        out.push_str("  the same steps\n");
        return out;
    }
    let mut last: Option<(Option<usize>, Option<usize>)> = None;
    for l in &d.steps {
        // A gap in the numbering: elided unchanged steps.
        if let Some((pa, pb)) = last {
            let next_a = l.a.map(|x| x - 1);
            let next_b = l.b.map(|x| x - 1);
            let gap = (next_a.is_some() && pa.is_some() && next_a > pa)
                || (next_b.is_some() && pb.is_some() && next_b > pb);
            if gap {
                out.push_str("  ...\n");
            }
        }
        let num = match (l.op, l.a, l.b) {
            ("+", _, Some(b)) => format!("b{b}"),
            (_, Some(a), _) => format!("a{a}"),
            _ => String::new(),
        };
        for (k, t) in l.text.iter().enumerate() {
            if k == 0 {
                let _ = writeln!(out, "{} {num:>4}  {t}", l.op);
            } else {
                let _ = writeln!(out, "{}       {t}", l.op);
            }
        }
        last = Some((
            l.a.or(last.and_then(|x| x.0)),
            l.b.or(last.and_then(|x| x.1)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(v: &[&str]) -> Vec<Vec<String>> {
        v.iter().map(|s| vec![s.to_string()]).collect()
    }

    #[test]
    fn an_inserted_step_is_one_plus() {
        let d = units_diff(&units(&["a", "b", "c"]), &units(&["a", "x", "b", "c"]));
        let ops: Vec<&str> = d.iter().map(|l| l.op).collect();
        assert_eq!(ops, [" ", "+", " ", " "]);
        assert_eq!(d[1].b, Some(2));
    }

    #[test]
    fn a_replaced_step_is_minus_then_plus() {
        let d = units_diff(&units(&["a", "b", "c"]), &units(&["a", "B", "c"]));
        let ops: Vec<(&str, &str)> = d.iter().map(|l| (l.op, l.text[0].as_str())).collect();
        assert_eq!(ops, [(" ", "a"), ("-", "b"), ("+", "B"), (" ", "c")]);
    }

    #[test]
    fn spec_values_by_path() {
        let a = serde_json::json!({"limits": {"memory": 1, "pids": 5}, "mounts": [{"t": "/a"}]});
        let b = serde_json::json!({"limits": {"memory": 2}, "mounts": [{"t": "/a"}, {"t": "/b"}]});
        let mut out = Vec::new();
        values(&mut String::new(), &a, &b, &mut out);
        let got: Vec<(&str, &str)> = out.iter().map(|c| (c.path.as_str(), c.op)).collect();
        assert_eq!(
            got,
            [
                ("limits.memory", "changed"),
                ("limits.pids", "removed"),
                ("mounts[1]", "added")
            ]
        );
    }

    #[test]
    fn context_keeps_neighbours_only() {
        let d = units_diff(
            &units(&["1", "2", "3", "4", "5"]),
            &units(&["1", "2", "X", "4", "5"]),
        );
        let kept = with_context(d, 1);
        let kept: Vec<&str> = kept.iter().map(|l| l.text[0].as_str()).collect();
        assert_eq!(kept, ["2", "3", "X", "4"]);
    }
}
