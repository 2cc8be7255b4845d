//! Configuration: every setting is a command-line option and an environment
//! variable, with a default that works on a developer's machine.
//!
//! [`Settings`] is what `clap` parses for both binaries, [`ConsumerSettings`]
//! for the workers alone and [`ShopSettings`] for the server alone (so
//! `--help` lists each binary's own settings with its variable and default,
//! and an invalid value stops the process with a message naming the variable
//! and exit code 2); [`Config`] is the checked result the rest of the code
//! uses. Every default is stated once, in [`defaults`].

use std::time::Duration;

use clap::Args;

use crate::admin::{Secret, MIN_TOKEN_CHARS};
use crate::connection::RedisTarget;
use crate::keys::{Layout, DEFAULT_NAMESPACE};
use crate::limits::Rate;
use crate::partition::{Partitions, DEFAULT_PARTITIONS, MAX_PARTITIONS};
use crate::telemetry::LogFormat;

/// Every default, stated once: the options' defaults and [`Config::defaults`] read these.
pub mod defaults {
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
    pub const MIN_REPLICAS: u32 = 0;
    pub const REPLICA_TIMEOUT_MS: u64 = 1000;
    pub const STARTUP_WAIT_MS: u64 = 30_000;
    pub const STREAM_MAXLEN: u64 = 100_000;
    pub const READ_BLOCK_MS: u64 = 1000;
    pub const READ_LINGER_MS: u64 = 0;
    pub const READ_COUNT: u64 = 128;
    pub const WAKE_ON_PUSH: bool = true;
    pub const DEAD_LETTER_MAXLEN: u64 = 1_000_000;
    pub const PAYMENT_DELAY_MS: u64 = 1000;
    pub const MAX_DELIVERIES: u64 = 5;
    pub const CLAIM_IDLE_MS: u64 = 30_000;
    pub const CONSUMER_EXPIRY_MS: u64 = 3_600_000;
    pub const IDEMPOTENCY_TTL_SECS: u64 = 86_400;
    pub const ADMIN_SESSION_IDLE_SECS: u64 = 1800;
    pub const ADMIN_GUESS_BURST: u32 = 10;
    pub const ADMIN_GUESS_INTERVAL_SECS: u64 = 30;
}

/// The settings both binaries read, as given on the command line or in the environment.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// How logs are written: `text` (readable lines) or `json` (one object a line, for a log collector).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, help_heading = "Logging")]
    pub log_format: LogFormat,
    /// Where all state lives: one Redis (`rediss://` for TLS, `redis://:password@host:port`).
    #[arg(long, env = "REDIS_URL", default_value = defaults::REDIS_URL, help_heading = "Redis")]
    pub redis_url: String,
    /// Comma-separated URLs of some or all nodes of a Redis Cluster; when set, REDIS_URL is not used.
    #[arg(long, env = "REDIS_CLUSTER_NODES", value_parser = parse_cluster, help_heading = "Redis")]
    pub redis_cluster_nodes: Option<RedisTarget>,
    /// First part of every key, so several deployments or applications can share a Redis
    /// (letters, digits, '-', '_', '.').
    #[arg(long, env = "REDIS_NAMESPACE", default_value = DEFAULT_NAMESPACE, help_heading = "Redis")]
    pub redis_namespace: String,
    /// Partitions the data is split into (1-1024); fixed for a deployment: recorded on first start,
    /// and a process started with another value refuses to start.
    #[arg(long = "partition-count", env = "PARTITIONS", value_name = "PARTITIONS", default_value_t = DEFAULT_PARTITIONS, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_PARTITIONS)), help_heading = "Redis")]
    pub partition_count: u16,
    /// Replicas a write must reach (WAIT) before POST /orders answers 201 and before a consumer
    /// moves on; otherwise 503.
    #[arg(long, env = "REDIS_MIN_REPLICAS", default_value_t = defaults::MIN_REPLICAS, value_parser = clap::value_parser!(u32).range(0..=64), help_heading = "Redis")]
    pub redis_min_replicas: u32,
    /// How long to wait for those replicas, in milliseconds.
    #[arg(long, env = "REDIS_REPLICA_TIMEOUT_MS", default_value_t = defaults::REPLICA_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..=60_000), help_heading = "Redis")]
    pub redis_replica_timeout_ms: u64,
    /// How long a process waits at start for Redis before it gives up with a message, in milliseconds.
    #[arg(long, env = "STARTUP_WAIT_MS", default_value_t = defaults::STARTUP_WAIT_MS, value_parser = clap::value_parser!(u64).range(0..=3_600_000), help_heading = "Redis")]
    pub startup_wait_ms: u64,
    /// Approximate length the streams are trimmed to (work streams only past what every group
    /// has processed).
    #[arg(long, env = "STREAM_MAXLEN", default_value_t = defaults::STREAM_MAXLEN, value_parser = clap::value_parser!(u64).range(100..), help_heading = "Streams")]
    pub stream_maxlen: u64,
    /// How long one blocking stream read waits, in milliseconds; bounds shutdown time.
    #[arg(long, env = "READ_BLOCK_MS", default_value_t = defaults::READ_BLOCK_MS, value_parser = clap::value_parser!(u64).range(10..=60_000), help_heading = "Streams")]
    pub read_block_ms: u64,
    /// Under load (a read brought more than one entry but less than a full batch), how long a
    /// consumer, or the server's live-feed reader, waits before its next read, in milliseconds,
    /// so batches grow: fewer, larger script calls and reads, for a longer wait of every order.
    /// 0 (the default) reads again at once. A read that brings one entry never waits.
    #[arg(long, env = "READ_LINGER_MS", default_value_t = defaults::READ_LINGER_MS, value_parser = clap::value_parser!(u64).range(0..=1000), help_heading = "Streams")]
    pub read_linger_ms: u64,
}

