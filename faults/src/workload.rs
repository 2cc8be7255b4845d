//! A workload like real clients, and its history: every request and answer
//! with its times.
//!
//! - **Orders** at a steady open-loop rate, each with an `Idempotency-Key`,
//!   retried with the same key on a timeout, a lost connection or a 5xx (as
//!   the README tells clients to), on the other server when one fails, until
//!   they get an answer or give up after [`GIVE_UP_AFTER`].
//! - **Restocks** now and then, never retried (a restock is not idempotent):
//!   an answer lost is an unknown.
//! - **Browsers** following the live feed, resuming with `Last-Event-ID`
//!   (on the other server when one is gone), as `EventSource` does.
//!
//! Times are milliseconds since the Unix epoch, as the shop's own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::deployment::ADMIN_TOKEN;

/// How long one request may take before the client calls it a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a client keeps retrying an order.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(40);

pub fn now_ms() -> u64 {
    store::now_ms()
}

/// One attempt at a request.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// Which server (1-based).
    pub server: usize,
    pub sent_ms: u64,
    pub answered_ms: u64,
    /// `201`, `503 not saved`, `503`, `timeout`, `connection`, ...
    pub outcome: String,
}

/// One order, as its client saw it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderRecord {
    pub key: String,
    pub product: usize,
    pub quantity: u32,
    /// When it was due (the open loop's schedule).
    pub due_ms: u64,
    pub attempts: Vec<Attempt>,
    /// The order ids of the 201 answers (one, however often, if all is well).
    pub acknowledged: Vec<String>,
}

/// What became of a restock.
#[derive(Debug, Clone, Serialize)]
pub enum Restocked {
    /// 200: applied; the stock it left.
    Applied { stock: u32 },
    /// A 4xx: not applied.
    Refused,
    /// A timeout, a lost connection or a 5xx: applied or not.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestockRecord {
    pub product: usize,
    pub units: u32,
    pub sent_ms: u64,
    pub answered_ms: u64,
    pub outcome: Restocked,
}

/// A change a browser was told of.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    pub received_ms: u64,
    pub order_id: domain::Id,
    pub status: String,
    pub stock: Option<u32>,
    pub at: u64,
}

/// One connection of a browser to the live feed.
#[derive(Debug, Clone, Serialize)]
pub struct FeedConnection {
    pub server: usize,
    pub opened_ms: u64,
    /// When the `subscribed` event arrived (from then on no change escapes it).
    pub subscribed_ms: Option<u64>,
    pub closed_ms: Option<u64>,
    pub resumed: bool,
    /// When it was told to reload its lists.
    pub reloads: Vec<u64>,
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BrowserRecord {
    pub connections: Vec<FeedConnection>,
    pub seen: Vec<Seen>,
}

/// A product of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub id: domain::Id,
    pub initial: u32,
}

/// Everything the clients did and heard.
#[derive(Debug, Default, Serialize)]
pub struct History {
    pub products: Vec<Product>,
    pub orders: Vec<OrderRecord>,
    pub restocks: Vec<RestockRecord>,
    pub browsers: Vec<BrowserRecord>,
}

/// The shape of a workload.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub rate: f64,
    pub duration: Duration,
    pub products: usize,
    pub stock: u32,
    pub browsers: usize,
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(REQUEST_TIMEOUT).connect_timeout(Duration::from_secs(1)).build()?)
}

/// Creates the products, through the first server.
pub async fn create_products(servers: &[String], load: &Load) -> Result<Vec<Product>> {
    let http = client()?;
    let mut products = Vec::new();
    for n in 0..load.products {
        let body = serde_json::json!({"name": format!("Lab product {n}"), "price": 1, "quantity": load.stock});
        let response = http.post(format!("{}/product", servers[0])).bearer_auth(ADMIN_TOKEN).json(&body).send().await?;
        anyhow::ensure!(response.status().as_u16() == 201, "creating a product: {}", response.status());
        let created: serde_json::Value = response.json().await?;
        let id = domain::Id::parse(created["id"].as_str().context("product id")?)?;
        products.push(Product { id, initial: load.stock });
    }
    Ok(products)
}

/// Places one order, retrying as a careful client does.
async fn place(
    http: reqwest::Client,
    servers: Arc<Vec<String>>,
    mut record: OrderRecord,
    product_id: domain::Id,
) -> OrderRecord {
    let started = Instant::now();
    let body = serde_json::json!({"product_id": product_id, "quantity": record.quantity});
    let mut backoff = Duration::from_millis(100);
    let mut server = record.key.len() % servers.len();
    loop {
        let sent_ms = now_ms();
        let sent = http
            .post(format!("{}/orders", servers[server]))
            .header("Idempotency-Key", &record.key)
            .json(&body)
            .send()
            .await;
        let (status, text, outcome) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let outcome = if status == 503 && text.contains("not saved") {
                    "503 not saved".to_string()
                } else {
                    status.to_string()
                };
                (Some(status), text, outcome)
            }
            Err(error) => {
                let kind = if error.is_timeout() {
                    "timeout"
                } else if error.is_connect() {
                    "connection"
                } else {
                    "error"
                };
                (None, String::new(), kind.to_string())
            }
        };
        record.attempts.push(Attempt { server: server + 1, sent_ms, answered_ms: now_ms(), outcome: outcome.clone() });
        match status {
            Some(201) => {
                if let Some(id) = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string))
                {
                    record.acknowledged.push(id);
                }
                return record;
            }
            Some(status) if (400..500).contains(&status) => return record,
            _ => {}
        }
        if started.elapsed() > GIVE_UP_AFTER {
            return record;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
        server = (server + 1) % servers.len();
    }
}

