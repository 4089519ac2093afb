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
    // The page's own inline script and style, and a fetch of /openapi.json: nothing else loads,
    // and no other site may frame it.
    const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
                          frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
    Ok(Reply::text("text/html; charset=utf-8", DOCS_HTML)
        .with_header("Cache-Control", "public, max-age=300")
        .with_header("Content-Security-Policy", POLICY))
}

#[cfg(test)]
mod tests {
    use super::OPENAPI_JSON;
    use serde_json::Value;

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
        let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON");
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
