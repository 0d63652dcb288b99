//! The plan as text, for people (`launch plan`).

use std::fmt::Write;

use super::{Plan, Side};
use crate::host::CgroupLayout;

/// Render a plan for reading: a header with the host facts, then one block per step.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let h = &plan.host;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let cg = &h.cgroup;
    let cgroups = match cg.layout {
        CgroupLayout::V2 => format!(
            "v2 at {} ({})",
            cg.v2_root
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            cg.v2_controllers.join(" ")
        ),
        CgroupLayout::V1 | CgroupLayout::Hybrid => {
            let names: Vec<&str> = cg.v1.keys().map(String::as_str).collect();
            let mut s = format!(
                "{} (v1: {})",
                if cg.layout == CgroupLayout::V1 {
                    "v1"
                } else {
                    "hybrid"
                },
                names.join(" ")
            );
            if let Some(r) = &cg.v2_root {
                let _ = write!(s, ", cgroup2 at {} unused for limits", r.display());
            }
            s
        }
        CgroupLayout::None => "none mounted".into(),
    };
    let _ = writeln!(
        out,
        "plan for `{}` from {} (plan format {})",
        plan.name, plan.manifest, plan.format
    );
    let _ = writeln!(
        out,
        "host: kernel {}, {} CPUs, uid {} gid {}",
        h.kernel, h.cpus, h.uid, h.gid
    );
    let _ = writeln!(out, "      cgroups {cgroups}");
    if h.uid != 0 {
        let sub = &h.subids;
        let ranges = |r: &[crate::host::IdRange]| {
            if r.is_empty() {
                "none".to_string()
            } else {
                r.iter()
                    .map(|r| format!("{}-{}", r.start, r.start + r.count - 1))
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        let helper = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map_or("missing".to_string(), |p| p.display().to_string())
        };
        let _ = writeln!(
            out,
            "      subordinate ids: uid {}, gid {}; newuidmap {}, newgidmap {}",
            ranges(&sub.uid),
            ranges(&sub.gid),
            helper(&sub.newuidmap),
            helper(&sub.newgidmap)
        );
        if let Some(own) = &cg.own {
            let _ = writeln!(
                out,
                "      own cgroup {} ({}; controllers: {}; {} other processes)",
                own.dir.display(),
                if own.delegated {
                    "delegated to this user"
                } else {
                    "not delegated"
                },
                own.controllers.join(" "),
                own.others
            );
        }
    }
    let _ = writeln!(
        out,
        "      namespaces: user {}, cgroup {}, time {}",
        yes(h.user_namespaces),
        yes(h.cgroup_namespace),
        yes(h.time_namespace)
    );
    let _ = writeln!(
        out,
        "instance: {} ({{id}} is drawn at run time, {{pid}} is the container's pid)",
        plan.instance
    );
    let terminal = match plan.spec.process.terminal {
        Some(true) => "yes",
        Some(false) => "no",
        None => "when standard input is a terminal",
    };
    let _ = writeln!(out, "terminal: {terminal}");
    if let crate::spec::RootSource::Image {
        name,
        manifest,
        layers,
        ..
    } = &plan.spec.root.source
    {
        let _ = writeln!(
            out,
            "image: {name} (manifest {manifest}, {} layer{})",
            layers.len(),
            if layers.len() == 1 { "" } else { "s" }
        );
    }
    if let crate::spec::RootSource::Tar {
        archive,
        stored: Some(t),
        ..
    } = &plan.spec.root.source
    {
        let _ = writeln!(
            out,
            "archive: {} ({}), extracted once into the store as layer {}",
            archive.display(),
            t.digest,
            t.layer
        );
    }
    for (n, i) in plan
        .inputs
        .iter()
        .filter(|i| matches!(i.kind.as_str(), "extends" | "env_file"))
        .enumerate()
    {
        let _ = writeln!(
            out,
            "{} {} {} ({})",
            if n == 0 { "inputs:" } else { "       " },
            i.kind,
            i.name,
            i.digest.as_deref().unwrap_or("not hashed")
        );
    }
    if !plan.spec.process.from_image.is_empty() {
        let _ = writeln!(
            out,
            "from the image: {}",
            plan.spec.process.from_image.join(", ")
        );
    }
    let _ = writeln!(out);
    let width = plan.steps.len().to_string().len();
    let indent = " ".repeat(width + 13);
    for (i, step) in plan.steps.iter().enumerate() {
        let side = match step.side() {
            Side::Host => "host",
            Side::Container => "container",
        };
        let _ = writeln!(out, "{:>width$}  {:<9}  {}", i + 1, side, step.summary);
        let _ = writeln!(out, "{indent}{}", step.effect());
        if let Some(u) = step.undo() {
            let _ = writeln!(out, "{indent}undo: {u}");
        }
    }
    out
}
