//! The Spec's security part from `process.capabilities`, `process.noNewPrivileges`,
//! `linux.seccomp`, `linux.maskedPaths`, `linux.readonlyPaths` and `linux.resources.devices`.
//!
//! Read as runc reads a bundle, not as a manifest is: an absent field confines nothing beyond
//! what runc does without it. No `capabilities` is no capability at all (runc sets exactly the
//! sets it is given), no `noNewPrivileges` is off, no `seccomp` is no filter, no `maskedPaths`
//! masks nothing.

use std::path::PathBuf;

use serde_json::Value;

use super::process::container_path;
use super::{Cx, Launch, Node};
use crate::oci::security::{cap_sets, is_default_list};
use crate::spec::{CapChoice, CapSet, Paths, Seccomp, Security};
use crate::sys::caps::{CapSets, DEFAULT};
use crate::sys::masked_paths::{DEFAULT_MASKED, DEFAULT_READONLY, Rule};
use crate::sys::seccomp::{Conditions, default_profile, native, parse, parse_kernel_version};

/// The five sets, in the order config.json usually lists them.
const SETS: &[&str] = &[
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// What an imported custom profile is called in the plan when the bundle gives no name.
const PROFILE_NAME: &str = "linux.seccomp";

/// The object member `key` of `n`, when both are objects (a wrong type is reported by whoever
/// walks `n`).
fn member<'v>(n: &Node<'v>, key: &str) -> Option<Node<'v>> {
    let v = n.v.get(key)?;
    v.is_object().then(|| n.child(key, v))
}

pub(super) fn check(cx: &mut Cx, doc: &Node, launch: &Launch, uid: Option<u32>) -> Security {
    let process = member(doc, "process");
    let linux = member(doc, "linux");
    let capabilities = capabilities(cx, process.as_ref(), uid, launch);
    // The capabilities the container keeps decide the default profile's rules and a profile's
    // `includes`/`excludes`, as when launch runs a manifest.
    let kept = cap_sets(capabilities, uid.unwrap_or(0), CapSet::ALL).bounding;
    let no_new_privileges = process
        .as_ref()
        .and_then(|p| cx.get(p, "noNewPrivileges"))
        .and_then(|n| cx.bool(&n))
        .unwrap_or(false);
    let (seccomp, seccomp_log) = seccomp(cx, linux.as_ref(), kept, launch);
    let masked_paths = paths(cx, linux.as_ref(), "maskedPaths", DEFAULT_MASKED);
    let readonly_paths = paths(cx, linux.as_ref(), "readonlyPaths", DEFAULT_READONLY);
    let devices = device_rules(cx, linux.as_ref());
    Security {
        capabilities,
        no_new_privileges,
        seccomp,
        seccomp_log,
        masked_paths,
        readonly_paths,
        devices,
    }
}

/// One set's names; an unknown one is reported at its item.
fn cap_set(cx: &mut Cx, n: &Node) -> CapSet {
    let mut set = CapSet::EMPTY;
    for item in cx.array(n).unwrap_or_default() {
        let Some(name) = cx.str(&item) else { continue };
        match CapSet::parse([name.as_str()]) {
            Ok(s) => set = set.union(s),
            Err(unknown) => {
                let help = match unknown.first().and_then(|u| u.suggestion) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "write a capability name like CAP_NET_BIND_SERVICE (capabilities(7))"
                        .to_owned(),
                };
                cx.push(
                    "launch::oci::value",
                    &item,
                    format!("`{name}` is not a capability"),
                    "unknown capability",
                    help,
                );
            }
        }
    }
    set
}

fn set_of(s: &CapSets, name: &str) -> CapSet {
    match name {
        "bounding" => s.bounding,
        "effective" => s.effective,
        "inheritable" => s.inheritable,
        "permitted" => s.permitted,
        _ => s.ambient,
    }
}

fn set_mut<'s>(s: &'s mut CapSets, name: &str) -> &'s mut CapSet {
    match name {
        "bounding" => &mut s.bounding,
        "effective" => &mut s.effective,
        "inheritable" => &mut s.inheritable,
        "permitted" => &mut s.permitted,
        _ => &mut s.ambient,
    }
}

/// The choice whose sets are exactly the bundle's for a process running as `uid`: the one the
/// annotation names first (what launch exported), then the default set, the bounding set as a
/// list, the default set less what the bounding set lacks plus what a non-root user names, and
/// no change at all.
fn choose(sets: &CapSets, uid: u32, hint: Option<Option<CapChoice>>) -> Option<Option<CapChoice>> {
    let candidates = [
        hint,
        Some(Some(CapChoice::Default)),
        Some(Some(CapChoice::List(sets.bounding))),
        (uid != 0).then_some(Some(CapChoice::Modify {
            add: sets.ambient,
            drop: DEFAULT.difference(sets.bounding),
        })),
        Some(None),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|c| cap_sets(*c, uid, CapSet::ALL) == *sets)
}

