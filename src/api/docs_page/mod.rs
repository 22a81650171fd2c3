//! `GET /api/docs`: the OpenAPI document rendered for people.
//!
//! Plain HTML rendered here from the same `utoipa` value that
//! `/api/openapi.json` serves, so the page and the JSON cannot disagree. No
//! script at all and no inline styles (the CSP allows neither): it is styled by
//! the app's stylesheet (`api-*` classes in `style/main.css`). Every piece of
//! text from the document is HTML-escaped; backtick spans become `<code>`.
//!
//! Over 400 lines: the page is one walk over the document (contents,
//! authentication, then every operation with its parameters, body and
//! responses), each step a small function in reading order; the schema
//! tables and the HTML helpers are `schemas.rs` and `html.rs`.

mod html;
mod schemas;

use super::openapi::{document, operations};
use axum::response::Html;
use html::*;
use schemas::*;
use std::sync::OnceLock;
use utoipa::openapi::path::{Operation, Parameter};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::security::{ApiKey, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr, Required, Response};

/// The API reference, for people.
///
/// The same document as `/api/openapi.json`, as a page: authentication, every
/// endpoint by tag, and every schema with its fields.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "docs",
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html; charset=utf-8"),
    ),
)]
pub async fn docs_page() -> Html<&'static str> {
    // The document is fixed at compile time, so the page is too.
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(|| render(document())))
}

/// The whole page for `doc`.
pub fn render(doc: &OpenApi) -> String {
    let title = format!("{} API reference", doc.info.title);
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str(&format!("<title>{}</title>\n", escape(&title)));
    page.push_str("<link rel=\"stylesheet\" href=\"/pkg/quota-alert.css\">\n</head>\n");
    page.push_str("<body>\n<main class=\"api-docs\">\n");

    page.push_str("<header class=\"api-docs-header\">\n");
    page.push_str(&format!(
        "<h1>{} <span class=\"api-version\">version {}</span></h1>\n",
        escape(&title),
        escape(&doc.info.version)
    ));
    if let Some(description) = &doc.info.description {
        page.push_str(&prose(description));
    }
    page.push_str(
        "<p class=\"api-docs-links\"><a href=\"/api/openapi.json\">The OpenAPI document (JSON)</a> \
         <span aria-hidden=\"true\">·</span> <a href=\"/\">Back to quota-alert</a></p>\n",
    );
    page.push_str("</header>\n");

    let groups = group_by_tag(doc);
    page.push_str(&contents(&groups));
    page.push_str(&authentication(doc));
    for group in &groups {
        page.push_str(&tag_section(group));
    }
    page.push_str(&schemas_section(doc));
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

/// The operations under one tag, in document order.
struct TagGroup<'a> {
    name: String,
    description: Option<&'a str>,
    entries: Vec<Entry<'a>>,
}

/// One operation shown once, with every method of its path that documents it
/// identically (the proxy's five methods are one passthrough).
struct Entry<'a> {
    methods: Vec<&'static str>,
    path: &'a str,
    operation: &'a Operation,
}

