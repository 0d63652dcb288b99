//! `[security]`: capabilities, no_new_privs, seccomp, masked and read-only paths.
//!
//! Omitted keys take the secure default (or, with `profile = "unconfined"`, the unconfined
//! value): every opt-out is a key the manifest shows.

use std::path::PathBuf;

use super::{Cx, container_path};
use crate::diag::Problem;
use crate::manifest::{CapChanges, Capabilities, Security, SecurityProfile, Sp, WordOrList};
use crate::spec::{CapChoice, CapSet, Paths, Seccomp, Security as SpecSecurity};
use crate::sys::caps::UnknownCapability;
use crate::sys::devices::DeviceRule;
use crate::sys::seccomp;

/// The largest seccomp profile file read (Docker's default profile is 20 KB).
const MAX_PROFILE: u64 = 4 << 20;

/// The Security part of the Spec.
pub(super) fn check(cx: &mut Cx, s: Option<&Sp<Security>>) -> SpecSecurity {
    let Some(s) = s else {
        return SpecSecurity::default();
    };
    let mut out = match s.profile.as_ref().map(|p| *p.get()) {
        None | Some(SecurityProfile::Default) => SpecSecurity::default(),
        Some(SecurityProfile::Unconfined) => SpecSecurity::unconfined(),
    };
    if let Some(c) = &s.capabilities {
        out.capabilities = capabilities(cx, c);
    }
    if let Some(n) = &s.no_new_privileges {
        out.no_new_privileges = *n.get();
    }
    if let Some(l) = &s.seccomp_log {
        out.seccomp_log = *l.get();
    }
    if let Some(m) = &s.masked_paths {
        out.masked_paths = paths(cx, m, "masked_paths");
    }
    if let Some(r) = &s.readonly_paths {
        out.readonly_paths = paths(cx, r, "readonly_paths");
    }
    if let Some(d) = &s.devices {
        out.devices = devices(cx, d);
    }
    // Last: Docker profiles decide their rules by the capabilities kept.
    if let Some(v) = &s.seccomp {
        out.seccomp = match v.get().as_str() {
            "default" => Seccomp::Default,
            "unconfined" => Seccomp::Unconfined,
            _ => match profile_file(cx, v, out.capabilities) {
                Some(p) => {
                    out.seccomp_log |= p.log;
                    Seccomp::Custom(p)
                }
                None => Seccomp::Default,
            },
        };
    }
    if out.seccomp != Seccomp::Unconfined && seccomp::native().is_none() {
        let span = s.seccomp.as_ref().map_or(s.span(), Sp::span);
        cx.push(
            Problem::new(
                "launch::security::seccomp_unsupported",
                span,
                format!(
                    "seccomp filters are not supported on {}",
                    std::env::consts::ARCH
                ),
            )
            .label("launch has syscall tables for x86_64 and aarch64")
            .help("set `seccomp = \"unconfined\"` under [security] to run without a filter"),
        );
    }
    out
}

fn capabilities(cx: &mut Cx, c: &Sp<Capabilities>) -> Option<CapChoice> {
    match c.get() {
        Capabilities::Word(w) if w == "default" => Some(CapChoice::Default),
        Capabilities::Word(w) => {
            cx.push(
                Problem::new(
                    "launch::security::capabilities",
                    c.span(),
                    format!("`{w}` is not a capability choice"),
                )
                .label("expected \"default\", a list, or { add, drop }")
                .help(
                    "write `capabilities = \"default\"`, a list like `[\"CHOWN\", \"NET_BIND_SERVICE\"]` \
                     (`[\"ALL\"]` for every one), or `{ add = [...], drop = [...] }`",
                ),
            );
            Some(CapChoice::Default)
        }
        Capabilities::List(names) => Some(CapChoice::List(cap_set(cx, names))),
        Capabilities::Changes(CapChanges { add, drop }) => {
            let choice = CapChoice::Modify {
                add: cap_set(cx, add),
                drop: cap_set(cx, drop),
            };
            let both = choice.conflicts();
            if !both.is_empty() {
                cx.push(
                    Problem::new(
                        "launch::security::capability_conflict",
                        c.span(),
                        format!("{} both added and dropped", both.names().join(", ")),
                    )
                    .label("in `add` and in `drop`")
                    .help("remove each from the list it does not belong in"),
                );
            }
            Some(choice)
        }
    }
}

/// The set a list names; every unknown name is a problem at its own span.
fn cap_set(cx: &mut Cx, names: &[Sp<String>]) -> CapSet {
    let mut set = CapSet::EMPTY;
    for n in names {
        match CapSet::parse([n.get().as_str()]) {
            Ok(s) => set = set.union(s),
            Err(unknown) => {
                for UnknownCapability { name, suggestion } in unknown {
                    let help = match suggestion {
                        Some(s) => format!("did you mean `{}`?", s.name()),
                        None => "capabilities are named as in capabilities(7): `CAP_NET_ADMIN` \
                                 or `NET_ADMIN`; `ALL` names every one"
                            .to_string(),
                    };
                    cx.push(
                        Problem::new(
                            "launch::security::unknown_capability",
                            n.span(),
                            format!("unknown capability `{name}`"),
                        )
                        .label("not a Linux capability")
                        .help(help),
                    );
                }
            }
        }
    }
    set
}

