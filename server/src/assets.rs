//! Static files: the front end's bundle under `/pkg/` and the public files
//! (the favicon), each with the cache headers it deserves.
//!
//! cargo-leptos names the bundle's files after their content
//! (`stockflow.<hash>.wasm`, `hash-files` in Cargo.toml), so a browser keeps
//! them for a year without asking again: a new build brings new names, which
//! the pages link to. Anything without a hash in its name (the favicon, the
//! bundle of a build without hashes) and every page must be checked again
//! before reuse (`no-cache`).
//!
//! The release build also writes each file compressed beside it (`.br`,
//! `.gz`: `build_site` in scripts/lib.sh, with scripts/bundle.mjs); a browser that
//! accepts one of them gets it as it is, so nothing is compressed per request.
//! Without them (a debug build) the plain file is sent.

use axum::extract::{FromRef, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use leptos::prelude::LeptosOptions;
use tower_http::services::ServeDir;

/// For files whose name carries their content's hash.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For everything else a browser may keep: ask before reusing it.
pub const REVALIDATE: &str = "no-cache";

/// Adds the bundle (`/pkg/...`) and, as the fallback, the public files or
/// the app's "Page not found" to `router`.
pub fn serve<S>(router: Router<S>, options: &LeptosOptions) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    LeptosOptions: FromRef<S>,
{
    let pkg = options.site_pkg_dir.trim_matches('/');
    let bundle =
        ServeDir::new(std::path::Path::new(&*options.site_root).join(pkg)).precompressed_br().precompressed_gzip();
    router
        .nest_service(&format!("/{pkg}"), bundle)
        .fallback(public_or_not_found::<S>)
        .layer(axum::middleware::from_fn_with_state(format!("/{pkg}/"), cache_headers))
}

/// Whether the build named the bundle's files after their hashes: it then
/// wrote their list (`hash.txt`) beside the server's binary, where Leptos
/// reads it to link the pages to them.
pub fn built_with_hashes(options: &LeptosOptions) -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&*options.hash_file)))
        .is_some_and(|file| file.is_file())
}

/// A public file from the site's root (the favicon), else the app's own
/// "Page not found" page with 404.
async fn public_or_not_found<S>(uri: Uri, state: State<S>, request: Request) -> Response
where
    S: Clone + Send + Sync + 'static,
    LeptosOptions: FromRef<S>,
{
    let mut response = leptos_axum::file_and_error_handler::<S, _>(app::shell)(uri, state, request).await;
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    response
}

/// Middleware: `Cache-Control` for the bundle and the pages; every other
/// answer (the API, the event stream) keeps its own.
async fn cache_headers(State(pkg_prefix): State<String>, request: Request, next: Next) -> Response {
    let bundle_file = request.uri().path().strip_prefix(pkg_prefix.as_str()).map(is_content_hashed);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if headers.contains_key(CACHE_CONTROL) {
        return response;
    }
    let value = match bundle_file {
        Some(hashed) => {
            // Its encoding depends on what the browser accepts.
            headers.append(VARY, HeaderValue::from_static("accept-encoding"));
            let ok = response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED;
            if hashed && ok {
                IMMUTABLE
            } else {
                REVALIDATE
            }
        }
        None if is_html(&response) => REVALIDATE,
        None => return response,
    };
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(value));
    response
}

fn is_html(response: &Response) -> bool {
    response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"))
}

/// Whether a file name carries cargo-leptos's content hash, 22 characters of
/// unpadded base64url (an MD5) between dots: `stockflow.<hash>.wasm`.
pub fn is_content_hashed(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && parts[1..parts.len() - 1]
            .iter()
            .any(|p| p.len() == 22 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_with_a_content_hash_count_as_hashed() {
        assert!(is_content_hashed("stockflow.Fz8yQ2h1c2FkZmFzZGZhcw.wasm"));
        assert!(is_content_hashed("stockflow.a-b_c12345678901234567.css"));
        assert!(!is_content_hashed("stockflow.wasm"));
        assert!(!is_content_hashed("stockflow.css"));
        assert!(!is_content_hashed("favicon.svg"));
        // A hash is neither the name nor the extension.
        assert!(!is_content_hashed("Fz8yQ2h1c2FkZmFzZGZhcw.js"));
        assert!(!is_content_hashed("stockflow.Fz8yQ2h1c2FkZmFzZGZhc.js"));
        assert!(!is_content_hashed("stockflow.Fz8yQ2h1c2FkZmFzZGZhcw!.js"));
    }
}