/// The settings of the consumer loops: only the workers binary takes them.
#[derive(Debug, Clone, Args)]
pub struct ConsumerSettings {
    /// Stream entries read and applied per batch (one script call).
    #[arg(long, env = "READ_COUNT", default_value_t = defaults::READ_COUNT, value_parser = clap::value_parser!(u64).range(1..=10_000), help_heading = "Streams")]
    pub read_count: u64,
    /// Simulated payment time, in milliseconds; delays run concurrently.
    #[arg(long, env = "PAYMENT_DELAY_MS", default_value_t = defaults::PAYMENT_DELAY_MS, value_parser = clap::value_parser!(u64).range(0..=3_600_000), help_heading = "Workers")]
    pub payment_delay_ms: u64,
    /// Deliveries of one stream entry before it is dead-lettered.
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = defaults::MAX_DELIVERIES, value_parser = clap::value_parser!(u64).range(1..=1000), help_heading = "Workers")]
    pub max_deliveries: u64,
    /// Idle time, in milliseconds, after which another consumer claims an unacknowledged entry
    /// (its consumer is presumed dead; live consumers keep theirs fresh).
    #[arg(long, env = "CLAIM_IDLE_MS", default_value_t = defaults::CLAIM_IDLE_MS, value_parser = clap::value_parser!(u64).range(100..=86_400_000), help_heading = "Workers")]
    pub claim_idle_ms: u64,
    /// This workers process's name in the consumer groups; must be unique per process
    /// [default: <hostname>-<pid>].
    #[arg(long, env = "CONSUMER_NAME", help_heading = "Workers")]
    pub consumer_name: Option<String>,
    /// Idle time, in milliseconds, after which a consumer that holds no pending entry is removed
    /// from its group (names of processes that are gone).
    #[arg(long, env = "CONSUMER_EXPIRY_MS", default_value_t = defaults::CONSUMER_EXPIRY_MS, value_parser = clap::value_parser!(u64).range(1000..), help_heading = "Workers")]
    pub consumer_expiry_ms: u64,
    /// Approximate length each dead-letter stream is kept to; dead letters that fall off are
    /// counted in the metric stockflow_dead_letters_dropped.
    #[arg(long, env = "DEAD_LETTER_MAXLEN", default_value_t = defaults::DEAD_LETTER_MAXLEN, value_parser = clap::value_parser!(u64).range(100..), help_heading = "Streams")]
    pub dead_letter_maxlen: u64,
    /// On Redis 7 or later (one or a cluster), the payment and warehouse consumers read a
    /// partition's stream when the scripts push an entry to it, rather than block on every
    /// partition's stream (false: block).
    #[arg(long, env = "WAKE_ON_PUSH", default_value_t = defaults::WAKE_ON_PUSH, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Streams")]
    pub wake_on_push: bool,
}

