//! The OpenAPI document (`/api/openapi.json`) and its rendered page
//! (`/api/docs`), through real HTTP.

mod common;

use quota_alert::api::openapi::ApiDoc;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;
use utoipa::OpenApi;

/// Every route `quota_alert::api::router` registers, with its methods, as the
/// document must name it (`{*path}` is OpenAPI's `{path}`). Kept by hand on
/// purpose: a route added to the router without documentation fails here.
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/admin/workspaces", &["get", "post"]),
    ("/api/admin/audit", &["get"]),
    ("/api/admin/workspaces/{id}/rotate-key", &["post"]),
    ("/api/admin/workspaces/{id}/revoke", &["post"]),
    ("/api/admin/sessions", &["get", "delete"]),
    ("/api/admin/sessions/{handle}", &["delete"]),
    ("/api/quota/status", &["get"]),
    ("/api/quota/check", &["get"]),
    ("/api/quota/notifications", &["get"]),
    ("/api/quota/usage", &["get"]),
    ("/api/quota/usage.csv", &["get"]),
    ("/api/admin/prices", &["get"]),
    ("/api/quota/record", &["post"]),
    ("/api/quota/reserve", &["post"]),
    ("/api/admin/workspaces/{id}", &["get", "patch"]),
    ("/api/quota/record/batch", &["post"]),
    ("/api/quota/reset", &["post"]),
    ("/api/quota/ws", &["get"]),
    ("/api/session", &["post", "delete"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
    ("/api/openapi.json", &["get"]),
    ("/api/docs", &["get"]),
    ("/v1/{path}", &["get", "post", "put", "patch", "delete"]),
];

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn fetch_document(server: &common::Server) -> (String, Value) {
    let response = server
        .http
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type}"
    );
    let text = response.text().await.expect("body");
    let json: Value = serde_json::from_str(&text).expect("the document is JSON");
    (text, json)
}

#[tokio::test]
async fn the_document_is_openapi_3_and_names_every_route_with_its_methods() {
    let server = common::start().await;
    let (_, doc) = fetch_document(&server).await;

    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "openapi {version}");
    assert_eq!(doc["info"]["title"], "quota-alert");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));

    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in ROUTES {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not documented"));
        let documented: BTreeSet<&str> = HTTP_METHODS
            .iter()
            .copied()
            .filter(|m| item.get(*m).is_some())
            .collect();
        let expected: BTreeSet<&str> = methods.iter().copied().collect();
        assert_eq!(documented, expected, "methods of {path}");
    }
    let routes: BTreeSet<&str> = ROUTES.iter().map(|(path, _)| *path).collect();
    let extra: Vec<&String> = paths
        .keys()
        .filter(|p| !routes.contains(p.as_str()))
        .collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");

    // Every operation is described, answers something, and each answer says
    // what it means; operation ids are unique.
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        for method in HTTP_METHODS {
            let Some(operation) = item.get(*method) else {
                continue;
            };
            let summary = operation["summary"].as_str().unwrap_or_default();
            assert!(!summary.is_empty(), "{method} {path} has no summary");
            let tags = operation["tags"].as_array().map(Vec::len).unwrap_or(0);
            assert!(tags > 0, "{method} {path} has no tag");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, response) in responses {
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    !description.is_empty(),
                    "{method} {path} {status} has no description"
                );
            }
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(
                operation_ids.insert(id.to_string()),
                "operationId {id} is used twice"
            );
        }
    }
}

