//! What ships for operators: the Prometheus alerts (`deploy/prometheus/`),
//! the Grafana dashboard (`deploy/grafana/`), the metrics they read, Redis'
//! health in `/readyz`, and JSON logs. The alerts are checked and
//! unit-tested with Debian's `promtool`, and run once for real: a
//! Prometheus started here scrapes the app, and the lag alert fires when
//! the workers stop and resolves when they return.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{start_on, Running};
use domain::{NewProduct, Quantity};
use reqwest::StatusCode;
use serde_json::{json, Value};
use store::Shop;
use testkit::{free_port, Backend, Process};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(path)
}

/// Runs `program` with `args`; panics with its output unless it succeeds.
fn run(program: &str, args: &[&Path]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup installs Debian's prometheus package)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?}: {text}");
    text
}

#[test]
fn the_alerts_pass_promtool_check_and_their_unit_tests() {
    let alerts = deploy("prometheus/alerts.yml");
    assert!(run("promtool", &[Path::new("check"), Path::new("rules"), &alerts]).contains("SUCCESS: 9 rules found"));
    let tests = deploy("prometheus/alerts.test.yml");
    assert!(run("promtool", &[Path::new("test"), Path::new("rules"), &tests]).contains("SUCCESS"));
}

/// The metric names (`stockflow_...`) a text uses.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.match_indices("stockflow_")
        .map(|(at, _)| text[at..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect())
        .collect()
}

/// Places `count` orders of one product and waits until each is final.
async fn place_and_finish(app: &Running, count: usize) {
    let (status, product) = app.post("/product", json!({"name": "Gauge", "price": 1.5, "quantity": 1000})).await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    for _ in 0..count {
        let (status, order) = app.post("/orders", json!({"product_id": product["id"], "quantity": 1})).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        app.wait_for_status(order["id"].as_str().unwrap(), "fulfilled").await;
    }
}

/// A metric name the app serves, or one Prometheus derives from it (a
/// histogram's `_bucket`, `_count` and `_sum`).
fn served(name: &str, exposed: &BTreeSet<String>) -> bool {
    exposed.contains(name)
        || ["_bucket", "_count", "_sum"]
            .iter()
            .any(|suffix| name.strip_suffix(suffix).is_some_and(|base| exposed.contains(base)))
}

/// Metrics the workers serve at `WORKERS_METRICS_ADDR`, not the server.
const SERVED_BY_WORKERS: [&str; 1] = ["stockflow_order_processing_seconds"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_use_is_served() {
    let app = start_on(Backend::Single, |_| {}).await;
    place_and_finish(&app, 3).await;
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let exposed: BTreeSet<String> = metrics
        .lines()
        .filter(|line| line.starts_with("# TYPE "))
        .filter_map(|line| line.split_whitespace().nth(2).map(String::from))
        .collect();

    let alerts = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(deploy("grafana/stockflow.json")).unwrap();
    let used: BTreeSet<String> = metric_names(&alerts).into_iter().chain(metric_names(&dashboard)).collect();
    assert!(used.len() >= 15, "{used:?}");
    // The workers serve these (workers/tests/metrics.rs checks them there).
    assert_eq!(SERVED_BY_WORKERS, [workers::metrics::PROCESSING]);
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !SERVED_BY_WORKERS.iter().any(|theirs| name.starts_with(theirs)))
        .filter(|name| !served(name, &exposed))
        .collect();
    assert!(missing.is_empty(), "used by the alerts or the dashboard but not in /metrics: {missing:?}\n{metrics}");

    // The dashboard: Grafana's JSON, every panel with a query on the chosen Prometheus.
    let dashboard: Value = serde_json::from_str(&dashboard).unwrap();
    assert_eq!(dashboard["uid"], "stockflow");
    let panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row").collect();
    assert!(panels.len() >= 12);
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(
            !targets.is_empty() && targets.iter().all(|t| t["expr"].as_str().is_some_and(|e| !e.is_empty())),
            "{panel}"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
    }
}

