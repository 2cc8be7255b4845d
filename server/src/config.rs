//! The web server's own settings: where it listens, who it serves, and the
//! limits that keep one client from exhausting it. (The settings it shares
//! with the workers, Redis first, are `store::config`.)

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;
use store::config::comma_separated;
pub use store::config::{host_of, Origin};
use store::limits::Rate;

/// The server's settings, as given on the command line or in the environment.
#[derive(Debug, Clone, Args)]
pub struct ServerSettings {
    /// Address the web server listens on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000", help_heading = "Server")]
    pub site_addr: SocketAddr,
    /// The origin (or comma-separated origins) browsers reach the shop at, like
    /// https://shop.example: requests for any other Host are refused, and an https origin makes
    /// the admin cookie Secure [default: unset; on a loopback address only loopback names are
    /// accepted].
    #[arg(long, env = "PUBLIC_ORIGIN", value_parser = parse_public_origins, help_heading = "Security")]
    pub public_origin: Option<PublicOrigins>,
    /// Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For, Forwarded
    /// and X-Forwarded-Proto are believed [default: unset, none: every client is its TCP peer].
    #[arg(long, env = "TRUSTED_PROXIES", value_parser = parse_proxies, help_heading = "Security")]
    pub trusted_proxies: Option<TrustedProxies>,
    /// Serve a warehouse anyone may change (no ADMIN_TOKEN) on a non-loopback address; without
    /// it the server refuses to start so.
    #[arg(long, env = "ALLOW_OPEN_WAREHOUSE", help_heading = "Security")]
    pub allow_open_warehouse: bool,
    /// Address to serve /metrics on, apart from the shop (then the shop's address does not serve
    /// it) [default: unset, /metrics on the shop's address].
    #[arg(long, env = "METRICS_ADDR", help_heading = "Server")]
    pub metrics_addr: Option<SocketAddr>,
    /// Seconds a client has to send a request's headers, from when its connection opens or its
    /// next request begins.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Limits")]
    pub header_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit idle between requests before it is closed.
    #[arg(long, env = "KEEP_ALIVE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Limits")]
    pub keep_alive_timeout_secs: u64,
    /// Open connections at most; further ones are closed at once (raise `ulimit -n` with it).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(16..=1_000_000), help_heading = "Limits")]
    pub max_connections: u64,
    /// Live-feed connections at most, in all; further ones get 503 with Retry-After.
    #[arg(long, env = "FEED_MAX_CLIENTS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000), help_heading = "Limits")]
    pub feed_max_clients: u64,
    /// Live-feed connections at most per client address; further ones get 429 with Retry-After.
    #[arg(long, env = "FEED_MAX_PER_CLIENT", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1_000_000), help_heading = "Limits")]
    pub feed_max_per_client: u64,
    /// Changes a resuming browser is replayed at most; one further behind is told to reload
    /// its lists instead.
    #[arg(long, env = "FEED_REPLAY_MAX", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000), help_heading = "Limits")]
    pub feed_replay_max: u64,
    /// Seconds a live-feed connection lasts at most (give or take a tenth); the browser then
    /// reconnects and resumes where it was.
    #[arg(long, env = "FEED_MAX_AGE_SECS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(10..=86_400), help_heading = "Limits")]
    pub feed_max_age_secs: u64,
    /// While changes flow, milliseconds the live feed waits before it reads again, without
    /// blocking (0: one blocking read per change); browsers see a change up to this much later.
    #[arg(long, env = "FEED_POLL_MS", default_value_t = DEFAULT_FEED_POLL_MS, value_parser = clap::value_parser!(u64).range(0..=1000), help_heading = "Limits")]
    pub feed_poll_ms: u64,
    /// On Redis 7 or later (one or a cluster read from its masters), follow the live streams from
    /// what the scripts push as they write them, rather than reading them for each change
    /// (false: read them).
    #[arg(long, env = "FEED_PUSH", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Limits")]
    pub feed_push: bool,
    /// Orders one client address may place per minute on average (0: no limit); past it, 429
    /// with Retry-After.
    #[arg(long, env = "ORDER_RATE_PER_CLIENT", default_value_t = 60, value_parser = clap::value_parser!(u32).range(0..=1_000_000), help_heading = "Limits")]
    pub order_rate_per_client: u32,
    /// Orders one client address may place in a row before ORDER_RATE_PER_CLIENT applies.
    #[arg(long, env = "ORDER_BURST_PER_CLIENT", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = "Limits")]
    pub order_burst_per_client: u32,
    /// Searches and page renders one client address may ask for per second on average (0: no
    /// limit); past it, 429 with Retry-After.
    #[arg(long, env = "SEARCH_RATE_PER_CLIENT", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1_000_000), help_heading = "Limits")]
    pub search_rate_per_client: u32,
    /// Searches and page renders one client address may ask for in a row before
    /// SEARCH_RATE_PER_CLIENT applies.
    #[arg(long, env = "SEARCH_BURST_PER_CLIENT", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = "Limits")]
    pub search_burst_per_client: u32,
}