/// Runs the workload until its schedule ends (then says so on `placed`: every
/// order answered or given up), lets the browsers follow the feed until
/// `stop`, and returns the history.
pub async fn run(
    servers: Vec<String>,
    products: Vec<Product>,
    load: Load,
    stop: CancellationToken,
    placed: tokio::sync::oneshot::Sender<()>,
) -> Result<History> {
    let http = client()?;
    let servers = Arc::new(servers);
    let run = now_ms();
    // Browsers first, so they see every change.
    let browsers: Vec<_> = (0..load.browsers).map(|n| tokio::spawn(follow(servers.clone(), n, stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let restocks = {
        let (http, servers, products, stop) = (http.clone(), servers.clone(), products.clone(), stop.clone());
        let until = Instant::now() + load.duration;
        tokio::spawn(async move {
            let mut done = Vec::new();
            let mut n = 0;
            while Instant::now() < until && !stop.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let product = n % products.len();
                let server = n % servers.len();
                n += 1;
                let sent_ms = now_ms();
                let url = format!("{}/product/{}/restock", servers[server], products[product].id);
                let sent =
                    http.post(url).bearer_auth(ADMIN_TOKEN).json(&serde_json::json!({"quantity": 5})).send().await;
                let outcome = match sent {
                    Ok(response) if response.status().as_u16() == 200 => {
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        match body["quantity"].as_u64() {
                            Some(stock) => Restocked::Applied { stock: stock as u32 },
                            None => Restocked::Unknown,
                        }
                    }
                    Ok(response) if response.status().is_client_error() => Restocked::Refused,
                    _ => Restocked::Unknown,
                };
                done.push(RestockRecord { product, units: 5, sent_ms, answered_ms: now_ms(), outcome });
            }
            done
        })
    };

    let total = (load.rate * load.duration.as_secs_f64()).round() as usize;
    let period = Duration::from_secs_f64(1.0 / load.rate);
    let started = Instant::now();
    let mut placing = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + period.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let product = i % products.len();
        let record = OrderRecord {
            key: format!("lab-{run}-{i}"),
            product,
            quantity: 1 + (i % 3) as u32,
            due_ms: now_ms(),
            attempts: Vec::new(),
            acknowledged: Vec::new(),
        };
        placing.push(tokio::spawn(place(http.clone(), servers.clone(), record, products[product].id.clone())));
    }
    let mut orders = Vec::with_capacity(total);
    for task in placing {
        orders.push(task.await?);
    }
    let _ = placed.send(());
    let restocks = restocks.await?;
    stop.cancelled().await;
    let mut followed = Vec::new();
    for browser in browsers {
        followed.push(browser.await?);
    }
    Ok(History { products, orders, restocks, browsers: followed })
}

/// One browser: follows the feed, resuming where it was, until `stop`.
async fn follow(servers: Arc<Vec<String>>, n: usize, stop: CancellationToken) -> BrowserRecord {
    let record = Arc::new(Mutex::new(BrowserRecord::default()));
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(1)).build().expect("a client");
    let mut server = n % servers.len();
    let mut last_id: Option<String> = None;
    while !stop.is_cancelled() {
        let index = {
            let mut record = record.lock().unwrap_or_else(|p| p.into_inner());
            record.connections.push(FeedConnection {
                server: server + 1,
                opened_ms: now_ms(),
                subscribed_ms: None,
                closed_ms: None,
                resumed: last_id.is_some(),
                reloads: Vec::new(),
                refused: None,
            });
            record.connections.len() - 1
        };
        let mut request = http.get(format!("{}/api/events", servers[server]));
        if let Some(id) = &last_id {
            request = request.header("last-event-id", id);
        }
        let streamed = tokio::select! {
            streamed = read_feed(request, &record, index, &mut last_id) => streamed,
            () = stop.cancelled() => Ok(()),
        };
        {
            let mut record = record.lock().unwrap_or_else(|p| p.into_inner());
            record.connections[index].closed_ms = Some(now_ms());
            if let Err(error) = streamed {
                record.connections[index].refused = Some(error.to_string());
            }
        }
        // Like EventSource: try again shortly, here on the other server.
        server = (server + 1) % servers.len();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
            () = stop.cancelled() => {}
        }
    }
    let record = record.lock().unwrap_or_else(|p| p.into_inner());
    record.clone()
}

/// Reads one connection's events until it ends.
async fn read_feed(
    request: reqwest::RequestBuilder,
    record: &Mutex<BrowserRecord>,
    index: usize,
    last_id: &mut Option<String>,
) -> Result<()> {
    let response = request.send().await?;
    anyhow::ensure!(response.status().is_success(), "{}", response.status());
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, None, None);
            for line in frame.lines() {
                if let Some(value) = line.strip_prefix("id: ") {
                    id = Some(value.to_string());
                } else if let Some(value) = line.strip_prefix("event: ") {
                    event = Some(value.to_string());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = Some(value.to_string());
                } else if line == "event: subscribed" {
                    let mut record = record.lock().unwrap_or_else(|p| p.into_inner());
                    record.connections[index].subscribed_ms.get_or_insert(now_ms());
                }
            }
            if let Some(id) = id {
                *last_id = Some(id);
            }
            let mut record = record.lock().unwrap_or_else(|p| p.into_inner());
            match (event.as_deref(), data) {
                (Some("reload"), _) => record.connections[index].reloads.push(now_ms()),
                (None, Some(data)) => {
                    if let Ok(change) = serde_json::from_str::<domain::StatusChange>(&data) {
                        record.seen.push(Seen {
                            received_ms: now_ms(),
                            order_id: change.order_id,
                            status: change.status.as_str().to_string(),
                            stock: change.stock,
                            at: change.at,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}
