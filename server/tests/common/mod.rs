//! The server under test: the real router on a free port, the real consumer
//! loops, and a private redis-server or Redis Cluster.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::time::Duration;

use futures::StreamExt;

use leptos::prelude::LeptosOptions;
use reqwest::StatusCode;
use serde_json::Value;
use server::config::ServerConfig;
use server::reads::{ReadPool, ReadPriority};
use store::Config;
use testkit::{Backend, TestRedis};
use tokio_util::sync::CancellationToken;

pub struct Running {
    pub base: String,
    pub http: reqwest::Client,
    pub redis: TestRedis,
    pub config: Config,
    shutdown: CancellationToken,
    /// Stops the workers alone.
    workers: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[allow(unused_imports)] // each test file uses its own part of the harness
pub use store::testing::{config_for, wait_until_final};

/// The server with the default configuration, on a single redis-server.
pub async fn start() -> Running {
    start_on(Backend::Single, |_| {}).await
}

/// The server with a configuration `configure` adjusts (admin token, CORS, ...).
pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Running {
    start_on(Backend::Single, configure).await
}

/// The server on the given backend, with a configuration `configure` adjusts.
pub async fn start_on(backend: Backend, configure: impl FnOnce(&mut Config)) -> Running {
    start_tuned(backend, configure, |_| {}).await
}

/// The server on the given backend, with a configuration `configure` adjusts
/// and a state `tune` adjusts (settings that are not configuration, like the
/// admin guess limit).
pub async fn start_tuned(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
    tune: impl FnOnce(&mut server::Services),
) -> Running {
    start_serving(backend, configure, |_| {}, tune).await
}

/// The server with its own settings (limits, proxies, origins) adjusted by `serve`.
pub async fn start_serving(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
    serve: impl FnOnce(&mut ServerConfig),
    tune: impl FnOnce(&mut server::Services),
) -> Running {
    let redis = TestRedis::start(backend);
    let mut config = config_for(&redis);
    config.consumer_name = "api-test".into();
    configure(&mut config);
    let mut server_config = ServerConfig::for_tests();
    serve(&mut server_config);
    let shutdown = CancellationToken::new();
    let workers = shutdown.child_token();
    tokio::spawn(workers::run(config.clone(), &workers::Role::ALL, workers.clone()));
    let options = LeptosOptions::builder().output_name("stockflow").build();
    let mut state = server::state(&config, &server_config, options, shutdown.clone()).unwrap();
    let services = state.services_mut().expect("the state is not shared yet");
    // Many servers share two cores here: page renders at the process's own
    // priority, or one may wait out the request timeout behind the other
    // tests' load (seen once: a 503 after 30 s). The bench measures the
    // lowest priority a server runs with.
    services.reads = ReadPool::start(ReadPriority::Normal).unwrap();
    tune(services);
    let listener = tokio::net::TcpListener::bind(server_config.site_addr).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server::serve::serve(listener, server::app(state), server_config.connections, shutdown.clone()));
    Running { base, http: reqwest::Client::new(), redis, config, shutdown, workers }
}

impl Running {
    /// Stops the workers (they finish what is in flight); the server goes on.
    pub fn stop_workers(&mut self) {
        self.workers.cancel();
    }