/// The server's settings, checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `LEPTOS_SITE_ADDR`: where the shop listens.
    pub site_addr: SocketAddr,
    /// `PUBLIC_ORIGIN`: the origins browsers reach the shop at (the first is
    /// the canonical one); empty when unset.
    pub public_origins: Vec<Origin>,
    /// `TRUSTED_PROXIES`: whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `METRICS_ADDR`: where /metrics is served, when apart from the shop.
    pub metrics_addr: Option<SocketAddr>,
    /// `HEADER_READ_TIMEOUT_SECS`, `KEEP_ALIVE_TIMEOUT_SECS`, `MAX_CONNECTIONS`.
    pub connections: ConnectionLimits,
    /// `FEED_*`: the live feed's caps.
    pub feed: FeedLimits,
    /// `ORDER_RATE_PER_CLIENT` and `ORDER_BURST_PER_CLIENT` (`None`: no limit).
    pub order_rate: Option<Rate>,
    /// `SEARCH_RATE_PER_CLIENT` and `SEARCH_BURST_PER_CLIENT` (`None`: no limit).
    pub search_rate: Option<Rate>,
}

/// How long a connection may take and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a connection's opening, or the first byte of its next request,
    /// to the end of the request's headers.
    pub header_read: Duration,
    /// Between the end of a response and the first byte of the next request.
    pub keep_alive: Duration,
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read: Duration::from_secs(10),
            keep_alive: Duration::from_secs(60),
            max_connections: 16_384,
        }
    }
}

/// `FEED_POLL_MS`'s default: a blocking read over every partition's live
/// streams for each change cost 218–284 of an order's 634–673 µs of Redis
/// CPU at 200 orders/s (one server watched), while a read at most every 2 ms
/// costs 101–114 µs and shows a change to browsers about 2 ms later (see
/// README.md, "The live feed's cost, and more servers").
pub const DEFAULT_FEED_POLL_MS: u64 = 2;

/// The live feed's caps, and how often it reads while changes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLimits {
    pub max_clients: usize,
    pub max_per_client: usize,
    /// Changes replayed to one browser at most before it is told to reload.
    pub replay_max: usize,
    /// How long one connection lasts at most (give or take a tenth).
    pub max_age: Duration,
    /// While changes flow, the pause before the next read, which then does
    /// not block (zero: every read blocks until a change comes).
    pub poll: Duration,
    /// Whether it follows the scripts' pushes rather than reading the
    /// streams for each change (not where it reads from replicas).
    pub push: bool,
}

impl Default for FeedLimits {
    fn default() -> Self {
        FeedLimits {
            max_clients: 10_000,
            max_per_client: 32,
            replay_max: 10_000,
            max_age: Duration::from_secs(1800),
            poll: Duration::from_millis(DEFAULT_FEED_POLL_MS),
            push: true,
        }
    }
}

