//! The bundle and the public files as a browser gets them: hashed files
//! cached for a year, everything else revalidated, and the precompressed
//! `.br` or `.gz` beside a file sent to a browser that accepts it. No Redis:
//! only the static part of the router, over a site directory of its own.

mod site;

use axum::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::StatusCode;
use server::assets::{IMMUTABLE, REVALIDATE};
use site::{get, site, HASHED_WASM};

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
