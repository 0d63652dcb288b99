//! `[process]` `user`, `group` and `groups`: numbers, or names looked up in the root filesystem's
//! `/etc/passwd` and `/etc/group` (as `docker run --user NAME` and `systemd-nspawn --user` do),
//! at validation, so the plan holds the numbers it will switch to and a name that is not there is
//! a diagnostic pointing at the manifest, not a failure in the container.

use super::Cx;
use crate::diag::Problem;
use crate::host::RootRef;
use crate::manifest::{IdSpec, Process, Sp};
use crate::spec::{Root, RootSource};

/// The ids the process runs with.
pub(crate) struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// The user's name, when the manifest gave one.
    pub user_name: Option<String>,
    /// The user's home from /etc/passwd, when the manifest named the user.
    pub home: Option<String>,
}

/// One /etc/passwd line.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One /etc/group line.
struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The root's account files, read once, if any name needs them.
struct Db {
    /// Where they came from, for messages.
    source: Source,
    /// `None`: the root has no such file. `Err`: it could not be read.
    passwd: Result<Option<Vec<User>>, String>,
    group: Result<Option<Vec<Group>>, String>,
}

enum Source {
    Dir(std::path::PathBuf),
    Archive(std::path::PathBuf),
    Host,
    Image(String),
}

fn text(b: &[u8]) -> impl Iterator<Item = Vec<&str>> {
    std::str::from_utf8(b)
        .unwrap_or("")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('+') && !l.starts_with('-'))
        .map(|l| l.split(':').collect())
}

fn parse_passwd(b: &[u8]) -> Vec<User> {
    text(b)
        .filter_map(|f| {
            Some(User {
                name: (*f.first()?).to_owned(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map_or(String::new(), |h| (*h).to_owned()),
            })
        })
        .collect()
}

fn parse_group(b: &[u8]) -> Vec<Group> {
    text(b)
        .filter_map(|f| {
            Some(Group {
                name: (*f.first()?).to_owned(),
                gid: f.get(2)?.parse().ok()?,
                members: f.get(3).map_or(vec![], |m| {
                    m.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect()
                }),
            })
        })
        .collect()
}

impl Db {
    fn load(cx: &Cx, root: &Root) -> Db {
        let (root_ref, source) = match &root.source {
            RootSource::Path { path } => (RootRef::Dir(path), Source::Dir(path.clone())),
            RootSource::Tar {
                archive,
                compression,
                ..
            } => (
                RootRef::Archive(archive, *compression),
                Source::Archive(archive.clone()),
            ),
            RootSource::Host => (RootRef::Host, Source::Host),
            RootSource::Image { .. } => (RootRef::Host, Source::Image(String::new())),
        };
        let layers: Vec<_> = match root.source.store_layers() {
            Some((store, layers)) => layers
                .iter()
                .rev()
                .map(|d| crate::lower::layer_root(store, d))
                .collect(),
            None => Vec::new(),
        };
        let (root_ref, source) = match &root.source {
            RootSource::Image { name, .. } => {
                (RootRef::Layers(&layers), Source::Image(name.clone()))
            }
            RootSource::Tar {
                stored: Some(_), ..
            } => (RootRef::Layers(&layers), source),
            RootSource::Path { .. } | RootSource::Tar { .. } | RootSource::Host => {
                (root_ref, source)
            }
        };
        let files = cx.host.root_files(root_ref, &["etc/passwd", "etc/group"]);
        let (passwd, group) = match files {
            Ok(f) => (
                Ok(f.first().cloned().flatten().map(|b| parse_passwd(&b))),
                Ok(f.get(1).cloned().flatten().map(|b| parse_group(&b))),
            ),
            Err(e) => (Err(e.clone()), Err(e)),
        };
        Db {
            source,
            passwd,
            group,
        }
    }

    /// `/srv/root/etc/passwd`, `/etc/passwd in x.tar`, `/etc/passwd (the host's)`.
    fn file(&self, name: &str) -> String {
        match &self.source {
            Source::Dir(d) => format!("{}/etc/{name}", d.display()),
            Source::Archive(a) => format!("/etc/{name} in {}", a.display()),
            Source::Host => format!("/etc/{name} (the host's)"),
            Source::Image(i) => format!("/etc/{name} in the image {i}"),
        }
    }
}

/// Resolve the process's ids; names are looked up in `root` (read only if a name is used).
pub(crate) fn resolve(cx: &mut Cx, p: &Process, root: &Root) -> Ids {
    let named = |v: Option<&Sp<IdSpec>>| v.is_some_and(|v| matches!(v.get(), IdSpec::Name(_)));
    let any_name = named(p.user.as_ref())
        || named(p.group.as_ref())
        || p.groups
            .as_ref()
            .is_some_and(|g| g.iter().any(|v| named(Some(v))));
    let db = any_name.then(|| Db::load(cx, root));

    let mut ids = Ids {
        uid: 0,
        gid: 0,
        groups: vec![],
        user_name: None,
        home: None,
    };
    let mut primary = None;
    if let Some(v) = &p.user {
        match v.get() {
            IdSpec::Id(n) => ids.uid = number(cx, v, *n, "user id"),
            IdSpec::Name(name) => {
                if let Some(u) = lookup_user(cx, db.as_ref(), v, name) {
                    ids.uid = u.uid;
                    primary = Some(u.gid);
                    ids.home = Some(u.home.clone()).filter(|h| !h.is_empty());
                    ids.user_name = Some(name.clone());
                }
            }
        }
    }
    ids.gid = match &p.group {
        Some(v) => group_id(cx, db.as_ref(), v),
        None => primary.unwrap_or(0),
    };
    ids.groups = match &p.groups {
        Some(list) => list.iter().map(|v| group_id(cx, db.as_ref(), v)).collect(),
        // A named user gets the groups that list it, as login does (initgroups).
        None => match (&ids.user_name, db.as_ref().map(|d| &d.group)) {
            (Some(user), Some(Ok(Some(groups)))) => {
                let mut gids: Vec<u32> = groups
                    .iter()
                    .filter(|g| g.gid != ids.gid && g.members.iter().any(|m| m == user))
                    .map(|g| g.gid)
                    .collect();
                gids.sort_unstable();
                gids.dedup();
                gids
            }
            _ => vec![],
        },
    };
    ids
}

fn number(cx: &mut Cx, v: &Sp<IdSpec>, n: i64, what: &str) -> u32 {
    match u32::try_from(n) {
        Ok(id) if id != u32::MAX => id,
        _ => {
            cx.push(
                Problem::new(
                    "launch::process::id",
                    v.span(),
                    format!("{n} is not a valid {what}"),
                )
                .label("must be from 0 to 4294967294")
                .help(format!("give a {what} from 0 to 4294967294, or a name")),
            );
            0
        }
    }
}

fn group_id(cx: &mut Cx, db: Option<&Db>, v: &Sp<IdSpec>) -> u32 {
    match v.get() {
        IdSpec::Id(n) => number(cx, v, *n, "group id"),
        IdSpec::Name(name) => lookup_group(cx, db, v, name).unwrap_or(0),
    }
}

/// The file's entries, or a problem saying why there are none to look `name` up in.
fn entries<'a, T>(
    cx: &mut Cx,
    db: Option<&'a Db>,
    file: Option<&'a Result<Option<Vec<T>>, String>>,
    v: &Sp<IdSpec>,
    what: (&str, &str),
) -> Option<&'a Vec<T>> {
    let (kind, file_name) = what;
    let (db, file) = (db?, file?);
    let path = db.file(file_name);
    let why = match file {
        Ok(Some(list)) => return Some(list),
        Ok(None) => format!("the root filesystem has no {path}"),
        Err(e) => format!("cannot read {path}: {e}"),
    };
    cx.push(
        Problem::new(
            "launch::process::lookup",
            v.span(),
            format!("cannot look up the {kind} name: {why}"),
        )
        .label("a name needs the root's /etc/".to_owned() + file_name)
        .help(format!("give a numeric {kind} id instead")),
    );
    None
}

