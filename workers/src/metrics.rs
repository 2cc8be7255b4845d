//! The workers' Prometheus metrics: how long each order took from being
//! placed to its final status, recorded once, by the workers process that
//! finished it, and served at `WORKERS_METRICS_ADDR` when that is set.
//!
//! The server used to record it as it relayed the final change to browsers;
//! its relay now reads nothing while no browser watches, so the one place
//! that sees every order finish is the step that finishes it.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

/// Processing-time buckets, in seconds, from a millisecond to half a
/// minute: the server's latency buckets, so the dashboards read both alike.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The processing-time histogram's name (the alerts and the dashboard use it).
pub const PROCESSING: &str = "stockflow_order_processing_seconds";

/// Installs the Prometheus recorder and serves it over HTTP at `addr`
/// (any path answers); fails when the address cannot be bound.
pub fn serve(addr: SocketAddr) -> Result<(), BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &BUCKETS)?
        .with_http_listener(addr)
        .install()
}

/// Records that an order reached its final status (`outcome`: fulfilled
/// or refunded) at `now_ms`; the time it was placed is in its ULID.
/// Without an installed recorder (no `WORKERS_METRICS_ADDR`), nothing.
pub fn record_final(order_id: &str, outcome: &'static str, now_ms: u64) {
    if let Ok(id) = ulid::Ulid::from_string(order_id) {
        let seconds = now_ms.saturating_sub(id.timestamp_ms()) as f64 / 1000.0;
        metrics::histogram!(PROCESSING, "outcome" => outcome).record(seconds);
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    #[test]
    fn an_order_is_recorded_with_the_time_since_its_ulid_was_made() {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(PROCESSING.to_string()), &BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        let placed = ulid::Ulid::from_parts(1_000_000, 7);
        metrics::with_local_recorder(&recorder, || {
            record_final(&placed.to_string(), "fulfilled", 1_000_040);
            record_final("not an id", "fulfilled", 1_000_040);
        });
        let text = handle.render();
        assert!(
            text.contains(r#"stockflow_order_processing_seconds_bucket{outcome="fulfilled",le="0.05"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"stockflow_order_processing_seconds_bucket{outcome="fulfilled",le="0.025"} 0"#),
            "{text}"
        );
        assert!(text.contains(r#"stockflow_order_processing_seconds_count{outcome="fulfilled"} 1"#), "{text}");
    }
}
