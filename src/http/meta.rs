//! Routes about the service itself: health, the OpenAPI document and its rendering.

use super::{ApiResult, Ctx, Reply};

pub const OPENAPI_JSON: &str = include_str!("openapi.json");
const DOCS_HTML: &str = include_str!("docs.html");

pub async fn healthz(_ctx: &Ctx) -> ApiResult {
    Reply::ok(&serde_json::json!({ "status": "ok" }))
}

pub async fn openapi(_ctx: &Ctx) -> ApiResult {
    Ok(Reply::text("application/json", OPENAPI_JSON).with_header("Cache-Control", "public, max-age=300"))
}

pub async fn docs(_ctx: &Ctx) -> ApiResult {
    Ok(Reply::text("text/html; charset=utf-8", DOCS_HTML).with_header("Cache-Control", "public, max-age=300"))
}

#[cfg(test)]
mod tests {
    use super::OPENAPI_JSON;
    use crate::http::routes::{Access, ROUTES};
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON")
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                ops.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
        ops
    }

    #[test]
    fn the_document_names_exactly_the_routed_operations() {
        let documented: BTreeSet<(String, String)> =
            operations(&doc()).into_iter().map(|(m, p, _)| (m, p)).collect();
        let routed: BTreeSet<(String, String)> =
            ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(undocumented.is_empty(), "routed but not in openapi.json: {undocumented:?}");
        assert!(unrouted.is_empty(), "in openapi.json but not routed: {unrouted:?}");
    }

    #[test]
    fn security_and_error_responses_match_each_routes_access() {
        let doc = doc();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_string().to_lowercase()];
            let responses = op["responses"].as_object().expect("responses");
            let has = |status: &str| responses.contains_key(status);
            let name = format!("{} {}", route.method, route.path);
            assert!(responses.keys().any(|s| s.starts_with('2') || s.starts_with('3')), "{name}: no success response");
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            match route.access {
                Access::Public => assert!(!secured, "{name}: public route documented as secured"),
                Access::User | Access::Admin => {
                    assert!(secured, "{name}: authenticated route documented without security");
                    assert!(has("401") && has("403") && has("500"), "{name}: missing 401/403/500");
                }
            }
            if route.access != Access::Public || route.throttled {
                assert!(has("429"), "{name}: throttled but 429 undocumented");
            }
            if op.get("requestBody").is_some() {
                assert!(has("400") && has("413"), "{name}: body errors undocumented");
                if route.access != Access::Public {
                    assert!(has("415") && has("422"), "{name}: JSON body errors undocumented");
                }
            }
            let path_params: Vec<&str> =
                route.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            for param in path_params {
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == param && p["in"] == "path"));
                assert!(declared, "{name}: path parameter {param} undocumented");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(node: &Value, refs: &mut Vec<String>) {
            match node {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        refs.push(r.clone());
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let doc = doc();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
