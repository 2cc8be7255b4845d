//! The REST API's OpenAPI 3 document, generated from the handlers and types
//! (`GET /openapi.json`), and a docs page rendered from it on the server
//! (`GET /docs`): plain HTML and CSS served by the app, so it works offline.

use axum::response::Html;
use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::rest;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stockflow",
        description = "An event-driven store and warehouse. Orders move pending → completed → fulfilled | refunded; \
                       watch them live at GET /api/events (server-sent events). Prices are decimal numbers; \
                       every error is {\"error\": \"...\"}."
    ),
    paths(
        rest::create_product,
        rest::get_product,
        rest::list_products,
        rest::delete_product,
        rest::restock_product,
        rest::place_order,
        rest::list_orders,
        rest::get_order,
        crate::health::healthz,
        crate::health::readyz,
    ),
    components(schemas(domain::Product, domain::Order, domain::OrderStatus, rest::NewProductBody, rest::RestockBody, rest::NewOrderBody, ErrorBody)),
    modifiers(&AdminToken),
    tags(
        (name = "warehouse", description = "Products and their stock"),
        (name = "store", description = "Orders"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

/// The bearer scheme of warehouse changes (enforced when `ADMIN_TOKEN` is set).
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("ADMIN_TOKEN; needed for product create, delete and restock when the server has one"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("admin_token", SecurityScheme::Http(scheme));
    }
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// `GET /docs`: every operation with its parameters, body and answers, and every schema.
pub async fn docs() -> Html<String> {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    Html(render(&doc))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The name of a `$ref`ed schema, or a short description of an inline one.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{name}\">{name}</a>", name = escape(name));
    }
    match text(schema, "type") {
        "array" => format!("array of {}", schema.get("items").map(schema_name).unwrap_or_default()),
        "" => "value".to_string(),
        other => escape(other),
    }
}

fn body_schema(content: Option<&Value>) -> Option<String> {
    let media = content?.as_object()?.values().next()?;
    Some(schema_name(media.get("schema")?))
}

fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let mut html = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    );
    html += &format!("<title>{} API</title><style>{STYLE}</style></head><body>", escape(text(info, "title")));
    html += &format!(
        "<header><h1>{} API</h1><p>{}</p><p><a href=\"/openapi.json\">openapi.json</a> · <a href=\"/\">the shop</a></p></header><main>",
        escape(text(info, "title")),
        escape(text(info, "description"))
    );
    html += "<h2>Operations</h2>";
    if let Some(paths) = doc["paths"].as_object() {
        for (path, operations) in paths {
            let Some(operations) = operations.as_object() else { continue };
            for (method, operation) in operations {
                html += &format!(
                    "<section class=\"operation\" id=\"{method}-{anchor}\"><h3><span class=\"method {method}\">{upper}</span> <code>{path}</code></h3>",
                    anchor = escape(&path.replace(['/', '{', '}'], "-")),
                    upper = method.to_uppercase(),
                    path = escape(path)
                );
                for key in ["summary", "description"] {
                    if !text(operation, key).is_empty() {
                        html += &format!("<p>{}</p>", escape(text(operation, key)));
                    }
                }
                if let Some(parameters) = operation["parameters"].as_array() {
                    html += "<h4>Parameters</h4><ul>";
                    for parameter in parameters {
                        html += &format!(
                            "<li><code>{}</code> ({}{}) {}</li>",
                            escape(text(parameter, "name")),
                            escape(text(parameter, "in")),
                            if parameter["required"].as_bool() == Some(true) { ", required" } else { "" },
                            escape(text(parameter, "description"))
                        );
                    }
                    html += "</ul>";
                }
                if let Some(schema) = body_schema(operation["requestBody"].get("content")) {
                    html += &format!("<h4>Request body</h4><p>JSON: {schema}</p>");
                }
                if let Some(responses) = operation["responses"].as_object() {
                    html += "<h4>Responses</h4><table><tbody>";
                    for (status, response) in responses {
                        let schema = body_schema(response.get("content")).unwrap_or_default();
                        html += &format!(
                            "<tr><td class=\"status\">{}</td><td>{}</td><td>{schema}</td></tr>",
                            escape(status),
                            escape(text(response, "description"))
                        );
                    }
                    html += "</tbody></table>";
                }
                html += "</section>";
            }
        }
    }
    html += "<h2>Schemas</h2>";
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            html += &format!("<section class=\"schema\" id=\"schema-{name}\"><h3>{name}</h3>", name = escape(name));
            if !text(schema, "description").is_empty() {
                html += &format!("<p>{}</p>", escape(text(schema, "description")));
            }
            if let Some(values) = schema["enum"].as_array() {
                let values: Vec<String> =
                    values.iter().map(|v| format!("<code>{}</code>", escape(v.as_str().unwrap_or("")))).collect();
                html += &format!("<p>One of {}</p>", values.join(", "));
            }
            if let Some(properties) = schema["properties"].as_object() {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                html += "<table><tbody>";
                for (field, property) in properties {
                    html += &format!(
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(field),
                        if required.contains(&field.as_str()) { "" } else { " <small>optional</small>" },
                        schema_name(property),
                        escape(text(property, "description"))
                    );
                }
                html += "</tbody></table>";
            }
            html += "</section>";
        }
    }
    html + "</main></body></html>"
}

const STYLE: &str = "body{margin:0;font-family:system-ui,sans-serif;color:#1d2330;background:#f5f6f8}\
header{background:#1d2330;color:#fff;padding:1.25rem 2rem}header a{color:#9ec1ff}\
main{max-width:60rem;margin:0 auto;padding:1rem 2rem 3rem}\
section{background:#fff;border:1px solid #e2e5eb;border-radius:10px;padding:0.75rem 1.25rem;margin:1rem 0}\
h3{margin:0.25rem 0 0.5rem;font-size:1.05rem}h4{margin:0.75rem 0 0.25rem;font-size:0.9rem;color:#6b7385}\
table{border-collapse:collapse;width:100%;font-size:0.9rem}td{border-top:1px solid #e2e5eb;padding:0.3rem 0.5rem;vertical-align:top}\
.status{font-weight:600;width:4rem}.method{display:inline-block;min-width:4.5rem;text-align:center;border-radius:5px;\
padding:0.1rem 0.4rem;color:#fff;font-size:0.8rem}.get{background:#2f6fed}.post{background:#1f8a4c}.delete{background:#c53030}";
