//! The committed JSON Schema is current, and every example validates against it.

use crate::common::{manifests, repo};

/// `launch schema` prints the committed file; it must be what the manifest types generate.
/// `UPDATE_SCHEMA=1` rewrites it instead (`just schema`).
#[test]
fn committed_schema_is_current() {
    let path = repo().join("schema/launch.schema.json");
    let generated = launch::schema::generate();
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/launch.schema.json is stale: run `just schema`"
    );
    assert_eq!(
        launch::schema::json_schema(),
        committed,
        "rebuild: the binary embeds the file"
    );
}

#[test]
fn examples_declare_and_satisfy_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(launch::schema::json_schema()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let validator = jsonschema::validator_for(&schema).unwrap();
    for path in manifests("examples/manifests") {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#:schema ../../schema/launch.schema.json\n"),
            "{} does not start with the #:schema line",
            path.display()
        );
        let value: serde_json::Value = toml::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

#[test]
fn schema_rejects_unknown_keys() {
    let schema: serde_json::Value = serde_json::from_str(launch::schema::json_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let bad: serde_json::Value = toml::from_str(
        "name = \"x\"\nhostnme = \"y\"\n[rootfs]\nhost = true\n[process]\ncommand = [\"/bin/true\"]\n",
    )
    .unwrap();
    assert!(!validator.is_valid(&bad));
}
