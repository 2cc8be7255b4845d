//! `GET /metrics` in the Prometheus text format.
//!
//! In-process histograms (request latency by route) come from the `metrics` crate's Prometheus recorder; the shop's state
//! (orders by status, stream lengths, dead letters, each group's lag,
//! pending count and oldest pending entry) and Redis' health (each
//! partition's readiness, each node's memory and eviction policy) are read
//! from Redis at scrape time, so every server instance reports the same,
//! current figures. The order processing time is the workers' (they serve
//! it at `WORKERS_METRICS_ADDR`). The alerts (`deploy/prometheus/alerts.yml`) and the
//! dashboard (`deploy/grafana/stockflow.json`) use these names; a test checks
//! that every name they use is here.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Latency buckets, in seconds, from a millisecond to half a minute.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Already installed (another server in the same test process): share it.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Middleware: records every routed request's latency by method, route and status.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    if let Some(route) = route {
        let status = response.status().as_u16().to_string();
        histogram!("stockflow_http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
            .record(started.elapsed().as_secs_f64());
    }
    response
}

/// The `method` label of a request: the standard methods by name, any
/// other as `other`, so that invented methods cannot grow `/metrics`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// How long a scrape waits for each of its reads of Redis.
const SCRAPE_WAIT: Duration = Duration::from_secs(2);

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let conn = state.shop.connection();
    let layout = state.shop.layout();
    let (observed, ready, memory) = tokio::join!(
        tokio::time::timeout(SCRAPE_WAIT, store::observe::observe(&conn, layout)),
        store::observe::partitions_ready(&conn, layout, SCRAPE_WAIT),
        tokio::time::timeout(SCRAPE_WAIT, store::observe::memory(&conn)),
    );
    match observed {
        Ok(Ok(observed)) => {
            gauge!("stockflow_redis_up").set(1.0);
            record_observed(observed);
        }
        _ => gauge!("stockflow_redis_up").set(0.0),
    }
    for (keys, ready) in layout.all().zip(&ready) {
        gauge!("stockflow_partition_ready", "partition" => keys.partition().to_string())
            .set(f64::from(u8::from(*ready)));
    }
    gauge!("stockflow_ready").set(f64::from(u8::from(ready.iter().all(|ready| *ready))));
    if let Ok(Ok(nodes)) = memory {
        for node in nodes {
            gauge!("stockflow_redis_memory_used_bytes", "node" => node.node.clone()).set(node.used_bytes as f64);
            gauge!("stockflow_redis_maxmemory_bytes", "node" => node.node.clone()).set(node.max_bytes as f64);
            gauge!("stockflow_redis_maxmemory_policy_evicts", "node" => node.node.clone())
                .set(f64::from(u8::from(node.may_evict())));
        }
    }
    gauge!("stockflow_feed_clients").set(state.feed.clients() as f64);
    gauge!("stockflow_feed_clients_max").set(state.feed.max_clients() as f64);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle().render())
}

/// The shop's state as gauges.
fn record_observed(observed: store::observe::Observed) {
    let now_ms = store::now_ms();
    for (status, count) in observed.orders {
        gauge!("stockflow_orders", "status" => status.as_str()).set(count as f64);
    }
    for stream in observed.streams {
        gauge!("stockflow_stream_length", "stream" => stream.stream).set(stream.length as f64);
        gauge!("stockflow_dead_letters", "stream" => stream.stream).set(stream.dead_letters as f64);
        counter!("stockflow_dead_letters_dropped_total", "stream" => stream.stream)
            .absolute(stream.dead_letters_dropped);
        for group in stream.groups {
            let age = group.oldest_pending_ms.map_or(0, |at| now_ms.saturating_sub(at)) as f64 / 1000.0;
            let labels = [("stream", stream.stream.to_string()), ("group", group.group)];
            gauge!("stockflow_group_lag", &labels).set(group.lag as f64);
            gauge!("stockflow_group_pending", &labels).set(group.pending as f64);
            gauge!("stockflow_group_oldest_pending_age_seconds", &labels).set(age);
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn invented_methods_count_as_other() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"FOO123").unwrap()), "other");
    }
}
