//! What a hostile client can no longer do: hold connections open, exhaust
//! or replay the live feed without end, guess the admin token through page
//! renders, change the shop from another site, drain the stock in a second;
//! and the headers every answer carries. Over real HTTP and raw TCP.

mod common;

use std::time::Duration;

use common::{config_for, start_serving, Running};
use reqwest::header::{COOKIE, HOST, ORIGIN, RETRY_AFTER, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::config::{ConnectionLimits, FeedLimits, ServerConfig};
use store::admin::Secret;
use store::limits::Rate;
use testkit::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "s3cret-admin-token";

fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(address.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
}

async fn serving(configure: impl FnOnce(&mut store::Config), serve: impl FnOnce(&mut ServerConfig)) -> Running {
    start_serving(Backend::Single, configure, serve, |_| {}).await
}

/// A server with these connection limits, and its address for raw connections.
async fn with_connection_limits(
    header_read_secs: u64,
    keep_alive_secs: u64,
    max_connections: usize,
) -> (Running, String) {
    let limits = ConnectionLimits {
        header_read: Duration::from_secs(header_read_secs),
        keep_alive: Duration::from_secs(keep_alive_secs),
        max_connections,
    };
    let app = serving(|_| {}, |server| server.connections = limits).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    (app, addr)
}

/// Waits until the server closes `stream` (a read gives 0 bytes or fails),
/// up to `within`; returns how long it took, or `None` if it stayed open.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(started + within, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_while_other_clients_are_served() {
    let (app, target) = with_connection_limits(2, 1, 2_000).await;

    // 300 clients send their headers a line a second, as slowloris does.
    let mut slow = tokio::task::JoinSet::new();
    for n in 0..300 {
        let target = target.clone();
        slow.spawn(async move {
            let mut stream = TcpStream::connect(&target).await.unwrap();
            let opened = Instant::now();
            stream.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
            for line in 0..20 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if stream.write_all(format!("X-Slow-{n}-{line}: 1\r\n").as_bytes()).await.is_err() {
                    break;
                }
                let mut probe = [0u8; 1];
                if let Ok(Ok(0) | Err(_)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await
                {
                    break;
                }
            }
            opened.elapsed()
        });
    }
    // Meanwhile an ordinary client is served, again and again.
    let served = Instant::now();
    let mut answered = 0;
    while served.elapsed() < Duration::from_secs(4) {
        assert_eq!(app.get("/healthz").await.0, StatusCode::OK);
        answered += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered >= 20, "only {answered} answers");
    let mut lasted = Vec::new();
    while let Some(took) = slow.join_next().await {
        lasted.push(took.unwrap());
    }
    let longest = lasted.iter().max().unwrap();
    assert!(*longest < Duration::from_secs(5), "a slow client kept its connection for {longest:?}");

    // A client that never sends a byte is closed after the header timeout.
    let mut silent = TcpStream::connect(&target).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(6)).await.expect("a silent connection closed");
    assert!(took >= Duration::from_millis(1500), "closed too soon: {took:?}");

    // A kept-alive connection is closed once idle for the keep-alive timeout, not before its answer.
    let mut idle = TcpStream::connect(&target).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 1024];
    let read = idle.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"), "answered first");
    let took = closed_within(&mut idle, Duration::from_secs(5)).await.expect("an idle connection closed");
    assert!(took >= Duration::from_millis(700) && took < Duration::from_secs(3), "idle for {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_are_closed_at_once() {
    let (app, target) = with_connection_limits(30, 30, 20).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(&target).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut one_more = TcpStream::connect(&target).await.unwrap();
    let took = closed_within(&mut one_more, Duration::from_secs(2)).await;
    assert!(took.is_some(), "the 21st connection was kept");
    held.truncate(10);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.get("/healthz").await.0, StatusCode::OK, "room again once some closed");
    let (_, metrics) = text(&app.http, &app.url("/metrics"), &[]).await;
    assert!(metrics.contains("stockflow_connections_refused_total"), "counted");
}

