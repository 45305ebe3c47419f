//! The JSON files ftpswarm writes, checked against the schemas in `schemas/`.
// Each test binary that includes `common` uses only part of it.
#![allow(dead_code)]

use std::path::Path;

/// Fails with every violation when `file` does not follow `schemas/<name>.schema.json`.
pub fn check(file: &Path, name: &str) {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{name}.schema.json"));
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let instance: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not follow {}:\n{}",
        file.display(),
        schema_path.display(),
        errors.join("\n")
    );
}