impl Entry<'_> {
    fn anchor(&self) -> String {
        operation_anchor(self.methods.first().copied().unwrap_or("any"), self.path)
    }

    fn method_badges(&self) -> String {
        self.methods
            .iter()
            .map(|method| {
                format!(
                    "<span class=\"api-method api-method-{method}\">{}</span>",
                    method.to_uppercase()
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn same_apart_from_id(a: &Operation, b: &Operation) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    a.operation_id = None;
    b.operation_id = None;
    a == b
}

/// Groups operations by their first tag: the document's tags in their declared
/// order, then any tag it did not declare, then untagged operations.
fn group_by_tag(doc: &OpenApi) -> Vec<TagGroup<'_>> {
    let mut groups: Vec<TagGroup> = doc
        .tags
        .iter()
        .flatten()
        .map(|tag| TagGroup {
            name: tag.name.clone(),
            description: tag.description.as_deref(),
            entries: Vec::new(),
        })
        .collect();
    for (path, item) in &doc.paths.paths {
        for (method, operation) in operations(item) {
            let tag = operation
                .tags
                .as_ref()
                .and_then(|tags| tags.first())
                .cloned()
                .unwrap_or_else(|| "other".to_string());
            let index = match groups.iter().position(|group| group.name == tag) {
                Some(index) => index,
                None => {
                    groups.push(TagGroup {
                        name: tag,
                        description: None,
                        entries: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            let entries = &mut groups[index].entries;
            match entries.last_mut() {
                Some(last)
                    if last.path == path.as_str()
                        && same_apart_from_id(last.operation, operation) =>
                {
                    last.methods.push(method)
                }
                _ => entries.push(Entry {
                    methods: vec![method],
                    path,
                    operation,
                }),
            }
        }
    }
    groups.retain(|group| !group.entries.is_empty());
    groups
}

fn contents(groups: &[TagGroup]) -> String {
    let mut html = String::from(
        "<nav class=\"api-toc\" aria-labelledby=\"api-toc-title\">\n<h2 id=\"api-toc-title\">Contents</h2>\n<ul>\n",
    );
    html.push_str("<li><a href=\"#authentication\">Authentication</a></li>\n");
    for group in groups {
        html.push_str(&format!(
            "<li><a href=\"#{}\">{}</a>\n<ul>\n",
            anchor("tag-", &group.name),
            escape(&group.name)
        ));
        for entry in &group.entries {
            html.push_str(&format!(
                "<li><a href=\"#{}\">{} <code>{}</code></a></li>\n",
                entry.anchor(),
                entry.method_badges(),
                escape(entry.path)
            ));
        }
        html.push_str("</ul>\n</li>\n");
    }
    html.push_str("<li><a href=\"#schemas\">Schemas</a></li>\n</ul>\n</nav>\n");
    html
}

fn authentication(doc: &OpenApi) -> String {
    let mut html = String::from(
        "<section class=\"api-section\" id=\"authentication\" aria-labelledby=\"authentication-title\">\n\
         <h2 id=\"authentication-title\">Authentication</h2>\n",
    );
    let schemes = doc
        .components
        .as_ref()
        .map(|components| &components.security_schemes);
    match schemes.filter(|schemes| !schemes.is_empty()) {
        None => html.push_str("<p>None.</p>\n"),
        Some(schemes) => {
            html.push_str("<dl class=\"api-auth\">\n");
            for (name, scheme) in schemes {
                let (how, description) = describe_scheme(scheme);
                html.push_str(&format!(
                    "<dt id=\"{}\"><code>{}</code></dt>\n<dd><p class=\"api-auth-how\">{how}</p>{}</dd>\n",
                    anchor("auth-", name),
                    escape(name),
                    description.map(prose).unwrap_or_default()
                ));
            }
            html.push_str("</dl>\n");
        }
    }
    html.push_str("</section>\n");
    html
}

/// How a scheme is sent (as HTML) and its description.
fn describe_scheme(scheme: &SecurityScheme) -> (String, Option<&str>) {
    match scheme {
        SecurityScheme::Http(http) => {
            let scheme_name = serde_json::to_value(&http.scheme)
                .ok()
                .and_then(|value| value.as_str().map(str::to_string))
                .unwrap_or_else(|| "http".to_string());
            let how = if scheme_name == "bearer" {
                "HTTP header <code>Authorization: Bearer &lt;key&gt;</code>".to_string()
            } else {
                format!("HTTP <code>{}</code> authentication", escape(&scheme_name))
            };
            (how, http.description.as_deref())
        }
        SecurityScheme::ApiKey(ApiKey::Cookie(value)) => (
            format!("Cookie <code>{}</code>", escape(&value.name)),
            value.description.as_deref(),
        ),
        SecurityScheme::ApiKey(ApiKey::Header(value)) => (
            format!("HTTP header <code>{}</code>", escape(&value.name)),
            value.description.as_deref(),
        ),
        SecurityScheme::ApiKey(ApiKey::Query(value)) => (
            format!("Query parameter <code>{}</code>", escape(&value.name)),
            value.description.as_deref(),
        ),
        SecurityScheme::OAuth2(oauth) => ("OAuth 2".to_string(), oauth.description.as_deref()),
        SecurityScheme::OpenIdConnect(oidc) => {
            ("OpenID Connect".to_string(), oidc.description.as_deref())
        }
        SecurityScheme::MutualTls { description, .. } => {
            ("Mutual TLS".to_string(), description.as_deref())
        }
    }
}

fn tag_section(group: &TagGroup) -> String {
    let id = anchor("tag-", &group.name);
    let mut html = format!(
        "<section class=\"api-section api-tag\" id=\"{id}\" aria-labelledby=\"{id}-title\">\n<h2 id=\"{id}-title\">{}</h2>\n",
        escape(&group.name)
    );
    if let Some(description) = group.description {
        html.push_str(&prose(description));
    }
    for entry in &group.entries {
        html.push_str(&operation_block(entry));
    }
    html.push_str("</section>\n");
    html
}

fn operation_block(entry: &Entry) -> String {
    let operation = entry.operation;
    let id = entry.anchor();
    let mut html = format!(
        "<article class=\"api-op\" id=\"{id}\" aria-labelledby=\"{id}-title\">\n\
         <h3 class=\"api-op-title\" id=\"{id}-title\">{} <code class=\"api-path\">{}</code></h3>\n",
        entry.method_badges(),
        escape(entry.path)
    );
    if let Some(summary) = &operation.summary {
        html.push_str(&format!(
            "<p class=\"api-op-summary\">{}</p>\n",
            inline(summary)
        ));
    }
    if let Some(description) = &operation.description {
        html.push_str(&prose(description));
    }
    html.push_str(&format!(
        "<p class=\"api-op-auth\"><strong>Authentication:</strong> {}</p>\n",
        security_text(operation.security.as_deref())
    ));

    let parameters = operation.parameters.as_deref().unwrap_or_default();
    if !parameters.is_empty() {
        html.push_str("<h4>Parameters</h4>\n");
        html.push_str(&parameters_table(parameters));
    }
    if let Some(body) = &operation.request_body {
        html.push_str("<h4>Request body</h4>\n");
        html.push_str(&request_body(body));
    }
    html.push_str("<h4>Responses</h4>\n");
    html.push_str(&responses_table(operation));
    html.push_str("</article>\n");
    html
}

/// "workspace_key or admin_key", "none", or "none, or session_cookie".
fn security_text(requirements: Option<&[SecurityRequirement]>) -> String {
    let requirements = requirements.unwrap_or_default();
    if requirements.is_empty() {
        return "none".to_string();
    }
    let alternatives: Vec<String> = requirements
        .iter()
        .map(|requirement| {
            // The requirement's scheme names are private fields; its JSON form
            // is the public view of them.
            let names: Vec<String> = serde_json::to_value(requirement)
                .ok()
                .and_then(|value| value.as_object().cloned())
                .map(|object| object.keys().cloned().collect())
                .unwrap_or_default();
            if names.is_empty() {
                "none".to_string()
            } else {
                names
                    .iter()
                    .map(|name| {
                        format!(
                            "<a href=\"#{}\"><code>{}</code></a>",
                            anchor("auth-", name),
                            escape(name)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" and ")
            }
        })
        .collect();
    alternatives.join(" or ")
}

fn parameters_table(parameters: &[Parameter]) -> String {
    let mut html = table_start(&["Name", "In", "Type", "Required", "Description"]);
    for parameter in parameters {
        let location = serde_json::to_value(&parameter.parameter_in)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        let (type_html, constraints) = match &parameter.schema {
            Some(schema) => (type_html(schema), constraints_of(schema)),
            None => ("any".to_string(), String::new()),
        };
        html.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{type_html}</td><td>{}</td><td class=\"api-desc\">{}{constraints}</td></tr>\n",
            escape(&parameter.name),
            escape(&location),
            yes_no(matches!(parameter.required, Required::True)),
            parameter.description.as_deref().map(inline).unwrap_or_default(),
        ));
    }
    html.push_str(TABLE_END);
    html
}

fn request_body(body: &RequestBody) -> String {
    let mut html = String::new();
    if let Some(description) = &body.description {
        html.push_str(&prose(description));
    }
    let required = matches!(body.required, Some(Required::True));
    html.push_str(&format!(
        "<p class=\"api-note\">{}</p>\n",
        if required { "Required." } else { "Optional." }
    ));
    html.push_str(&table_start(&["Content type", "Schema"]));
    for (content_type, content) in &body.content {
        html.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td></tr>\n",
            escape(content_type),
            content_schema(content)
        ));
    }
    html.push_str(TABLE_END);
    html
}

fn responses_table(operation: &Operation) -> String {
    let mut html = table_start(&["Status", "Description", "Body", "Headers"]);
    for (status, response) in &operation.responses.responses {
        let row = match response {
            RefOr::T(response) => response_cells(response),
            RefOr::Ref(reference) => format!(
                "<td>{}</td><td></td><td></td>",
                schema_link(ref_name(&reference.ref_location))
            ),
        };
        html.push_str(&format!(
            "<tr><td><code>{}</code></td>{row}</tr>\n",
            escape(status)
        ));
    }
    html.push_str(TABLE_END);
    html
}

fn response_cells(response: &Response) -> String {
    let bodies: Vec<String> = response
        .content
        .iter()
        .map(|(content_type, content)| {
            format!(
                "{} <span class=\"api-content-type\">({})</span>",
                content_schema(content),
                escape(content_type)
            )
        })
        .collect();
    let headers: Vec<String> = response
        .headers
        .iter()
        .map(|(name, header)| {
            let description = header
                .description
                .as_deref()
                .map(|d| format!(": {}", inline(d)))
                .unwrap_or_default();
            format!("<code>{}</code>{description}", escape(name))
        })
        .collect();
    format!(
        "<td class=\"api-desc\">{}</td><td>{}</td><td class=\"api-desc\">{}</td>",
        inline(&response.description),
        if bodies.is_empty() {
            "none".to_string()
        } else {
            bodies.join("<br>")
        },
        headers.join("<br>")
    )
}

fn content_schema(content: &Content) -> String {
    content
        .schema
        .as_ref()
        .map(type_html)
        .unwrap_or_else(|| "any".to_string())
}