/// `process.capabilities` → the Spec's choice. Sets no choice gives are reported, each at its
/// field; absent sets are empty, as in runc.
fn capabilities(
    cx: &mut Cx,
    p: Option<&Node>,
    uid: Option<u32>,
    launch: &Launch,
) -> Option<CapChoice> {
    // runc gives exactly the sets listed: none listed is none held.
    let none = Some(CapChoice::List(CapSet::EMPTY));
    let Some(c) = p.and_then(|p| cx.get(p, "capabilities")) else {
        return none;
    };
    let Some(c) = cx.object(&c, SETS) else {
        return none;
    };
    let mut sets = CapSets::default();
    let mut at: Vec<(&str, Node)> = Vec::new();
    for name in SETS {
        if let Some(n) = cx.get(&c, name) {
            *set_mut(&mut sets, name) = cap_set(cx, &n);
            at.push((name, n));
        }
    }
    // A missing or wrong uid is reported with `process.user`: the bundle is refused anyway.
    let Some(uid) = uid else {
        return none;
    };
    if let Some(choice) = choose(&sets, uid, launch.capabilities) {
        return choice;
    }
    let choice = CapChoice::List(sets.bounding);
    let would = cap_sets(Some(choice), uid, CapSet::ALL);
    let help = if uid == 0 {
        "make `permitted` and `effective` the same as `bounding`, and remove `inheritable` and \
         `ambient`: launch gives root nothing inheritable or ambient (inheritable capabilities \
         pass privileges across execve, CVE-2022-24769)"
    } else {
        "list the same capabilities in `permitted`, `effective`, `inheritable` and `ambient` (a \
         user other than root keeps them across execve only as ambient ones), and in `bounding` \
         those and any of launch's default set; or list none in all four"
    };
    for name in SETS {
        let (given, want) = (set_of(&sets, name), set_of(&would, name));
        if given == want {
            continue;
        }
        let who = if uid == 0 {
            "root".to_owned()
        } else {
            format!("uid {uid}")
        };
        let message = format!(
            "launch cannot give {who} these capability sets: `{name}` {}, where launch would \
             give {want}",
            if given.is_empty() {
                "holds none".to_owned()
            } else {
                format!("holds {given}")
            }
        );
        match at.iter().find(|(n, _)| n == name) {
            Some((_, n)) => {
                let n = n.clone();
                cx.push(
                    "launch::oci::capabilities",
                    &n,
                    message,
                    format!("launch would give {want}"),
                    help,
                );
            }
            None => cx.push(
                "launch::oci::capabilities",
                &c,
                message,
                format!("no `{name}`: none"),
                help,
            ),
        }
    }
    Some(choice)
}

/// `linux.seccomp` → the filter, and whether denials are logged. The object is read with the
/// profile reader launch uses for profile files (`sys::seccomp::parse`), so its mistakes are
/// placed where they are in config.json.
fn seccomp(cx: &mut Cx, l: Option<&Node>, kept: CapSet, launch: &Launch) -> (Seccomp, bool) {
    let unconfined = (Seccomp::Unconfined, false);
    let Some(n) = l.and_then(|l| cx.get(l, "seccomp")) else {
        return unconfined;
    };
    if !n.v.is_object() {
        cx.type_error(&n, "an object");
        return unconfined;
    }
    cx.take(&n);
    // The object's own text when there is one, so that line and column land in config.json.
    let span = cx.loc.value(&n.ptr);
    let own = cx
        .text
        .get(span.clone())
        .filter(|t| t.starts_with('{'))
        .map(str::to_owned);
    let (text, base) = match own {
        Some(t) => (t, Some(span.start)),
        None => (n.v.to_string(), None),
    };
    let file = match parse(&text) {
        Ok(f) => f,
        Err(e) => {
            let at = match base {
                Some(start) => {
                    let o = start + super::offset_of(&text, e.line, e.column);
                    o..o
                }
                None => span,
            };
            let ptr = n.shown().to_owned();
            cx.push_at(
                "launch::oci::seccomp",
                at,
                &ptr,
                format!("the seccomp profile is not valid: {}", e.message),
                "here",
                e.help.unwrap_or_else(|| {
                    "write `linux.seccomp` as the runtime spec says (defaultAction, \
                     architectures, flags, syscalls with names, action, errnoRet and args)"
                        .to_owned()
                }),
            );
            return unconfined;
        }
    };
    let Some(arch) = native() else {
        cx.push(
            "launch::oci::seccomp",
            &n,
            "launch has no seccomp filter for this architecture",
            "launch compiles filters for x86_64 and aarch64",
            "remove `seccomp`, or run the bundle on x86_64 or aarch64",
        );
        return unconfined;
    };
    let names = kept.names();
    let kernel = parse_kernel_version(&cx.host.facts().kernel).unwrap_or((0, 0));
    let conditions = Conditions {
        caps: &names,
        arch: &arch,
        kernel,
    };
    let name = launch.seccomp_profile.as_deref().unwrap_or(PROFILE_NAME);
    let profile = file.resolve(name, &conditions);
    // launch's own default, as `launch export oci` writes it: the default again, which launch
    // builds for the capabilities the container keeps.
    let default = default_profile(&names);
    if launch.seccomp_profile.is_none()
        && profile.default_action == default.default_action
        && profile.rules == default.rules
    {
        return (Seccomp::Default, file.log);
    }
    (Seccomp::Custom(profile), file.log)
}