fn paths(cx: &mut Cx, v: &Sp<WordOrList>, key: &str) -> Paths {
    match v.get() {
        WordOrList::Word(w) if w == "default" => Paths::Default,
        WordOrList::Word(w) => {
            cx.push(
                Problem::new(
                    "launch::security::paths",
                    v.span(),
                    format!("`{w}` is not a list of paths"),
                )
                .label("expected \"default\" or a list")
                .help(format!(
                    "write `{key} = \"default\"`, or a list of absolute paths (`[]` for none)"
                )),
            );
            Paths::Default
        }
        WordOrList::List(list) => Paths::List(
            list.iter()
                .map(|p| container_path(cx, p, "launch::security::paths", key))
                .collect::<Vec<PathBuf>>(),
        ),
    }
}

/// `devices`: a word, or rules added after the default list. Each rule's mistakes point into
/// its string; rules that would not do what they say (cgroup v1 ignores them) are refused.
fn devices(cx: &mut Cx, v: &Sp<WordOrList>) -> Vec<DeviceRule> {
    let list = match v.get() {
        WordOrList::Word(w) if w == "default" => return crate::sys::devices::DEFAULT.to_vec(),
        WordOrList::Word(w) if w == "unconfined" => return Vec::new(),
        WordOrList::Word(w) => {
            cx.push(
                Problem::new(
                    "launch::security::devices",
                    v.span(),
                    format!("`{w}` is not a device choice"),
                )
                .label("expected \"default\", \"unconfined\" or a list of rules")
                .help("write `devices = [\"allow c 10:229 rwm\"]` to allow more than the default"),
            );
            return crate::sys::devices::DEFAULT.to_vec();
        }
        WordOrList::List(l) => l,
    };
    let facts = cx.host.facts();
    let cannot = match (facts.uid, crate::lower::devices::gap(facts)) {
        (_, Some(why)) => Some(why),
        (0, None) => None,
        (_, None) => Some(
            "device rules need a launcher running as root (a cgroup device program or the v1 \
             devices controller); unprivileged, the container's user namespace already refuses \
             mknod"
                .to_owned(),
        ),
    };
    if let Some(why) = cannot {
        cx.push(
            Problem::new(
                "launch::security::devices_unsupported",
                v.span(),
                "this host cannot apply device rules",
            )
            .label(why)
            .help("remove `devices` (the default list applies where it can), or run as root on a host with a device controller"),
        );
    }
    let mut rules = crate::sys::devices::DEFAULT.to_vec();
    let base = rules.len();
    let mut spans = Vec::new();
    for text in list {
        // The string's contents start one byte into its span (after the quote).
        let at = text.span().start + 1;
        match text.get().parse::<DeviceRule>() {
            Ok(r) => {
                rules.push(r);
                spans.push(text.span());
            }
            Err(e) => cx.push(
                Problem::new(
                    "launch::security::device_rule",
                    at + e.span.start..at + e.span.end.max(e.span.start + 1),
                    e.message.clone(),
                )
                .label("in this device rule")
                .help(e.help.clone()),
            ),
        }
    }
    for (i, problem) in crate::sys::devices::check(&rules) {
        let Some(span) = i.checked_sub(base).and_then(|j| spans.get(j)) else {
            continue;
        };
        cx.push(
            Problem::new(
                "launch::security::device_rule",
                span.clone(),
                problem.to_string(),
            )
            .label("cgroup v1 would not apply this rule as written")
            .help("write the rule for exactly the devices and accesses meant"),
        );
    }
    rules
}

/// Read, parse and resolve a profile file; its mistakes are problems at the manifest's key,
/// naming the file's line and column.
fn profile_file(cx: &mut Cx, v: &Sp<String>, caps: Option<CapChoice>) -> Option<seccomp::Profile> {
    let path = cx.resolve(v);
    let text = match cx.host.read_text(&path, MAX_PROFILE) {
        Ok(t) => t,
        Err(why) => {
            cx.push(
                Problem::new(
                    "launch::security::seccomp_file",
                    v.span(),
                    format!("cannot read the seccomp profile {}: {why}", path.display()),
                )
                .label("a Docker or OCI seccomp profile (JSON)")
                .help("give the path of a profile file (relative to the manifest), or \"default\" or \"unconfined\""),
            );
            return None;
        }
    };
    let file = match seccomp::parse(&text) {
        Ok(f) => f,
        Err(e) => {
            let help = e
                .help
                .clone()
                .unwrap_or_else(|| "fix the profile file at that line and column".to_string());
            cx.push(
                Problem::new(
                    "launch::security::seccomp_profile",
                    v.span(),
                    format!("{}:{}:{}: {}", path.display(), e.line, e.column, e.message),
                )
                .label("this seccomp profile has a mistake")
                .help(help),
            );
            return None;
        }
    };
    let arch = seccomp::native()?;
    let kept = caps.map_or(CapSet::ALL, CapChoice::resolve);
    let names = kept.names();
    let kernel = seccomp::parse_kernel_version(&cx.host.facts().kernel).unwrap_or((0, 0));
    let name = path
        .file_name()
        .map_or_else(|| v.get().clone(), |n| n.to_string_lossy().into_owned());
    let profile = file.resolve(
        &name,
        &seccomp::Conditions {
            caps: &names,
            arch: &arch,
            kernel,
        },
    );
    if let Err(e) = seccomp::compile(&profile) {
        cx.push(
            Problem::new("launch::security::seccomp_profile", v.span(), e.to_string())
                .label("this profile cannot become a filter")
                .help("split or shorten the profile's rules"),
        );
        return None;
    }
    Some(profile)
}
