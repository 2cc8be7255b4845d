//! Stockflow's web server: the Leptos pages and server functions, the REST
//! API, the live order feed and health checks, on one axum router.
//!
//! # Layout
//! - [`rest`]: the REST API of the original (`/product`, `/products`, `/orders`).
//! - [`feed`]: `GET /api/events`, server-sent events relayed from `order-status`.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`metrics`]: `/metrics` for Prometheus.
//! - [`openapi`]: `/openapi.json` and the `/docs` page.
//! - [`auth`]: the admin check (`ADMIN_TOKEN`) of warehouse changes.
//! - [`cors`]: which other origins may call the API (`CORS_ORIGINS`).
//! - [`error`]: the REST error type and its HTTP mapping.

pub mod auth;
pub mod cors;
pub mod error;
pub mod feed;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod rest;

use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use store::{Config, Shop};
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted; products and orders are tiny.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub shop: Shop,
    /// Origins allowed to call the API from their pages (`CORS_ORIGINS`).
    pub cors_origins: Vec<String>,
    pub feed: feed::StatusFeed,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> LeptosOptions {
        state.leptos_options.clone()
    }
}

/// Connects to Redis (lazily) and starts the feed reader.
pub fn state(
    config: &Config,
    leptos_options: LeptosOptions,
    shutdown: CancellationToken,
) -> redis::RedisResult<AppState> {
    metrics::handle();
    let shop = Shop::new(config).map_err(|e| match e {
        store::StoreError::Redis(e) => e,
        other => redis::RedisError::from((redis::ErrorKind::Client, "config", other.to_string())),
    })?;
    let feed = feed::StatusFeed::start(&config.redis, &config.layout, config.read_block, shutdown)?;
    Ok(AppState { shop, feed, leptos_options, cors_origins: config.cors_origins.clone() })
}

/// The whole router: REST, SSE, health, server functions and pages.
pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let shop = state.shop.clone();
    let leptos_options = state.leptos_options.clone();
    let cors = cors::layer(&state.cors_origins);
    Router::new()
        .merge(rest::routes())
        .route("/api/events", get(feed::events))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(shop.clone()),
            move || app::shell(leptos_options.clone()),
        )
        .route_layer(axum::middleware::from_fn(metrics::track_requests))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // gzip for whoever accepts it: the WASM bundle shrinks to about 40%.
        // Server-sent events and tiny answers go out as they are.
        .layer(CompressionLayer::new())
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
        // The SSE route streams for as long as the browser stays; every other
        // request gets a deadline.
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
}