/// The settings of the shop's service (idempotency, the admin gate, CORS):
/// only the server binary takes them.
#[derive(Debug, Clone, Args)]
pub struct ShopSettings {
    /// How long an Idempotency-Key of POST /orders or POST /product is remembered, in seconds.
    #[arg(long, env = "IDEMPOTENCY_TTL_SECS", default_value_t = defaults::IDEMPOTENCY_TTL_SECS, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Server")]
    pub idempotency_ttl_secs: u64,
    /// Token needed to create, delete and restock products (bearer header, or the UI's sign-in);
    /// at least 16 characters [default: unset, the warehouse is open].
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, help_heading = "Server")]
    pub admin_token: Option<String>,
    /// Seconds an admin session may go unused before it ends (it ends 12 hours after sign-in
    /// at the latest, and when ADMIN_TOKEN changes).
    #[arg(long, env = "ADMIN_SESSION_IDLE_SECS", default_value_t = defaults::ADMIN_SESSION_IDLE_SECS, value_parser = clap::value_parser!(u64).range(60..=43_200), help_heading = "Server")]
    pub admin_session_idle_secs: u64,
    /// Wrong admin tokens one client address may send in a row before it is throttled (429).
    #[arg(long, env = "ADMIN_GUESS_BURST", default_value_t = defaults::ADMIN_GUESS_BURST, value_parser = clap::value_parser!(u32).range(1..=10_000), help_heading = "Server")]
    pub admin_guess_burst: u32,
    /// Once throttled, seconds a client waits for each further try of an admin token.
    #[arg(long, env = "ADMIN_GUESS_INTERVAL_SECS", default_value_t = defaults::ADMIN_GUESS_INTERVAL_SECS, value_parser = clap::value_parser!(u64).range(1..=86_400), help_heading = "Server")]
    pub admin_guess_interval_secs: u64,
    /// Comma-separated origins, like https://shop.example, whose pages may call the API
    /// [default: unset, no cross-origin access].
    #[arg(long, env = "CORS_ORIGINS", value_parser = parse_origins, help_heading = "Server")]
    pub cors_origins: Option<Origins>,
}

/// Settings shared by the server and the workers, checked.
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
    /// `STREAM_MAXLEN`: the approximate length streams are trimmed to.
    pub stream_maxlen: u64,
    /// `DEAD_LETTER_MAXLEN`: the approximate length of each dead-letter stream.
    pub dead_letter_maxlen: u64,
    /// `CONSUMER_NAME`: this process's name within every consumer group; must
    /// differ between processes. Defaults to `<host>-<pid>`.
    pub consumer_name: String,
    /// `CONSUMER_EXPIRY_MS`: idle time after which a consumer holding no
    /// pending entry is removed from its group.
    pub consumer_expiry: Duration,
    /// `READ_BLOCK_MS`: how long one XREADGROUP blocks; bounds how quickly a
    /// consumer notices shutdown.
    pub read_block: Duration,
    /// `READ_COUNT`: stream entries read (and applied in one script call) per batch.
    pub read_count: usize,
    /// `READ_LINGER_MS`: the pause between reads under load, so batches grow.
    pub read_linger: Duration,
    /// `WAKE_ON_PUSH`: whether a consumer of a live stream reads when the
    /// scripts push an entry rather than blocking.
    pub wake_on_push: bool,
    /// `IDEMPOTENCY_TTL_SECS`: how long an `Idempotency-Key` is remembered.
    pub idempotency_window: Duration,
    /// `ADMIN_TOKEN`: when set, creating, deleting and restocking products
    /// needs it (as a bearer token, or through the UI's sign-in).
    pub admin_token: Option<Secret>,
    /// `CORS_ORIGINS`: comma-separated origins (`https://shop.example`) whose
    /// pages may call the REST API from the browser; none by default.
    pub cors_origins: Vec<String>,
    /// `ADMIN_SESSION_IDLE_SECS`: how long an admin session may go unused.
    pub admin_session_idle: Duration,
    /// `ADMIN_GUESS_BURST` and `ADMIN_GUESS_INTERVAL_SECS`: how many wrong
    /// admin tokens one client address may try.
    pub admin_guesses: Rate,
}