#[tokio::test]
async fn errors_security_and_request_bodies_are_described() {
    let server = common::start().await;
    let (_, doc) = fetch_document(&server).await;
    let schemas = &doc["components"]["schemas"];

    // The API's error shape: {"error": {"code", "message"}}.
    let api_error = &schemas["ErrorBody"];
    assert_eq!(api_error["required"], serde_json::json!(["error"]));
    let body = resolve(&doc, &api_error["properties"]["error"]);
    let mut body_required = field_names(&body["required"]);
    body_required.sort();
    assert_eq!(body_required, ["code", "message"]);

    // The record body: only `success` is required; the optional fields are there.
    let record = &schemas["RecordRequest"];
    assert_eq!(field_names(&record["required"]), ["success"]);
    for field in [
        "success",
        "tokens_used",
        "error",
        "retry_after_s",
        "headers",
        "http_status",
        "error_body",
    ] {
        assert!(
            record["properties"].get(field).is_some(),
            "RecordRequest.{field}"
        );
    }
    let record_body = &doc["paths"]["/api/quota/record"]["post"]["requestBody"];
    assert_eq!(
        record_body["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/RecordRequest"
    );

    // The three ways to authenticate, and who may call what.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["workspace_key"]["type"], "http");
    assert_eq!(schemes["workspace_key"]["scheme"], "bearer");
    assert_eq!(schemes["admin_key"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["type"], "apiKey");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "qa_session");
    let security_of = |path: &str, method: &str| -> BTreeSet<String> {
        doc["paths"][path][method]["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|requirement| requirement.keys().cloned())
            .collect()
    };
    assert_eq!(
        security_of("/api/admin/workspaces", "post"),
        BTreeSet::from(["admin_key".to_string(), "session_cookie".to_string()])
    );
    assert!(security_of("/api/quota/status", "get").contains("workspace_key"));
    assert_eq!(
        security_of("/v1/{path}", "post"),
        BTreeSet::from(["workspace_key".to_string()])
    );
    assert!(security_of("/healthz", "get").is_empty());

    // Unauthorized and rate-limited answers carry the error shape.
    let status_responses = &doc["paths"]["/api/quota/status"]["get"]["responses"];
    for status in ["400", "401", "403", "404", "429"] {
        assert_eq!(
            status_responses[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "GET /api/quota/status {status}"
        );
    }

    // The proxy's local 429 is OpenAI's error shape, with the retry headers.
    let proxy_429 = &doc["paths"]["/v1/{path}"]["post"]["responses"]["429"];
    assert_eq!(
        proxy_429["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/OpenAiError"
    );
    assert!(proxy_429["headers"].get("retry-after").is_some());
    assert!(proxy_429["headers"].get("retry-after-ms").is_some());
    let openai_body = resolve(&doc, &schemas["OpenAiError"]["properties"]["error"]);
    for field in ["message", "type", "param", "code"] {
        assert!(
            openai_body["properties"].get(field).is_some(),
            "OpenAiError.error.{field}"
        );
    }

    // The WebSocket: an upgrade whose frames are WsMessage, all four kinds.
    let ws = &doc["paths"]["/api/quota/ws"]["get"];
    assert_eq!(
        ws["responses"]["101"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/WsMessage"
    );
    let ws_message = serde_json::to_string(&schemas["WsMessage"]).expect("json");
    for kind in ["quota_initial", "quota_update", "ping", "pong"] {
        assert!(
            ws_message.contains(&format!("\"{kind}\"")),
            "WsMessage {kind}"
        );
    }
}

#[tokio::test]
async fn every_reference_resolves_to_a_schema() {
    let server = common::start().await;
    let (_, doc) = fetch_document(&server).await;
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    let mut references = Vec::new();
    collect_refs(&doc, &mut references);
    assert!(
        references.len() > 20,
        "only {} references",
        references.len()
    );
    for reference in &references {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{reference} does not point at a schema"));
        assert!(schemas.contains_key(name), "{reference} does not resolve");
    }
}

#[tokio::test]
async fn the_document_is_deterministic() {
    // Built twice in-process: the same bytes.
    let first = ApiDoc::openapi().to_pretty_json().expect("json");
    let second = ApiDoc::openapi().to_pretty_json().expect("json");
    assert_eq!(first, second);

    // Served twice: the same bytes, and the same document as built here.
    let server = common::start().await;
    let (served, served_json) = fetch_document(&server).await;
    let (again, _) = fetch_document(&server).await;
    assert_eq!(served, again);
    let built: Value = serde_json::from_str(&first).expect("json");
    assert_eq!(served_json, built);
}

#[tokio::test]
async fn the_docs_page_is_html_without_scripts_and_names_every_path() {
    let server = common::start().await;
    let response = server
        .http
        .get(server.url("/api/docs"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/html"),
        "content type {content_type}"
    );
    let page = response.text().await.expect("body");
    assert!(page.starts_with("<!DOCTYPE html>"));
    for (path, _) in ROUTES {
        assert!(page.contains(path), "the page does not name {path}");
    }
    let lower = page.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "the page has a script");
    assert!(!lower.contains("<style"), "the page has a style block");
    assert!(!lower.contains(" style="), "the page has an inline style");
    assert!(page.contains("<link rel=\"stylesheet\" href=\"/pkg/quota-alert.css\">"));
    assert!(page.contains("href=\"/api/openapi.json\""));
    for section in [
        "id=\"authentication\"",
        "id=\"schemas\"",
        "id=\"schema-RecordRequest\"",
        "id=\"auth-session_cookie\"",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    // Field tables, with what is required.
    assert!(page.contains("<code>tokens_used</code>"));
    assert!(page.contains("api-required"));
}

#[test]
fn the_page_escapes_what_the_document_says() {
    let mut doc = ApiDoc::openapi();
    doc.info.description = Some("<script>alert(\"x\")</script> & `<b>code</b>`".into());
    let page = quota_alert::api::docs_page::render(&doc);
    assert!(!page.contains("<script>"), "unescaped description");
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "));
    assert!(page.contains("<code>&lt;b&gt;code&lt;/b&gt;</code>"));
}

/// Follows a `$ref` into `components.schemas`; anything else as it is.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

fn field_names(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn collect_refs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                if key == "$ref" {
                    if let Some(reference) = inner.as_str() {
                        into.push(reference.to_string());
                    }
                } else {
                    collect_refs(inner, into);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, into)),
        _ => {}
    }
}
