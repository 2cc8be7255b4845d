//! An unknown page is the app's own "Page not found", never cached. In a
//! test binary of its own: rendering a page sets up Leptos's process-wide
//! task executor, which tests running beside it on other runtimes must not
//! share (here it hung now and then). No Redis.

mod site;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use server::assets::REVALIDATE;
use site::{get, site};

#[tokio::test]
async fn an_unknown_page_is_the_apps_not_found_page_and_never_cached() {
    let site = site();
    let page = get(&site, "/no/such/page", None).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!((page.header)(CONTENT_TYPE).is_some_and(|t| t.starts_with("text/html")));
    assert_eq!((page.header)(CACHE_CONTROL).as_deref(), Some(REVALIDATE));
    assert!(String::from_utf8(page.body).unwrap().contains("Page not found."));
}
