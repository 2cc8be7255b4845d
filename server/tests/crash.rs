//! The server process SIGKILLed while accepting orders. Clients retry a
//! failed request with the same `Idempotency-Key`, as a careful client does:
//! every request ends with exactly one order, every order that got a 2xx
//! reaches a terminal state, and no order exists that no request got.

mod common;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config_for, place_orders_retrying, wait_for_answers, wait_until_final, Placed};
use serde_json::{json, Value};
use store::Shop;
use testkit::{free_port, on_every_backend, Backend, Process, TestRedis};
use tokio_util::sync::CancellationToken;

const SERVER_BIN: &str = env!("CARGO_BIN_EXE_server");

on_every_backend!(
    a_server_killed_while_accepting_orders_loses_none_and_invents_none,
    sigterm_stops_the_server_cleanly_with_a_live_feed_open,
);

fn spawn_server(redis: &TestRedis, port: u16) -> Process {
    let env = [
        redis.env(),
        ("LEPTOS_OUTPUT_NAME", "stockflow".to_string()),
        ("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}")),
        ("RUST_LOG", "server=warn".to_string()),
        // The crowd of clients comes from one address.
        ("ORDER_RATE_PER_CLIENT", "0".to_string()),
    ];
    Process::spawn("server", SERVER_BIN, &[], &env)
}

async fn wait_until_serving(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while http.get(format!("{base}/readyz")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_server_killed_while_accepting_orders_loses_none_and_invents_none(backend: Backend) {
    let redis = TestRedis::start(backend);
    let config = config_for(&redis);
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(workers::run(config.clone(), &workers::Role::ALL, shutdown.clone()));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut server = spawn_server(&redis, port);
    wait_until_serving(&http, &base).await;

    let mut product_ids = Vec::new();
    for i in 0..5 {
        let body = json!({"name": format!("Item {i}"), "price": 3, "quantity": 150});
        let product: Value =
            http.post(format!("{base}/product")).json(&body).send().await.unwrap().json().await.unwrap();
        product_ids.push(product["id"].as_str().unwrap().to_string());
    }

    // 8 clients place 150 orders each, retrying any failure with the same key.
    let answered = Arc::new(AtomicUsize::new(0));
    let load = {
        let (http, base, answered) = (http.clone(), base.clone(), answered.clone());
        tokio::spawn(async move { place_orders_retrying(&http, &base, &product_ids, 8, 150, answered).await })
    };

    // Kill after a number of answers that differs from run to run.
    let kill_at = 100 + (std::process::id() as usize % 500);
    wait_for_answers(&answered, kill_at, Duration::from_secs(30)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _server = spawn_server(&redis, port);

    let Placed { answers, failed_attempts: failures, .. } = load.await.unwrap();
    assert!(failures > 0, "the kill happened while orders were being accepted");
    assert_eq!(answers.len(), 1200);

    let shop = Shop::new(&config).unwrap();
    let orders = wait_until_final(&shop, None, Duration::from_secs(30)).await;
    let mut answered: Vec<&str> = answers.values().map(String::as_str).collect();
    answered.sort();
    answered.dedup();
    assert_eq!(answered.len(), 1200, "each request got its own order");
    let mut existing: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    existing.sort();
    assert_eq!(existing, answered, "every order belongs to a request that got it, and no other exists");
    println!(
        "server SIGKILLed after {kill_at} of 1200 orders: {failures} failed attempts retried, none lost or doubled"
    );

    shutdown.cancel();
    workers.await.unwrap().unwrap();
}

/// SIGTERM: the server ends its live streams and exits 0 within seconds,
/// even with a browser connected to the feed.
async fn sigterm_stops_the_server_cleanly_with_a_live_feed_open(backend: Backend) {
    let redis = TestRedis::start(backend);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = spawn_server(&redis, port);
    wait_until_serving(&http, &base).await;
    let feed = http.get(format!("{base}/api/events")).send().await.unwrap();
    assert_eq!(feed.status(), reqwest::StatusCode::OK);

    let stopping = Instant::now();
    assert_eq!(server.terminate(Duration::from_secs(5)), Some(0), "exit 0 within 5 s of SIGTERM");
    println!("server stopped {:.2} s after SIGTERM", stopping.elapsed().as_secs_f64());
    drop(feed);
}
