//! Keeps the work streams' memory bounded without losing work, and the
//! consumer groups free of the names of processes that are gone.
//!
//! A stream longer than `STREAM_MAXLEN` is trimmed (XTRIM MINID ~) up to, and
//! never past, the oldest entry any of its groups still needs: the oldest
//! pending entry, or the first entry the group has not been delivered yet.
//! Unread or unacknowledged entries are never dropped, however long the
//! stream grows while a consumer is down. (`order-status` and the dead-letter
//! streams have no group to wait for; their writers trim them by MAXLEN.)

use std::collections::HashMap;
use std::time::Duration;

use redis::{RedisResult, Value};

use crate::error::WorkerResult;
use store::streams::EntryId;
use store::{Config, PartitionKeys, Redis, Stream};
use tokio_util::sync::CancellationToken;

/// How often the streams are looked at.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// Trims the work streams of `partitions` every [`TRIM_INTERVAL`] until `shutdown`.
pub async fn run(
    conn: Redis,
    partitions: Vec<PartitionKeys>,
    config: Config,
    shutdown: CancellationToken,
) -> WorkerResult<()> {
    let mut conn = conn;
    loop {
        tokio::select! {
            () = tokio::time::sleep(TRIM_INTERVAL) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        for keys in &partitions {
            if let Err(error) = trim_all(&mut conn, keys, config.stream_maxlen).await {
                tracing::warn!(%error, partition = keys.partition().index(), "trimming the streams failed; will try again");
            }
            if let Err(error) = remove_gone_consumers(&mut conn, keys, &config).await {
                tracing::warn!(%error, partition = keys.partition().index(), "removing idle consumers failed; will try again");
            }
        }
    }
}

/// One pass over one partition's work streams; returns how many entries were removed.
pub async fn trim_all(conn: &mut Redis, keys: &PartitionKeys, maxlen: u64) -> RedisResult<u64> {
    let mut removed = 0;
    for stream in Stream::WORK {
        let name = &keys.stream(stream);
        let groups: &[&str] = &[stream.group().unwrap_or_default()];
        let len: u64 = redis::cmd("XLEN").arg(name).query_async(conn).await?;
        if len <= maxlen {
            continue;
        }
        let Some(keep_from) = oldest_needed(conn, name, groups).await? else {
            continue;
        };
        let trimmed: u64 =
            redis::cmd("XTRIM").arg(name).arg("MINID").arg("~").arg(&keep_from).query_async(conn).await?;
        if trimmed > 0 {
            tracing::debug!(stream = %name, trimmed, keep_from, "trimmed stream");
        }
        removed += trimmed;
    }
    Ok(removed)
}

/// Removes from every group of one partition the consumers idle longer than
/// `CONSUMER_EXPIRY_MS` that hold no pending entry: each restart of a workers
/// process leaves its `<host>-<pid>` name behind. Returns the names removed.
pub async fn remove_gone_consumers(
    conn: &mut Redis,
    keys: &PartitionKeys,
    config: &Config,
) -> RedisResult<Vec<String>> {
    let expiry = config.consumer_expiry.as_millis() as u64;
    let mut removed = Vec::new();
    for stream in Stream::WORK {
        let (name, group) = (keys.stream(stream), stream.group().unwrap_or_default());
        let consumers: Vec<HashMap<String, Value>> =
            match redis::cmd("XINFO").arg("CONSUMERS").arg(&name).arg(group).query_async(conn).await {
                Ok(consumers) => consumers,
                Err(error) if matches!(error.code(), Some("NOGROUP")) || error.to_string().contains("no such key") => {
                    continue
                }
                Err(error) => return Err(error),
            };
        for consumer in consumers {
            let number = |field: &str| consumer.get(field).and_then(|v| redis::from_redis_value_ref::<u64>(v).ok());
            let Some(consumer_name) = text(consumer.get("name")) else { continue };
            let idle = number("idle").unwrap_or(0);
            if consumer_name == config.consumer_name || number("pending") != Some(0) || idle < expiry {
                continue;
            }
            if store::scripts::remove_consumer(&name, group, &consumer_name).run(conn).await? {
                tracing::info!(stream = %name, group, consumer = %consumer_name, idle_ms = idle, "removed a consumer that is gone");
                removed.push(consumer_name);
            }
        }
    }
    Ok(removed)
}

/// The oldest entry of `name` that one of `groups` still needs, or `None`
/// when a group is missing (nothing may be trimmed before it exists).
async fn oldest_needed(conn: &mut Redis, name: &str, groups: &[&str]) -> RedisResult<Option<String>> {
    let info = store::streams::groups(conn, name).await?;
    let mut oldest: Option<EntryId> = None;
    for wanted in groups {
        let Some(group) = info.iter().find(|g| g.name == *wanted) else {
            return Ok(None);
        };
        let needed = if group.pending > 0 {
            // XPENDING's summary starts with the smallest pending id.
            let summary: (u64, Option<String>, Option<String>, Value) =
                redis::cmd("XPENDING").arg(name).arg(*wanted).query_async(conn).await?;
            summary.1.as_deref().and_then(EntryId::parse)
        } else {
            // Everything up to last-delivered is acknowledged; keep what follows it.
            group.last_delivered.map(EntryId::next)
        };
        let Some(needed) = needed else {
            return Ok(None);
        };
        oldest = Some(oldest.map_or(needed, |o| o.min(needed)));
    }
    Ok(oldest.map(|id| id.to_string()))
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(|v| redis::from_redis_value_ref(v).ok())
}
