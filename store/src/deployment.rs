//! The check both binaries make before they start: Redis answers, and holds
//! this deployment's key layout.
//!
//! The partition count is fixed for a deployment: ids and keys depend on it,
//! so a process started with another count would look for everything in the
//! wrong place. The first process records it (`<ns>:partitions`); every later
//! one compares and refuses to start on a mismatch. Data written by the
//! versions before partitions (keys without namespace) must be moved first
//! with `workers migrate`; a process refuses to start on it, naming the command.

use std::time::Duration;

use redis::AsyncCommands;
use tokio::time::Instant;

use crate::config::Config;
use crate::connection::{self, Backoff, Redis, RedisTarget};
use crate::keys::{Layout, Stream};
use crate::migrate::legacy;

/// Why a process must not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot reach Redis ({target}) within {waited:?}: {error}. Is it running, and is the address right?")]
    Unreachable { target: String, waited: Duration, error: redis::RedisError },
    #[error(
        "PARTITIONS is {configured}, but this deployment (namespace {namespace:?}) was created with {recorded}. \
         The partition count cannot change: start with PARTITIONS={recorded}, or use another REDIS_NAMESPACE for a new deployment"
    )]
    PartitionsChanged { namespace: String, recorded: String, configured: u16 },
    #[error(
        "Redis ({target}) holds Stockflow data in the layout before partitions (found {key:?}). \
         Move it once with `workers migrate` (same REDIS_URL, PARTITIONS and REDIS_NAMESPACE), then start again"
    )]
    Unmigrated { target: String, key: String },
}

/// Waits up to `STARTUP_WAIT_MS` for Redis, then checks (and on first start
/// records) the layout. `allow_legacy` is for the migration itself.
pub async fn prepare(config: &Config, allow_legacy: bool) -> Result<Redis, StartupError> {
    let wait = config.startup_wait;
    let unreachable =
        |error: redis::RedisError| StartupError::Unreachable { target: config.redis.to_string(), waited: wait, error };
    let conn = connection::connect(&config.redis).map_err(unreachable)?;
    let deadline = Instant::now() + wait;
    let mut backoff = Backoff::default();
    loop {
        match check(&conn, &config.redis, &config.layout, allow_legacy).await {
            Ok(outcome) => {
                warn_if_evicting(&conn).await;
                return outcome.map(|()| conn);
            }
            Err(error) if Instant::now() + backoff.clone().next_delay() < deadline => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, redis = %config.redis, retry_in_ms = delay.as_millis() as u64, "waiting for Redis");
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(unreachable(error)),
        }
    }
}

/// Logs a warning for every node whose `maxmemory-policy` would evict
/// Stockflow's keys once memory is full (see [`crate::observe::NodeMemory`]).
async fn warn_if_evicting(conn: &Redis) {
    for node in crate::observe::memory(conn).await.unwrap_or_default() {
        if let Some(warning) = node.warning() {
            tracing::warn!(node = %node.node, policy = %node.policy, "{warning}");
        }
    }
}

/// `Err` when Redis did not answer (worth waiting for), `Ok(Err)` when it
/// answered that this process must not start.
async fn check(
    conn: &Redis,
    target: &RedisTarget,
    layout: &Layout,
    allow_legacy: bool,
) -> redis::RedisResult<Result<(), StartupError>> {
    // Every partition's master must answer, not just some node.
    crate::shop::ping_partitions(conn, layout).await?;
    let mut conn = conn.clone();
    if !allow_legacy {
        if let Some(key) = legacy_key(&mut conn).await? {
            return Ok(Err(StartupError::Unmigrated { target: target.to_string(), key }));
        }
    }
    let configured = layout.partitions().count();
    let key = layout.partition_count();
    let _: bool = conn.set_nx(&key, configured).await?;
    let recorded: String = conn.get(&key).await?;
    if recorded != configured.to_string() {
        return Ok(Err(StartupError::PartitionsChanged {
            namespace: layout.namespace().to_string(),
            recorded,
            configured,
        }));
    }
    Ok(Ok(()))
}

/// A key only the layout before partitions writes, if Redis holds one.
pub async fn legacy_key(conn: &mut Redis) -> redis::RedisResult<Option<String>> {
    for key in [legacy::ORDER_COUNTS, Stream::OrderPlaced.name()] {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(conn).await?;
        if kind != "none" {
            return Ok(Some(key.to_string()));
        }
    }
    Ok(None)
}
