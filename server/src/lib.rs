//! Stockflow's web server: the Leptos pages and server functions, the REST
//! API, the live order feed and health checks, on one axum router.
//!
//! # Layout
//! - [`rest`]: the REST API of the original (`/product`, `/products`, `/orders`).
//! - [`assets`]: the front end's bundle (`/pkg/`) and public files, with
//!   their cache headers, precompressed.
//! - [`feed`]: `GET /api/events`, server-sent events relayed from `order-status`.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`metrics`]: `/metrics` for Prometheus.
//! - [`openapi`]: `/openapi.json` and Swagger UI at `/docs`.
//! - [`auth`]: the admin check (`ADMIN_TOKEN`) of warehouse changes, and the
//!   client address its rate limit of wrong tokens counts by.
//! - [`cors`]: which other origins may call the API (`CORS_ORIGINS`).
//! - [`error`]: the REST error type and its HTTP mapping.

pub mod assets;
pub mod auth;
pub mod cors;
pub mod error;
pub mod feed;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod rest;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use store::admin::GuessLimiter;
use store::{Config, Shop};
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted; products and orders are tiny.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach: one shared copy, so handing it to a
/// request (axum clones the state for each) costs a reference count, not a
/// copy of every setting.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// The services, to adjust before the state is handed out (`None` after).
    pub fn services_mut(&mut self) -> Option<&mut Services> {
        Arc::get_mut(&mut self.0)
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The shop, the live feed and the settings the handlers share.
pub struct Services {
    pub shop: Shop,
    /// Origins allowed to call the API from their pages (`CORS_ORIGINS`).
    pub cors_origins: Vec<String>,
    pub feed: feed::StatusFeed,
    pub leptos_options: LeptosOptions,
    /// Wrong admin tokens per client address, over REST and the UI's sign-in
    /// (10 in a row, then one per 30 s, by default).
    pub admin_guesses: GuessLimiter,
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
    let feed = feed::StatusFeed::start(&config.redis, &config.layout, config.read_block, config.read_linger, shutdown)?;
    Ok(AppState(Arc::new(Services {
        shop,
        feed,
        leptos_options,
        cors_origins: config.cors_origins.clone(),
        admin_guesses: GuessLimiter::new(config.admin_guesses),
    })))
}

/// The whole router: REST, SSE, health, server functions and pages.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the
/// rate limit of wrong admin tokens counts by the client's address.
pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let shop = state.shop.clone();
    let guesses = state.admin_guesses.clone();
    let leptos_options = state.leptos_options.clone();
    let cors = cors::layer(&state.cors_origins);
    let (documented, doc) = openapi::documented().split_for_parts();
    let routes = Router::new()
        .merge(documented)
        .merge(openapi::routes(&doc))
        .route("/metrics", get(metrics::metrics))
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(shop.clone());
                provide_context(guesses.clone());
            },
            move || app::shell(leptos_options.clone()),
        )
        .route_layer(axum::middleware::from_fn(metrics::track_requests));
    assets::serve(routes, &state.leptos_options)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // gzip for whoever accepts it. The bundle's files come compressed
        // already (see `assets`); server-sent events and tiny answers go out
        // as they are.
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::limit_server_fn_tokens))
        .layer(axum::middleware::from_fn(auth::client_addr))
        // The live feed skips the layers above: it takes no body, no token and
        // no compression, and a frame passes every body wrapper on its way to
        // each of thousands of browsers.
        .merge(
            Router::new()
                .route("/api/events", get(feed::events))
                .route_layer(axum::middleware::from_fn(metrics::track_requests)),
        )
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
        // The SSE route streams for as long as the browser stays; every other
        // request gets a deadline.
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
}
