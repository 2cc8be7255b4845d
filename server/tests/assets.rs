//! The bundle and the public files as a browser gets them: hashed files
//! cached for a year, everything else revalidated, and the precompressed
//! `.br` or `.gz` beside a file sent to a browser that accepts it. No Redis:
//! only the static part of the router, over a site directory of its own.

use axum::body::Body;
use axum::http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use leptos::prelude::LeptosOptions;
use server::assets::{IMMUTABLE, REVALIDATE};
use tower::ServiceExt;

const HASHED_WASM: &str = "stockflow.Fz8yQ2h1c2FkZmFzZGZhcw.wasm";

/// A site like the one `cargo-leptos build --release --precompress` writes.
fn site() -> tempfile::TempDir {
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

struct Answer {
    status: StatusCode,
    header: Box<dyn Fn(axum::http::HeaderName) -> Option<String>>,
    body: Vec<u8>,
}

async fn get(site: &tempfile::TempDir, path: &str, accept_encoding: Option<&str>) -> Answer {
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

#[tokio::test]
async fn a_hashed_bundle_file_is_kept_for_a_year_and_sent_precompressed() {
    let site = site();
    let path = format!("/pkg/{HASHED_WASM}");

    let br = get(&site, &path, Some("gzip, deflate, br")).await;
    assert_eq!(br.status, StatusCode::OK);
    assert_eq!(br.body, b"brotli wasm");
    assert_eq!((br.header)(CONTENT_ENCODING).as_deref(), Some("br"));
    assert_eq!((br.header)(CONTENT_TYPE).as_deref(), Some("application/wasm"));
    assert_eq!((br.header)(CACHE_CONTROL).as_deref(), Some(IMMUTABLE));
    assert!((br.header)(VARY).is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")));

    let gz = get(&site, &path, Some("gzip")).await;
    assert_eq!(gz.body, b"gzip wasm");
    assert_eq!((gz.header)(CONTENT_ENCODING).as_deref(), Some("gzip"));
    assert_eq!((gz.header)(CACHE_CONTROL).as_deref(), Some(IMMUTABLE));

    let plain = get(&site, &path, None).await;
    assert_eq!(plain.body, b"plain wasm");
    assert_eq!((plain.header)(CONTENT_ENCODING), None);
    assert_eq!((plain.header)(CACHE_CONTROL).as_deref(), Some(IMMUTABLE));
}

#[tokio::test]
async fn files_without_a_hash_are_revalidated_and_missing_ones_are_not_kept() {
    let site = site();
    let css = get(&site, "/pkg/stockflow.css", Some("br")).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.body, b"body {}");
    assert_eq!((css.header)(CACHE_CONTROL).as_deref(), Some(REVALIDATE));

    let missing = get(&site, "/pkg/stockflow.Fz8yQ2h1c2FkZmFzZGZhcX.wasm", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!((missing.header)(CACHE_CONTROL).as_deref(), Some(REVALIDATE));

    let icon = get(&site, "/favicon.svg", None).await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.body, b"<svg/>");
    assert_eq!((icon.header)(CONTENT_TYPE).as_deref(), Some("image/svg+xml"));
    assert_eq!((icon.header)(CACHE_CONTROL).as_deref(), Some(REVALIDATE));
}