impl Settings {
    /// Checks what `clap` cannot check alone; the message names the variable.
    /// The settings of one binary alone keep their defaults until that
    /// binary's own settings apply ([`ConsumerSettings::apply`], [`ShopSettings::apply`]).
    pub fn check(self) -> Result<Config, String> {
        let partitions = Partitions::new(self.partition_count).map_err(|e| e.to_string())?;
        let layout = Layout::new(&self.redis_namespace, partitions).map_err(|e| e.to_string())?;
        Ok(Config {
            layout,
            min_replicas: self.redis_min_replicas,
            replica_timeout: Duration::from_millis(self.redis_replica_timeout_ms),
            startup_wait: Duration::from_millis(self.startup_wait_ms),
            stream_maxlen: self.stream_maxlen,
            read_block: Duration::from_millis(self.read_block_ms),
            read_linger: Duration::from_millis(self.read_linger_ms),
            ..Config::defaults(self.redis_cluster_nodes.unwrap_or(RedisTarget::Single(self.redis_url)))
        })
    }
}

impl ConsumerSettings {
    /// Checks these settings and sets them in `config`; the message names the variable.
    pub fn apply(self, mut config: Config) -> Result<Config, String> {
        let claim_idle = Duration::from_millis(self.claim_idle_ms);
        let consumer_expiry = Duration::from_millis(self.consumer_expiry_ms);
        if consumer_expiry <= claim_idle {
            return Err(format!(
                "CONSUMER_EXPIRY_MS ({}) must be longer than CLAIM_IDLE_MS ({}): a consumer is removed only \
                 long after its entries could have been claimed",
                self.consumer_expiry_ms, self.claim_idle_ms
            ));
        }
        config.read_count = self.read_count as usize;
        config.payment_delay = Duration::from_millis(self.payment_delay_ms);
        config.max_deliveries = self.max_deliveries;
        config.claim_idle = claim_idle;
        config.consumer_expiry = consumer_expiry;
        config.dead_letter_maxlen = self.dead_letter_maxlen;
        config.wake_on_push = self.wake_on_push;
        if let Some(name) = self.consumer_name.filter(|n| !n.trim().is_empty()) {
            config.consumer_name = name;
        }
        Ok(config)
    }
}

impl ShopSettings {
    /// Checks these settings and sets them in `config`; the message names the variable.
    pub fn apply(self, mut config: Config) -> Result<Config, String> {
        let admin_token = self.admin_token.map(Secret::new);
        if let Some(token) = &admin_token {
            if token.chars() < MIN_TOKEN_CHARS {
                return Err(format!(
                    "ADMIN_TOKEN has {} characters; use at least {MIN_TOKEN_CHARS} (for example `openssl rand -hex 24`)",
                    token.chars()
                ));
            }
        }
        config.idempotency_window = Duration::from_secs(self.idempotency_ttl_secs);
        config.admin_token = admin_token;
        config.admin_session_idle = Duration::from_secs(self.admin_session_idle_secs);
        config.admin_guesses =
            Rate { burst: self.admin_guess_burst, interval: Duration::from_secs(self.admin_guess_interval_secs) };
        config.cors_origins = self.cors_origins.map(|o| o.0).unwrap_or_default();
        Ok(config)
    }
}

impl Config {
    /// Defaults with a given Redis, for tests.
    pub fn for_redis(redis_url: impl Into<String>) -> Config {
        Config::for_target(RedisTarget::Single(redis_url.into()))
    }

    /// Defaults with a given cluster (comma-separated seed URLs), for tests.
    pub fn for_cluster(seeds: &str) -> Config {
        Config::for_target(RedisTarget::cluster(seeds).expect("cluster seed URLs"))
    }

    /// Test defaults pointed where the environment variable `variable` would
    /// point a process: `("REDIS_URL", url)` or `("REDIS_CLUSTER_NODES", seeds)`.
    pub fn for_variable((variable, value): (&str, String)) -> Config {
        match variable {
            "REDIS_CLUSTER_NODES" => Config::for_cluster(&value),
            _ => Config::for_redis(value),
        }
    }

    /// Test defaults with a given Redis or cluster: no payment delay, short
    /// blocking reads, a shorter wait for Redis at start.
    pub fn for_target(redis: RedisTarget) -> Config {
        Config {
            payment_delay: Duration::ZERO,
            read_block: Duration::from_millis(200),
            startup_wait: Duration::from_secs(10),
            ..Config::defaults(redis)
        }
    }