fn lookup_user<'a>(
    cx: &mut Cx,
    db: Option<&'a Db>,
    v: &Sp<IdSpec>,
    name: &str,
) -> Option<&'a User> {
    let users = entries(cx, db, db.map(|d| &d.passwd), v, ("user", "passwd"))?;
    let found = users.iter().find(|u| u.name == name);
    if found.is_none() {
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        unknown(cx, v, "user", name, &db?.file("passwd"), &names);
    }
    found
}

fn lookup_group(cx: &mut Cx, db: Option<&Db>, v: &Sp<IdSpec>, name: &str) -> Option<u32> {
    let groups = entries(cx, db, db.map(|d| &d.group), v, ("group", "group"))?;
    let found = groups.iter().find(|g| g.name == name).map(|g| g.gid);
    if found.is_none() {
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        unknown(cx, v, "group", name, &db?.file("group"), &names);
    }
    found
}

fn unknown(cx: &mut Cx, v: &Sp<IdSpec>, kind: &str, name: &str, path: &str, names: &[&str]) {
    let close = names
        .iter()
        .filter(|n| strsim::jaro_winkler(n, name) > 0.8)
        .max_by(|a, b| strsim::jaro_winkler(a, name).total_cmp(&strsim::jaro_winkler(b, name)));
    let help = match close {
        Some(c) => format!("did you mean `{c}`? Or give a numeric {kind} id"),
        None => {
            let shown: Vec<&str> = names.iter().take(8).copied().collect();
            let more = if names.len() > shown.len() {
                ", …"
            } else {
                ""
            };
            format!(
                "{kind}s there: {}{more}; or give a numeric {kind} id",
                shown.join(", ")
            )
        }
    };
    cx.push(
        Problem::new(
            "launch::process::unknown_name",
            v.span(),
            format!("no {kind} `{name}` in {path}"),
        )
        .label(format!(
            "not in the root filesystem's /etc/{}",
            if kind == "user" { "passwd" } else { "group" }
        ))
        .help(help),
    );
}