impl ServerConfig {
    /// Test defaults: loopback, no proxies, no per-client rates (tests that
    /// need one set it).
    pub fn for_tests() -> ServerConfig {
        ServerConfig {
            site_addr: ([127, 0, 0, 1], 0).into(),
            public_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_addr: None,
            connections: ConnectionLimits::default(),
            feed: FeedLimits::default(),
            order_rate: None,
            search_rate: None,
        }
    }
}

impl ServerSettings {
    /// Checks the settings against each other and against the shared ones
    /// (`admin_token_set`); the message names the setting.
    pub fn check(self, admin_token_set: bool) -> Result<ServerConfig, String> {
        if !admin_token_set && !self.allow_open_warehouse && !self.site_addr.ip().is_loopback() {
            return Err(format!(
                "LEPTOS_SITE_ADDR {} is not a loopback address and ADMIN_TOKEN is unset: anyone who reaches \
                 it could create, restock and delete products. Set ADMIN_TOKEN (at least 16 characters), \
                 or set ALLOW_OPEN_WAREHOUSE=true to serve an open warehouse on purpose",
                self.site_addr
            ));
        }
        if self.feed_max_clients >= self.max_connections {
            return Err(format!(
                "FEED_MAX_CLIENTS ({}) must be below MAX_CONNECTIONS ({}): the live feed must leave room for \
                 other requests",
                self.feed_max_clients, self.max_connections
            ));
        }
        if self.metrics_addr == Some(self.site_addr) {
            return Err(
                "METRICS_ADDR must differ from LEPTOS_SITE_ADDR (leave it unset to serve /metrics there)".into()
            );
        }
        Ok(ServerConfig {
            site_addr: self.site_addr,
            public_origins: self.public_origin.map(|o| o.0).unwrap_or_default(),
            trusted_proxies: self.trusted_proxies.map(|p| p.0).unwrap_or_default(),
            metrics_addr: self.metrics_addr,
            connections: ConnectionLimits {
                header_read: Duration::from_secs(self.header_read_timeout_secs),
                keep_alive: Duration::from_secs(self.keep_alive_timeout_secs),
                max_connections: self.max_connections as usize,
            },
            feed: FeedLimits {
                max_clients: self.feed_max_clients as usize,
                max_per_client: self.feed_max_per_client as usize,
                replay_max: self.feed_replay_max as usize,
                max_age: Duration::from_secs(self.feed_max_age_secs),
                poll: Duration::from_millis(self.feed_poll_ms),
                push: self.feed_push,
            },
            order_rate: Rate::per_minute(self.order_rate_per_client, self.order_burst_per_client),
            search_rate: Rate::per_second(self.search_rate_per_client, self.search_burst_per_client),
        })
    }
}

/// `PUBLIC_ORIGIN`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigins(pub Vec<Origin>);

fn parse_public_origins(list: &str) -> Result<PublicOrigins, String> {
    comma_separated(list, Origin::parse).map(PublicOrigins)
}

/// `TRUSTED_PROXIES`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

