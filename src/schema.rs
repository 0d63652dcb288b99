//! The manifest's JSON Schema (draft-07, which Taplo and Even Better TOML read).
//!
//! `launch schema` prints the committed schema/launch.schema.json, embedded at build time. It is
//! generated from the manifest types themselves by [`generate`], which only exists with the
//! `schema-gen` feature: the generator (schemars and a `JsonSchema` impl per type) would be
//! ~150 KiB of code in every launcher's address space for one rarely used command. The test
//! `schema::committed_schema_is_current` (built with the feature) fails when the file is stale
//! and `just schema` rewrites it.

crate::cold_text! {
    /// The schema as pretty JSON, exactly as committed in schema/launch.schema.json.
    static SCHEMA = "../schema/launch.schema.json";
}

/// The schema as pretty JSON, exactly as committed in schema/launch.schema.json.
pub fn json_schema() -> &'static str {
    std::str::from_utf8(&SCHEMA).unwrap_or_default()
}

#[cfg(feature = "schema-gen")]
use schemars::Schema;
#[cfg(feature = "schema-gen")]
use schemars::transform::transform_subschemas;
#[cfg(feature = "schema-gen")]
use serde_json::Value;

/// Generate the schema from the manifest types, as pretty JSON.
#[cfg(feature = "schema-gen")]
pub fn generate() -> String {
    use crate::manifest::Manifest;
    let settings = schemars::generate::SchemaSettings::draft07().with_transform(drop_null);
    let schema = settings.into_generator().into_root_schema_for::<Manifest>();
    // A schema is plain JSON data: serialization cannot fail.
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// TOML has no null: an absent key is how a manifest says "default". schemars describes every
/// `Option` as nullable; take that back out so editors do not suggest `null`.
#[cfg(feature = "schema-gen")]
fn drop_null(schema: &mut Schema) {
    if let Some(obj) = schema.as_object_mut() {
        if let Some(Value::Array(types)) = obj.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types.remove(0);
                obj.insert("type".into(), only);
            }
        }
        if obj.get("default") == Some(&Value::Null) {
            obj.remove("default");
        }
        if let Some(Value::Array(any)) = obj.get_mut("anyOf") {
            any.retain(|s| s.get("type").is_none_or(|t| t != "null"));
            if any.len() == 1 {
                let only = any.remove(0);
                obj.remove("anyOf");
                if let Value::Object(inner) = only {
                    for (k, v) in inner {
                        obj.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    transform_subschemas(&mut drop_null, schema);
}