    /// Every setting at its default ([`defaults`]), with a given Redis or cluster.
    pub fn defaults(redis: RedisTarget) -> Config {
        use defaults::*;
        Config {
            redis,
            layout: Layout::new(DEFAULT_NAMESPACE, Partitions::default()).expect("the default namespace is valid"),
            min_replicas: MIN_REPLICAS,
            replica_timeout: Duration::from_millis(REPLICA_TIMEOUT_MS),
            startup_wait: Duration::from_millis(STARTUP_WAIT_MS),
            payment_delay: Duration::from_millis(PAYMENT_DELAY_MS),
            max_deliveries: MAX_DELIVERIES,
            claim_idle: Duration::from_millis(CLAIM_IDLE_MS),
            stream_maxlen: STREAM_MAXLEN,
            dead_letter_maxlen: DEAD_LETTER_MAXLEN,
            consumer_name: default_consumer_name(),
            consumer_expiry: Duration::from_millis(CONSUMER_EXPIRY_MS),
            read_block: Duration::from_millis(READ_BLOCK_MS),
            read_count: READ_COUNT as usize,
            read_linger: Duration::from_millis(READ_LINGER_MS),
            wake_on_push: WAKE_ON_PUSH,
            idempotency_window: Duration::from_secs(IDEMPOTENCY_TTL_SECS),
            admin_token: None,
            admin_session_idle: Duration::from_secs(ADMIN_SESSION_IDLE_SECS),
            cors_origins: Vec::new(),
            admin_guesses: Rate { burst: ADMIN_GUESS_BURST, interval: Duration::from_secs(ADMIN_GUESS_INTERVAL_SECS) },
        }
    }
}

fn parse_cluster(text: &str) -> Result<RedisTarget, String> {
    RedisTarget::cluster(text)
}

/// Origins allowed to call the API from their pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins(pub Vec<String>);

/// `scheme://host[:port]` origins, comma-separated; anything else is refused
/// at start rather than silently allowing nothing (or everything).
fn parse_origins(list: &str) -> Result<Origins, String> {
    comma_separated(list, |origin| Origin::parse(origin).map(|o| o.origin)).map(Origins)
}

/// A comma-separated list of settings, each parsed; blanks are skipped.
pub fn comma_separated<T>(list: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    list.split(',').map(str::trim).filter(|item| !item.is_empty()).map(parse).collect()
}

/// An origin browsers reach the shop at: `https://shop.example[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `scheme://host[:port]`, lower case, as browsers send it in `Origin`.
    pub origin: String,
    /// The host name (or address) alone, lower case, without the port.
    pub host: String,
    pub https: bool,
}

impl Origin {
    /// Parses `scheme://host[:port]` (no path, user or wildcard).
    pub fn parse(text: &str) -> Result<Origin, String> {
        let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let (https, authority) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{text:?} is not an origin like https://shop.example"));
        };
        if authority.is_empty() || authority.contains(['/', ' ', '*', '@', '?', '#']) {
            return Err(format!("{text:?} is not an origin like https://shop.example"));
        }
        let host = host_of(authority).ok_or_else(|| format!("{text:?} has no host name"))?.to_string();
        Ok(Origin { origin: text.clone(), host, https })
    }
}

/// The host of an authority (`host`, `host:port`, `[v6]:port`), without its port.
pub fn host_of(authority: &str) -> Option<&str> {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        &authority[..rest.find(']')? + 2]
    } else {
        authority.rsplit_once(':').map_or(authority, |(host, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                host
            } else {
                authority
            }
        })
    };
    (!host.is_empty()).then_some(host)
}

/// The rows of a README's configuration table: (variable, default column).
pub fn documented_settings(readme: &str) -> Vec<(String, String)> {
    readme
        .split("## Configuration")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let variable = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            variable
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                .then(|| (variable.to_string(), cells[2].to_string()))
        })
        .collect()
}