    /// Starts the workers again.
    pub fn start_workers(&mut self) {
        self.workers = self.shutdown.child_token();
        tokio::spawn(workers::run(self.config.clone(), &workers::Role::ALL, self.workers.clone()));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.http.post(self.url(path)).json(&body).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `times` concurrent POSTs of `body` to `path`, all with one
    /// `Idempotency-Key`: each answer's status, `Idempotency-Replayed` header and body.
    pub async fn post_concurrently(
        &self,
        path: &str,
        idempotency_key: &str,
        body: &Value,
        times: usize,
    ) -> Vec<(StatusCode, String, Value)> {
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..times {
            let request = self.http.post(self.url(path)).header("Idempotency-Key", idempotency_key).json(body);
            requests.spawn(async move {
                let response = request.send().await.unwrap();
                let replayed = response.headers()["idempotency-replayed"].to_str().unwrap().to_string();
                (response.status(), replayed, response.json::<Value>().await.unwrap())
            });
        }
        requests.join_all().await
    }

    /// Polls the order until it has `wanted` (up to about 10 s).
    pub async fn wait_for_status(&self, order_id: &str, wanted: &str) -> Value {
        for _ in 0..400 {
            let (_, order) = self.get(&format!("/orders/{order_id}")).await;
            if order["status"] == wanted {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("order {order_id} never became {wanted}");
    }
}

/// What a crowd of careful clients got: each request's order id by its
/// idempotency key, how many attempts failed and were retried, and each
/// successful request's latency.
#[derive(Debug, Default)]
pub struct Placed {
    pub answers: std::collections::HashMap<String, String>,
    pub failed_attempts: usize,
    pub latencies: Vec<Duration>,
}

/// `clients` clients each place `per_client` orders at `base` (quantity 1 or
/// 2, products in turn), retrying a failed request with the same
/// `Idempotency-Key` for up to 30 s, as a careful client does; `answered`
/// counts the requests answered so far. A 4xx fails the test.
pub async fn place_orders_retrying(
    http: &reqwest::Client,
    base: &str,
    products: &[String],
    clients: usize,
    per_client: usize,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Placed {
    let run = std::process::id();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (http, base, products, answered) = (http.clone(), base.to_string(), products.to_vec(), answered.clone());
        tasks.spawn(async move {
            let mut placed = Placed::default();
            for i in 0..per_client {
                let key = format!("run{run}-client{client}-request{i}");
                let body =
                    serde_json::json!({"product_id": products[(client + i) % products.len()], "quantity": 1 + i % 2});
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                let started = tokio::time::Instant::now();
                let order: Value = loop {
                    let sent =
                        http.post(format!("{base}/orders")).header("Idempotency-Key", &key).json(&body).send().await;
                    match sent {
                        Ok(response) if response.status().is_success() => break response.json().await.unwrap(),
                        Ok(response) if response.status().is_client_error() => panic!("{key}: {}", response.status()),
                        _ => {
                            placed.failed_attempts += 1;
                            assert!(tokio::time::Instant::now() < deadline, "{key} never succeeded within 30 s");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                };
                placed.latencies.push(started.elapsed());
                placed.answers.insert(key, order["id"].as_str().unwrap().to_string());
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            placed
        });
    }
    let mut all = Placed::default();
    for placed in tasks.join_all().await {
        all.answers.extend(placed.answers);
        all.failed_attempts += placed.failed_attempts;
        all.latencies.extend(placed.latencies);
    }
    all
}

/// Waits (up to `within`) until `count` answered requests have been counted.
pub async fn wait_for_answers(answered: &std::sync::atomic::AtomicUsize, count: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while answered.load(std::sync::atomic::Ordering::Relaxed) < count {
        assert!(tokio::time::Instant::now() < deadline, "clients did not get {count} answers within {within:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Checks stock arithmetic for every product: initial stock minus the
/// quantities of fulfilled orders is the stock now (nothing lost, nothing taken twice).
pub async fn assert_stock_adds_up(
    shop: &store::Shop,
    initial: &std::collections::HashMap<String, u32>,
    orders: &[domain::Order],
) {
    for (id, start) in initial {
        let sold: u32 = orders
            .iter()
            .filter(|o| &o.product_id == id && o.status == domain::OrderStatus::Fulfilled)
            .map(|o| o.quantity.get())
            .sum();
        let now = shop.product(&id.parse().unwrap()).await.unwrap().quantity;
        assert_eq!(start - sold, now, "stock of {id}: {start} at start, {sold} fulfilled");
    }
}

/// The `q`-quantile of some durations (0.5 for the median).
pub fn quantile(durations: &mut [Duration], q: f64) -> Duration {
    durations.sort();
    durations.get(((durations.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default()
}

/// A browser's view of `GET /api/events`: its events, and the moment it is subscribed.
pub struct Feed {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Feed {
    pub fn new(response: reqwest::Response) -> Feed {
        Feed { stream: Box::pin(response.bytes_stream()), buffer: String::new() }
    }

    /// The next block (event or comment), within 15 s.
    pub async fn next_block(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                return self.buffer.drain(..end + 2).collect();
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("the feed sends something within 15 s")
                .expect("the feed stays open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Waits for the server's word that this feed is subscribed and caught up.
    pub async fn subscribed(mut self) -> Feed {
        while !self.next_block().await.lines().any(|line| line == "event: subscribed") {}
        self
    }

    /// The next `count` changes, (id, data), skipping comments and events of
    /// a type of their own (`subscribed`, `reload`).
    pub async fn events(&mut self, count: usize) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while events.len() < count {
            let block = self.next_block().await;
            let (mut id, mut data) = (None, None);
            if block.lines().any(|line| line.starts_with("event:")) {
                continue;
            }
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str(v.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                events.push((id, data));
            }
        }
        events
    }
}
