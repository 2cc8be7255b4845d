//! One trace per order across processes: the server (its binary, as
//! deployed) and the workers (in this test's process) export spans over
//! OTLP/HTTP to a receiver this test runs; the placing, the payment, the
//! warehouse's decision and each relay to browsers are spans of the trace
//! the client's `traceparent` started, each a child of the placing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use serde_json::{json, Value};
use store::telemetry::{self, LogFormat};
use testkit::{free_port, Backend, TestRedis};
use tokio_util::sync::CancellationToken;

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
    start_ns: u64,
    end_ns: u64,
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .filter_map(|pair| match pair.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(text) => Some((pair.key.clone(), text.clone())),
            AnyValue::IntValue(n) => Some((pair.key.clone(), n.to_string())),
            _ => None,
        })
        .collect()
}

/// `POST /v1/traces`: OTLP/HTTP with protobuf, as the exporters send it.
async fn receive(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    let mut spans = spans.lock().unwrap();
    for resource in request.resource_spans {
        let resource_attributes = attributes(&resource.resource.map(|r| r.attributes).unwrap_or_default());
        let service = resource_attributes.get("service.name").cloned().unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service: service.clone(),
                    name: span.name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                });
            }
        }
    }
    ""
}

/// A request's JSON answer.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_steps_in_two_processes_are_spans_of_one_trace() {
    let spans: Spans = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let receiver = Router::new().route("/v1/traces", post(receive)).with_state(spans.clone());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    // The workers export from this process; the server from its own.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    let exporting = telemetry::init(LogFormat::Text, "warn", "stockflow-workers");
    assert!(telemetry::enabled());

    let redis = TestRedis::start(Backend::Single);
    let (variable, url) = redis.env();
    let site = format!("127.0.0.1:{}", free_port());
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_server"))
            .env(variable, &url)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("OTEL_SERVICE_NAME", "shop-server")
            .env("PAYMENT_DELAY_MS", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,store::shop=debug")
            .env("LEPTOS_OUTPUT_NAME", "stockflow")
            .env("LEPTOS_SITE_ADDR", &site)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Its log, one JSON object a line (read as it comes, so the pipe never fills).
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let stdout = server.0.stdout.take().unwrap();
    std::thread::spawn({
        let log = log.clone();
        move || BufReader::new(stdout).lines().map_while(Result::ok).for_each(|line| log.lock().unwrap().push(line))
    });
    let mut config = store::Config::for_variable(redis.env());
    config.payment_delay = Duration::ZERO;
    let stop = CancellationToken::new();
    let working = tokio::spawn(workers::run(config, &workers::Role::ALL, stop.clone()));

    let http = reqwest::Client::new();
    let base = format!("http://{site}");
    let started = Instant::now();
    while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not get ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let product =
        answer(http.post(format!("{base}/product")).json(&json!({"name": "Traced", "price": 2, "quantity": 5}))).await;
    // A browser follows the feed: its relay reads the streams (and traces
    // the relay) only while one does.
    let mut feed = http.get(format!("{base}/api/events")).send().await.unwrap().bytes_stream();
    let mut heard = String::new();
    while !heard.contains("event: subscribed") {
        let chunk = tokio::time::timeout(Duration::from_secs(15), feed.next()).await;
        heard.push_str(&String::from_utf8_lossy(&chunk.expect("subscribed within 15 s").unwrap().unwrap()));
    }
    // The client's own trace: the order's spans join it.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let order =
        http.post(format!("{base}/orders")).header("traceparent", format!("00-{client_trace}-00f067aa0ba902b7-01"));
    let order = answer(order.json(&json!({"product_id": product["id"], "quantity": 1}))).await;
    let order_id = order["id"].as_str().unwrap().to_string();

    let wanted = ["place order", "payment", "warehouse", "relay to browsers"];
    let started = Instant::now();
    let of_order = loop {
        let of_order: Vec<Received> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|span| span.attributes.get("order_id") == Some(&order_id))
            .cloned()
            .collect();
        // Placing, payment, warehouse, and a relay of each of the order's three changes.
        let relays = of_order.iter().filter(|span| span.name == "relay to browsers").count();
        if wanted.iter().all(|name| of_order.iter().any(|span| span.name == *name)) && relays >= 3 {
            break of_order;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the order's spans did not all arrive: {of_order:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    let _ = working.await;
    tokio::task::spawn_blocking(move || exporting.shutdown()).await.unwrap();

    let placing = of_order.iter().find(|span| span.name == "place order").unwrap();
    assert_eq!(placing.service, "shop-server");
    let request = spans.lock().unwrap().iter().find(|span| span.span_id == placing.parent_span_id).cloned();
    let request = request.expect("the placing's parent: the request's span");
    assert_eq!((request.name.as_str(), request.parent_span_id.as_str()), ("POST /orders", "00f067aa0ba902b7"));
    let partition = placing.attributes.get("partition").expect("the partition").clone();
    assert!(partition.starts_with('p') && order_id.len() == 26);
    for span in &of_order {
        assert_eq!(span.trace_id, client_trace, "{span:?}");
        assert_eq!(span.attributes.get("partition"), Some(&partition), "{span:?}");
        if span.name != "place order" {
            assert_eq!(span.parent_span_id, placing.span_id, "{span:?} is a child of the placing");
        }
        let service =
            if ["payment", "warehouse"].contains(&span.name.as_str()) { "stockflow-workers" } else { "shop-server" };
        assert_eq!(span.service, service, "{span:?}");
    }
    // The server's log line of the placing carries the trace id, the order id and the partition.
    let placed: Value = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "order placed" && line["order_id"] == order_id.as_str())
        .expect("the log line of the placing");
    println!("the server's log line of the placing (LOG_FORMAT=json): {placed}");
    assert_eq!(placed["span"]["trace_id"], client_trace, "{placed}");
    assert_eq!(
        (placed["span"]["order_id"].as_str(), placed["span"]["partition"].as_str()),
        (Some(order_id.as_str()), Some(partition.as_str())),
        "{placed}"
    );
    // The trace as a tree, with each span's start (from the request's) and length.
    let mut tree = vec![(&request, 0), (placing, 1)];
    let mut steps: Vec<&Received> = of_order.iter().filter(|span| span.name != "place order").collect();
    steps.sort_by_key(|span| span.start_ns);
    tree.extend(steps.into_iter().map(|span| (span, 2)));
    println!("one order's trace ({client_trace}), from a debug build on two busy cores:");
    for (span, depth) in tree {
        println!(
            "{:indent$}{} [{}] +{:.1} ms, {:.2} ms",
            "",
            span.name,
            span.service,
            span.start_ns.saturating_sub(request.start_ns) as f64 / 1e6,
            span.end_ns.saturating_sub(span.start_ns) as f64 / 1e6,
            indent = 2 * depth
        );
    }
}
