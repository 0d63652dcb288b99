//! Every unknown key of a manifest, found in one run.
//!
//! serde stops at the first key a `deny_unknown_fields` struct rejects. To report them all, the
//! parsed document is walked table by table, and the keys each table takes are asked of serde
//! itself: [`shape_at`] deserializes a [`Manifest`] from a probe that steers down to the table's
//! path and offers there one key no struct has. The derived code answers with
//! `unknown_field(key, FIELDS)`, the very list it checks keys against, so there is no second list
//! to drift from the types, and hand-written `Deserialize` impls (`UserNs`, `Rlimit`) are followed
//! like derived ones.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Manifest;

/// One step from a value to a value inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// The value of a key in a table.
    Key(String),
    /// An element of an array.
    Elem,
}

/// What the manifest's types accept in the table at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A struct: these keys only.
    Closed(&'static [&'static str]),
    /// A map with free keys (`process.env`, `limits.rlimits`): its values may still be structs.
    Open,
    /// Not a table there (serde reports the wrong type itself), or a type the probe cannot follow.
    Unknown,
}

/// A key that its table does not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnknownKey {
    /// The key as written.
    pub key: String,
    /// The key's span in the manifest.
    pub span: Range<usize>,
    /// The keys that table takes.
    pub allowed: &'static [&'static str],
    /// The span of that table, as serde's errors about the table give it.
    pub table: Range<usize>,
}

/// Remove every unknown key from `doc` and return them, in document order. What is left is what
/// serde would read if the keys had not been written, so its next error is a different one.
pub(super) fn take_unknown_keys(doc: &mut Spanned<DeTable<'_>>) -> Vec<UnknownKey> {
    let mut out = Vec::new();
    let span = doc.span();
    walk_table(doc.get_mut(), span, &mut Vec::new(), &mut out);
    out.sort_by_key(|k| (k.span.start, k.span.end));
    out
}

fn walk_table(
    table: &mut DeTable<'_>,
    span: Range<usize>,
    path: &mut Vec<Seg>,
    out: &mut Vec<UnknownKey>,
) {
    match shape_at(path) {
        // serde reports this value's type itself; without a shape nothing below can be judged.
        Shape::Unknown => return,
        Shape::Open => {}
        Shape::Closed(allowed) => {
            let before = out.len();
            for (k, _) in table.iter() {
                if !allowed.contains(&k.get_ref().as_ref()) {
                    out.push(UnknownKey {
                        key: k.get_ref().to_string(),
                        span: k.span(),
                        allowed,
                        table: span.clone(),
                    });
                }
            }
            let unknown = &out[before..];
            if !unknown.is_empty() {
                *table = std::mem::take(table)
                    .into_iter()
                    .filter(|(k, _)| !unknown.iter().any(|u| u.span == k.span()))
                    .collect();
            }
        }
    }
    for (k, v) in table.iter_mut() {
        path.push(Seg::Key(k.get_ref().to_string()));
        walk_value(v, path, out);
        path.pop();
    }
}

fn walk_value(value: &mut Spanned<DeValue<'_>>, path: &mut Vec<Seg>, out: &mut Vec<UnknownKey>) {
    let span = value.span();
    match value.get_mut() {
        DeValue::Table(t) => walk_table(t, span, path, out),
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                path.push(Seg::Elem);
                walk_value(item, path, out);
                path.pop();
            }
        }
        DeValue::String(_)
        | DeValue::Integer(_)
        | DeValue::Float(_)
        | DeValue::Boolean(_)
        | DeValue::Datetime(_) => {}
    }
}

/// Ask serde what the table at `path` takes.
fn shape_at(path: &[Seg]) -> Shape {
    match Manifest::deserialize(Probe { path }) {
        Err(ProbeError::Found(shape)) => shape,
        // The path left the types (a scalar where the document has a table): serde's own pass
        // reports that. Success cannot happen, the probe always stops at the target.
        Err(ProbeError::UnknownField(_) | ProbeError::Other) | Ok(_) => Shape::Unknown,
    }
}

/// A key no manifest type takes: offered to the target table to make it list its keys.
const PROBE_KEY: &str = "\u{0}launch-probe";

/// The probe's outcome travels up through serde's `?`s as an error.
#[derive(Debug)]
enum ProbeError {
    /// The target table's shape: the answer.
    Found(Shape),
    /// A struct rejected a key and listed the ones it takes (serde's `unknown_field`).
    UnknownField(&'static [&'static str]),
    /// Any other refusal: the type at some step is not what the document has.
    Other,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("manifest shape probe")
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(_: T) -> Self {
        ProbeError::Other
    }
    fn unknown_field(_: &str, expected: &'static [&'static str]) -> Self {
        ProbeError::UnknownField(expected)
    }
}

/// A deserializer that is a table or an array along `path` (whatever the type asks for is
/// steered down the next step) and, at the end of it, the target table.
#[derive(Debug, Clone, Copy)]
struct Probe<'p> {
    path: &'p [Seg],
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        match self.path.split_first() {
            None => visitor.visit_map(Target { offered: false }),
            Some((Seg::Key(k), rest)) => visitor.visit_map(Step {
                key: Some(k),
                value: Some(Probe { path: rest }),
            }),
            Some((Seg::Elem, rest)) => visitor.visit_seq(Elem {
                value: Some(Probe { path: rest }),
            }),
        }
    }

    /// Present keys are `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_newtype_struct(self)
    }

    /// `toml::Spanned` (our `Sp`) asks for a struct of its own: give it a span and go on with
    /// the value in it.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        if serde_spanned::de::is_spanned(name) {
            visitor.visit_map(serde_spanned::de::SpannedDeserializer::new(self, 0..0))
        } else {
            self.deserialize_any(visitor)
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

impl<'de, 'p> IntoDeserializer<'de, ProbeError> for Probe<'p> {
    type Deserializer = Probe<'p>;
    fn into_deserializer(self) -> Probe<'p> {
        self
    }
}