fn parse_proxies(list: &str) -> Result<TrustedProxies, String> {
    let parse = |proxy: &str| {
        proxy
            .parse::<IpNet>()
            .or_else(|_| proxy.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("{proxy:?} is not an address or CIDR like 10.0.0.0/8"))
    };
    comma_separated(list, parse).map(TrustedProxies)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        settings: ServerSettings,
    }

    fn parse(args: &[&str], admin_token_set: bool) -> Result<ServerConfig, String> {
        let command = Command::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        command.settings.check(admin_token_set)
    }

    #[test]
    fn an_open_warehouse_is_served_on_loopback_only_unless_the_operator_says_so() {
        assert!(parse(&[], false).is_ok());
        assert!(parse(&["--site-addr", "[::1]:3000"], false).is_ok());
        let refused = parse(&["--site-addr", "0.0.0.0:3000"], false).unwrap_err();
        assert!(refused.contains("ADMIN_TOKEN") && refused.contains("ALLOW_OPEN_WAREHOUSE"), "{refused}");
        assert!(parse(&["--site-addr", "0.0.0.0:3000"], true).is_ok());
        assert!(parse(&["--site-addr", "0.0.0.0:3000", "--allow-open-warehouse"], false).is_ok());
    }

    #[test]
    fn origins_and_proxies_are_parsed_or_refused_naming_the_setting() {
        let config = parse(&["--public-origin", "https://Shop.Example, http://localhost:8080/"], false).unwrap();
        let hosts: Vec<_> = config.public_origins.iter().map(|o| (o.host.as_str(), o.https)).collect();
        assert_eq!(hosts, [("shop.example", true), ("localhost", false)]);
        assert_eq!(config.public_origins[1].origin, "http://localhost:8080");
        for bad in ["shop.example", "https://", "https://*.example", "ftp://a", "https://a/b"] {
            assert!(parse(&["--public-origin", bad], false).unwrap_err().contains("public-origin"), "{bad}");
        }
        let config = parse(&["--trusted-proxies", "10.0.0.0/8, 192.0.2.7,::1"], false).unwrap();
        assert_eq!(config.trusted_proxies.len(), 3);
        assert!(config.trusted_proxies[1].contains(&"192.0.2.7".parse::<IpAddr>().unwrap()));
        assert!(parse(&["--trusted-proxies", "10.0.0.0/33"], false).unwrap_err().contains("trusted-proxies"));
        let refused = parse(&["--feed-max-clients", "100", "--max-connections", "100"], false).unwrap_err();
        assert!(refused.contains("FEED_MAX_CLIENTS"), "{refused}");
    }

    #[test]
    fn the_readme_documents_every_setting_and_nothing_else() {
        use clap::CommandFactory;
        #[derive(Parser)]
        struct Server {
            #[command(flatten)]
            shared: store::config::Settings,
            #[command(flatten)]
            shop: store::config::ShopSettings,
            #[command(flatten)]
            own: ServerSettings,
        }
        #[derive(Parser)]
        struct Workers {
            #[command(flatten)]
            shared: store::config::Settings,
            #[command(flatten)]
            consumers: store::config::ConsumerSettings,
            #[command(flatten)]
            own: workers::settings::WorkersSettings,
        }
        let readme = include_str!("../../README.md");
        let server = store::config::check_documented(&Server::command(), readme);
        let workers = store::config::check_documented(&Workers::command(), readme);
        // Read by the logger and the OpenTelemetry SDK of both, rather than these settings.
        let sdk = ["RUST_LOG", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER"];
        for (name, _) in store::config::documented_settings(readme) {
            let (by_server, by_workers) = (
                server.contains(&name) || sdk.contains(&name.as_str()),
                workers.contains(&name) || sdk.contains(&name.as_str()),
            );
            let read_by = match (by_server, by_workers) {
                (true, true) => "both",
                (true, false) => "server",
                (false, true) => "workers",
                (false, false) => panic!("README documents {name}, which no program reads"),
            };
            let row = readme.lines().find(|line| line.starts_with(&format!("| `{name}` |"))).unwrap();
            assert!(row.ends_with(&format!("| {read_by} |")), "README: {name} is read by {read_by}");
        }
    }

    #[test]
    fn rates_of_zero_are_no_limit() {
        let config = parse(&["--order-rate-per-client", "0", "--search-rate-per-client", "2"], false).unwrap();
        assert_eq!(config.order_rate, None);
        assert_eq!(config.search_rate, Some(Rate { burst: 20, interval: Duration::from_millis(500) }), "2 a second");
        let config = parse(&["--order-rate-per-client", "6"], false).unwrap();
        assert_eq!(config.order_rate, Some(Rate { burst: 20, interval: Duration::from_secs(10) }), "a minute's rate");
    }
}
