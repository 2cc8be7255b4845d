//! The REST API's OpenAPI 3 document, generated from the handlers and types
//! (`GET /openapi.json`), and Swagger UI on it (`GET /docs`), from which a
//! person can send any request. Swagger UI's files are built into the
//! binary (`utoipa-swagger-ui`, vendored): the page loads nothing from
//! another host and works offline.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::Config;

use crate::error::ErrorBody;
use crate::{health, rest, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stockflow",
        description = "An event-driven store and warehouse. Orders move pending → completed → fulfilled | refunded; \
                       watch them live at GET /api/events (server-sent events). Prices are decimal numbers; \
                       every error is {\"error\": \"...\"}."
    ),
    components(schemas(
        domain::Product,
        domain::Order,
        domain::Step,
        domain::OrderStatus,
        rest::NewProductBody,
        rest::RestockBody,
        rest::NewOrderBody,
        rest::ProductWithPk,
        rest::OrderWithPk,
        ErrorBody
    )),
    modifiers(&AdminToken),
    tags(
        (name = "warehouse", description = "Products and their stock"),
        (name = "store", description = "Orders"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

/// The documented routes, REST and health, with their document: one list
/// makes both (see [`rest::routes`]).
pub fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(rest::routes())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

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

/// `GET /openapi.json` with `doc`, and Swagger UI on it at `/docs`.
pub fn routes(doc: &utoipa::openapi::OpenApi) -> Router<AppState> {
    // The document never changes while the process runs: serialize it once.
    let json = Bytes::from(serde_json::to_vec(doc).expect("the OpenAPI document serializes"));
    let config = Arc::new(
        Config::new([OPENAPI_JSON])
            // The default validator is a badge loaded from another host.
            .validator_url("none")
            .display_request_duration(true),
    );
    Router::new()
        .route(OPENAPI_JSON, get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json) }))
        .route("/docs", get(docs_page))
        .route("/docs/", get(|| async { Redirect::permanent("/docs") }))
        .route("/docs/{*file}", get(move |Path(file): Path<String>| async move { docs_file(&file, config) }))
}

const OPENAPI_JSON: &str = "/openapi.json";

/// `GET /docs`: Swagger UI's page, with its files under `/docs/`.
async fn docs_page() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// Swagger UI's page (its own `index.html`, with the files' paths made
/// absolute so that it is served at `/docs` itself).
const DOCS_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Stockflow API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/docs/index.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="utf-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="utf-8"></script>
    <script src="/docs/swagger-initializer.js" charset="utf-8"></script>
  </body>
</html>
"#;

/// `GET /docs/{file}`: one of Swagger UI's files; `swagger-initializer.js`
/// carries `config` (where the document is, and the page's settings).
fn docs_file(file: &str, config: Arc<Config<'static>>) -> Response {
    match utoipa_swagger_ui::serve(file, config) {
        Ok(Some(found)) if file != "index.html" => {
            ([(header::CONTENT_TYPE, found.content_type)], found.bytes.into_owned()).into_response()
        }
        Ok(_) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            tracing::error!(%error, file, "cannot serve a Swagger UI file");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