/// A key: a plain string, or a spanned one (`Sp<String>` keys of `env` and `rlimits`).
#[derive(Debug, Clone, Copy)]
struct Key<'k>(&'k str);

impl<'de> de::Deserializer<'de> for Key<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        if serde_spanned::de::is_spanned(name) {
            visitor.visit_map(serde_spanned::de::SpannedDeserializer::new(self, 0..0))
        } else {
            self.deserialize_any(visitor)
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

impl<'de, 'k> IntoDeserializer<'de, ProbeError> for Key<'k> {
    type Deserializer = Key<'k>;
    fn into_deserializer(self) -> Key<'k> {
        self
    }
}

/// A table on the way: one key, whose value is the rest of the path.
struct Step<'p> {
    key: Option<&'p str>,
    value: Option<Probe<'p>>,
}

impl<'de> MapAccess<'de> for Step<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        self.key
            .take()
            .map(|k| seed.deserialize(Key(k)))
            .transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        match self.value.take() {
            Some(p) => seed.deserialize(p),
            None => Err(ProbeError::Other),
        }
    }
}

/// An array on the way: one element, which is the rest of the path.
struct Elem<'p> {
    value: Option<Probe<'p>>,
}

impl<'de> SeqAccess<'de> for Elem<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        self.value.take().map(|p| seed.deserialize(p)).transpose()
    }
}

/// The target table: it holds [`PROBE_KEY`], and how the type takes that key is the answer.
struct Target {
    offered: bool,
}

impl<'de> MapAccess<'de> for Target {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        if self.offered {
            return Ok(None);
        }
        self.offered = true;
        match seed.deserialize(Key(PROBE_KEY)) {
            Ok(k) => Ok(Some(k)),
            Err(ProbeError::UnknownField(allowed)) => {
                Err(ProbeError::Found(Shape::Closed(allowed)))
            }
            Err(e) => Err(e),
        }
    }

    /// The type took a key no struct has: it is a map with free keys.
    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        _seed: V,
    ) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Found(Shape::Open))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    fn closed(path: &[Seg]) -> Vec<&'static str> {
        match shape_at(path) {
            Shape::Closed(keys) => keys.to_vec(),
            other => panic!("{path:?}: {other:?}"),
        }
    }

    #[test]
    fn shapes_come_from_the_types() {
        assert!(closed(&[]).contains(&"hostname"));
        assert!(closed(&[]).contains(&"$schema"));
        assert!(closed(&[key("process")]).contains(&"command"));
        assert!(closed(&[key("mounts"), Seg::Elem]).contains(&"type"));
        assert!(closed(&[key("limits"), key("io"), Seg::Elem]).contains(&"read_iops"));
        // A hand-written Deserialize (UserNs: a bool or a table) is followed like a derived one.
        assert_eq!(
            closed(&[key("namespaces"), key("user")]),
            ["map_root", "uid_map", "gid_map"]
        );
        assert_eq!(
            closed(&[key("namespaces"), key("user"), key("uid_map"), Seg::Elem]),
            ["inside", "outside", "count"]
        );
        assert_eq!(
            closed(&[key("limits"), key("rlimits"), key("nofile")]),
            ["soft", "hard"]
        );
        assert_eq!(shape_at(&[key("process"), key("env")]), Shape::Open);
        assert_eq!(shape_at(&[key("limits"), key("rlimits")]), Shape::Open);
        // Scalars and arrays where the document has a table: serde says so itself.
        assert_eq!(shape_at(&[key("name")]), Shape::Unknown);
        assert_eq!(shape_at(&[key("mounts")]), Shape::Unknown);
        assert_eq!(shape_at(&[key("limits"), key("cpu")]), Shape::Unknown);
        assert_eq!(shape_at(&[key("process"), key("user")]), Shape::Unknown);
    }

    fn unknown(text: &str) -> Vec<(String, &str)> {
        let mut doc = DeTable::parse(text).unwrap();
        take_unknown_keys(&mut doc)
            .into_iter()
            .map(|u| (u.key, &text[u.span]))
            .collect()
    }

    #[test]
    fn every_unknown_key_everywhere() {
        let text = r#"
hostnme = "x"
limits.memroy = "1G"
[process]
comand = ["/bin/true"]
env = { ANY_NAME = "ok" }
[namespaces]
user = { map_rot = true, uid_map = [{ inside = 0, outside = 1, count = 1, cont = 2 }] }
[[mounts]]
type = "proc"
[[mounts]]
typ = "tmpfs"
[limits.rlimits]
nofile = { soft = 1, hrad = 2 }
"#;
        assert_eq!(
            unknown(text),
            [
                ("hostnme".into(), "hostnme"),
                ("memroy".into(), "memroy"),
                ("comand".into(), "comand"),
                ("map_rot".into(), "map_rot"),
                ("cont".into(), "cont"),
                ("typ".into(), "typ"),
                ("hrad".into(), "hrad"),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_taken_out() {
        let mut doc = DeTable::parse("name = \"a\"\nnmae = \"b\"\n").unwrap();
        take_unknown_keys(&mut doc);
        let keys: Vec<String> = doc
            .get_ref()
            .iter()
            .map(|(k, _)| k.get_ref().to_string())
            .collect();
        assert_eq!(keys, ["name"]);
    }
}
