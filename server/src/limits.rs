//! The per-client limit of page renders and searches
//! (`SEARCH_RATE_PER_CLIENT`): the reads whose cost a client chooses.
//!
//! Every read is bounded in the work it makes (see `store::search`), but a
//! client that asks for them back to back would still take the server's and
//! Redis's time from the orders; past its rate it gets 429 with
//! `Retry-After`, in the form its caller reads: a server function's error
//! for the page's calls, a line of text for a page.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use store::limits::retry_after_secs;

use crate::client::client_of;
use crate::AppState;

/// Whether a request to the route `path` is a page render or a search.
fn is_costly(method: &Method, path: &str) -> bool {
    match path.strip_prefix("/api/") {
        Some(function) => app::api::SEARCHES.contains(&function),
        None => *method == Method::GET,
    }
}

/// Middleware on the pages and server functions: counts each page render
/// and search against the client's rate.
pub async fn limit_costly_reads(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_string());
    if path.is_some_and(|path| is_costly(request.method(), &path)) {
        if let Err(wait) = state.limits.search(client_of(request.extensions())) {
            let seconds = retry_after_secs(wait);
            let message = format!("Too many requests from this address; try again in {seconds} s.");
            // Server functions read their errors as `ServerError|<message>`.
            let body =
                if request.uri().path().starts_with("/api/") { format!("ServerError|{message}") } else { message };
            let headers = [(RETRY_AFTER, seconds.to_string()), (CONTENT_TYPE, "text/plain; charset=utf-8".to_string())];
            return (StatusCode::TOO_MANY_REQUESTS, headers, body).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_searches_are_costly_other_calls_are_not() {
        assert!(is_costly(&Method::GET, "/"));
        assert!(is_costly(&Method::GET, "/order/{id}"));
        assert!(is_costly(&Method::POST, "/api/orders_page"));
        assert!(is_costly(&Method::POST, "/api/products_page"));
        assert!(!is_costly(&Method::POST, "/api/place_order"), "orders have their own limit");
        assert!(!is_costly(&Method::POST, "/api/shop_ready"));
    }
}