/// Panics unless every setting of `command` that has an environment
/// variable is a row of the README's configuration table, with its default;
/// returns those variables.
pub fn check_documented(command: &clap::Command, readme: &str) -> Vec<String> {
    let rows = documented_settings(readme);
    let mut variables = Vec::new();
    for arg in command.get_arguments() {
        let Some(variable) = arg.get_env().and_then(|v| v.to_str()) else { continue };
        variables.push(variable.to_string());
        let row = rows.iter().find(|(name, _)| name == variable);
        let (_, default) = row.unwrap_or_else(|| panic!("README's configuration table lacks {variable}"));
        for value in arg.get_default_values() {
            let value = value.to_str().unwrap_or_default();
            assert!(
                default.contains(&format!("`{value}`")),
                "README says {variable} defaults to {default}, the program {value}"
            );
        }
    }
    variables
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
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        consumers: ConsumerSettings,
        #[command(flatten)]
        shop: ShopSettings,
    }

    fn parse(args: &[&str]) -> Result<Config, String> {
        let command =
            Command::try_parse_from(std::iter::once("test").chain(args.iter().copied())).map_err(|e| e.to_string())?;
        command.shop.apply(command.consumers.apply(command.settings.check()?)?)
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_of("shop.example:443"), Some("shop.example"));
        assert_eq!(host_of("shop.example"), Some("shop.example"));
        assert_eq!(host_of("[::1]:3000"), Some("[::1]"));
        assert_eq!(host_of("[::1]"), Some("[::1]"));
        assert_eq!(host_of(":80"), None);
    }

    #[test]
    fn cors_origins_are_a_comma_separated_list_of_origins() {
        assert_eq!(parse_origins(""), Ok(Origins(vec![])));
        assert_eq!(
            parse_origins(" https://a.example, http://localhost:8080 ,"),
            Ok(Origins(vec!["https://a.example".to_string(), "http://localhost:8080".to_string()]))
        );
        for bad in ["*", "a.example", "https://", "https://a.example/path", "ftp://a"] {
            assert!(parse_origins(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_work_on_a_developers_machine() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.redis, RedisTarget::Single("redis://127.0.0.1:6379".into()));
        assert_eq!(config.layout.partitions().count(), 16);
        assert_eq!(config.layout.namespace(), "stockflow");
        assert_eq!((config.payment_delay, config.claim_idle), (Duration::from_secs(1), Duration::from_secs(30)));
        assert_eq!((config.max_deliveries, config.read_count, config.dead_letter_maxlen), (5, 128, 1_000_000));
    }

    #[test]
    fn the_options_defaults_are_the_configs_defaults() {
        let parsed = format!("{:?}", parse(&["--consumer-name", "x"]).unwrap());
        let mut defaults = Config::defaults(RedisTarget::Single(defaults::REDIS_URL.into()));
        defaults.consumer_name = "x".into();
        assert_eq!(parsed, format!("{defaults:?}"));
    }

    #[test]
    fn each_binary_takes_only_its_own_settings() {
        #[derive(Parser)]
        struct Workers {
            #[command(flatten)]
            settings: Settings,
            #[command(flatten)]
            consumers: ConsumerSettings,
        }
        #[derive(Parser)]
        struct Server {
            #[command(flatten)]
            settings: Settings,
            #[command(flatten)]
            shop: ShopSettings,
        }
        assert!(Workers::try_parse_from(["workers", "--payment-delay-ms", "5"]).is_ok());
        assert!(Workers::try_parse_from(["workers", "--cors-origins", "https://a.example"]).is_err());
        assert!(Server::try_parse_from(["server", "--cors-origins", "https://a.example"]).is_ok());
        assert!(Server::try_parse_from(["server", "--payment-delay-ms", "5"]).is_err());
    }

    #[test]
    fn the_readme_lists_every_setting_with_its_default() {
        use clap::CommandFactory;
        // The other way round (every row is a setting of some program) is
        // checked by the server, which knows its own settings too.
        check_documented(&Command::command(), include_str!("../../README.md"));
    }

    #[test]
    fn invalid_values_are_refused_naming_the_setting() {
        for (args, named) in [
            (&["--max-deliveries", "0"][..], "--max-deliveries"),
            (&["--read-count", "abc"], "--read-count"),
            (&["--claim-idle-ms", "5"], "--claim-idle-ms"),
            (&["--partition-count", "0"], "PARTITIONS"),
            (&["--redis-namespace", "a b"], "REDIS_NAMESPACE"),
            (&["--cors-origins", "*"], "--cors-origins"),
            (&["--claim-idle-ms", "5000", "--consumer-expiry-ms", "4000"], "CONSUMER_EXPIRY_MS"),
            (&["--admin-token", "short"], "ADMIN_TOKEN"),
            (&["--admin-token", ""], "ADMIN_TOKEN"),
        ] {
            let error = parse(args).unwrap_err();
            assert!(error.contains(named), "{args:?}: {error}");
        }
    }
}
