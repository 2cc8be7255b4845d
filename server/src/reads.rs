//! Costly reads: page renders and searches, the reads whose cost a client
//! chooses.
//!
//! Every read is bounded in the work it makes (`store::merge`, the search
//! indexes), but a client that asks for them back to back would still take
//! the server's time from the orders. So each client has a rate
//! (`SEARCH_RATE_PER_CLIENT`; past it, 429 with `Retry-After`, in the form
//! its caller reads: a server function's error for the page's calls, a line
//! of text for a page), and the reads run on a thread of their own at the
//! lowest scheduling priority ([`ReadPool`]): a page render never holds up
//! the threads that place orders and relay the live feed, and the operating
//! system gives the orders the CPU first.

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use store::limits::retry_after_secs;

use crate::client::client_of;
use crate::AppState;

/// The largest page a costly read may render.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// A runtime on a thread of its own, at the lowest priority, for costly reads.
#[derive(Clone, Debug)]
pub struct ReadPool {
    handle: tokio::runtime::Handle,
}

/// The scheduling priority of the costly reads' thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPriority {
    /// The lowest: what a server runs with.
    Lowest,
    /// The process's own. For tests that run many servers side by side on
    /// two cores, where a page render at the lowest priority may wait out
    /// the request timeout behind the other tests' load.
    Normal,
}

impl ReadPool {
    /// Starts the thread; it lives as long as the process.
    pub fn start(priority: ReadPriority) -> std::io::Result<ReadPool> {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("costly-reads".into()).spawn(move || {
            let lowest = thread_priority::ThreadPriority::Min;
            if let Err(error) = (priority == ReadPriority::Lowest)
                .then(|| thread_priority::set_current_thread_priority(lowest))
                .transpose()
            {
                tracing::debug!(?error, "could not lower the priority of the costly reads' thread");
            }
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => {
                    let _ = sender.send(Ok(runtime.handle().clone()));
                    runtime.block_on(std::future::pending::<()>());
                }
                Err(error) => {
                    let _ = sender.send(Err(error));
                }
            }
        })?;
        let handle = receiver.recv().map_err(|_| std::io::Error::other("the costly reads' thread did not start"))??;
        Ok(ReadPool { handle })
    }

    /// Runs a read there, its whole answer included (a page streams as it
    /// renders: collecting it there keeps the rendering there too).
    async fn run(&self, request: Request, next: Next) -> Response {
        let answered = self.handle.spawn(async move {
            let (parts, body) = next.run(request).await.into_parts();
            match axum::body::to_bytes(body, MAX_PAGE_BYTES).await {
                Ok(bytes) => Response::from_parts(parts, Body::from(bytes)),
                Err(error) => {
                    tracing::error!(%error, "a page could not be rendered");
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            }
        });
        answered.await.unwrap_or_else(|error| {
            tracing::error!(%error, "a costly read failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
    }
}

/// Whether a request to the route `path` is a page render or a search.
fn is_costly(method: &Method, path: &str) -> bool {
    match path.strip_prefix("/api/") {
        Some(function) => app::api::SEARCHES.contains(&function),
        None => *method == Method::GET,
    }
}

/// Middleware on the pages and server functions: counts each page render
/// and search against the client's rate, and runs it on the [`ReadPool`].
pub async fn costly_reads(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_string());
    if path.is_some_and(|path| is_costly(request.method(), &path)) {
        if let Err(wait) = state.limits.search(client_of(request.extensions())) {
            let seconds = retry_after_secs(wait);
            let message = format!("Too many requests from this address; try again in {seconds} s.");
            if request.uri().path().starts_with("/api/") {
                return crate::error::server_fn_too_many(wait, message);
            }
            let headers = [(RETRY_AFTER, seconds.to_string()), (CONTENT_TYPE, "text/plain; charset=utf-8".to_string())];
            return (StatusCode::TOO_MANY_REQUESTS, headers, message).into_response();
        }
        return state.reads.run(request, next).await;
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
