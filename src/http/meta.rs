//! Routes about the service itself: health, the OpenAPI document and its rendering.

//!
//! The document and the page are static files (`public/`, the `ASSETS` binding) served through
//! the Worker, so they answer like every route (request id, log line) but stay out of the wasm.

use super::{ApiError, ApiResult, Ctx, Reply};
use worker::{web_sys, Request};

pub async fn healthz(_ctx: &Ctx) -> ApiResult {
    Reply::ok(&serde_json::json!({ "status": "ok" }))
}

pub async fn openapi(ctx: &Ctx) -> ApiResult {
    asset(ctx, "/openapi.json", "application/json").await
}

pub async fn docs(ctx: &Ctx) -> ApiResult {
    asset(ctx, "/docs.html", "text/html; charset=utf-8").await
}

/// A file of `public/`, cacheable for five minutes.
async fn asset(ctx: &Ctx, path: &str, content_type: &'static str) -> ApiResult {
    let request = web_sys::Request::new_with_str(&format!("https://assets.invalid{path}"))
        .map_err(|e| ApiError::internal(format!("asset request {path}: {e:?}")))?;
    let mut response = ctx.env.assets("ASSETS")?.fetch_request(Request::from(request)).await?;
    if response.status_code() != 200 {
        return Err(ApiError::internal(format!("asset {path} answered {}", response.status_code())));
    }
    let body = response.bytes().await?;
    Ok(Reply { status: 200, content_type, body, headers: vec![("Cache-Control", "public, max-age=300".into())] })
}

#[cfg(test)]
mod tests {
    const OPENAPI_JSON: &str = include_str!("../../public/openapi.json");
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