/// `linux.maskedPaths` or `readonlyPaths`: absent is none, as in runc; the default list (as
/// `launch export oci` writes it for any number of CPUs) is the default.
fn paths(cx: &mut Cx, l: Option<&Node>, key: &str, default: &[Rule]) -> Paths {
    let Some(n) = l.and_then(|l| cx.get(l, key)) else {
        return Paths::List(Vec::new());
    };
    let what = match key {
        "maskedPaths" => "a masked path",
        _ => "a read-only path",
    };
    let mut list: Vec<PathBuf> = Vec::new();
    for item in cx.array(&n).unwrap_or_default() {
        let Some(s) = cx.str(&item) else { continue };
        if let Some(p) = container_path(cx, &item, &s, what) {
            list.push(p);
        }
    }
    match is_default_list(&list, default) {
        true => Paths::Default,
        false => Paths::List(list),
    }
}

/// One device rule, as runc reads it.
struct DeviceRule {
    allow: bool,
    /// `a` (all), `c` or `b`; `a` when absent.
    typ: String,
    /// `None`: any (absent or negative).
    major: Option<i64>,
    minor: Option<i64>,
    /// `rwm` when absent.
    access: String,
}

impl DeviceRule {
    /// The rule of an item, `None` when it is not one (a wrong type, an unknown field).
    fn read(v: &Value) -> Option<DeviceRule> {
        let o = v.as_object()?;
        if o.keys()
            .any(|k| !["allow", "type", "major", "minor", "access"].contains(&k.as_str()))
        {
            return None;
        }
        let num = |k: &str| match o.get(k) {
            None | Some(Value::Null) => Some(None),
            Some(v) => v.as_i64().map(|n| (n >= 0).then_some(n)),
        };
        let text = |k: &str, default: &str| match o.get(k) {
            None | Some(Value::Null) => Some(default.to_owned()),
            Some(t) => t.as_str().map(str::to_owned),
        };
        Some(DeviceRule {
            allow: o.get("allow")?.as_bool()?,
            typ: text("type", "a")?,
            major: num("major")?,
            minor: num("minor")?,
            access: text("access", "rwm")?,
        })
    }
}

