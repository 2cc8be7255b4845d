//! A site directory and the static part of the router over it, for the
//! tests of files and pages as a browser gets them (no Redis).

use axum::body::Body;
use axum::http::header::ACCEPT_ENCODING;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use leptos::prelude::LeptosOptions;
use tower::ServiceExt;

pub const HASHED_WASM: &str = "stockflow.Fz8yQ2h1c2FkZmFzZGZhcw.wasm";

/// A site like the one `cargo-leptos build --release --precompress` writes.
pub fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(pkg.join(HASHED_WASM), b"plain wasm").unwrap();
    std::fs::write(pkg.join(format!("{HASHED_WASM}.br")), b"brotli wasm").unwrap();
    std::fs::write(pkg.join(format!("{HASHED_WASM}.gz")), b"gzip wasm").unwrap();
    std::fs::write(pkg.join("stockflow.css"), b"body {}").unwrap();
    std::fs::write(dir.path().join("favicon.svg"), b"<svg/>").unwrap();
    dir
}

fn router(site: &tempfile::TempDir) -> Router {
    // Listing the app's routes, as the whole router does, sets up the task
    // executor the "Page not found" page renders with.
    let _ = leptos_axum::generate_route_list(app::App);
    let options = LeptosOptions::builder()
        .output_name("stockflow")
        .site_root(site.path().to_str().unwrap())
        .site_pkg_dir("pkg")
        .build();
    server::assets::serve(Router::new(), &options).with_state(options)
}

/// A response, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub header: Box<dyn Fn(axum::http::HeaderName) -> Option<String>>,
    pub body: Vec<u8>,
}

/// `GET path` from the router over `site`.
pub async fn get(site: &tempfile::TempDir, path: &str, accept_encoding: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(encodings) = accept_encoding {
        request = request.header(ACCEPT_ENCODING, encodings);
    }
    let response = router(site).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let headers = parts.headers.clone();
    Answer {
        status: parts.status,
        header: Box::new(move |name| headers.get(name).map(|v| v.to_str().unwrap().to_string())),
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}
