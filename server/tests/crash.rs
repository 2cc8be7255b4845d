//! The server process SIGKILLed while accepting orders. Clients retry a
//! failed request with the same `Idempotency-Key`, as a careful client does:
//! every request ends with exactly one order, every order that got a 2xx
//! reaches a terminal state, and no order exists that no request got.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use store::{Config, Shop};
use testkit::{free_port, Process, RedisServer};
use tokio_util::sync::CancellationToken;

const SERVER_BIN: &str = env!("CARGO_BIN_EXE_server");

fn spawn_server(redis: &RedisServer, port: u16) -> Process {
    let env = [
        ("REDIS_URL", redis.url()),
        ("LEPTOS_OUTPUT_NAME", "stockflow".to_string()),
        ("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}")),
        ("RUST_LOG", "server=warn".to_string()),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_while_accepting_orders_loses_none_and_invents_none() {
    let redis = RedisServer::start();
    let config = Config::for_redis(redis.url());
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
    let answered_so_far = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..8 {
        let (http, base, products) = (http.clone(), base.clone(), product_ids.clone());
        let answered_so_far = answered_so_far.clone();
        clients.spawn(async move {
            let (mut answers, mut failures) = (HashMap::new(), 0);
            for i in 0..150 {
                let key = format!("client{client}-request{i}");
                let body = json!({"product_id": products[(client + i) % products.len()], "quantity": 1 + i % 2});
                let deadline = Instant::now() + Duration::from_secs(30);
                let order: Value = loop {
                    let sent =
                        http.post(format!("{base}/orders")).header("Idempotency-Key", &key).json(&body).send().await;
                    match sent {
                        Ok(response) if response.status().is_success() => break response.json().await.unwrap(),
                        Ok(response) if response.status().is_client_error() => panic!("{key}: {}", response.status()),
                        _ => {
                            failures += 1;
                            assert!(Instant::now() < deadline, "{key} never succeeded");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                };
                answers.insert(key, order["id"].as_str().unwrap().to_string());
                answered_so_far.fetch_add(1, Ordering::Relaxed);
            }
            (answers, failures)
        });
    }

    // Kill after a number of answers that differs from run to run.
    let kill_at = 100 + (std::process::id() as usize % 500);
    while answered_so_far.load(Ordering::Relaxed) < kill_at {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _server = spawn_server(&redis, port);

    let mut answers = HashMap::new();
    let mut failures = 0;
    for (client_answers, client_failures) in clients.join_all().await {
        answers.extend(client_answers);
        failures += client_failures;
    }
    assert!(failures > 0, "the kill happened while orders were being accepted");
    assert_eq!(answers.len(), 1200);

    let shop = Shop::new(&config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let orders = loop {
        let orders = shop.newest_orders(usize::MAX).await.unwrap();
        if orders.iter().all(|o| o.status.is_terminal()) {
            break orders;
        }
        assert!(Instant::now() < deadline, "orders did not all finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut answered: Vec<&String> = answers.values().collect();
    answered.sort();
    answered.dedup();
    assert_eq!(answered.len(), 1200, "each request got its own order");
    let mut existing: Vec<&String> = orders.iter().map(|o| &o.id).collect();
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly_with_a_live_feed_open() {
    let redis = RedisServer::start();
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
