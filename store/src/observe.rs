//! What an operator wants to see of the shop's state: orders by status, and
//! each stream's length with its groups' lag and pending count, summed over
//! the partitions (one round trip per partition, all at once).

use std::collections::HashMap;

use domain::OrderStatus;
use redis::Value;

use crate::connection::Redis;
use crate::error::StoreResult;
use crate::keys::{Layout, PartitionKeys, Stream};

/// One consumer group's backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    pub group: String,
    /// Entries not yet delivered to the group.
    pub lag: u64,
    /// Entries delivered but not yet acknowledged.
    pub pending: u64,
}

/// One stream's size, its dead letters and its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub stream: &'static str,
    pub length: u64,
    pub dead_letters: u64,
    /// Dead letters that fell off the cap (`DEAD_LETTER_MAXLEN`) since the start.
    pub dead_letters_dropped: u64,
    pub groups: Vec<GroupStats>,
}

/// A snapshot for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub orders: Vec<(OrderStatus, u64)>,
    pub streams: Vec<StreamStats>,
}

/// Reads the snapshot: one pipeline per partition, all partitions at once.
pub async fn observe(conn: &Redis, layout: &Layout) -> StoreResult<Observed> {
    let reads = layout.all().map(|keys| {
        let mut conn = conn.clone();
        async move { observe_partition(&mut conn, keys).await }
    });
    let partitions = futures::future::try_join_all(reads).await?;
    let mut counts: HashMap<OrderStatus, u64> = HashMap::new();
    let mut streams: Vec<StreamStats> = Stream::ALL
        .iter()
        .map(|s| StreamStats {
            stream: s.name(),
            length: 0,
            dead_letters: 0,
            dead_letters_dropped: 0,
            groups: Vec::new(),
        })
        .collect();
    for (partition_counts, partition_streams) in partitions {
        for (status, count) in partition_counts {
            *counts.entry(status).or_default() += count;
        }
        for (total, part) in streams.iter_mut().zip(partition_streams) {
            total.length += part.length;
            total.dead_letters += part.dead_letters;
            total.dead_letters_dropped += part.dead_letters_dropped;
            for group in part.groups {
                match total.groups.iter_mut().find(|g| g.group == group.group) {
                    Some(sum) => {
                        sum.lag += group.lag;
                        sum.pending += group.pending;
                    }
                    None => total.groups.push(group),
                }
            }
        }
    }
    let orders =
        OrderStatus::ALL.into_iter().map(|status| (status, counts.get(&status).copied().unwrap_or(0))).collect();
    Ok(Observed { orders, streams })
}

type PartitionSnapshot = (Vec<(OrderStatus, u64)>, Vec<StreamStats>);

async fn observe_partition(conn: &mut Redis, keys: &PartitionKeys) -> StoreResult<PartitionSnapshot> {
    let mut pipe = redis::pipe();
    for status in OrderStatus::ALL {
        pipe.zcard(keys.orders_in(status));
    }
    pipe.hgetall(keys.dead_letters_dropped());
    for stream in Stream::ALL {
        pipe.xlen(keys.stream(stream))
            .xlen(keys.dead_letters(stream))
            .cmd("XINFO")
            .arg("GROUPS")
            .arg(keys.stream(stream));
    }
    // XINFO GROUPS fails for a stream that does not exist yet: read replies one by one.
    let replies: Vec<Value> = pipe.ignore_errors().query_async(conn).await?;
    let mut replies = replies.into_iter();
    let orders = OrderStatus::ALL
        .into_iter()
        .map(|status| (status, replies.next().and_then(|v| redis::from_redis_value::<u64>(v).ok()).unwrap_or(0)))
        .collect();
    let dropped: HashMap<String, u64> =
        replies.next().and_then(|v| redis::from_redis_value(v).ok()).unwrap_or_default();
    let mut streams = Vec::new();
    for stream in Stream::ALL {
        let mut number = || replies.next().and_then(|v| redis::from_redis_value::<u64>(v).ok()).unwrap_or(0);
        let (length, dead_letters) = (number(), number());
        let groups: Vec<HashMap<String, Value>> =
            replies.next().and_then(|v| redis::from_redis_value(v).ok()).unwrap_or_default();
        let groups = groups
            .iter()
            .map(|g| {
                let field = |name: &str| g.get(name).and_then(|v| redis::from_redis_value_ref::<u64>(v).ok());
                GroupStats {
                    group: g.get("name").and_then(|v| redis::from_redis_value_ref(v).ok()).unwrap_or_default(),
                    lag: field("lag").unwrap_or(0),
                    pending: field("pending").unwrap_or(0),
                }
            })
            .collect();
        let dead_letters_dropped = dropped.get(&keys.stream(stream)).copied().unwrap_or(0);
        streams.push(StreamStats { stream: stream.name(), length, dead_letters, dead_letters_dropped, groups });
    }
    Ok((orders, streams))
}
