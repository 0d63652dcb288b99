//! The manifest's JSON Schema, generated from the manifest types (draft-07, which Taplo and
//! Even Better TOML read).

use schemars::Schema;
use schemars::transform::transform_subschemas;
use serde_json::Value;

use crate::manifest::Manifest;

/// The schema as pretty JSON, exactly as committed in schema/launch.schema.json.
pub fn json_schema() -> String {
    let settings = schemars::generate::SchemaSettings::draft07().with_transform(drop_null);
    let schema = settings.into_generator().into_root_schema_for::<Manifest>();
    // A schema is plain JSON data: serialization cannot fail.
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// TOML has no null: an absent key is how a manifest says "default". schemars describes every
/// `Option` as nullable; take that back out so editors do not suggest `null`.
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