/// Polls Prometheus' `/api/v1/alerts` until `alertname` is in `state`
/// (`None`: absent), for up to `within`; returns how long it took.
async fn alert_becomes(prometheus: &str, alertname: &str, state: Option<&str>, within: Duration) -> Duration {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < within {
        if let Ok(response) = reqwest::get(format!("{prometheus}/api/v1/alerts")).await {
            last = response.json().await.unwrap_or(Value::Null);
            let now = last["data"]["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|alert| alert["labels"]["alertname"] == alertname)
                .and_then(|alert| alert["state"].as_str());
            if now == state {
                return started.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{alertname} was not {state:?} within {within:?}: {last}");
}

/// A real Prometheus (Debian's package) scrapes the app every second with
/// the shipped alerts: stopping the workers while orders come in fires
/// `StockflowConsumerLagGrowing` after its `for:` (30 s); starting them
/// again resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_fires_the_lag_alert_when_the_workers_stop_and_resolves_it_when_they_return() {
    let mut app = start_on(Backend::Single, |_| {}).await;
    let shop = Shop::new(&app.config).unwrap();
    let product = shop.create_product(NewProduct::parse("Lag", "0.10", "1000000").unwrap()).await.unwrap();
    // The workers made their groups: the lag is measured from then on.
    let order = shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    app.wait_for_status(&order.id, "fulfilled").await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{:?}]\nscrape_configs:\n  - job_name: stockflow\n    static_configs: [{{targets: [{:?}]}}]\n",
            deploy("prometheus/alerts.yml"),
            app.base.trim_start_matches("http://"),
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Process::spawn(
        "prometheus",
        "prometheus",
        &[
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn",
        ],
        &[],
    );
    let prometheus = format!("http://127.0.0.1:{port}");

    app.stop_workers();
    let placing = tokio::spawn({
        let shop = shop.clone();
        async move {
            loop {
                let _ = shop.place_order(&product.id, Quantity::new(1).unwrap()).await;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    });
    let fired =
        alert_becomes(&prometheus, "StockflowConsumerLagGrowing", Some("firing"), Duration::from_secs(90)).await;
    placing.abort();
    app.start_workers();
    let resolved = alert_becomes(&prometheus, "StockflowConsumerLagGrowing", None, Duration::from_secs(60)).await;
    println!(
        "workers stopped under 25 orders/s: the lag alert fired after {:.1} s (for: 30 s); it resolved {:.1} s after they restarted",
        fired.as_secs_f64(),
        resolved.as_secs_f64()
    );
}

/// A Redis whose `maxmemory-policy` would evict keys is reported: in
/// `/readyz` (still ready), in `/metrics`, and at start in the log, which
/// with `LOG_FORMAT=json` is one JSON object a line with the event's fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_evict_keys_is_reported_in_readyz_metrics_and_json_logs() {
    let mut app = start_on(Backend::Single, |_| {}).await;
    assert_eq!(app.get("/readyz").await, (StatusCode::OK, json!({"ready": true})));
    let url = app.redis.single().url();
    let set = Command::new("redis-cli").args(["-u", &url, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).output();
    assert!(set.unwrap().status.success());

    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["ready"], true);
    assert!(ready["warnings"][0].as_str().unwrap().contains("maxmemory-policy allkeys-lru"), "{ready}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("stockflow_redis_maxmemory_policy_evicts{node=\"redis\"} 1"), "{metrics}");
    assert!(metrics.contains("stockflow_redis_maxmemory_bytes{node=\"redis\"} 0"), "{metrics}");

    let mut server = Command::new(env!("CARGO_BIN_EXE_server"))
        .env("REDIS_URL", &url)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "store=warn")
        .env("LEPTOS_OUTPUT_NAME", "stockflow")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let line =
        tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().map_while(Result::ok).next()).await.unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let line = line.expect("a log line");
    let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(
        (event["level"].as_str(), event["node"].as_str(), event["policy"].as_str()),
        (Some("WARN"), Some("redis"), Some("allkeys-lru")),
        "{event}"
    );
    assert!(event["message"].as_str().unwrap().contains("set maxmemory-policy noeviction"), "{event}");
    assert!(event["timestamp"].is_string() && event["target"].is_string(), "{event}");
}
