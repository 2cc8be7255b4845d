//! How both processes write their logs: readable lines by default, or with
//! `LOG_FORMAT=json` one JSON object a line (time, level, target, message
//! and the event's fields such as `partition`, `order_id` or `node` at the
//! top level) for a log collector.

use clap::ValueEnum;

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// Installs the process's subscriber: `RUST_LOG` chooses what is logged,
/// else `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
}
