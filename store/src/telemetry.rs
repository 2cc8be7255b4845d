//! How both processes report what they do: logs, readable lines by default
//! or with `LOG_FORMAT=json` one JSON object a line (time, level, target,
//! message and the event's fields such as `partition`, `order_id` or `node`
//! at the top level, and within an order's step its `trace_id`), and, with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! set, one trace per order exported over OTLP/HTTP.
//!
//! An order's trace starts with `POST /orders` (or the page's order form),
//! under the caller's `traceparent` when it sends one. Its W3C trace context
//! is saved with the order and copied into each of its stream entries by
//! the scripts, so that every later step is a span of the same trace, a
//! child of the placing: the payment, the warehouse's decision and the
//! refund (in the workers), and each relay of a change to browsers (in the
//! servers), each with the order id and the partition. The usual `OTEL_*`
//! variables apply (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, ...).
//! Unset, no span is made and no trace context is saved: nothing is spent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::partition::Partition;

/// The `tracing` target of the spans of an order's steps.
pub const TARGET: &str = "stockflow::trace";

/// Whether spans are made and exported (set once, at start).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// What must be flushed before the process exits.
#[must_use = "shut it down at exit, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered (at most a few seconds).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(error) = provider.shutdown() {
                eprintln!("exporting the last spans failed: {error}");
            }
        }
    }
}

/// Whether a trace endpoint is configured.
fn endpoint_set() -> bool {
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()))
}

/// Installs the process's subscriber: logs as `format` says (`RUST_LOG`
/// chooses what, else `default_filter`), and traces when an OTLP endpoint
/// is set, as `service` unless `OTEL_SERVICE_NAME` names it.
pub fn init(format: LogFormat, default_filter: &str, service: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_filter(filter).boxed(),
        // Within an order's step, its span's fields (trace id, order id,
        // partition) go with every line, under "span".
        LogFormat::Json => {
            let steps = format!("{TARGET}=info").parse().expect("a valid directive");
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_filter(filter.add_directive(steps))
                .boxed()
        }
    };
    let (traces, provider) = match tracer_provider(service) {
        Some(provider) => {
            let tracer = provider.tracer("stockflow");
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO));
            ENABLED.store(true, Ordering::Relaxed);
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(logs).with(traces).init();
    Telemetry { provider }
}

/// The tracer provider exporting over OTLP/HTTP, if an endpoint is set.
fn tracer_provider(service: &str) -> Option<SdkTracerProvider> {
    if !endpoint_set() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but no exporter could be made ({error}); exporting no traces"
            );
            return None;
        }
    };
    let name = std::env::var("OTEL_SERVICE_NAME").ok().filter(|name| !name.is_empty());
    let resource = Resource::builder().with_service_name(name.unwrap_or_else(|| service.to_string())).build();
    Some(SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build())
}

/// Whether traces are exported: spans are made and trace contexts saved
/// only then.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The W3C `traceparent` of the current span, when traces are exported.
pub fn traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&Span::current().context(), &mut carrier);
    carrier.remove("traceparent")
}

/// A span for a step of an order's life (`name`: "place order",
/// "payment", ...) with its order id and partition: a child of the trace
/// `traceparent` names, else of the current span (or a trace of its own);
/// disabled when traces are not exported.
pub fn order_span(name: &'static str, traceparent: Option<&str>, order_id: &str, partition: Partition) -> Span {
    let span = step_span(name, traceparent);
    span.record("order_id", order_id);
    span.record("partition", partition.to_string());
    span
}

/// A span named `name`, a child of the trace `traceparent` names (a
/// request's header), else of the current span; its order id and
/// partition recorded later, if ever.
pub fn step_span(name: &'static str, traceparent: Option<&str>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(target: TARGET, "step", otel.name = name, order_id = Empty, partition = Empty, trace_id = Empty);
    if let Some(traceparent) = traceparent {
        let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    let trace_id = span.context().span().span_context().trace_id();
    span.record("trace_id", trace_id.to_string());
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_traced_or_saved_while_no_endpoint_is_set() {
        assert!(!enabled());
        assert_eq!(traceparent(), None);
        assert!(step_span("payment", Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).is_none());
    }
}
