//! Configuration from environment variables, each with a default that works
//! on a developer's machine.

use std::time::Duration;

use crate::admin::Secret;
use crate::connection::RedisTarget;
use crate::keys::{Layout, DEFAULT_NAMESPACE};
use crate::partition::Partitions;

/// Settings shared by the server and the workers.
#[derive(Debug, Clone)]
pub struct Config {
    /// `REDIS_URL`, or `REDIS_CLUSTER_NODES` for a cluster: where all state lives.
    pub redis: RedisTarget,
    /// `REDIS_NAMESPACE` and `PARTITIONS`: the key layout.
    pub layout: Layout,
    /// `REDIS_MIN_REPLICAS`: replicas a write must reach before an order is
    /// acknowledged to its client (and a consumer moves on); 0 trusts the master alone.
    pub min_replicas: u32,
    /// `REDIS_REPLICA_TIMEOUT_MS`: how long to wait for those replicas.
    pub replica_timeout: Duration,
    /// `STARTUP_WAIT_MS`: how long a process waits at start for Redis to
    /// answer before it gives up with a message.
    pub startup_wait: Duration,
    /// `PAYMENT_DELAY_MS`: how long the simulated payment takes. About a
    /// second by default so a person can watch an order move; 0 in tests.
    pub payment_delay: Duration,
    /// `MAX_DELIVERIES`: deliveries of one stream entry before it is
    /// dead-lettered instead of retried.
    pub max_deliveries: u64,
    /// `CLAIM_IDLE_MS`: how long an entry may sit unacknowledged with a
    /// consumer before another consumer claims it (the first one is presumed dead).
    pub claim_idle: Duration,
    /// `STREAM_MAXLEN`: the approximate length the `order-status` feed is trimmed to.
    pub stream_maxlen: u64,
    /// `CONSUMER_NAME`: this process's name within every consumer group; must
    /// differ between processes. Defaults to `<host>-<pid>`.
    pub consumer_name: String,
    /// `READ_BLOCK_MS`: how long one XREADGROUP blocks; bounds how quickly a
    /// consumer notices shutdown.
    pub read_block: Duration,
    /// `READ_COUNT`: stream entries read (and pipelined) per batch.
    pub read_count: usize,
    /// `IDEMPOTENCY_TTL_SECS`: how long an `Idempotency-Key` is remembered.
    pub idempotency_window: Duration,
    /// `ADMIN_TOKEN`: when set, creating, deleting and restocking products
    /// needs it (as a bearer token, or through the UI's sign-in).
    pub admin_token: Option<Secret>,
    /// `CORS_ORIGINS`: comma-separated origins (`https://shop.example`) whose
    /// pages may call the REST API from the browser; none by default.
    pub cors_origins: Vec<String>,
}

impl Config {
    /// Reads the environment, falling back to the defaults documented in the README.
    pub fn from_env() -> Result<Config, String> {
        Ok(Config {
            redis: match var("REDIS_CLUSTER_NODES") {
                Some(seeds) => RedisTarget::cluster(&seeds)?,
                None => RedisTarget::Single(var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".to_string())),
            },
            layout: Layout::new(
                var("REDIS_NAMESPACE").as_deref().unwrap_or(DEFAULT_NAMESPACE),
                match var("PARTITIONS") {
                    Some(text) => Partitions::parse(&text).map_err(|e| e.to_string())?,
                    None => Partitions::default(),
                },
            )
            .map_err(|e| e.to_string())?,
            min_replicas: u32::try_from(number("REDIS_MIN_REPLICAS", 0)?)
                .map_err(|_| "REDIS_MIN_REPLICAS is too large".to_string())?,
            replica_timeout: Duration::from_millis(number("REDIS_REPLICA_TIMEOUT_MS", 1000)?.max(1)),
            startup_wait: Duration::from_millis(number("STARTUP_WAIT_MS", 30_000)?),
            payment_delay: Duration::from_millis(number("PAYMENT_DELAY_MS", 1000)?),
            max_deliveries: number("MAX_DELIVERIES", 5)?.max(1),
            claim_idle: Duration::from_millis(number("CLAIM_IDLE_MS", 30_000)?.max(100)),
            stream_maxlen: number("STREAM_MAXLEN", 100_000)?.max(100),
            consumer_name: var("CONSUMER_NAME").unwrap_or_else(default_consumer_name),
            read_block: Duration::from_millis(number("READ_BLOCK_MS", 1000)?.clamp(10, 60_000)),
            read_count: number("READ_COUNT", 128)?.clamp(1, 10_000) as usize,
            idempotency_window: Duration::from_secs(number("IDEMPOTENCY_TTL_SECS", 86_400)?.max(1)),
            admin_token: var("ADMIN_TOKEN").map(Secret::new),
            cors_origins: origins(var("CORS_ORIGINS").as_deref().unwrap_or(""))?,
        })
    }

    /// Defaults with a given Redis, for tests.
    pub fn for_redis(redis_url: impl Into<String>) -> Config {
        Config::for_target(RedisTarget::Single(redis_url.into()))
    }

    /// Defaults with a given cluster (comma-separated seed URLs), for tests.
    pub fn for_cluster(seeds: &str) -> Config {
        Config::for_target(RedisTarget::cluster(seeds).expect("cluster seed URLs"))
    }

    /// Defaults with a given Redis or cluster, for tests.
    pub fn for_target(redis: RedisTarget) -> Config {
        Config {
            redis,
            layout: Layout::new(DEFAULT_NAMESPACE, Partitions::default()).expect("the default namespace is valid"),
            min_replicas: 0,
            replica_timeout: Duration::from_secs(1),
            startup_wait: Duration::from_secs(10),
            payment_delay: Duration::ZERO,
            max_deliveries: 5,
            claim_idle: Duration::from_secs(30),
            stream_maxlen: 100_000,
            consumer_name: default_consumer_name(),
            read_block: Duration::from_millis(200),
            read_count: 128,
            idempotency_window: Duration::from_secs(86_400),
            admin_token: None,
            cors_origins: Vec::new(),
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number(name: &str, default: u64) -> Result<u64, String> {
    match var(name) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| format!("{name} must be a whole number, got {text:?}")),
    }
}

/// `scheme://host[:port]` origins, comma-separated; anything else is refused
/// at start rather than silently allowing nothing (or everything).
fn origins(list: &str) -> Result<Vec<String>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let valid = ["http://", "https://"].iter().any(|scheme| {
                origin.strip_prefix(scheme).is_some_and(|host| !host.is_empty() && !host.contains(['/', ' ', '*']))
            });
            if valid {
                Ok(origin.to_string())
            } else {
                Err(format!("CORS_ORIGINS: {origin:?} is not an origin like https://shop.example"))
            }
        })
        .collect()
}

fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_a_comma_separated_list_of_origins() {
        assert_eq!(origins(""), Ok(vec![]));
        assert_eq!(
            origins(" https://a.example, http://localhost:8080 ,"),
            Ok(vec!["https://a.example".to_string(), "http://localhost:8080".to_string()])
        );
        for bad in ["*", "a.example", "https://", "https://a.example/path", "ftp://a"] {
            assert!(origins(bad).is_err(), "{bad}");
        }
    }
}
