//! Connecting to Redis: one Redis, or a Redis Cluster, behind one type.
//!
//! [`Redis`] is what every other module holds; it speaks to a single server
//! (`REDIS_URL`) or to a cluster (`REDIS_CLUSTER_NODES`), and nothing else
//! asks which. Both connect lazily: a process starts even while Redis is
//! down, and the next command after Redis comes back reconnects. On a
//! cluster, the client follows MOVED and ASK redirections while slots move
//! and retries while a failover promotes a replica (TRYAGAIN, CLUSTERDOWN,
//! refused connections), with backoff, and follows the failover of a master
//! that fell silent ([`crate::cluster`]); commands that still fail return
//! errors the caller turns into a 503 or a retry.
//!
//! Every pipeline sent through [`Redis`] must stay within one partition (one
//! hash slot): a cluster cannot run it otherwise.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterConfig;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::cluster::{Cluster, Settings};

/// How long an ordinary command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command may take on a cluster, retries across a failover included.
const CLUSTER_OVERALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where Redis is: one server, or the seed nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// `REDIS_URL`: `redis://[:password@]host:port[/db]` or `rediss://` for TLS.
    Single(String),
    /// `REDIS_CLUSTER_NODES`: some or all nodes of the cluster, each a URL as above.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// A cluster from a comma-separated list of node URLs.
    pub fn cluster(seeds: &str) -> Result<RedisTarget, String> {
        let seeds: Vec<String> = seeds.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        if seeds.is_empty() {
            return Err("REDIS_CLUSTER_NODES is empty; give redis://host:port of one or more cluster nodes".into());
        }
        for seed in &seeds {
            redis::IntoConnectionInfo::into_connection_info(seed.as_str())
                .map_err(|e| format!("REDIS_CLUSTER_NODES: {seed:?} is not a redis:// URL ({e})"))?;
        }
        Ok(RedisTarget::Cluster(seeds))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }

    /// `partitions` split into the sets one blocking read may follow
    /// together. A single Redis takes the streams of every partition in one
    /// XREAD: one reader, one command and one wake-up where there would be
    /// one per partition, and bigger batches. A cluster refuses a command
    /// whose keys lie in different slots (CROSSSLOT), so there each
    /// partition has a reader of its own.
    pub fn read_sets<T>(&self, partitions: Vec<T>) -> Vec<Vec<T>> {
        match self {
            RedisTarget::Single(_) if partitions.is_empty() => Vec::new(),
            RedisTarget::Single(_) => vec![partitions],
            RedisTarget::Cluster(_) => partitions.into_iter().map(|p| vec![p]).collect(),
        }
    }
}

impl std::fmt::Display for RedisTarget {
    /// Where it is, for logs and messages, without passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn redacted(url: &str) -> String {
            match (url.split_once("://"), url.rsplit_once('@')) {
                (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
                _ => url.to_string(),
            }
        }
        match self {
            RedisTarget::Single(url) => write!(f, "{}", redacted(url)),
            RedisTarget::Cluster(seeds) => {
                let seeds: Vec<String> = seeds.iter().map(|s| redacted(s)).collect();
                write!(f, "cluster {}", seeds.join(","))
            }
        }
    }
}

/// A connection to one Redis or to a cluster; cheap to clone (clones share it).
#[derive(Clone)]
pub enum Redis {
    Single(ConnectionManager),
    Cluster(Cluster),
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Redis::Single(conn) => conn.req_packed_command(cmd),
            Redis::Cluster(cluster) => {
                Box::pin(cluster.run(move |mut conn| async move { conn.req_packed_command(cmd).await }))
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Redis::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Redis::Cluster(cluster) => Box::pin(
                cluster.run(move |mut conn| async move { conn.req_packed_commands(pipeline, offset, count).await }),
            ),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Redis::Single(conn) => conn.get_db(),
            Redis::Cluster(cluster) => cluster.connection().get_db(),
        }
    }
}

fn single(url: &str, response_timeout: Duration) -> RedisResult<Redis> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(1));
    Ok(Redis::Single(redis::Client::open(url)?.get_connection_manager_lazy(config)?))
}

fn cluster(
    seeds: &[String],
    response_timeout: Duration,
    overall_timeout: Option<Duration>,
    read_from: ReadFrom,
) -> RedisResult<Redis> {
    let config = ClusterConfig::new().set_connection_timeout(CONNECT_TIMEOUT).set_response_timeout(response_timeout);
    let read_from_replicas = read_from == ReadFrom::Replicas;
    Ok(Redis::Cluster(Cluster::new(Settings { seeds: seeds.to_vec(), config, overall_timeout, read_from_replicas })?))
}

/// Where a connection's read-only commands go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The master: a read sees every write it took, replicated or not.
    Master,
    /// On a cluster, a replica of the slot's master (the master while it has
    /// none): a read sees only writes some replica holds, which survive a
    /// failover, a moment after the master has them. On a single Redis, the
    /// master.
    Replicas,
}

/// A shared connection for ordinary (non-blocking) commands.
pub fn connect(target: &RedisTarget) -> RedisResult<Redis> {
    connect_reading(target, ReadFrom::Master)
}

/// A shared connection for ordinary commands, reading from `read_from`.
pub fn connect_reading(target: &RedisTarget, read_from: ReadFrom) -> RedisResult<Redis> {
    match target {
        RedisTarget::Single(url) => single(url, COMMAND_TIMEOUT),
        RedisTarget::Cluster(seeds) => cluster(seeds, COMMAND_TIMEOUT, Some(CLUSTER_OVERALL_TIMEOUT), read_from),
    }
}