/// `linux.resources.devices`, as runc applies it: the bundle's rules in order, then runc's
/// allowed devices (launch's default list without its leading "deny all"). No rules, or rules
/// that leave every device allowed, are no device control at all.
fn device_rules(cx: &mut Cx, l: Option<&Node>) -> Vec<crate::sys::devices::DeviceRule> {
    let Some(r) = l.and_then(|l| member(l, "resources")) else {
        return Vec::new();
    };
    let Some(d) = cx.get(&r, "devices") else {
        return Vec::new();
    };
    cx.take(&d);
    let mut rules = Vec::new();
    for item in cx.array(&d).unwrap_or_default() {
        let parsed = DeviceRule::read(item.v).and_then(|o| {
            let num = |n: Option<i64>| n.map_or("*".to_owned(), |n| n.to_string());
            let text = match o.typ.as_str() {
                "a" => format!("{} a", if o.allow { "allow" } else { "deny" }),
                t => format!(
                    "{} {t} {}:{} {}",
                    if o.allow { "allow" } else { "deny" },
                    num(o.major),
                    num(o.minor),
                    o.access
                ),
            };
            text.parse::<crate::sys::devices::DeviceRule>()
                .map_err(|e| e.message)
                .ok()
        });
        match parsed {
            Some(rule) => rules.push(rule),
            None => cx.push(
                "launch::oci::value",
                &item,
                "not a device rule launch can apply",
                "expected { allow, type: a|c|b, major, minor, access: r|w|m }",
                "write the rule as the runtime-spec does, e.g. { \"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rwm\" }",
            ),
        }
    }
    let mut applied = rules.clone();
    applied.extend(crate::sys::devices::DEFAULT.iter().skip(1).copied());
    let f = crate::sys::devices::Filter::of(&applied);
    if f.default_allow && f.exceptions.is_empty() {
        return Vec::new();
    }
    // The bundle's own rules when runc's appended list changes nothing (a bundle launch
    // exported holds the default list already): the same Spec back.
    match crate::sys::devices::Filter::of(&rules) == f {
        true => rules,
        false => applied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::caps::Capability;
    use serde_json::json;

    /// runc's rules: the bundle's in order, then its allowed devices; no rules, or none that
    /// deny, are no device control.
    #[test]
    fn device_rules_as_runc_applies_them() {
        use crate::sys::devices::{Access, DEFAULT, DeviceKind, Filter};
        let host = crate::host::FakeHost::hybrid();
        let read = |v: Value| {
            let doc = json!({"linux": {"resources": {"devices": v}}});
            let text = doc.to_string();
            let loc = crate::oci::import::locate::Locator::new(&text);
            let mut cx = Cx {
                loc: &loc,
                text: &text,
                problems: Vec::new(),
                visited: Default::default(),
                handled: Default::default(),
                known: Default::default(),
                host: &host,
                bundle: "/bundle".into(),
            };
            let root = Node {
                v: &doc,
                ptr: String::new(),
            };
            let rules = device_rules(&mut cx, member(&root, "linux").as_ref());
            (rules, cx.problems.len())
        };
        assert_eq!(read(json!([])), (vec![], 0));
        assert_eq!(read(json!([{"allow": true, "access": "rwm"}])), (vec![], 0));
        // runc spec's: deny all, then runc's own list: launch's default.
        let (rules, n) = read(json!([{"allow": false, "access": "rwm"}]));
        assert_eq!((rules.as_slice(), n), (DEFAULT, 0));
        // A disk allowed on top.
        let (rules, _) = read(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rw"}
        ]));
        let f = Filter::of(&rules);
        assert!(f.allows(DeviceKind::Block, 8, 0, Access::READ));
        assert!(!f.allows(DeviceKind::Block, 8, 1, Access::READ));
        assert!(f.allows(DeviceKind::Char, 1, 3, Access::WRITE));
        // Not a rule.
        assert_eq!(
            read(json!([{"allow": false, "access": "rwm", "note": 1}])).1,
            1
        );
    }

    #[test]
    fn the_sets_each_choice_gives_are_recognised() {
        let raw = CapSet::of(&[Capability::CAP_NET_RAW]);
        let cases = [
            (0, Some(CapChoice::Default)),
            (1000, Some(CapChoice::Default)),
            (0, Some(CapChoice::List(raw))),
            (1000, Some(CapChoice::List(raw))),
            (0, Some(CapChoice::List(CapSet::EMPTY))),
            (1000, None),
            (
                1000,
                Some(CapChoice::Modify {
                    add: raw,
                    drop: CapSet::of(&[Capability::CAP_CHOWN]),
                }),
            ),
        ];
        for (uid, c) in cases {
            let sets = cap_sets(c, uid, CapSet::ALL);
            let got = choose(&sets, uid, None).expect("recognised");
            assert_eq!(cap_sets(got, uid, CapSet::ALL), sets, "{uid} {c:?}");
            // With the annotation, the very choice.
            assert_eq!(choose(&sets, uid, Some(c)), Some(c));
        }
        // Root unconfined is every capability, as a list.
        let sets = cap_sets(None, 0, CapSet::ALL);
        assert_eq!(
            choose(&sets, 0, None),
            Some(Some(CapChoice::List(CapSet::ALL)))
        );
        // An annotation the sets contradict is not taken.
        let sets = cap_sets(Some(CapChoice::List(raw)), 0, CapSet::ALL);
        assert_eq!(
            choose(&sets, 0, Some(Some(CapChoice::Default))),
            Some(Some(CapChoice::List(raw)))
        );
        // Root with inheritable capabilities: none.
        let odd = CapSets {
            inheritable: raw,
            ..sets
        };
        assert_eq!(choose(&odd, 0, None), None);
    }
}
