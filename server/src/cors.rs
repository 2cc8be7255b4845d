//! Cross-origin access: pages from the origins in `CORS_ORIGINS` may call the
//! API from a browser; with none configured (the default) no CORS header is
//! ever sent, so browsers allow same-origin calls only.

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The CORS layer for `origins` (already validated by the configuration).
pub fn layer(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        // An empty list matches no origin: no CORS headers at all.
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, HeaderName::from_static("idempotency-key")])
        .expose_headers([HeaderName::from_static("idempotency-replayed"), crate::rest::NEXT_CURSOR, header::LINK])
        .max_age(std::time::Duration::from_secs(600))
}
