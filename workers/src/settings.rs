//! The workers' own settings, beside the ones every binary shares
//! (`store::config::Settings`) and the consumer loops' (`store::config::ConsumerSettings`):
//! each an option and an environment variable.

use std::net::SocketAddr;

/// Settings only the workers binary reads.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WorkersSettings {
    /// Where to serve the workers' Prometheus metrics (the order processing
    /// time), like 127.0.0.1:9464 [default: not served].
    #[arg(long, env = "WORKERS_METRICS_ADDR", help_heading = "Workers")]
    pub metrics_addr: Option<SocketAddr>,
}