async fn text(http: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Opens the live feed; the response (its body streams).
async fn feed(http: &reqwest::Client, app: &Running, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = http.get(app.url("/api/events"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.unwrap()
}

/// Reads the feed until `wanted` appears in it (up to 10 s); all it read.
async fn read_until(response: &mut reqwest::Response, wanted: &str) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(wanted) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        match chunk {
            Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("the feed ended or stalled before {wanted:?} ({other:?}): {seen}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_feed_connections_are_capped_per_client_and_in_all() {
    let limits = FeedLimits { max_clients: 3, max_per_client: 2, ..FeedLimits::default() };
    let app = serving(|_| {}, |server| server.feed = limits).await;
    let (a, b, c) = (client_from("127.0.0.2"), client_from("127.0.0.3"), client_from("127.0.0.4"));
    let first = feed(&a, &app, None).await;
    let _second = feed(&a, &app, None).await;
    assert_eq!((first.status(), _second.status()), (StatusCode::OK, StatusCode::OK));
    let refused = feed(&a, &app, None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(RETRY_AFTER));
    assert!(refused.text().await.unwrap().contains("too many live-feed connections from this address"));
    let _third = feed(&b, &app, None).await;
    let full = feed(&c, &app, None).await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(full.headers().contains_key(RETRY_AFTER));
    let (_, metrics) = text(&app.http, &app.url("/metrics"), &[]).await;
    // (The recorder is the process's: other tests' servers count too.)
    assert!(metrics.contains("stockflow_feed_clients "), "{metrics}");
    assert!(metrics.contains(r#"stockflow_feed_refused_total{reason="per_client"}"#), "{metrics}");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = feed(&c, &app, None).await;
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "a closed connection's place was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates a product and places `orders` orders of it; returns the product id.
async fn orders_of_a_product(app: &Running, orders: usize) -> String {
    let (_, product) = app.post("/product", json!({"name": "Feed", "price": 1, "quantity": 1000})).await;
    let id = product["id"].as_str().unwrap().to_string();
    for _ in 0..orders {
        assert_eq!(app.post("/orders", json!({"product_id": id, "quantity": 1})).await.0, StatusCode::CREATED);
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_bounded_and_a_browser_too_far_behind_is_told_to_reload() {
    let limits = FeedLimits { replay_max: 5, ..FeedLimits::default() };
    let app = serving(|_| {}, |server| server.feed = limits).await;
    let product = orders_of_a_product(&app, 4).await;
    for order in app.get("/orders").await.1.as_array().unwrap() {
        app.wait_for_status(order["id"].as_str().unwrap(), "fulfilled").await;
    }
    // An id whose every field is empty stands for "from the start": 12 changes, more than 5.
    let slots = 16 * 3;
    let from_the_start = format!("0:{}", ",".repeat(slots - 1));
    let mut resumed = feed(&app.http, &app, Some(&from_the_start)).await;
    let seen = read_until(&mut resumed, "event: subscribed").await;
    assert!(seen.starts_with("event: reload\nid: "), "told to reload, not replayed: {seen}");
    assert!(!seen.contains("\"status\""), "no change replayed: {seen}");
    // Then it follows live.
    assert_eq!(app.post("/orders", json!({"product_id": product, "quantity": 1})).await.0, StatusCode::CREATED);
    read_until(&mut resumed, "\"status\":\"pending\"").await;

    // An id ahead of every stream (another deployment's, or from before a Redis lost data).
    let ahead = format!("zzzzzzz:{}", ",".repeat(slots - 1));
    let mut from_ahead = feed(&app.http, &app, Some(&ahead)).await;
    assert!(read_until(&mut from_ahead, "event: subscribed").await.starts_with("event: reload"));

    // An id a few changes behind is replayed exactly those.
    let mut live = feed(&app.http, &app, None).await;
    read_until(&mut live, "event: subscribed").await;
    assert_eq!(app.post("/orders", json!({"product_id": product, "quantity": 1})).await.0, StatusCode::CREATED);
    let frames = read_until(&mut live, "\"status\":\"pending\"").await;
    let id = frames.lines().filter_map(|line| line.strip_prefix("id: ")).next_back().unwrap().to_string();
    assert_eq!(app.post("/orders", json!({"product_id": product, "quantity": 1})).await.0, StatusCode::CREATED);
    let mut behind = feed(&app.http, &app, Some(&id)).await;
    let replayed = read_until(&mut behind, "event: subscribed").await;
    assert!(!replayed.contains("event: reload") && replayed.contains("\"status\":\"pending\""), "{replayed}");

    // Changes after the browser's id were trimmed away: it must reload.
    app.wait_for_status(app.get("/orders").await.1[0]["id"].as_str().unwrap(), "fulfilled").await;
    let conn = store::Shop::new(&config_for(&app.redis)).unwrap().connection();
    for keys in store::Shop::new(&config_for(&app.redis)).unwrap().layout().all() {
        let _: u64 = redis::cmd("XTRIM")
            .arg(keys.stream(store::Stream::OrderStatus))
            .arg("MAXLEN")
            .arg(0)
            .query_async(&mut conn.clone())
            .await
            .unwrap();
    }
    let mut trimmed = feed(&app.http, &app, Some(&id)).await;
    assert!(read_until(&mut trimmed, "event: subscribed").await.starts_with("event: reload"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_render_never_compares_a_bearer_token() {
    let app = serving(|config| config.admin_token = Some(Secret::new(TOKEN)), |_| {}).await;
    let bearer = format!("Bearer {TOKEN}");
    let (status, page) = text(&app.http, &app.url("/"), &[("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("Signed in as admin."), "a page render must not tell whether a token is right");
    // A script calling a server function may still send it (counted against the guess limit).
    let (status, access) = app_fn(&app, "admin_status", &[], &[("authorization", &bearer)]).await;
    assert_eq!((status, access), (StatusCode::OK, json!({"required": true, "signed_in": true})));
}

async fn app_fn(app: &Running, name: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = app.http.post(app.url(&format!("/api/{name}"))).form(form);
    for (header, value) in headers {
        request = request.header(*header, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Signs in; the `Set-Cookie` header and the `name=value` pair to send back.
async fn sign_in(app: &Running, headers: &[(&str, &str)]) -> (String, String) {
    let mut request = app.http.post(app.url("/api/sign_in")).form(&[("token", TOKEN)]);
    for (header, value) in headers {
        request = request.header(*header, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    (cookie, pair)
}

async fn signed_in(app: &Running, pair: &str) -> bool {
    let (_, access) = app_fn(app, "admin_status", &[], &[(COOKIE.as_str(), pair)]).await;
    access["signed_in"] == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_after_its_idle_time_and_when_the_admin_token_changes() {
    let app = serving(
        |config| {
            config.admin_token = Some(Secret::new(TOKEN));
            config.admin_session_idle = Duration::from_secs(1);
        },
        |_| {},
    )
    .await;
    let (_, pair) = sign_in(&app, &[]).await;
    for _ in 0..3 {
        // Used within its idle time, it stays open.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(signed_in(&app, &pair).await);
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(!signed_in(&app, &pair).await, "idle for longer than ADMIN_SESSION_IDLE_SECS");

    // A second server on the same Redis, started with a new token, does not honour the old token's sessions.
    let (_, pair) = sign_in(&app, &[]).await;
    let mut config = config_for(&app.redis);
    config.admin_token = Some(Secret::new("a-brand-new-admin-token"));
    let shutdown = CancellationToken::new();
    let options = leptos::prelude::LeptosOptions::builder().output_name("stockflow").build();
    let state = server::state(&config, &ServerConfig::for_tests(), options, shutdown.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rotated = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server::serve::serve(listener, server::app(state), ConnectionLimits::default(), shutdown.clone()));
    let response = app.http.post(format!("{rotated}/api/admin_status")).header(COOKIE, &pair).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["signed_in"], json!(false), "the old token's session");
    assert!(signed_in(&app, &pair).await, "the first server still has the old token");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_behind_a_trusted_proxy_the_cookie_is_secure_and_hsts_is_sent() {
    let app = serving(
        |config| config.admin_token = Some(Secret::new(TOKEN)),
        |server| server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()],
    )
    .await;
    let https = [("x-forwarded-proto", "https"), ("x-forwarded-for", "203.0.113.9")];
    let (cookie, pair) = sign_in(&app, &https).await;
    assert!(cookie.starts_with("__Host-stockflow_admin=") && cookie.contains("; Secure"), "{cookie}");
    assert!(signed_in(&app, &pair).await);
    let page = app.http.get(app.url("/")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
    // Plain HTTP: no Secure (a browser would drop it), no HSTS; and an untrusted
    // peer's X-Forwarded-Proto counts for nothing.
    let (cookie, _) = sign_in(&app, &[]).await;
    assert!(cookie.starts_with("stockflow_admin=") && !cookie.contains("Secure"), "{cookie}");
    let untrusted = client_from("127.0.0.2").post(app.url("/api/sign_in")).form(&[("token", TOKEN)]);
    let response = untrusted.header("x-forwarded-proto", "https").send().await.unwrap();
    assert!(!response.headers()[SET_COOKIE].to_str().unwrap().contains("Secure"));
    assert!(!response.headers().contains_key("strict-transport-security"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_from_another_site_are_refused_and_nothing_changes() {
    let app = serving(|config| config.cors_origins = vec!["https://partner.example".into()], |_| {}).await;
    let own = app.base.clone();
    let product = [("name", "Forged"), ("price", "1"), ("quantity", "1")];
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "http://127.0.0.1.evil.example")],
    ] {
        let (status, error) = app_fn(&app, "add_product", &product, &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(error["error"].as_str().unwrap().contains("cross-site request refused"), "{error}");
    }
    assert!(app.get("/products").await.1.as_array().unwrap().is_empty(), "nothing created");
    let refused =
        app.http.post(app.url("/orders")).header(ORIGIN, "http://evil.example").json(&json!({})).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // The shop's own page, a listed origin, and clients that are not browsers pass.
    assert_eq!(app_fn(&app, "add_product", &product, &[("origin", &own)]).await.0, StatusCode::OK);
    assert_eq!(app_fn(&app, "add_product", &product, &[("origin", "https://partner.example")]).await.0, StatusCode::OK);
    assert_eq!(app_fn(&app, "add_product", &product, &[("sec-fetch-site", "same-origin")]).await.0, StatusCode::OK);
    assert_eq!(app.get("/products").await.1.as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_unknown_hosts_are_refused() {
    let loopback = serving(|_| {}, |_| {}).await;
    let (status, _) = text(&loopback.http, &loopback.url("/"), &[(HOST.as_str(), "rebound.evil.example:3000")]).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "DNS rebinding: a loopback shop answers loopback names only");
    assert_eq!(
        text(&loopback.http, &loopback.url("/orders"), &[(HOST.as_str(), "localhost:3000")]).await.0,
        StatusCode::OK
    );
    let probe = text(&loopback.http, &loopback.url("/readyz"), &[(HOST.as_str(), "10.1.2.3:3000")]).await.0;
    assert_eq!(probe, StatusCode::OK, "probes may use any name");

    let public = serving(
        |_| {},
        |server| {
            server.public_origins = vec![server::config::Origin::parse("https://shop.example").unwrap()];
        },
    )
    .await;
    assert_eq!(text(&public.http, &public.url("/orders"), &[]).await.0, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(text(&public.http, &public.url("/orders"), &[(HOST.as_str(), "shop.example")]).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_can_place_only_so_many_orders_in_a_row() {
    let app =
        serving(|_| {}, |server| server.order_rate = Some(Rate { burst: 3, interval: Duration::from_secs(10) })).await;
    let (_, product) = app.post("/product", json!({"name": "Scarce", "price": 1, "quantity": 100})).await;
    let order = json!({"product_id": product["id"], "quantity": 1});
    let bot = client_from("127.0.0.2");
    for _ in 0..3 {
        assert_eq!(bot.post(app.url("/orders")).json(&order).send().await.unwrap().status(), StatusCode::CREATED);
    }
    let refused = bot.post(app.url("/orders")).json(&order).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    assert!(refused.text().await.unwrap().contains("too many orders from this address"));
    // The order form's server function counts against the same allowance, and says how long to wait.
    let form = [("product_id", product["id"].as_str().unwrap()), ("quantity", "1")];
    let response = bot.post(app.url("/api/place_order")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.text().await.unwrap().contains("Too many orders from this address. Try again in"));
    // Another client is not slowed.
    let other = client_from("127.0.0.3");
    assert_eq!(other.post(app.url("/orders")).json(&order).send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(app.get("/orders").await.1.as_array().unwrap().len(), 4, "the refused orders were not placed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_searches_are_limited_per_client() {
    let app =
        serving(|_| {}, |server| server.search_rate = Some(Rate { burst: 2, interval: Duration::from_secs(10) })).await;
    let bot = client_from("127.0.0.2");
    for _ in 0..2 {
        assert_eq!(bot.get(app.url("/?q=chair")).send().await.unwrap().status(), StatusCode::OK);
    }
    let page = bot.get(app.url("/?q=chair")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers().contains_key(RETRY_AFTER));
    let search = bot.post(app.url("/api/products_page")).form(&[("search", "chair")]).send().await.unwrap();
    assert_eq!(search.status(), StatusCode::TOO_MANY_REQUESTS);
    // As the server function's own error type, which the page shows.
    let error: Value = serde_json::from_str(&search.text().await.unwrap()).unwrap();
    assert!(error["Refused"].as_str().unwrap().starts_with("Too many requests"), "the page can show it: {error}");
    // Orders, the REST API and the feed are not searches.
    assert_eq!(bot.get(app.url("/orders")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(client_from("127.0.0.3").get(app.url("/")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_pages_a_nonced_policy() {
    let app = serving(|_| {}, |_| {}).await;
    let page = app.http.get(app.url("/")).send().await.unwrap();
    let headers = page.headers().clone();
    let html = page.text().await.unwrap();
    let policy = headers["content-security-policy"].to_str().unwrap().to_string();
    let nonce = policy.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce").to_string();
    assert!(policy.contains("frame-ancestors 'none'") && policy.contains("object-src 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline") && !policy.contains(" 'unsafe-eval'"), "{policy}");
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(html.matches(&format!("nonce=\"{nonce}\"")).count(), scripts, "every inline script carries the nonce");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert!(!headers.contains_key("strict-transport-security"), "not over plain HTTP");
    let again = app.http.get(app.url("/")).send().await.unwrap();
    assert!(!again.headers()["content-security-policy"].to_str().unwrap().contains(&nonce), "a nonce per answer");

    let docs = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let docs_policy = docs.headers()["content-security-policy"].to_str().unwrap();
    assert!(docs_policy.contains("script-src 'self'") && !docs_policy.contains("nonce"), "{docs_policy}");
    let json = app.http.get(app.url("/orders")).send().await.unwrap();
    assert_eq!(json.headers()["x-content-type-options"], "nosniff");
    assert!(!json.headers().contains_key("content-security-policy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_do_not_grow_the_metrics_and_metrics_can_live_apart() {
    let app = serving(|_| {}, |_| {}).await;
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("FOO{n}").as_bytes()).unwrap();
        app.http.request(method, app.url("/orders")).send().await.unwrap();
    }
    let (_, metrics) = text(&app.http, &app.url("/metrics"), &[]).await;
    assert!(!metrics.contains("FOO"), "an invented method became a label");
    assert!(metrics.contains("method=\"other\""));

    let apart = start_serving(
        Backend::Single,
        |_| {},
        |server| server.metrics_addr = Some("127.0.0.1:0".parse().unwrap()),
        |_| {},
    )
    .await;
    assert_eq!(
        text(&apart.http, &apart.url("/metrics"), &[]).await.0,
        StatusCode::NOT_FOUND,
        "not on the shop's address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_invisible_formatting_characters_are_refused() {
    let app = serving(|_| {}, |_| {}).await;
    for name in ["\u{202E}riahc kaO", "Oak\u{200B}chair"] {
        let (status, error) = app.post("/product", json!({"name": name, "price": 1, "quantity": 1})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(error["error"].as_str().unwrap().starts_with("name: must not contain invisible formatting characters"));
    }
}
