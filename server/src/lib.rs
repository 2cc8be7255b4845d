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
pub mod client;
pub mod config;
pub mod cors;
pub mod error;
pub mod feed;
pub mod guard;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod reads;
pub mod rest;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use store::connection::ReadFrom;
use store::limits::{ClientLimits, RateLimiter};
use store::{Config, Shop, StoreError};
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::ServerConfig;

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
    /// Every per-client limit: wrong admin tokens (10 in a row, then one per
    /// 30 s, by default, over REST and the UI's sign-in together), orders,
    /// page renders and searches.
    pub limits: ClientLimits,
    /// Whose forwarding headers are believed (`TRUSTED_PROXIES`).
    pub forwarding: client::Forwarding,
    /// Which hosts and origins are answered (`PUBLIC_ORIGIN`).
    pub guard: guard::SiteGuard,
    /// Whether `/metrics` is served on an address of its own (`METRICS_ADDR`)
    /// rather than with the shop.
    pub metrics_apart: bool,
    /// Where page renders and searches run, apart from the orders.
    pub reads: reads::ReadPool,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> LeptosOptions {
        state.leptos_options.clone()
    }
}

/// Why the server's state could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("starting the costly reads' thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Connects to Redis (lazily) and starts the feed reader and the costly reads' thread.
pub fn state(
    config: &Config,
    server: &ServerConfig,
    leptos_options: LeptosOptions,
    shutdown: CancellationToken,
) -> Result<AppState, StartError> {
    metrics::handle();
    let shop = Shop::new(config)?;
    // Browsers see only what survives a failover when orders are only
    // acknowledged once replicated (see the feed's documentation).
    let read_from = if config.min_replicas > 0 { ReadFrom::Replicas } else { ReadFrom::Master };
    let feed = feed::StatusFeed::start(
        &config.redis,
        &config.layout,
        read_from,
        config.read_block,
        config.read_linger,
        server.feed,
        shutdown,
    )
    .map_err(StoreError::from)?;
    let public: Arc<[config::Origin]> = server.public_origins.clone().into();
    Ok(AppState(Arc::new(Services {
        shop,
        feed,
        leptos_options,
        cors_origins: config.cors_origins.clone(),
        limits: ClientLimits {
            admin_guesses: RateLimiter::new(config.admin_guesses),
            orders: server.order_rate.map(RateLimiter::new),
            searches: server.search_rate.map(RateLimiter::new),
        },
        forwarding: client::Forwarding {
            trusted: server.trusted_proxies.clone().into(),
            https_origin: public.first().is_some_and(|origin| origin.https),
        },
        guard: guard::SiteGuard {
            public,
            loopback_only: server.site_addr.ip().is_loopback(),
            cors: config.cors_origins.clone().into(),
        },
        metrics_apart: server.metrics_addr.is_some(),
        reads: reads::ReadPool::start(reads::ReadPriority::Lowest)?,
    })))
}

/// The whole router: REST, SSE, health, server functions and pages.
///
/// Serve it with [`serve::serve`]: every per-client limit counts by the
/// client's address, which it records.
pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let shop = state.shop.clone();
    let limits = state.limits.clone();
    let leptos_options = state.leptos_options.clone();
    let cors = cors::layer(&state.cors_origins);
    let (documented, doc) = openapi::documented().split_for_parts();
    let mut api = Router::new().merge(documented).merge(openapi::routes(&doc));
    if !state.metrics_apart {
        api = api.route("/metrics", get(metrics::metrics));
    }
    let pages = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(shop.clone());
                provide_context(limits.clone());
                // The nonce the page's security headers name (see `headers`).
                let nonce = use_context::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<headers::CspNonce>().cloned());
                if let Some(nonce) = nonce {
                    provide_context(leptos::nonce::Nonce::from_value(nonce.0));
                }
            },
            move || app::shell(leptos_options.clone()),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), reads::costly_reads));
    let routes = api.merge(pages).route_layer(axum::middleware::from_fn(metrics::track_requests));
    assets::serve(routes, &state.leptos_options)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // gzip for whoever accepts it. The bundle's files come compressed
        // already (see `assets`); server-sent events and tiny answers go out
        // as they are.
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::limit_server_fn_tokens))
        // The live feed skips the layers above: it takes no body, no token and
        // no compression, and a frame passes every body wrapper on its way to
        // each of thousands of browsers.
        .merge(
            Router::new()
                .route("/api/events", get(feed::events))
                .route_layer(axum::middleware::from_fn(metrics::track_requests)),
        )
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(axum::middleware::from_fn_with_state(state.guard.clone(), guard::guard))
        .layer(axum::middleware::from_fn_with_state(state.forwarding.clone(), client::identify))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
        // The SSE route streams for as long as the browser stays; every other
        // request gets a deadline.
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
}

/// The router of `METRICS_ADDR`: `/metrics` alone.
pub fn metrics_app(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics::metrics)).with_state(state)
}
