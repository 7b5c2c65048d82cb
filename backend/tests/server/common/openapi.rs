//! Checks a response against `openapi.yaml`: the route must be documented,
//! and a JSON body must validate against the schema documented for its
//! status (or the `default` response).

use std::sync::OnceLock;

use reqwest::Method;
use serde_json::{Value, json};

fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_norway::from_str(kube_dc_backend::OPENAPI).expect("openapi.yaml parses")
    })
}

fn template_matches(tpl: &str, path: &str) -> bool {
    let t: Vec<&str> = tpl.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}') && !b.is_empty()) || a == b)
}

fn resolve(v: &Value) -> &Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc()
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("openapi: dangling $ref {r}")),
        None => v,
    }
}

pub fn check(method: &Method, path_and_query: &str, status: u16, ctype: &str, body: &Value) {
    let path = path_and_query.split('?').next().unwrap_or("");
    let paths = doc()["paths"].as_object().expect("paths");
    // A literal segment beats a parameter: try the most literal templates first.
    let mut candidates: Vec<&String> = paths.keys().filter(|t| template_matches(t, path)).collect();
    candidates.sort_by_key(|t| t.matches('{').count());
    let op = candidates
        .first()
        .and_then(|t| paths[*t].get(method.as_str().to_lowercase()));
    let Some(op) = op else {
        assert!(
            status == 404 || status == 405,
            "openapi: {method} {path} answered {status} but is not documented"
        );
        validate(
            &json!({"$ref": "#/components/schemas/Error"}),
            body,
            method,
            path,
            status,
        );
        return;
    };
    let responses = &op["responses"];
    let resp = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| panic!("openapi: {method} {path}: status {status} not documented"));
    let resp = resolve(resp);
    let content = resp["content"].as_object().expect("content");
    let media = content
        .keys()
        .find(|m| ctype.starts_with(m.as_str()))
        .unwrap_or_else(|| {
            panic!("openapi: {method} {path} {status}: content type {ctype:?} not documented")
        });
    if media == "application/json" {
        validate(&content[media]["schema"], body, method, path, status);
    }
}

fn validate(schema: &Value, body: &Value, method: &Method, path: &str, status: u16) {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc()["components"],
        "allOf": [schema],
    });
    let v = jsonschema::validator_for(&root).expect("schema compiles");
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "openapi: {method} {path} {status} does not conform:\n  {}\nbody: {body}",
        errors.join("\n  ")
    );
}