/// A dedicated connection for a loop that blocks in XREAD/XREADGROUP for up to
/// `block`, its reads going to `read_from`. A blocking command holds up
/// everything behind it on a connection (on a cluster: on that node's
/// connection), so each blocking loop gets its own.
pub fn connect_blocking(target: &RedisTarget, block: Duration, read_from: ReadFrom) -> RedisResult<Redis> {
    match target {
        RedisTarget::Single(url) => single(url, block + COMMAND_TIMEOUT),
        RedisTarget::Cluster(seeds) => {
            cluster(seeds, block + COMMAND_TIMEOUT, Some(block + CLUSTER_OVERALL_TIMEOUT), read_from)
        }
    }
}

/// Exponential backoff with jitter for retrying while Redis is unreachable
/// (`backon`'s exponential backoff): the n-th delay is drawn at random
/// between `d` and `2d`, where `d` starts at 100 ms and doubles up to 2.5 s;
/// so every delay lies between [`Backoff::MIN`] and [`Backoff::MAX`], and
/// processes that lost Redis together do not all come back at once.
///
/// A clone continues with the very delays the original would draw, so
/// `backoff.clone().next_delay()` tells the next delay in advance.
#[derive(Debug)]
pub struct Backoff {
    /// Seeds the jitter, so that a clone draws the same delays.
    seed: u64,
    /// Delays drawn so far.
    taken: usize,
    delays: backon::ExponentialBackoff,
}

impl Backoff {
    /// The shortest delay: the first one is at least this.
    pub const MIN: Duration = Duration::from_millis(100);
    /// No delay is longer than this.
    pub const MAX: Duration = Duration::from_secs(5);

    /// The delays of `seed`, after the first `taken`.
    fn replay(seed: u64, taken: usize) -> Backoff {
        use backon::BackoffBuilder;
        let mut delays = backon::ExponentialBuilder::new()
            .with_min_delay(Backoff::MIN)
            // The jitter adds up to as much again.
            .with_max_delay(Backoff::MAX / 2)
            .with_factor(2.0)
            .with_jitter()
            .with_jitter_seed(seed)
            .without_max_times()
            .build();
        for _ in 0..taken {
            delays.next();
        }
        Backoff { seed, taken, delays }
    }

    /// The delay to wait now; each call about doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        self.taken += 1;
        // Without a limit on the number of tries the iterator never ends.
        self.delays.next().unwrap_or(Backoff::MAX).min(Backoff::MAX)
    }

    /// Back to the shortest delays after a success.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

impl Default for Backoff {
    fn default() -> Self {
        // A seed of its own for every backoff: jitter is the point.
        let seed = getrandom::u64().unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            nanos.as_nanos() as u64 ^ u64::from(std::process::id())
        });
        Backoff::replay(seed, 0)
    }
}

impl Clone for Backoff {
    fn clone(&self) -> Self {
        Backoff::replay(self.seed, self.taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_seeds_are_a_list_of_urls() {
        assert_eq!(
            RedisTarget::cluster("redis://a:1, redis://b:2,").unwrap(),
            RedisTarget::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert!(RedisTarget::cluster(" , ").is_err());
        assert!(RedisTarget::cluster("nonsense://x").is_err());
    }

    #[test]
    fn a_single_redis_reads_every_partition_at_once_a_cluster_each_alone() {
        let single = RedisTarget::Single("redis://a:1".into());
        assert_eq!(single.read_sets(vec![0, 1, 2]), vec![vec![0, 1, 2]]);
        assert_eq!(single.read_sets(Vec::<u16>::new()), Vec::<Vec<u16>>::new());
        let cluster = RedisTarget::Cluster(vec!["redis://a:1".into()]);
        assert_eq!(cluster.read_sets(vec![0, 1, 2]), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn backoff_delays_vary_and_stay_within_bounds() {
        const MIN: Duration = Duration::from_millis(100);
        const MAX: Duration = Duration::from_secs(5);
        let sequences: Vec<Vec<Duration>> = (0..8)
            .map(|_| {
                let mut backoff = Backoff::default();
                (0..12).map(|_| backoff.next_delay()).collect()
            })
            .collect();
        for delays in &sequences {
            assert!(delays.iter().all(|d| (MIN..=MAX).contains(d)), "{delays:?}");
            assert!(delays[0] < MIN * 2, "the first delay is short: {delays:?}");
            assert!(delays[11] >= MAX / 2, "later delays reach the top: {delays:?}");
            // Each delay is drawn from [d, 2d) with d doubling: the n-th is at least 100 ms × 2^n (capped).
            for (n, delay) in delays.iter().enumerate() {
                assert!(*delay >= (MIN * 2u32.pow(n as u32)).min(MAX / 2), "{n}: {delays:?}");
            }
        }
        let firsts: std::collections::HashSet<Duration> = sequences.iter().map(|d| d[0]).collect();
        assert!(firsts.len() > 1, "jitter: processes starting together wait different times: {firsts:?}");
        let mut backoff = Backoff::default();
        for _ in 0..10 {
            backoff.next_delay();
        }
        let peeked = backoff.clone().next_delay();
        assert_eq!(backoff.next_delay(), peeked, "a clone tells the next delay");
        backoff.reset();
        assert!(backoff.next_delay() < MIN * 2, "reset starts over");
    }

    #[test]
    fn targets_print_without_passwords() {
        let target = RedisTarget::cluster("redis://:secret@a:1,redis://b:2").unwrap();
        assert_eq!(target.to_string(), "cluster redis://…@a:1,redis://b:2");
        assert_eq!(RedisTarget::Single("redis://u:pw@h:6379/0".into()).to_string(), "redis://…@h:6379/0");
    }
}
